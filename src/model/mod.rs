//! `Rnn`: input -> stacked recurrent layers (one or two directions) -> output projection, with
//! forward and backward.
//!
//! # Heads
//!
//! The output layer runs at every step ([`Rnn::forward`], [`Trace::logits`], `T*B x V`, and
//! [`Rnn::backward`]), or once per sequence, on its end: the many-to-one head
//! ([`Rnn::last_logits`], `B x V`, and [`Rnn::backward_last`]). For sequence `b` of length
//! `len_b` (`T` without lengths) the head reads PyTorch's `h_n` of the top layer as a packed
//! batch gives it:
//!
//! ```text
//! unidirectional:  z_b = h_fwd[len_b - 1, b]                  (h_n[-1])
//! bidirectional:   z_b = [h_fwd[len_b - 1, b], h_rev[0, b]]    (cat(h_n[-2], h_n[-1]))
//! logits:          y_b = z_b W_hy^T + b_y
//! ```
//!
//! The backward direction reads each sequence from its last real step to its first, so it
//! ends at step 0. Backward: `dW_hy = dY^T Z`, `db_y = colsum(dY)`, `dZ = dY W_hy`, and row `b`
//! of `dZ` enters the top layer at those two steps; BPTT runs from there.

mod backward;
mod config;
mod data;
mod dropout;
pub(crate) mod finite;
mod head;
mod stream;
mod trace;

pub use config::RnnConfig;
pub use data::{Input, State};
pub use stream::Stream;
pub use trace::{Gradients, Trace};

use crate::backend::{Backend, Transpose};
use crate::bptt::{self, LayerInput, check_lengths};
use crate::cell::{CellKernels, CellParams, CellState, LayerCell, uniform};
use crate::error::{Error, Result};
use crate::params::{Linear, Params};
use data::InputData;
use num_traits::{Float, One, Zero};
use rand::Rng;
use trace::{LayerRecord, time_reversal};

/// A recurrent network: input -> stacked recurrent layers -> optional output projection.
///
/// `forward` and `backward` take `&self`: the model is only changed by an optimiser step or by
/// [`set_parameter`](Rnn::set_parameter), so one model can run forward on several threads and the
/// gradients are a value to inspect, clip, sum and hand to any optimiser.
#[derive(Debug, Clone)]
pub struct Rnn<B: Backend> {
    backend: B,
    config: RnnConfig,
    params: Params<B>,
    /// Changes with every change of the parameters (a clone keeps it: same values), so that a
    /// [`Stream`] knows when the weights it prepared are out of date.
    version: u64,
}

/// A number no model has had yet.
fn new_version() -> u64 {
    use std::sync::atomic::{AtomicU64, Ordering};
    static NEXT: AtomicU64 = AtomicU64::new(0);
    NEXT.fetch_add(1, Ordering::Relaxed)
}

impl<B: Backend> Rnn<B> {
    /// A model of shape `config`, initialised as PyTorch initialises its modules: every entry
    /// uniform in `[-1/sqrt(H), 1/sqrt(H)]` (`nn.Linear`: `1/sqrt(D*H)`), drawn from `rng` in
    /// `state_dict()` order.
    ///
    /// With an [embedding](RnnConfig::embedding), `embedding.weight` is drawn first, `N(0, 1)`
    /// as `nn.Embedding`; a [tied](RnnConfig::tie_weights) output layer draws only its bias.
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// // PyTorch's nn.LSTM(5, 8) followed by nn.Linear(8, 3).
    /// let rnn = Rnn::new(Cpu::<f32>::default(), RnnConfig::lstm(5, 8).output(3), &mut StdRng::seed_from_u64(0))?;
    /// let w_hh = rnn.backend().to_vec(rnn.parameter("weight_hh_l0")?);
    /// assert_eq!(w_hh.len(), 4 * 8 * 8); // the four gates' rows, stacked as PyTorch stacks them
    /// assert!(w_hh.iter().all(|w| w.abs() <= 1.0 / 8f32.sqrt()));
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`] if a size or the layer count is zero, dropout is not in `[0, 1)`, or
    /// tied weights do not fit (no embedding or output layer, an output size other than the
    /// vocabulary, or an embedding width other than the top layer's `D*H`).
    pub fn new<R: Rng + ?Sized>(backend: B, config: RnnConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let (kind, hidden, dirs) = (config.kind(), config.hidden_size(), config.directions());
        let mut layers = Vec::with_capacity(config.num_layers() * dirs);
        for layer in 0..config.num_layers() {
            let input = config.layer_input_size(layer);
            for _ in 0..dirs {
                let cell = CellParams::init(&backend, kind, input, hidden, config.has_bias(), rng)?;
                layers.push(cell);
            }
        }
        let embedding = match config.embedding_dim() {
            Some(dim) => Some(normal(&backend, config.input_size(), dim, rng)?),
            None => None,
        };
        // A tied output layer's weight is the embedding: it is kept there, once.
        let (embedding, tied) = match config.ties_weights() {
            true => (None, embedding),
            false => (embedding, None),
        };
        let out = match config.output_size() {
            Some(size) => Some(init_linear(
                &backend,
                (dirs * hidden, size),
                tied,
                config.has_output_bias(),
                rng,
            )?),
            None => None,
        };
        Ok(Rnn {
            backend,
            params: Params {
                embedding,
                layers,
                directions: dirs,
                out,
                tied: config.ties_weights(),
            },
            config,
            version: new_version(),
        })
    }

    /// The backend the model computes on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The model's configuration.
    pub fn config(&self) -> &RnnConfig {
        &self.config
    }

    /// The parameters.
    pub fn params(&self) -> &Params<B> {
        &self.params
    }

    /// The parameters, mutable, for optimisers, which keep the shapes.
    pub(crate) fn params_mut(&mut self) -> &mut Params<B> {
        self.version = new_version();
        &mut self.params
    }

    /// Every parameter with its PyTorch name, in `state_dict()` order; a
    /// [tied](RnnConfig::tie_weights) weight once, as `embedding.weight` (PyTorch's
    /// `named_parameters()`; [`state_dict`](Rnn::state_dict) writes it under both names).
    pub fn parameters(&self) -> Vec<(String, &B::Matrix)> {
        self.params.named()
    }

    /// The parameter called `name` (a tied weight under either of its names).
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn parameter(&self, name: &str) -> Result<&B::Matrix> {
        self.params.get(name)
    }

    /// Replaces the values of the parameter called `name` with row-major `data` (biases: their
    /// `V` or `G*H` entries). The shape stays. A tied weight changes under both its names.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], [`Error::Shape`] if `data` has the wrong length, or
    /// [`Error::NonFinite`] if it holds a NaN or infinity; the model is unchanged on error.
    pub fn set_parameter(&mut self, name: &str, data: Vec<B::Scalar>) -> Result<()> {
        let backend = self.backend.clone();
        let version = new_version();
        let slot = self.params.get_mut(name)?;
        let (rows, cols) = backend.shape(slot);
        if data.len() != rows * cols {
            return Err(Error::shape(name, (rows, cols), data.len()));
        }
        if data.iter().any(|v| !v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("new value of {name}"),
            });
        }
        *slot = backend.from_vec(rows, cols, data)?;
        self.version = version;
        Ok(())
    }

    /// The zero state for a batch of `batch`.
    pub fn zero_state(&self, batch: usize) -> State<B> {
        let (kind, hidden) = (self.config.kind(), self.config.hidden_size());
        let count = self.params.layers.len();
        State::new(
            (0..count)
                .map(|_| CellState::zeros(&self.backend, kind, batch, hidden))
                .collect(),
        )
    }
}

/// Running the model: on a backend with the cells' kernels ([`CellKernels`]).
impl<B: CellKernels> Rnn<B> {
    /// Runs the model over a whole sequence from `initial_state` (zeros if `None`), in
    /// inference mode (no dropout).
    ///
    /// Input is `T*B` rows, time-major; the output ([`Trace::logits`]) is `T*B x V`.
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// let rnn = Rnn::new(NaiveCpu::<f64>::new(), RnnConfig::gru(4, 6).output(4), &mut StdRng::seed_from_u64(0))?;
    /// // Two sequences of three token ids, time-major: step 0 of both, then step 1, then step 2.
    /// let trace = rnn.forward(&Input::ids(vec![0, 1, 2, 3, 1, 0], 2), None)?;
    /// assert_eq!(rnn.backend().shape(trace.logits()), (6, 4)); // T*B x V
    /// // Inference is deterministic: the same input gives the same bits.
    /// let again = rnn.forward(&Input::ids(vec![0, 1, 2, 3, 1, 0], 2), None)?;
    /// assert_eq!(rnn.backend().to_vec(trace.logits()), rnn.backend().to_vec(again.logits()));
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty sequence or batch; [`Error::Shape`] for input rows that are
    /// not a multiple of the batch, a dense input whose width is not the input size, lengths
    /// that are not one per sequence in `1..=T`, or a state of the wrong count or shape;
    /// [`Error::Index`] for a token id not below the input size; [`Error::Config`] for dense
    /// input to a model with an [embedding](RnnConfig::embedding).
    pub fn forward(&self, input: &Input<B>, initial_state: Option<&State<B>>) -> Result<Trace<B>> {
        self.run(input, initial_state, None)
    }

    /// As [`forward`](Rnn::forward), in training mode: with a dropout probability `p > 0` in the
    /// configuration, each output of every layer but the last is zeroed with probability `p`
    /// and the rest scaled by `1/(1-p)`, drawing from `rng` (the same seed gives the same masks);
    /// the last layer's output likewise with the
    /// [output dropout](RnnConfig::output_dropout) probability. The configuration's other
    /// regularisers apply here too: [locked](RnnConfig::locked_dropout) masks,
    /// [input](RnnConfig::input_dropout), [embedding](RnnConfig::embedding_dropout) and
    /// [weight](RnnConfig::weight_dropout) dropout (their equations are in the `dropout`
    /// module's source documentation, `src/model/dropout.rs`).
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// let config = RnnConfig::gru(3, 4).output_dropout(0.5).locked_dropout(true);
    /// let rnn = Rnn::new(NaiveCpu::<f64>::new(), config, &mut StdRng::seed_from_u64(0))?;
    /// let x = rnn.backend().from_vec(6, 3, vec![0.5; 18])?; // T = 3 steps, batch 2
    /// let trace = rnn.forward_train(&Input::dense(x, 2), None, &mut StdRng::seed_from_u64(1))?;
    /// // Locked: each sequence drops the same units at every step.
    /// let out = rnn.backend().to_vec(trace.logits());
    /// let dropped = |row: usize| (0..4).map(|j| out[row * 4 + j] == 0.0).collect::<Vec<_>>();
    /// assert_eq!(dropped(0), dropped(2)); // sequence 0 at steps 0 and 1
    /// assert_eq!(dropped(1), dropped(5)); // sequence 1 at steps 0 and 2
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`forward`](Rnn::forward); [`Error::Config`] for
    /// [input dropout](RnnConfig::input_dropout) on token ids without an embedding.
    pub fn forward_train<R: Rng + ?Sized>(
        &self,
        input: &Input<B>,
        initial_state: Option<&State<B>>,
        rng: &mut R,
    ) -> Result<Trace<B>> {
        let mut draw = |rows, cols, p| dropout::mask(&self.backend, rows, cols, p, rng);
        self.run(input, initial_state, Some(&mut draw))
    }

    fn run(
        &self,
        input: &Input<B>,
        initial_state: Option<&State<B>>,
        mut dropout: Option<&mut DrawMask<'_, B>>,
    ) -> Result<Trace<B>> {
        let backend = &self.backend;
        let batch = input.batch();
        let lengths = input.lengths();
        if let Some(state) = initial_state {
            self.check_state_count("initial state", state)?;
        }
        let input_size = self.config.input_size();
        if self.config.embedding_dim().is_some() && input.as_dense().is_some() {
            self.embed(input)?; // The error that names what an embedding model reads.
        }
        let steps = input.layer_input().check(backend, input_size, batch)?;
        if let Some(lengths) = lengths {
            check_lengths(lengths, batch, steps)?;
        }
        let (first_rows, first_mask) = self.first_input(input, steps, dropout.as_deref_mut())?;
        let bidirectional = self.config.directions() == 2;
        let reversal = bidirectional.then(|| time_reversal(steps, batch, lengths));
        let layers = self.config.num_layers();
        let mut records: Vec<LayerRecord<B>> = Vec::with_capacity(layers);
        let pass = Pass {
            initial_state,
            steps,
            batch,
            lengths,
            reversal: reversal.as_deref(),
        };
        for layer in 0..layers {
            let layer_input = match (records.last(), &first_rows) {
                (None, Some(rows)) => LayerInput::Dense(rows),
                (None, None) => input.layer_input(),
                (Some(below), _) => LayerInput::Dense(below.next_input()),
            };
            let record = self.run_layer(layer, layer_input, &pass, dropout.as_deref_mut())?;
            records.push(record);
        }
        let top = records
            .last()
            .expect("validated: at least one layer")
            .next_input();
        let logits = match &self.params.out {
            Some(linear) => project_output(backend, linear, top),
            None => top.clone(),
        };
        let mask = lengths.map(|l| {
            (0..steps * batch)
                .map(|r| r / batch < l[r % batch])
                .collect()
        });
        Ok(Trace {
            input: input.clone(),
            first_rows,
            first_mask,
            records,
            reversal,
            mask,
            logits,
        })
    }

    /// Runs layer `layer` (every direction) over `layer_input`; in training mode (`dropout`)
    /// with weight dropout on its `W_hh` and dropout on its output.
    fn run_layer(
        &self,
        layer: usize,
        layer_input: LayerInput<'_, B>,
        pass: &Pass<'_, B>,
        mut dropout: Option<&mut DrawMask<'_, B>>,
    ) -> Result<LayerRecord<B>> {
        let (backend, kind) = (&self.backend, self.config.kind());
        let index = layer * self.config.directions();
        let weight_drop: Vec<_> = (0..self.config.directions())
            .map(|dir| {
                dropout
                    .as_mut()
                    .and_then(|d| self.drop_weights(index + dir, d))
            })
            .collect();
        let run_direction = |dir: usize, input: LayerInput<'_, B>| {
            let initial = pass.initial_state.map(|s| &s.layers()[index + dir]);
            let params = match &weight_drop[dir] {
                Some((_, dropped)) => dropped,
                None => &self.params.layers[index + dir],
            };
            let cell = LayerCell::of(kind, params);
            bptt::forward(backend, &cell, input, pass.batch, pass.lengths, initial)
                .map_err(|e| in_layer(e, layer, dir))
        };
        let forward = run_direction(0, layer_input)?;
        let mut record = LayerRecord {
            forward,
            reverse: None,
            joined: None,
            dropout: None,
            weight_drop: Vec::new(),
        };
        if let Some(rows) = pass.reversal {
            // The backward direction reads every sequence from its last real step to its first.
            let reversed = InputData::permuted(backend, layer_input, rows);
            let trace = run_direction(1, reversed.as_layer_input())?;
            record.joined = Some(self.join_directions(&record.forward, &trace, rows));
            record.reverse = Some((trace, reversed));
        }
        if let Some(draw) = dropout {
            self.drop_out(&mut record, layer, (pass.steps, pass.batch), draw);
        }
        record.weight_drop = weight_drop;
        Ok(record)
    }

    /// In training mode, drops out a layer's output: between layers at the dropout probability,
    /// after the last at the output dropout probability. The mask and the dropped output are
    /// kept in the record, for the layer above (or the output layer) and for backward.
    /// With [locked dropout](RnnConfig::locked_dropout), one mask per sequence and unit.
    fn drop_out(
        &self,
        record: &mut LayerRecord<B>,
        layer: usize,
        steps_batch: (usize, usize),
        draw: &mut DrawMask<'_, B>,
    ) {
        let p = match layer + 1 < self.config.num_layers() {
            true => self.config.dropout_probability(),
            false => self.config.output_dropout_probability(),
        };
        let backend = &self.backend;
        let (_, cols) = backend.shape(record.output());
        if let Some(mask) = self.draw_mask(draw, steps_batch, cols, p) {
            let mut dropped = record.output().clone();
            backend.mul(&mut dropped, &mask);
            record.dropout = Some((mask, dropped));
        }
    }

    /// The two directions' outputs side by side, `T*B x 2H`, the backward one put back in time
    /// order.
    fn join_directions(
        &self,
        forward: &bptt::LayerTrace<B>,
        reverse: &bptt::LayerTrace<B>,
        reversal: &[usize],
    ) -> B::Matrix {
        let backend = &self.backend;
        let (rows, hidden) = backend.shape(forward.output());
        let in_order = permute_rows(backend, reverse.output(), reversal);
        let mut joined = backend.zeros(rows, 2 * hidden);
        backend.copy_columns(&mut joined, 0, forward.output(), 0, hidden);
        backend.copy_columns(&mut joined, hidden, &in_order, 0, hidden);
        joined
    }

    fn check_state_count(&self, what: &str, state: &State<B>) -> Result<()> {
        let want = self.params.layers.len();
        if state.layers().len() != want {
            return Err(Error::shape(
                format!("{what} (layers x directions)"),
                want,
                state.layers().len(),
            ));
        }
        Ok(())
    }

    /// Checks that `trace` was made by a model of this shape.
    fn check_trace(&self, trace: &Trace<B>) -> Result<()> {
        let backend = &self.backend;
        let dirs = self.config.directions();
        if trace.records.len() != self.config.num_layers() {
            return Err(Error::shape(
                "trace layers",
                self.config.num_layers(),
                trace.records.len(),
            ));
        }
        let rows = trace.steps() * trace.batch();
        let what = "trace (made by a model of another size)";
        for (layer, record) in trace.records.iter().enumerate() {
            let want = (rows, dirs * self.config.hidden_size());
            let given = backend.shape(record.output());
            if given != want || record.directions().count() != dirs {
                return Err(in_layer(Error::shape(what, want, given), layer, 0));
            }
        }
        // The logits: the output layer's width, or the top layer's when there is none.
        let width = self
            .config
            .output_size()
            .unwrap_or(dirs * self.config.hidden_size());
        let given = backend.shape(&trace.logits);
        if given != (rows, width) {
            return Err(Error::shape(
                format!("{what}: logits"),
                (rows, width),
                given,
            ));
        }
        Ok(())
    }
}

/// `m` with its rows reordered: row `r` of the result is row `order[r]` of `m`.
fn permute_rows<B: Backend>(backend: &B, m: &B::Matrix, order: &[usize]) -> B::Matrix {
    let (rows, cols) = backend.shape(m);
    let mut out = backend.zeros(rows, cols);
    backend.gather_rows(&mut out, m, order);
    out
}

/// `y = h W^T + b` for `h` (`n x K`), giving `n x V`.
fn project_output<B: Backend>(backend: &B, linear: &Linear<B>, h: &B::Matrix) -> B::Matrix {
    let (rows, _) = backend.shape(h);
    let (size, _) = backend.shape(&linear.weight);
    // Written whole by the GEMM (beta = 0).
    let mut y = backend.empty(rows, size);
    let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
    backend.gemm(
        &mut y,
        one,
        h,
        Transpose::No,
        &linear.weight,
        Transpose::Yes,
        zero,
    );
    if let Some(b) = &linear.bias {
        backend.add_row(&mut y, b);
    }
    y
}

/// `nn.Linear(fan_in, size)` initialised as PyTorch does: uniform in `[-1/sqrt(fan_in), ..]`;
/// with `tied`, that matrix is the weight (of the same shape, checked by the configuration)
/// and only the bias is drawn.
fn init_linear<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    (fan_in, size): (usize, usize),
    tied: Option<B::Matrix>,
    bias: bool,
    rng: &mut R,
) -> Result<Linear<B>> {
    let bound = 1.0 / (fan_in as f64).sqrt();
    let weight = match tied {
        Some(weight) => weight,
        None => uniform(backend, size, fan_in, bound, rng)?,
    };
    Ok(Linear {
        weight,
        bias: if bias {
            Some(uniform(backend, 1, size, bound, rng)?)
        } else {
            None
        },
    })
}

/// A `rows x cols` matrix of `N(0, 1)` entries: `nn.Embedding`'s initialisation.
fn normal<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    rows: usize,
    cols: usize,
    rng: &mut R,
) -> Result<B::Matrix> {
    use crate::scalar::Scalar;
    use rand_distr::{Distribution, StandardNormal};
    let count = rows * cols;
    let mut data = Vec::new();
    data.try_reserve_exact(count)
        .map_err(|e| Error::config(format!("cannot allocate a {rows} x {cols} embedding: {e}")))?;
    data.extend((0..count).map(|_| {
        let v: f64 = StandardNormal.sample(rng);
        B::Scalar::of(v)
    }));
    backend.from_vec(rows, cols, data)
}

/// What every layer of one forward pass shares.
struct Pass<'a, B: Backend> {
    initial_state: Option<&'a State<B>>,
    steps: usize,
    batch: usize,
    lengths: Option<&'a [usize]>,
    /// The time reversal of the rows, for bidirectional models.
    reversal: Option<&'a [usize]>,
}

/// Draws a dropout mask of `rows x cols` at probability `p`: [`dropout::mask`] from the
/// generator of [`Rnn::forward_train`].
type DrawMask<'a, B> = dyn FnMut(usize, usize, f64) -> Option<<B as Backend>::Matrix> + 'a;

/// Prefixes a layer's error with where it arose, so that a user of a stack can tell: `layer 1: `
/// for an upper layer, `layer 0 (reverse): ` for a backward direction. The first layer's forward
/// direction, all a single-layer model has, needs no prefix.
fn in_layer(e: Error, layer: usize, direction: usize) -> Error {
    let prefix = match (layer, direction) {
        (0, 0) => return e,
        (_, 0) => format!("layer {layer}: "),
        _ => format!("layer {layer} (reverse): "),
    };
    match e {
        Error::Shape {
            what,
            expected,
            given,
        } => Error::Shape {
            what: format!("{prefix}{what}"),
            expected,
            given,
        },
        Error::Config { message } => Error::Config {
            message: format!("{prefix}{message}"),
        },
        other => other,
    }
}
