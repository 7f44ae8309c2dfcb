//! What a forward pass keeps (`Trace`) and what a backward pass gives (`Gradients`).

use super::data::{Input, InputData, State};
use crate::backend::Backend;
use crate::bptt::{LayerInput, LayerTrace};
use crate::cell::CellParams;
use crate::error::{Error, Result};
use crate::params::Params;

/// One layer's part of a trace: each direction's [`LayerTrace`], the time-reversed input the
/// backward direction read, and the layer's output (joined across directions, with dropout).
#[derive(Debug, Clone)]
pub(crate) struct LayerRecord<B: Backend> {
    pub(crate) forward: LayerTrace<B>,
    /// The backward direction's trace and the reversed input it ran on.
    pub(crate) reverse: Option<(LayerTrace<B>, InputData<B>)>,
    /// Both directions' outputs side by side, `T*B x 2H`, when bidirectional.
    pub(crate) joined: Option<B::Matrix>,
    /// The dropout mask (entries 0 or `1/(1-p)`) and the output times it, in training mode.
    pub(crate) dropout: Option<(B::Matrix, B::Matrix)>,
    /// Per direction, in training mode with weight dropout: the mask on `W_hh` and the
    /// parameters the direction ran with (`W_hh` times the mask). Empty otherwise.
    pub(crate) weight_drop: Vec<Option<(B::Matrix, CellParams<B>)>>,
}

impl<B: Backend> LayerRecord<B> {
    /// The layer's output, `T*B x D*H`.
    pub(crate) fn output(&self) -> &B::Matrix {
        self.joined.as_ref().unwrap_or(self.forward.output())
    }

    /// What the layer above reads: the output, after dropout in training mode.
    pub(crate) fn next_input(&self) -> &B::Matrix {
        match &self.dropout {
            Some((_, dropped)) => dropped,
            None => self.output(),
        }
    }

    /// The traces of the directions, forward first.
    pub(crate) fn directions(&self) -> impl Iterator<Item = &LayerTrace<B>> {
        std::iter::once(&self.forward).chain(self.reverse.as_ref().map(|(t, _)| t))
    }
}

/// The row order that runs every sequence backwards in time: row `(t, b)` and row
/// `(len_b - 1 - t, b)` trade places for `t < len_b`; padding stays where it is. Applying it
/// twice gives the identity, so it maps a reversed sequence back as well.
pub(crate) fn time_reversal(steps: usize, batch: usize, lengths: Option<&[usize]>) -> Vec<usize> {
    let mut rows = Vec::with_capacity(steps * batch);
    for t in 0..steps {
        for b in 0..batch {
            let len = lengths.map_or(steps, |l| l[b]);
            let source = if t < len { len - 1 - t } else { t };
            rows.push(source * batch + b);
        }
    }
    rows
}

/// What [`Rnn::forward`](crate::Rnn::forward) computed and keeps for
/// [`Rnn::backward`](crate::Rnn::backward).
#[derive(Debug, Clone)]
pub struct Trace<B: Backend> {
    pub(crate) input: Input<B>,
    /// What the first layer read when it is not the input as given: the embedding's rows for
    /// the ids, and in training mode after embedding and input dropout, `T*B x E` (or `I`).
    pub(crate) first_rows: Option<B::Matrix>,
    /// The factor every entry of the first layer's input was multiplied by in training mode
    /// (embedding dropout's row factors times the input dropout mask), for backward.
    pub(crate) first_mask: Option<B::Matrix>,
    pub(crate) records: Vec<LayerRecord<B>>,
    /// The time reversal of the input's rows, for bidirectional models.
    pub(crate) reversal: Option<Vec<usize>>,
    pub(crate) mask: Option<Vec<bool>>,
    pub(crate) logits: B::Matrix,
}

impl<B: Backend> Trace<B> {
    /// The model's output, `T*B x V`: the logits `y_t = h_t W_hy^T (+ b_y)` when the model has an
    /// output layer, otherwise the top layer's hidden states `T*B x D*H`. At padded steps of a
    /// variable-length batch the hidden state is zero, so the logits there are `b_y`. In
    /// training mode with [output dropout](crate::RnnConfig::output_dropout), `h_t` here is the
    /// dropped one: without an output layer the logits then differ from
    /// [`hidden`](Trace::hidden).
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// let rnn = Rnn::new(NaiveCpu::<f64>::new(), RnnConfig::lstm(2, 3).output(4), &mut StdRng::seed_from_u64(0))?;
    /// let x = rnn.backend().from_vec(2, 2, vec![0.5, -1.0, 0.25, 2.0])?; // T = 2 steps, batch 1
    /// let trace = rnn.forward(&Input::dense(x, 1), None)?;
    /// let logits = rnn.backend().to_vec(trace.logits()); // row-major, T*B rows of V
    /// assert_eq!(logits.len(), 2 * 4);
    /// // Row t is the output layer applied to h_t, the top layer's state at step t.
    /// let (h, w, b) = (rnn.backend().to_vec(trace.hidden()), rnn.parameter("out.weight")?, rnn.parameter("out.bias")?);
    /// let (w, b) = (rnn.backend().to_vec(w), rnn.backend().to_vec(b));
    /// let y10: f64 = b[0] + (0..3).map(|k| h[3 + k] * w[k]).sum::<f64>();
    /// assert!((logits[4] - y10).abs() < 1e-12);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    pub fn logits(&self) -> &B::Matrix {
        &self.logits
    }

    /// The top layer's hidden states `h_1 .. h_T`, `T*B x D*H`, both directions side by side
    /// (PyTorch's `output`, flattened time-major).
    pub fn hidden(&self) -> &B::Matrix {
        self.records
            .last()
            .expect("a model has at least one layer")
            .output()
    }

    /// What the first layer read: the embedded rows for a model with an embedding, otherwise
    /// the model's input.
    pub(crate) fn first_input(&self) -> LayerInput<'_, B> {
        match &self.first_rows {
            Some(rows) => LayerInput::Dense(rows),
            None => self.input.layer_input(),
        }
    }

    /// What the first layer read, `T*B x E` (or `I`, time-major), when that is not the input
    /// as given: the embedding's rows for the token ids, and in training mode the rows after
    /// [embedding dropout](crate::RnnConfig::embedding_dropout) and
    /// [input dropout](crate::RnnConfig::input_dropout). `None` when the first layer read the
    /// input itself.
    pub fn first_rows(&self) -> Option<&B::Matrix> {
        self.first_rows.as_ref()
    }

    /// What the output projection read: [`hidden`](Trace::hidden), after output dropout in
    /// training mode.
    pub(crate) fn top_input(&self) -> &B::Matrix {
        self.records
            .last()
            .expect("a model has at least one layer")
            .next_input()
    }

    /// The state after the last step of every layer and direction, to pass to the next
    /// `forward` (truncated BPTT); PyTorch's `h_n` (and `c_n`). For a variable-length batch it
    /// is each sequence's state at its own last step; for the backward direction, the state
    /// after reading the sequence back to its first step.
    pub fn final_state(&self) -> State<B> {
        let states = self.records.iter().flat_map(LayerRecord::directions);
        State::new(states.map(|t| t.final_state().clone()).collect())
    }

    /// The state of every layer after step `step` (counted from 0) of this pass, as
    /// [`final_state`](Trace::final_state) gives it after the last: `state_at(T - 1)` is the
    /// final state, bit for bit, and `state_at(t)` is the final state of a forward pass over the
    /// first `t + 1` steps from the same initial state. For a variable-length batch, a sequence
    /// that has ended by `step` keeps the state of its own last step.
    ///
    /// Truncated BPTT with `k2 > k1` ([`Tbptt`](crate::Tbptt)) carries `state_at(k1 - 1)` of a
    /// `k2`-step window to the next update.
    ///
    /// ```
    /// # use recurrent::prelude::*;
    /// # fn main() -> recurrent::Result<()> {
    /// # let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(NaiveCpu::<f64>::default(), RnnConfig::lstm(4, 3).layers(2), &mut rng)?;
    /// let ids = vec![0, 1, 2, 3, 2, 1]; // T = 3 steps of batch 2
    /// let trace = rnn.forward(&Input::ids(ids.clone(), 2), None)?;
    /// let prefix = rnn.forward(&Input::ids(ids[..4].to_vec(), 2), None)?; // the first 2 steps
    /// let (at, end) = (trace.state_at(rnn.backend(), 1)?, prefix.final_state());
    /// for (a, b) in at.layers().iter().zip(end.layers()) {
    ///     assert_eq!((&a.h, &a.c), (&b.h, &b.c));
    /// }
    /// assert!(trace.state_at(rnn.backend(), 3).is_err()); // only steps 0, 1, 2
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Index`](crate::Error::Index) if `step` is not below `T`;
    /// [`Error::Config`](crate::Error::Config) for a bidirectional model, whose backward
    /// direction has, after step `t` in time order, read the steps after `t`, not those before.
    pub fn state_at(&self, backend: &B, step: usize) -> Result<State<B>> {
        if self.records.iter().any(|r| r.reverse.is_some()) {
            return Err(Error::config(format!(
                "the state after step {step} is defined for unidirectional models; this \
                 trace is of a bidirectional one"
            )));
        }
        let states = self
            .records
            .iter()
            .map(|r| r.forward.state_at(backend, step));
        Ok(State::new(states.collect::<Result<_>>()?))
    }

    /// The trace of one layer and direction (0 forward, 1 backward).
    pub fn layer(&self, layer: usize, direction: usize) -> Option<&LayerTrace<B>> {
        self.records.get(layer)?.directions().nth(direction)
    }

    /// Which rows hold real steps (`true`) rather than padding: `Some` only for an input with
    /// lengths. Pass it to [`CrossEntropy::forward_masked`](crate::CrossEntropy::forward_masked)
    /// so that padding takes no loss.
    pub fn mask(&self) -> Option<&[bool]> {
        self.mask.as_deref()
    }

    /// Number of time steps `T`.
    pub fn steps(&self) -> usize {
        self.records[0].forward.steps()
    }

    /// Batch size `B`.
    pub fn batch(&self) -> usize {
        self.input.batch()
    }
}

/// The gradients of one backward pass: every parameter (same names and shapes as the model),
/// the dense input and the initial state.
///
/// ```
/// use recurrent::prelude::*;
/// let rnn = Rnn::new(NaiveCpu::<f64>::new(), RnnConfig::gru(3, 4).output(3), &mut StdRng::seed_from_u64(0))?;
/// let trace = rnn.forward(&Input::ids(vec![2, 0, 1], 1), None)?;
/// let (_, d_logits) = CrossEntropy::mean().forward(rnn.backend(), trace.logits(), &[0, 1, 2])?;
/// let grads = rnn.backward(&trace, &d_logits)?;
/// // By name, as the parameters, and shaped like them.
/// let (g, w) = (grads.get("weight_hh_l0")?, rnn.parameter("weight_hh_l0")?);
/// assert_eq!(rnn.backend().shape(g), rnn.backend().shape(w));
/// assert!(rnn.backend().to_vec(g).iter().any(|v| *v != 0.0));
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Gradients<B: Backend> {
    pub(crate) backend: B,
    pub(crate) params: Params<B>,
    pub(crate) input: Option<B::Matrix>,
    pub(crate) initial_state: State<B>,
}

impl<B: Backend> Gradients<B> {
    /// The backend the gradients live on.
    pub fn backend(&self) -> &B {
        &self.backend
    }

    /// The parameter gradients, a mirror of [`Rnn::params`](crate::Rnn::params).
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
    /// [`Error::UnknownParameter`](crate::Error::UnknownParameter) listing the known names.
    pub fn get(&self, name: &str) -> Result<&B::Matrix> {
        self.params.get(name)
    }

    /// `dE/dx` for dense input (`T*B x I`); `None` for token ids.
    pub fn input(&self) -> Option<&B::Matrix> {
        self.input.as_ref()
    }

    /// `dE/d h_0` (and `c_0`) for every layer and direction, in PyTorch's order.
    pub fn initial_state(&self) -> &State<B> {
        &self.initial_state
    }
}
