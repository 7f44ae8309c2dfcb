//! `Rnn`: input -> stacked recurrent layers -> output projection, with forward and backward.

use crate::backend::{Backend, Transpose};
use crate::bptt::{self, LayerInput, LayerTrace};
use crate::cell::{CellKind, CellParams, CellState, Nonlinearity};
use crate::error::{Error, Result};
use crate::params::{Linear, Params, uniform};
use num_traits::{Float, One, Zero};
use rand::Rng;

/// The shape of an [`Rnn`]: cell kind, sizes, layers, biases and the optional output layer.
///
/// Built with a constructor for the cell kind and chained setters:
///
/// ```
/// use recurrent::{Nonlinearity, RnnConfig};
/// let config = RnnConfig::rnn(65, 128).layers(2).output(65).nonlinearity(Nonlinearity::Relu);
/// assert_eq!(config.hidden_size(), 128);
/// ```
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RnnConfig {
    kind: CellKind,
    input_size: usize,
    hidden_size: usize,
    layers: usize,
    output: Option<usize>,
    bias: bool,
    output_bias: bool,
}

impl RnnConfig {
    /// An Elman RNN (tanh) with `input_size` inputs (the vocabulary size for token ids) and
    /// `hidden_size` units; one layer, biases on, no output layer.
    pub fn rnn(input_size: usize, hidden_size: usize) -> Self {
        RnnConfig {
            kind: CellKind::Rnn(Nonlinearity::Tanh),
            input_size,
            hidden_size,
            layers: 1,
            output: None,
            bias: true,
            output_bias: true,
        }
    }

    /// Number of stacked layers (PyTorch's `num_layers`).
    pub fn layers(mut self, layers: usize) -> Self {
        self.layers = layers;
        self
    }

    /// Adds an output projection to `size` outputs (the logits), `out.weight` `(size, H)`.
    pub fn output(mut self, size: usize) -> Self {
        self.output = Some(size);
        self
    }

    /// The Elman cell's non-linearity (ignored by other cells).
    pub fn nonlinearity(mut self, nonlinearity: Nonlinearity) -> Self {
        self.kind = match self.kind {
            CellKind::Rnn(_) => CellKind::Rnn(nonlinearity),
        };
        self
    }

    /// Whether the cells have `bias_ih` and `bias_hh` (PyTorch's `bias`, default true).
    pub fn bias(mut self, bias: bool) -> Self {
        self.bias = bias;
        self
    }

    /// Whether the output projection has `out.bias` (default true; the walkthrough has none).
    pub fn output_bias(mut self, bias: bool) -> Self {
        self.output_bias = bias;
        self
    }

    /// The cell kind.
    pub fn kind(&self) -> CellKind {
        self.kind
    }

    /// Input width `I` (vocabulary size for token ids).
    pub fn input_size(&self) -> usize {
        self.input_size
    }

    /// Hidden units `H` per layer.
    pub fn hidden_size(&self) -> usize {
        self.hidden_size
    }

    /// Number of layers.
    pub fn num_layers(&self) -> usize {
        self.layers
    }

    /// Output size `V`, if there is an output layer.
    pub fn output_size(&self) -> Option<usize> {
        self.output
    }

    fn validate(&self) -> Result<()> {
        let sizes = [
            ("input size", self.input_size),
            ("hidden size", self.hidden_size),
            ("layer count", self.layers),
            ("output size", self.output.unwrap_or(1)),
        ];
        match sizes.iter().find(|(_, value)| *value == 0) {
            Some((what, value)) => Err(Error::config(format!(
                "{what} must be at least 1, given {value}"
            ))),
            None => Ok(()),
        }
    }
}

/// A model's input for a whole sequence: `T*B` rows, time-major (rows `t*B .. t*B+B` are step
/// `t`), either dense or token ids.
#[derive(Debug, Clone)]
pub struct Input<B: Backend> {
    data: InputData<B>,
    batch: usize,
}

#[derive(Debug, Clone)]
enum InputData<B: Backend> {
    Dense(B::Matrix),
    Ids(Vec<usize>),
}

impl<B: Backend> Input<B> {
    /// Dense input, `T*B x I`, with batch size `batch`. Checked by [`Rnn::forward`].
    pub fn dense(x: B::Matrix, batch: usize) -> Self {
        Input {
            data: InputData::Dense(x),
            batch,
        }
    }

    /// Token ids, `T*B` of them, each below the input size, with batch size `batch`.
    /// Checked by [`Rnn::forward`].
    pub fn ids(ids: Vec<usize>, batch: usize) -> Self {
        Input {
            data: InputData::Ids(ids),
            batch,
        }
    }

    /// The batch size `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The dense rows, if this input is dense.
    pub fn as_dense(&self) -> Option<&B::Matrix> {
        match &self.data {
            InputData::Dense(x) => Some(x),
            InputData::Ids(_) => None,
        }
    }

    /// The token ids, if this input is ids.
    pub fn as_ids(&self) -> Option<&[usize]> {
        match &self.data {
            InputData::Dense(_) => None,
            InputData::Ids(ids) => Some(ids),
        }
    }

    fn layer_input(&self) -> LayerInput<'_, B> {
        match &self.data {
            InputData::Dense(x) => LayerInput::Dense(x),
            InputData::Ids(ids) => LayerInput::Ids(ids),
        }
    }
}

/// The recurrent state of every layer: `h` (and `c` for cells with one), each `B x H`.
/// PyTorch's `h_0` of shape `(layers, B, H)` is one [`CellState`] per layer here.
#[derive(Debug, Clone)]
pub struct State<B: Backend> {
    layers: Vec<CellState<B>>,
}

impl<B: Backend> State<B> {
    /// A state from one [`CellState`] per layer, bottom first. Checked by [`Rnn::forward`].
    pub fn new(layers: Vec<CellState<B>>) -> Self {
        State { layers }
    }

    /// The per-layer states, bottom first.
    pub fn layers(&self) -> &[CellState<B>] {
        &self.layers
    }

    /// Consumes the state, returning the per-layer states.
    pub fn into_layers(self) -> Vec<CellState<B>> {
        self.layers
    }
}

/// What [`Rnn::forward`] computed and keeps for [`Rnn::backward`].
#[derive(Debug, Clone)]
pub struct Trace<B: Backend> {
    input: Input<B>,
    layers: Vec<LayerTrace<B>>,
    logits: B::Matrix,
}

impl<B: Backend> Trace<B> {
    /// The model's output, `T*B x V`: the logits `y_t = h_t W_hy^T (+ b_y)` when the model has an
    /// output layer, otherwise the top layer's hidden states `T*B x H`.
    pub fn logits(&self) -> &B::Matrix {
        &self.logits
    }

    /// The top layer's hidden states `h_1 .. h_T`, `T*B x H` (PyTorch's `output`).
    pub fn hidden(&self) -> &B::Matrix {
        self.layers
            .last()
            .expect("a model has at least one layer")
            .output()
    }

    /// The state after the last step, to pass to the next `forward` (truncated BPTT).
    pub fn final_state(&self) -> State<B> {
        State {
            layers: self
                .layers
                .iter()
                .map(|l| l.final_state().clone())
                .collect(),
        }
    }

    /// The per-layer traces, bottom first.
    pub fn layers(&self) -> &[LayerTrace<B>] {
        &self.layers
    }

    /// Number of time steps `T`.
    pub fn steps(&self) -> usize {
        self.layers[0].steps()
    }

    /// Batch size `B`.
    pub fn batch(&self) -> usize {
        self.input.batch
    }
}

/// The gradients of one backward pass: every parameter (same names and shapes as the model),
/// the dense input and the initial state.
#[derive(Debug, Clone)]
pub struct Gradients<B: Backend> {
    backend: B,
    params: Params<B>,
    input: Option<B::Matrix>,
    initial_state: State<B>,
}

impl<B: Backend> Gradients<B> {
    /// The backend the gradients live on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The parameter gradients, a mirror of [`Rnn::params`].
    pub fn params(&self) -> &Params<B> {
        &self.params
    }

    /// The parameter gradients, mutable (for clipping, or summing across shards).
    pub fn params_mut(&mut self) -> &mut Params<B> {
        &mut self.params
    }

    /// Every parameter gradient with its PyTorch name.
    pub fn named(&self) -> Vec<(String, &B::Matrix)> {
        self.params.named()
    }

    /// The gradient of the parameter called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn get(&self, name: &str) -> Result<&B::Matrix> {
        self.params.get(name)
    }

    /// `dE/dx` for dense input (`T*B x I`); `None` for token ids.
    pub fn input(&self) -> Option<&B::Matrix> {
        self.input.as_ref()
    }

    /// `dE/d h_0` (and `c_0`) for every layer.
    pub fn initial_state(&self) -> &State<B> {
        &self.initial_state
    }
}

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
}

impl<B: Backend> Rnn<B> {
    /// A model of shape `config`, initialised as PyTorch initialises `nn.RNN` and `nn.Linear`:
    /// every entry uniform in `[-1/sqrt(H), 1/sqrt(H)]`, drawn from `rng` layer by layer in
    /// `state_dict()` order.
    ///
    /// # Errors
    /// [`Error::Config`] if a size or the layer count is zero.
    pub fn new<R: Rng + ?Sized>(backend: B, config: RnnConfig, rng: &mut R) -> Result<Self> {
        config.validate()?;
        let (kind, hidden) = (config.kind, config.hidden_size);
        let mut layers = Vec::with_capacity(config.layers);
        for layer in 0..config.layers {
            let input = if layer == 0 {
                config.input_size
            } else {
                hidden
            };
            layers.push(CellParams::init(
                &backend,
                kind,
                input,
                hidden,
                config.bias,
                rng,
            )?);
        }
        let out = match config.output {
            Some(size) => Some(init_linear(
                &backend,
                hidden,
                size,
                config.output_bias,
                rng,
            )?),
            None => None,
        };
        Ok(Rnn {
            backend,
            config,
            params: Params { layers, out },
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

    /// The parameters, mutable, for optimisers. Shapes must be kept: replace values with
    /// [`set_parameter`](Rnn::set_parameter) where shapes are not known to match.
    pub(crate) fn params_mut(&mut self) -> &mut Params<B> {
        &mut self.params
    }

    /// Every parameter with its PyTorch name, in `state_dict()` order.
    pub fn parameters(&self) -> Vec<(String, &B::Matrix)> {
        self.params.named()
    }

    /// The parameter called `name`.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`] listing the known names.
    pub fn parameter(&self, name: &str) -> Result<&B::Matrix> {
        self.params.get(name)
    }

    /// Replaces the values of the parameter called `name` with row-major `data` (biases: their
    /// `V` or `G*H` entries). The shape stays.
    ///
    /// # Errors
    /// [`Error::UnknownParameter`], [`Error::Shape`] if `data` has the wrong length, or
    /// [`Error::NonFinite`] if it holds a NaN or infinity; the model is unchanged on error.
    pub fn set_parameter(&mut self, name: &str, data: Vec<B::Scalar>) -> Result<()> {
        let backend = self.backend.clone();
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
        Ok(())
    }

    /// The zero state for a batch of `batch`.
    pub fn zero_state(&self, batch: usize) -> State<B> {
        let (kind, hidden) = (self.config.kind, self.config.hidden_size);
        State {
            layers: (0..self.config.layers)
                .map(|_| CellState::zeros(&self.backend, kind, batch, hidden))
                .collect(),
        }
    }

    /// Runs the model over a whole sequence from `initial_state` (zeros if `None`).
    ///
    /// Input is `T*B` rows, time-major; the output ([`Trace::logits`]) is `T*B x V`.
    ///
    /// # Errors
    /// [`Error::Empty`] for an empty sequence or batch; [`Error::Shape`] for input rows that are
    /// not a multiple of the batch, a dense input whose width is not the input size, or a state
    /// of the wrong layer count or shape; [`Error::Index`] for a token id not below the input size.
    pub fn forward(&self, input: &Input<B>, initial_state: Option<&State<B>>) -> Result<Trace<B>> {
        let backend = &self.backend;
        let kind = self.config.kind;
        if let Some(state) = initial_state {
            self.check_state_layers("initial state", state)?;
        }
        let mut layers: Vec<LayerTrace<B>> = Vec::with_capacity(self.config.layers);
        for (k, params) in self.params.layers.iter().enumerate() {
            let layer_input = match layers.last() {
                None => input.layer_input(),
                Some(below) => LayerInput::Dense(below.output()),
            };
            let initial = initial_state.map(|s| &s.layers[k]);
            let trace = bptt::forward(backend, kind, params, layer_input, input.batch, initial)
                .map_err(|e| in_layer(e, k))?;
            layers.push(trace);
        }
        let top = layers
            .last()
            .expect("validated: at least one layer")
            .output();
        let logits = match &self.params.out {
            Some(linear) => project_output(backend, linear, top),
            None => top.clone(),
        };
        Ok(Trace {
            input: input.clone(),
            layers,
            logits,
        })
    }

    /// Backpropagation through time from `d_logits = dE/d logits` (`T*B x V`), e.g. the second
    /// value of [`CrossEntropy::forward`](crate::CrossEntropy::forward).
    ///
    /// Returns the gradients of every parameter, summed over all steps and the batch, of the
    /// dense input and of the initial state.
    ///
    /// # Errors
    /// [`Error::Shape`] if `d_logits` is not the shape of [`Trace::logits`], or the trace was
    /// made by a model of another shape.
    pub fn backward(&self, trace: &Trace<B>, d_logits: &B::Matrix) -> Result<Gradients<B>> {
        self.backward_with_state(trace, d_logits, None)
    }

    /// As [`backward`](Rnn::backward), with a gradient reaching the final state as well (when the
    /// loss also depends on `h_T`, or on the next window's output in a longer unroll).
    ///
    /// # Errors
    /// As [`backward`](Rnn::backward); also [`Error::Shape`] if `d_final` does not fit the model.
    pub fn backward_with_state(
        &self,
        trace: &Trace<B>,
        d_logits: &B::Matrix,
        d_final: Option<&State<B>>,
    ) -> Result<Gradients<B>> {
        let backend = &self.backend;
        let kind = self.config.kind;
        if trace.layers.len() != self.params.layers.len() {
            return Err(Error::shape(
                "trace layers",
                self.params.layers.len(),
                trace.layers.len(),
            ));
        }
        if let Some(state) = d_final {
            self.check_state_layers("final state gradient", state)?;
        }
        let rows = trace.steps() * trace.batch();
        for (k, layer) in trace.layers.iter().enumerate() {
            let (want, given) = (
                (rows, self.config.hidden_size),
                backend.shape(layer.output()),
            );
            if given != want {
                let what = "trace (made by a model of another size)";
                return Err(in_layer(Error::shape(what, want, given), k));
            }
        }
        let want = backend.shape(&trace.logits);
        if backend.shape(d_logits) != want {
            return Err(Error::shape(
                "logits gradient",
                want,
                backend.shape(d_logits),
            ));
        }
        let mut grads = self.params.zeros_like(backend);
        // Output layer: dW_hy = dY^T H, db_y = colsum(dY), dH = dY W_hy.
        let mut d_hidden = match (&self.params.out, &mut grads.out) {
            (Some(linear), Some(g)) => {
                let top = trace.hidden();
                let one = B::Scalar::one();
                backend.gemm(
                    &mut g.weight,
                    one,
                    d_logits,
                    Transpose::Yes,
                    top,
                    Transpose::No,
                    one,
                );
                if let Some(db) = &mut g.bias {
                    backend.add_column_sums(db, d_logits);
                }
                let (rows, hidden) = backend.shape(top);
                let mut d_h = backend.zeros(rows, hidden);
                let zero = B::Scalar::zero();
                backend.gemm(
                    &mut d_h,
                    one,
                    d_logits,
                    Transpose::No,
                    &linear.weight,
                    Transpose::No,
                    zero,
                );
                d_h
            }
            _ => d_logits.clone(),
        };
        let mut d_initial = Vec::with_capacity(self.params.layers.len());
        let mut d_input = None;
        for k in (0..self.params.layers.len()).rev() {
            let layer_input = if k == 0 {
                trace.input.layer_input()
            } else {
                LayerInput::Dense(trace.layers[k - 1].output())
            };
            let d_fin = d_final.map(|s| &s.layers[k]);
            let (d_in, d_h0) = bptt::backward(
                backend,
                kind,
                &self.params.layers[k],
                layer_input,
                &trace.layers[k],
                &d_hidden,
                d_fin,
                &mut grads.layers[k],
            )
            .map_err(|e| in_layer(e, k))?;
            d_initial.push(d_h0);
            match d_in {
                Some(d) if k > 0 => d_hidden = d,
                d => d_input = d,
            }
        }
        d_initial.reverse();
        Ok(Gradients {
            backend: backend.clone(),
            params: grads,
            input: d_input,
            initial_state: State { layers: d_initial },
        })
    }

    fn check_state_layers(&self, what: &str, state: &State<B>) -> Result<()> {
        if state.layers.len() != self.config.layers {
            return Err(Error::shape(
                format!("{what} (layers)"),
                self.config.layers,
                state.layers.len(),
            ));
        }
        Ok(())
    }
}

/// `y = h W^T + b` for `h` (`n x H`), giving `n x V`.
fn project_output<B: Backend>(backend: &B, linear: &Linear<B>, h: &B::Matrix) -> B::Matrix {
    let (rows, _) = backend.shape(h);
    let (size, _) = backend.shape(&linear.weight);
    let mut y = backend.zeros(rows, size);
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

/// `nn.Linear(hidden, size)` initialised as PyTorch does: uniform in `[-1/sqrt(H), 1/sqrt(H)]`.
fn init_linear<B: Backend, R: Rng + ?Sized>(
    backend: &B,
    hidden: usize,
    size: usize,
    bias: bool,
    rng: &mut R,
) -> Result<Linear<B>> {
    let bound = 1.0 / (hidden as f64).sqrt();
    Ok(Linear {
        weight: uniform(backend, size, hidden, bound, rng)?,
        bias: if bias {
            Some(uniform(backend, 1, size, bound, rng)?)
        } else {
            None
        },
    })
}

/// Prefixes a layer's error with its index, so a user of a stack knows where it arose.
fn in_layer(e: Error, layer: usize) -> Error {
    if layer == 0 {
        return e;
    }
    match e {
        Error::Shape {
            what,
            expected,
            given,
        } => Error::Shape {
            what: format!("layer {layer}: {what}"),
            expected,
            given,
        },
        Error::Config { message } => Error::Config {
            message: format!("layer {layer}: {message}"),
        },
        other => other,
    }
}
