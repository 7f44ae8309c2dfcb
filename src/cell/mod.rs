//! Recurrent cells: one time step forward and backward.
//!
//! Every cell splits a step into the same three parts, so that the sequence loop in
//! [`bptt`](crate::bptt) can batch the expensive ones:
//!
//! 1. the input projection `xp = x W_ih^T + b_ih` (`B x G*H`): for a whole sequence this is one
//!    GEMM (or, for token ids, a column gather of `W_ih`);
//! 2. the recurrent projection `hh = h_{t-1} W_hh^T + b_hh` (`B x G*H`): one GEMM per step, for all
//!    `G` gates at once;
//! 3. the element-wise gate math, cell specific ([`CellKind`]), which gives the new state.
//!
//! Backward mirrors it: the element-wise part gives `d xp` and `d hh`; then
//! `dW_hh += d hh^T h_{t-1}`, `db_hh += colsum(d hh)`, `dh_{t-1} += d hh W_hh` and the same for
//! the input side. Parameters keep PyTorch's shapes and names, gates stacked by rows.

mod gru;
mod lstm;
mod rnn;

pub use gru::GruCell;
pub use lstm::LstmCell;
pub use rnn::RnnCell;

use crate::backend::{Activation, Backend, Transpose};
use crate::error::{Error, Result};
use crate::params::uniform;
use num_traits::{One, Zero};
use rand::Rng;

/// The non-linearity of an Elman cell, as PyTorch's `nonlinearity` argument.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Nonlinearity {
    /// `tanh`, the default.
    #[default]
    Tanh,
    /// `max(x, 0)`.
    Relu,
}

impl Nonlinearity {
    fn activation(self) -> Activation {
        match self {
            Nonlinearity::Tanh => Activation::Tanh,
            Nonlinearity::Relu => Activation::Relu,
        }
    }
}

/// Which recurrence a cell computes.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum CellKind {
    /// The Elman cell: `h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)`, one gate.
    Rnn(Nonlinearity),
    /// The LSTM cell, PyTorch's `nn.LSTM`: four gates in the order i, f, g, o, and a cell
    /// vector `c` carried beside `h`.
    Lstm,
    /// The GRU cell, PyTorch's `nn.GRU`: three gates in the order r, z, n, with the reset gate
    /// applied after the recurrent product (`n = tanh(W_in x + b_in + r * (W_hn h + b_hn))`).
    Gru,
}

impl CellKind {
    /// Number of gate blocks stacked in `weight_ih` and `weight_hh` (1 for the Elman cell).
    pub fn gates(self) -> usize {
        match self {
            CellKind::Rnn(_) => 1,
            CellKind::Lstm => 4,
            CellKind::Gru => 3,
        }
    }

    /// Whether the state carries a cell vector `c` besides `h` (only the LSTM).
    pub fn has_cell_state(self) -> bool {
        self == CellKind::Lstm
    }

    /// The cell's name as in PyTorch's module names: `RNN`, `LSTM` or `GRU`.
    pub fn name(self) -> &'static str {
        match self {
            CellKind::Rnn(_) => "RNN",
            CellKind::Lstm => "LSTM",
            CellKind::Gru => "GRU",
        }
    }
}

/// The parameters of one cell, with PyTorch's shapes (`G` = [`CellKind::gates`]):
/// `weight_ih` `(G*H, I)`, `weight_hh` `(G*H, H)`, `bias_ih` and `bias_hh` `(1, G*H)` (PyTorch
/// stores the biases as vectors of length `G*H`).
///
/// The same type holds gradients, as a mirror of the parameters that backward adds into.
#[derive(Debug, Clone)]
pub struct CellParams<B: Backend> {
    pub(crate) weight_ih: B::Matrix,
    pub(crate) weight_hh: B::Matrix,
    pub(crate) bias_ih: Option<B::Matrix>,
    pub(crate) bias_hh: Option<B::Matrix>,
}

impl<B: Backend> CellParams<B> {
    /// Parameters initialised as PyTorch does: every entry uniform in `[-1/sqrt(H), 1/sqrt(H)]`,
    /// drawn in the order `weight_ih`, `weight_hh`, `bias_ih`, `bias_hh`, row-major.
    ///
    /// # Errors
    /// [`Error::Config`] if `hidden` is zero.
    pub fn init<R: Rng + ?Sized>(
        backend: &B,
        kind: CellKind,
        input: usize,
        hidden: usize,
        bias: bool,
        rng: &mut R,
    ) -> Result<Self> {
        if hidden == 0 {
            return Err(Error::config("hidden size must be at least 1, given 0"));
        }
        let bound = 1.0 / (hidden as f64).sqrt();
        let gh = kind.gates() * hidden;
        let mut draw = |rows, cols| uniform(backend, rows, cols, bound, rng);
        let weight_ih = draw(gh, input)?;
        let weight_hh = draw(gh, hidden)?;
        let (bias_ih, bias_hh) = if bias {
            (Some(draw(1, gh)?), Some(draw(1, gh)?))
        } else {
            (None, None)
        };
        Ok(CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        })
    }

    /// Parameters from given weights: `weight_ih` `(G*H, I)`, `weight_hh` `(G*H, H)` and
    /// optional biases `(1, G*H)` each, with `G` = [`CellKind::gates`].
    ///
    /// # Errors
    /// [`Error::Shape`] naming the first weight that does not fit (`weight_ih` fixes `H`);
    /// [`Error::Config`] if `H` is zero.
    pub fn from_weights(
        backend: &B,
        kind: CellKind,
        weight_ih: B::Matrix,
        weight_hh: B::Matrix,
        biases: Option<(B::Matrix, B::Matrix)>,
    ) -> Result<Self> {
        // weight_ih fixes H: its rows are the G gate blocks of H rows each.
        let (gh, input) = backend.shape(&weight_ih);
        let gates = kind.gates();
        if gh == 0 {
            return Err(Error::config("hidden size must be at least 1, given 0"));
        }
        if !gh.is_multiple_of(gates) {
            let expected = format!("({gates} * H, {input}) for the {} cell", kind.name());
            return Err(Error::shape("weight_ih", expected, (gh, input)));
        }
        let hidden = gh / gates;
        let mut expect = vec![("weight_hh", &weight_hh, (gh, hidden))];
        if let Some((bi, bh)) = &biases {
            expect.push(("bias_ih", bi, (1, gh)));
            expect.push(("bias_hh", bh, (1, gh)));
        }
        for (name, m, want) in expect {
            if backend.shape(m) != want {
                return Err(Error::shape(name, want, backend.shape(m)));
            }
        }
        let (bias_ih, bias_hh) = biases.unzip();
        Ok(CellParams {
            weight_ih,
            weight_hh,
            bias_ih,
            bias_hh,
        })
    }

    /// Zeros of the same shapes: the start of a gradient accumulator.
    pub fn zeros_like(&self, backend: &B) -> Self {
        let zeros = |m: &B::Matrix| {
            let (r, c) = backend.shape(m);
            backend.zeros(r, c)
        };
        CellParams {
            weight_ih: zeros(&self.weight_ih),
            weight_hh: zeros(&self.weight_hh),
            bias_ih: self.bias_ih.as_ref().map(zeros),
            bias_hh: self.bias_hh.as_ref().map(zeros),
        }
    }

    /// `weight_ih`, `(G*H, I)`.
    pub fn weight_ih(&self) -> &B::Matrix {
        &self.weight_ih
    }

    /// `weight_hh`, `(G*H, H)`.
    pub fn weight_hh(&self) -> &B::Matrix {
        &self.weight_hh
    }

    /// `bias_ih`, `(1, G*H)`, if the cell has biases.
    pub fn bias_ih(&self) -> Option<&B::Matrix> {
        self.bias_ih.as_ref()
    }

    /// `bias_hh`, `(1, G*H)`, if the cell has biases.
    pub fn bias_hh(&self) -> Option<&B::Matrix> {
        self.bias_hh.as_ref()
    }

    /// `(input_size, hidden_size)` read off the weight shapes.
    pub fn sizes(&self, backend: &B) -> (usize, usize) {
        let (_, input) = backend.shape(&self.weight_ih);
        let (_, hidden) = backend.shape(&self.weight_hh);
        (input, hidden)
    }

    /// The parameters with their PyTorch names for layer `suffix` (e.g. `"l0"`), in PyTorch's
    /// order: `weight_ih_l0`, `weight_hh_l0`, `bias_ih_l0`, `bias_hh_l0`.
    pub fn named(&self, suffix: &str) -> Vec<(String, &B::Matrix)> {
        let mut out = vec![
            (format!("weight_ih_{suffix}"), &self.weight_ih),
            (format!("weight_hh_{suffix}"), &self.weight_hh),
        ];
        if let (Some(bi), Some(bh)) = (&self.bias_ih, &self.bias_hh) {
            out.push((format!("bias_ih_{suffix}"), bi));
            out.push((format!("bias_hh_{suffix}"), bh));
        }
        out
    }

    /// As [`named`](CellParams::named), mutable.
    pub fn named_mut(&mut self, suffix: &str) -> Vec<(String, &mut B::Matrix)> {
        let mut out = vec![
            (format!("weight_ih_{suffix}"), &mut self.weight_ih),
            (format!("weight_hh_{suffix}"), &mut self.weight_hh),
        ];
        if let (Some(bi), Some(bh)) = (&mut self.bias_ih, &mut self.bias_hh) {
            out.push((format!("bias_ih_{suffix}"), bi));
            out.push((format!("bias_hh_{suffix}"), bh));
        }
        out
    }

    /// `xp = x W_ih^T + b_ih` for dense rows `x` (`n x I`), giving `n x G*H`.
    pub(crate) fn project_input(&self, backend: &B, x: &B::Matrix) -> B::Matrix {
        let (n, _) = backend.shape(x);
        let (gh, _) = backend.shape(&self.weight_ih);
        let mut xp = backend.zeros(n, gh);
        let one = B::Scalar::one();
        backend.gemm(
            &mut xp,
            one,
            x,
            Transpose::No,
            &self.weight_ih,
            Transpose::Yes,
            B::Scalar::zero(),
        );
        if let Some(b) = &self.bias_ih {
            backend.add_row(&mut xp, b);
        }
        xp
    }

    /// `xp` for token ids: column `id` of `W_ih` plus `b_ih`, the one-hot product without the GEMM.
    pub(crate) fn project_ids(&self, backend: &B, ids: &[usize]) -> B::Matrix {
        let (gh, _) = backend.shape(&self.weight_ih);
        let mut xp = backend.zeros(ids.len(), gh);
        backend.gather_columns(&mut xp, &self.weight_ih, ids);
        if let Some(b) = &self.bias_ih {
            backend.add_row(&mut xp, b);
        }
        xp
    }

    /// `hh = h W_hh^T + b_hh` for `h` (`B x H`), giving `B x G*H`.
    pub(crate) fn project_hidden(&self, backend: &B, h: &B::Matrix) -> B::Matrix {
        let (batch, _) = backend.shape(h);
        let (gh, _) = backend.shape(&self.weight_hh);
        let mut hh = backend.zeros(batch, gh);
        let one = B::Scalar::one();
        backend.gemm(
            &mut hh,
            one,
            h,
            Transpose::No,
            &self.weight_hh,
            Transpose::Yes,
            B::Scalar::zero(),
        );
        if let Some(b) = &self.bias_hh {
            backend.add_row(&mut hh, b);
        }
        hh
    }
}

/// The state a cell carries from step to step: `h` (`B x H`), and `c` (`B x H`) for cells that
/// have a cell vector.
#[derive(Debug, Clone)]
pub struct CellState<B: Backend> {
    /// Hidden state `h`, `B x H`.
    pub h: B::Matrix,
    /// Cell vector `c`, `B x H`, for cells with [`CellKind::has_cell_state`]; else `None`.
    pub c: Option<B::Matrix>,
}

impl<B: Backend> CellState<B> {
    /// The zero state for a batch of `batch` and `hidden` units.
    pub fn zeros(backend: &B, kind: CellKind, batch: usize, hidden: usize) -> Self {
        CellState {
            h: backend.zeros(batch, hidden),
            c: kind.has_cell_state().then(|| backend.zeros(batch, hidden)),
        }
    }

    /// Checks that this state fits `kind` with the given batch and hidden size.
    pub(crate) fn check(
        &self,
        backend: &B,
        what: &str,
        kind: CellKind,
        batch: usize,
        hidden: usize,
    ) -> Result<()> {
        let given = backend.shape(&self.h);
        if given != (batch, hidden) {
            return Err(Error::shape(format!("{what} h"), (batch, hidden), given));
        }
        match (&self.c, kind.has_cell_state()) {
            (Some(c), true) if backend.shape(c) != (batch, hidden) => Err(Error::shape(
                format!("{what} c"),
                (batch, hidden),
                backend.shape(c),
            )),
            (None, true) => Err(Error::config(format!(
                "{what}: this cell needs a cell state c"
            ))),
            (Some(_), false) => Err(Error::config(format!(
                "{what}: this cell has no cell state, but c was given"
            ))),
            _ => Ok(()),
        }
    }
}

/// What the forward pass of one step keeps for its backward pass: the new state, and for the
/// gated cells their activated gates (LSTM: i, f, g, o; GRU: r, z, n) and, for the GRU, the
/// recurrent projection `hh` whose `n` block the reset gate multiplied. The Elman cell needs only
/// the new state: its derivative comes from the output, `1 - h_t^2` for tanh.
#[derive(Debug, Clone)]
pub struct StepCache<B: Backend> {
    /// The state after the step.
    pub state: CellState<B>,
    pub(crate) gates: Option<B::Matrix>,
    pub(crate) hh: Option<B::Matrix>,
}

/// The element-wise part of a step's backward pass.
pub(crate) struct GateGrads<B: Backend> {
    /// Gradient with respect to `xp = x W_ih^T + b_ih`.
    pub d_xp: B::Matrix,
    /// Gradient with respect to `hh = h_{t-1} W_hh^T + b_hh`.
    pub d_hh: B::Matrix,
    /// Gradient reaching `h_{t-1}` other than through `W_hh` (none for the Elman cell).
    pub d_h_direct: Option<B::Matrix>,
    /// Gradient reaching `c_{t-1}`.
    pub d_c: Option<B::Matrix>,
}

/// The element-wise part of a step forward: from `xp` and `hh` (`B x G*H` each) and the
/// previous state, the new state and what backward needs.
pub(crate) fn gates_forward<B: Backend>(
    backend: &B,
    kind: CellKind,
    mut xp: B::Matrix,
    hh: B::Matrix,
    prev: &CellState<B>,
) -> StepCache<B> {
    let (batch, hidden) = backend.shape(&prev.h);
    match kind {
        CellKind::Rnn(nonlinearity) => {
            // h_t = act(xp + hh)
            backend.axpy(&mut xp, B::Scalar::one(), &hh);
            backend.activate(&mut xp, nonlinearity.activation());
            StepCache {
                state: CellState { h: xp, c: None },
                gates: None,
                hh: None,
            }
        }
        CellKind::Lstm => {
            // gates = xp + hh, then i, f, g, o; c = f c_prev + i g; h = o tanh(c)
            backend.axpy(&mut xp, B::Scalar::one(), &hh);
            let (mut c, mut h) = (backend.zeros(batch, hidden), backend.zeros(batch, hidden));
            let c_prev = prev.c.as_ref().expect("checked: an LSTM state has c");
            backend.lstm_cell(&mut xp, c_prev, &mut c, &mut h);
            StepCache {
                state: CellState { h, c: Some(c) },
                gates: Some(xp),
                hh: None,
            }
        }
        CellKind::Gru => {
            let (mut gates, mut h) = (
                backend.zeros(batch, 3 * hidden),
                backend.zeros(batch, hidden),
            );
            backend.gru_cell(&xp, &hh, &prev.h, &mut gates, &mut h);
            StepCache {
                state: CellState { h, c: None },
                gates: Some(gates),
                hh: Some(hh),
            }
        }
    }
}

/// The element-wise part of a step backward, given the gradient `d_state` reaching the step's
/// output state.
pub(crate) fn gates_backward<B: Backend>(
    backend: &B,
    kind: CellKind,
    step: &StepCache<B>,
    prev: &CellState<B>,
    d_state: &CellState<B>,
) -> GateGrads<B> {
    let (batch, hidden) = backend.shape(&prev.h);
    match kind {
        CellKind::Rnn(nonlinearity) => {
            // d pre = dh * act'(pre), from the saved output h_t.
            let mut d_pre = d_state.h.clone();
            backend.activate_backward(&mut d_pre, &step.state.h, nonlinearity.activation());
            GateGrads {
                d_xp: d_pre.clone(),
                d_hh: d_pre,
                d_h_direct: None,
                d_c: None,
            }
        }
        CellKind::Lstm => {
            let gates = step.gates.as_ref().expect("an LSTM step saves its gates");
            let (c_prev, c) = (prev.c.as_ref(), step.state.c.as_ref());
            let (c_prev, c) = (c_prev.expect("LSTM state"), c.expect("LSTM state"));
            let zeros;
            let dc = match &d_state.c {
                Some(dc) => dc,
                None => {
                    zeros = backend.zeros(batch, hidden);
                    &zeros
                }
            };
            let mut d_gates = backend.zeros(batch, 4 * hidden);
            let mut dc_prev = backend.zeros(batch, hidden);
            backend.lstm_cell_backward(
                gates,
                c_prev,
                c,
                &d_state.h,
                dc,
                &mut d_gates,
                &mut dc_prev,
            );
            GateGrads {
                d_xp: d_gates.clone(),
                d_hh: d_gates,
                d_h_direct: None,
                d_c: Some(dc_prev),
            }
        }
        CellKind::Gru => {
            let gates = step.gates.as_ref().expect("a GRU step saves its gates");
            let hh = step.hh.as_ref().expect("a GRU step saves hh");
            let mut d_xp = backend.zeros(batch, 3 * hidden);
            let mut d_hh = backend.zeros(batch, 3 * hidden);
            let mut dh_prev = backend.zeros(batch, hidden);
            backend.gru_cell_backward(
                gates,
                hh,
                &prev.h,
                &d_state.h,
                &mut d_xp,
                &mut d_hh,
                &mut dh_prev,
            );
            GateGrads {
                d_xp,
                d_hh,
                d_h_direct: Some(dh_prev),
                d_c: None,
            }
        }
    }
}

/// A recurrent cell: one time step forward, saving what backward needs, and one step backward
/// that accumulates parameter gradients and returns the gradients of the input and the previous
/// state.
///
/// The sequence loop ([`bptt`](crate::bptt)) uses the same gate math with the projections batched
/// over all steps; these per-step methods are for stepping by hand, testing and teaching.
pub trait Cell<B: Backend> {
    /// The recurrence this cell computes.
    fn kind(&self) -> CellKind;

    /// The cell's parameters.
    fn params(&self) -> &CellParams<B>;

    /// One step: from input `x` (`B x I`) and the previous state, the new state and its cache.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `B x I` or the state is not `B x H`.
    fn step_forward(
        &self,
        backend: &B,
        x: &B::Matrix,
        prev: &CellState<B>,
    ) -> Result<StepCache<B>> {
        let params = self.params();
        let (input, hidden) = params.sizes(backend);
        let (batch, cols) = backend.shape(x);
        if cols != input {
            return Err(Error::shape("cell input x", (batch, input), (batch, cols)));
        }
        prev.check(backend, "previous state", self.kind(), batch, hidden)?;
        let xp = params.project_input(backend, x);
        let hh = params.project_hidden(backend, &prev.h);
        Ok(gates_forward(backend, self.kind(), xp, hh, prev))
    }

    /// The backward pass of one step taken by [`step_forward`](Cell::step_forward) on `x` from
    /// `prev`: adds this step's parameter gradients into `grads` and returns
    /// `(dE/dx, dE/d prev)` for the gradient `d_state` reaching the new state.
    ///
    /// # Errors
    /// [`Error::Shape`] if shapes disagree with the forward step or `grads` has other shapes
    /// than the parameters.
    fn step_backward(
        &self,
        backend: &B,
        x: &B::Matrix,
        prev: &CellState<B>,
        step: &StepCache<B>,
        d_state: &CellState<B>,
        grads: &mut CellParams<B>,
    ) -> Result<(B::Matrix, CellState<B>)> {
        let params = self.params();
        let (input, hidden) = params.sizes(backend);
        let (batch, _) = backend.shape(&step.state.h);
        if backend.shape(x) != (batch, input) {
            return Err(Error::shape(
                "cell input x",
                (batch, input),
                backend.shape(x),
            ));
        }
        prev.check(backend, "previous state", self.kind(), batch, hidden)?;
        step.state
            .check(backend, "step cache state", self.kind(), batch, hidden)?;
        d_state.check(backend, "state gradient", self.kind(), batch, hidden)?;
        check_same_shapes(backend, params, grads)?;
        let g = gates_backward(backend, self.kind(), step, prev, d_state);
        add_weight_grads(
            backend,
            &mut grads.weight_ih,
            grads.bias_ih.as_mut(),
            &g.d_xp,
            x,
        );
        add_weight_grads(
            backend,
            &mut grads.weight_hh,
            grads.bias_hh.as_mut(),
            &g.d_hh,
            &prev.h,
        );
        let d_x = back_project(backend, &params.weight_ih, &g.d_xp, None);
        let d_h = back_project(backend, &params.weight_hh, &g.d_hh, g.d_h_direct);
        Ok((d_x, CellState { h: d_h, c: g.d_c }))
    }
}

/// Checks that a gradient mirror has the parameters' shapes.
pub(crate) fn check_same_shapes<B: Backend>(
    backend: &B,
    params: &CellParams<B>,
    grads: &CellParams<B>,
) -> Result<()> {
    let want = params.named("");
    let have = grads.named("");
    if want.len() != have.len() {
        return Err(Error::shape(
            "gradient parameters (count)",
            want.len(),
            have.len(),
        ));
    }
    for ((name, p), (_, g)) in want.iter().zip(&have) {
        if backend.shape(p) != backend.shape(g) {
            return Err(Error::shape(
                format!("gradient {name}"),
                backend.shape(p),
                backend.shape(g),
            ));
        }
    }
    Ok(())
}

/// Weight side of a projection's backward: `d_weight += d^T x` and `d_bias += colsum(d)`, for
/// `d` (`n x G*H`) and the projected rows `x` (`n x K`). With `n = T*B` this is every step's
/// contribution summed in one GEMM.
pub(crate) fn add_weight_grads<B: Backend>(
    backend: &B,
    d_weight: &mut B::Matrix,
    d_bias: Option<&mut B::Matrix>,
    d: &B::Matrix,
    x: &B::Matrix,
) {
    let one = B::Scalar::one();
    backend.gemm(d_weight, one, d, Transpose::Yes, x, Transpose::No, one);
    if let Some(db) = d_bias {
        backend.add_column_sums(db, d);
    }
}

/// Input side of a projection's backward: `d W` for `d` (`n x G*H`) and `weight` (`G*H x K`),
/// plus `direct` (`n x K`), the gradient that reaches the same rows another way.
pub(crate) fn back_project<B: Backend>(
    backend: &B,
    weight: &B::Matrix,
    d: &B::Matrix,
    direct: Option<B::Matrix>,
) -> B::Matrix {
    let one = B::Scalar::one();
    let (rows, _) = backend.shape(d);
    let (_, cols) = backend.shape(weight);
    let (beta, mut out) = match direct {
        Some(direct) => (one, direct),
        None => (B::Scalar::zero(), backend.zeros(rows, cols)),
    };
    backend.gemm(&mut out, one, d, Transpose::No, weight, Transpose::No, beta);
    out
}
