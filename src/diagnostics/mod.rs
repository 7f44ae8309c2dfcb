//! Gradient flow through time: how large the gradient is at every step and layer, and the
//! spectral quantities of `W_hh` that decide whether it vanishes or explodes.
//!
//! Backpropagation through time multiplies the gradient reaching `h_t` by the Jacobian
//! `dh_t/dh_{t-1}` once per step it travels back. For the Elman cell with tanh that Jacobian is
//! `diag(1 - h_t^2) W_hh`, so after `k` steps the gradient is scaled by a product of `k` such
//! matrices: it shrinks geometrically when they are contractions and may grow geometrically
//! when they are not (Pascanu, Mikolov & Bengio 2013). LSTM and GRU add a path (the cell vector,
//! the update gate) whose Jacobian is a gate value near 1, so the gradient can survive longer.
//!
//! [`Rnn::backward_recorded`](crate::Rnn::backward_recorded) computes the same gradients as
//! [`Rnn::backward_with_state`](crate::Rnn::backward_with_state), to the bit, and fills a
//! [`GradientFlow`]: per layer and direction a [`LayerFlow`] with, for every step `t`,
//!
//! - `||dE/dh_t||`, the Frobenius norm over the batch (`B x H`) of the whole gradient reaching
//!   `h_t`: from the layer's output at step `t` (the loss at `t`, or the layer above) plus what
//!   flows back from step `t + 1`; exactly what the cell's backward at step `t` receives (zero
//!   rows for sequences of a variable-length batch that have ended before `t`);
//! - for the LSTM, `||dE/dc_t||`, the whole gradient reaching the cell vector `c_t`: through
//!   `c_{t+1}` plus through `h_t = o_t tanh(c_t)`;
//! - the Frobenius norm of step `t`'s term in every weight gradient: `||D_t^T H_{t-1}||` for
//!   `weight_hh` and `||D_t^T X_t||` for `weight_ih`, where `D_t` (`B x G*H`) is the gradient of
//!   the step's gate pre-activations, and the norm of the term `1^T D_t` in each bias gradient.
//!
//! The output projection (`out.weight`, `out.bias`) is not recurrent and is not recorded: its
//! step-`t` term depends only on the output at `t`.
//!
//! The clipping record ([`ClipRecord`]) keeps the global gradient norm
//! before and after [`clip::global_norm_recorded`](crate::clip::global_norm_recorded).
//!
//! Recording is off unless asked for: [`Rnn::backward`](crate::Rnn::backward) does no work for
//! it. On, the time loop adds two norms per step (a sum of squares each) and, for the LSTM, a few
//! element-wise kernels on two `B x H` scratch matrices made before the loop; it allocates
//! nothing per step. The weight terms are computed after the loop from the gate gradients that
//! BPTT keeps for all steps, without forming any `G*H x H` matrix: `||A^T C||_F^2` is the sum
//! over pairs of batch rows of `(a_b . a_b') (c_b . c_b')`, taken in `B` passes over all `T*B`
//! rows at once (one rotation of the rows within each step per pass), so their cost is that of
//! about `B` element-wise passes over the gate gradients, and their allocations do not grow with
//! `T`. For token-id input the dot product of two one-hot rows is `[id == id']`. The record's
//! vectors (length `T` each) keep their capacity across calls.
//!
//! [`largest_singular_value`] and [`spectral_radius`] estimate the two norms of `W_hh` that
//! bound the Jacobian above (see their docs for which bound is which).

mod record;
mod spectral;

pub use spectral::{Iteration, largest_singular_value, spectral_radius};

pub(crate) use record::Recorder;

/// What one layer and direction recorded during a backward pass, per time step.
///
/// Every per-step vector has one entry per step `t` in `0..T`, in the order the direction read
/// the sequence: for the backward direction of a bidirectional layer, entry `t` is its `t`-th
/// step, which is time step `T - 1 - t` of a full-length sequence. Norms are Frobenius norms
/// over the batch, in `f64`, computed from the backend's scalar type (a norm whose square
/// overflows `f32` is infinite).
#[derive(Debug, Clone, Default, PartialEq)]
pub struct LayerFlow {
    dh: Vec<f64>,
    dc: Vec<f64>,
    weight_hh: Vec<f64>,
    weight_ih: Vec<f64>,
    bias_hh: Vec<f64>,
    bias_ih: Vec<f64>,
    lstm: bool,
    bias: bool,
}

impl LayerFlow {
    /// Number of steps recorded, `T`.
    pub fn steps(&self) -> usize {
        self.dh.len()
    }

    /// `||dE/dh_t||` for every step: the whole gradient reaching `h_t`, from the output at `t`
    /// and from step `t + 1` (see the [module docs](self)).
    pub fn dh(&self) -> &[f64] {
        &self.dh
    }

    /// `||dE/dc_t||` for every step (LSTM only; `None` for the other cells): the whole gradient
    /// reaching `c_t`, through `c_{t+1}` and through `h_t`.
    pub fn dc(&self) -> Option<&[f64]> {
        self.lstm.then_some(self.dc.as_slice())
    }

    /// `||D_t^T H_{t-1}||`: the norm of step `t`'s term of the `weight_hh` gradient.
    pub fn weight_hh(&self) -> &[f64] {
        &self.weight_hh
    }

    /// `||D_t^T X_t||`: the norm of step `t`'s term of the `weight_ih` gradient (`X_t` the
    /// layer's input rows of step `t`, one-hot rows for token ids).
    pub fn weight_ih(&self) -> &[f64] {
        &self.weight_ih
    }

    /// `||1^T D_t||`: the norm of step `t`'s term of the `bias_hh` gradient; `None` for a layer
    /// without biases.
    pub fn bias_hh(&self) -> Option<&[f64]> {
        self.bias.then_some(self.bias_hh.as_slice())
    }

    /// The norm of step `t`'s term of the `bias_ih` gradient; `None` without biases. Equal to
    /// [`bias_hh`](LayerFlow::bias_hh) except for the GRU, whose reset gate scales the
    /// recurrent side of the `n` block.
    pub fn bias_ih(&self) -> Option<&[f64]> {
        self.bias.then_some(self.bias_ih.as_slice())
    }

    /// How many steps back from the last one `||dE/dh_t||` first falls below `fraction` times
    /// its value at the last step: the least `k >= 1` with
    /// `dh[T-1-k] < fraction * dh[T-1]`, or `None` if no step does (or nothing was recorded,
    /// or the last step's gradient is zero or not finite).
    ///
    /// With the loss at the last step only, `fraction = 1e-6` says how far back the gradient
    /// carries a millionth of its strength.
    pub fn steps_until_below(&self, fraction: f64) -> Option<usize> {
        let last = *self.dh.last()?;
        if !(last.is_finite() && last > 0.0) {
            return None;
        }
        let threshold = fraction * last;
        self.dh
            .iter()
            .rev()
            .skip(1)
            .position(|&v| v < threshold)
            .map(|k| k + 1)
    }

    /// Empties every vector and sizes it for `steps` steps, keeping the capacity.
    pub(crate) fn reset(&mut self, steps: usize, lstm: bool, bias: bool) {
        (self.lstm, self.bias) = (lstm, bias);
        let sized = [
            (&mut self.dh, true),
            (&mut self.dc, lstm),
            (&mut self.weight_hh, true),
            (&mut self.weight_ih, true),
            (&mut self.bias_hh, bias),
            (&mut self.bias_ih, bias),
        ];
        for (v, used) in sized {
            v.clear();
            if used {
                v.resize(steps, 0.0);
            }
        }
    }
}

/// The gradient flow of one backward pass of a model: a [`LayerFlow`] per layer and direction,
/// and what clipping did.
///
/// Made empty by [`GradientFlow::new`] and filled by
/// [`Rnn::backward_recorded`](crate::Rnn::backward_recorded). A record reused across calls is
/// overwritten, not appended to: each call sizes it for its own model and sequence and forgets
/// the previous clipping record, so that it always describes the last backward pass alone.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct GradientFlow {
    layers: Vec<LayerFlow>,
    directions: usize,
    clip: Option<ClipRecord>,
}

impl GradientFlow {
    /// An empty record.
    pub fn new() -> Self {
        Self::default()
    }

    /// Every layer and direction's record, index `layer * directions + direction`, as
    /// [`Params`](crate::Params) orders the layers.
    pub fn layers(&self) -> &[LayerFlow] {
        &self.layers
    }

    /// The record of layer `layer`, direction `direction` (0 forward, 1 backward); `None` if
    /// the model has no such layer or nothing was recorded.
    pub fn layer(&self, layer: usize, direction: usize) -> Option<&LayerFlow> {
        if direction >= self.directions {
            return None;
        }
        self.layers.get(layer * self.directions + direction)
    }

    /// The clipping record, once [`record_clip`](GradientFlow::record_clip) has been called
    /// after the last backward pass.
    pub fn clip(&self) -> Option<&ClipRecord> {
        self.clip.as_ref()
    }

    /// Keeps what clipping did to this pass's gradients, e.g. the value of
    /// [`clip::global_norm_recorded`](crate::clip::global_norm_recorded).
    pub fn record_clip(&mut self, record: ClipRecord) {
        self.clip = Some(record);
    }

    /// Sizes the record for `count` layer directions (`directions` per layer) and forgets the
    /// clipping record; returns the per-layer records to fill.
    pub(crate) fn prepare(&mut self, count: usize, directions: usize) -> &mut [LayerFlow] {
        self.layers.resize_with(count, LayerFlow::default);
        self.directions = directions;
        self.clip = None;
        &mut self.layers
    }
}

/// What clipping by global norm did to one set of gradients: the record
/// [`GradientFlow::record_clip`] keeps, made by
/// [`clip::global_norm_recorded`](crate::clip::global_norm_recorded). Also reachable as
/// `recurrent::clip::ClipRecord`. Non-exhaustive: it may record more later.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct ClipRecord {
    /// The threshold.
    pub max_norm: f64,
    /// The global L2 norm before clipping, as [`clip::global_norm`](crate::clip::global_norm)
    /// returns it.
    pub before: f64,
    /// The global L2 norm after clipping, computed again from the clipped gradients: `before`
    /// when it was at most `max_norm`, else `max_norm` up to rounding.
    pub after: f64,
}

impl ClipRecord {
    /// Whether the gradients were scaled down (`before > max_norm`).
    pub fn clipped(&self) -> bool {
        self.before > self.max_norm
    }
}
