//! Recurrent cells: one time step forward and backward.
//!
//! Every cell splits a step into the same three parts, so that the sequence loop in
//! [`bptt`](crate::bptt) can batch the expensive ones:
//!
//! 1. the input projection `xp = x W_ih^T + b_ih` (`B x G*H`): for a whole sequence this is one
//!    GEMM (or, for token ids, a column gather of `W_ih`);
//! 2. the recurrent projection `hh = h_{t-1} W_hh^T + b_hh` (`B x G*H`): one GEMM per step, for all
//!    `G` gates at once;
//! 3. the element-wise gate math, cell specific ([`CellKind`]), which gives the new state: the
//!    Elman cell's in `rnn.rs`, the LSTM's in `lstm.rs`, the GRU's in `gru.rs`, each with its
//!    equations and derivatives in the module's documentation, written on the matrix operations
//!    of [`Backend`]. A backend may run them as fused kernels of its own ([`CellKernels`]).
//!
//! Backward mirrors it: the element-wise part gives `d xp` and `d hh`; then
//! `dW_hh += d hh^T h_{t-1}`, `db_hh += colsum(d hh)`, `dh_{t-1} += d hh W_hh` and the same for
//! the input side. Parameters keep PyTorch's shapes and names, gates stacked by rows.

mod gated;
mod gates;
mod gru;
mod input;
mod kernels;
mod lstm;
mod params;
mod rnn;

pub use gated::{GruCell, LstmCell};
pub use gates::{Scratch, StepBuffers, StepCache};
pub use input::LayerInput;
pub use kernels::{CellKernels, LoopPass, TimeLoop};
pub use params::CellParams;
pub use rnn::RnnCell;

pub(crate) use gates::{check_step_shapes, copy_all, gates_backward, gates_forward, one_minus};
pub(crate) use kernels::product_back;
/// The defaults of the step with its product, for a backend's override that falls back to them.
#[cfg(feature = "cpu")]
pub(crate) use kernels::{recurrent_backward, recurrent_forward};
pub(crate) use params::{add_weight_grads, back_project, check_same_shapes, uniform};

use crate::backend::{Activation, Backend};
use crate::error::{Error, Result};

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
    pub(crate) fn activation(self) -> Activation {
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

/// The two methods of a crate's cell that hand its step to the backend's
/// [`CellKernels::recurrent_forward`] and [`CellKernels::recurrent_backward`], for an
/// `impl Cell<B>` block.
macro_rules! steps_by_the_backend {
    () => {
        fn forward_step(&self, backend: &B, w_hh_t: &B::Prepared, buf: &mut StepBuffers<B>) {
            let b_hh = self.params().bias_hh.as_ref();
            backend.recurrent_forward(self.kind(), w_hh_t, b_hh, buf)
        }

        fn backward_step(
            &self,
            backend: &B,
            w_hh: &B::Prepared,
            buf: &mut StepBuffers<B>,
            dh_prev: &mut B::Matrix,
        ) {
            backend.recurrent_backward(self.kind(), w_hh, buf, dh_prev)
        }
    };
}
pub(crate) use steps_by_the_backend;

/// A recurrent cell: one time step forward, saving what backward needs, and one step backward
/// that accumulates parameter gradients and returns the gradients of the input and the previous
/// state.
///
/// The sequence loop ([`bptt`](crate::bptt)) drives a cell through the same trait, with the
/// input projections batched over all steps: it calls [`forward_step`](Cell::forward_step) and
/// [`backward_step`](Cell::backward_step) once per step (the recurrent product and
/// [`forward_gates`](Cell::forward_gates), [`backward_gates`](Cell::backward_gates)). The per-step methods
/// [`step_forward`](Cell::step_forward) and [`step_backward`](Cell::step_backward) are for
/// stepping by hand, testing and teaching. The model drives each layer as a [`LayerCell`].
pub trait Cell<B: CellKernels>: Sync {
    /// The recurrence this cell computes: what the trace of a sequence keeps for backward, and
    /// the cell's name in files.
    fn kind(&self) -> CellKind;

    /// The cell's parameters.
    fn params(&self) -> &CellParams<B>;

    /// The element-wise part of a step forward, in place on `buf`: from the projections `xp`,
    /// `hh` and the previous state, the gates and the new state (see [`StepBuffers`]). These
    /// are the cell's equations (`rnn.rs`, `lstm.rs`, `gru.rs` beside this file), or the
    /// backend's fused kernel of them ([`CellKernels`]).
    ///
    /// # Panics
    /// If `buf` does not have the shapes of this cell's step (see [`CellKernels`]).
    fn forward_gates(&self, backend: &B, buf: &mut StepBuffers<B>);

    /// The element-wise part of a step backward, in place on `buf`: from `dh`, `dc` and what
    /// the forward step saved, `d_xp`, `d_hh`, `dh_direct` and `dc_prev`.
    ///
    /// # Panics
    /// As [`forward_gates`](Cell::forward_gates).
    fn backward_gates(&self, backend: &B, buf: &mut StepBuffers<B>);

    /// A step of the sequence loop after the input projection: `hh = h_prev W_hh^T + b_hh`
    /// from `w_hh_t` (the cell's `W_hh^T`, [prepared](Backend::prepare_rhs)), then
    /// [`forward_gates`](Cell::forward_gates). The crate's cells hand both to the backend
    /// ([`CellKernels::recurrent_forward`]), which may make them together.
    ///
    /// # Panics
    /// As [`forward_gates`](Cell::forward_gates).
    fn forward_step(&self, backend: &B, w_hh_t: &B::Prepared, buf: &mut StepBuffers<B>) {
        self.params()
            .project_hidden(backend, w_hh_t, &buf.h_prev, &mut buf.hh);
        self.forward_gates(backend, buf);
    }

    /// A step of the loop backward: [`backward_gates`](Cell::backward_gates), then
    /// `dh_prev = d_hh W_hh` (plus `dh_direct` for the GRU) from `w_hh` (`W_hh`, prepared), over
    /// `dh_prev` (`B x H`). The crate's cells hand both to the backend
    /// ([`CellKernels::recurrent_backward`]).
    ///
    /// # Panics
    /// As [`forward_gates`](Cell::forward_gates).
    fn backward_step(
        &self,
        backend: &B,
        w_hh: &B::Prepared,
        buf: &mut StepBuffers<B>,
        dh_prev: &mut B::Matrix,
    ) {
        self.backward_gates(backend, buf);
        product_back(backend, self.kind(), w_hh, buf, dh_prev);
    }

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
        let kind = self.kind();
        let mut buf = StepBuffers::new(backend, kind, batch, hidden);
        buf.xp = params.project_input(backend, x);
        // One product: packing `W_hh` for it (`prepare_hidden`) would cost as much again.
        params.project_hidden_once(backend, &prev.h, &mut buf.hh);
        buf.h_prev = prev.h.clone();
        if let Some(c) = &prev.c {
            buf.c_prev = c.clone();
        }
        self.forward_gates(backend, &mut buf);
        Ok(StepCache {
            kind,
            state: CellState {
                h: buf.h,
                c: kind.has_cell_state().then_some(buf.c),
            },
            gates: (kind.gates() > 1).then_some(buf.gates),
            hh: (kind == CellKind::Gru).then_some(buf.hh),
        })
    }

    /// The backward pass of one step taken by [`step_forward`](Cell::step_forward) on `x` from
    /// `prev`: adds this step's parameter gradients into `grads` and returns
    /// `(dE/dx, dE/d prev)` for the gradient `d_state` reaching the new state.
    ///
    /// # Errors
    /// [`Error::Shape`] if shapes disagree with the forward step or `grads` has other shapes
    /// than the parameters; [`Error::Config`] if `step` was taken by another kind of cell.
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
        if step.kind != self.kind() {
            return Err(Error::config(format!(
                "the step cache is from a {} cell, not this {} cell",
                step.kind.name(),
                self.kind().name()
            )));
        }
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
        let kind = self.kind();
        let mut buf = StepBuffers::new(backend, kind, batch, hidden);
        buf.h_prev = prev.h.clone();
        buf.h = step.state.h.clone();
        if let (Some(c_prev), Some(c)) = (&prev.c, &step.state.c) {
            buf.c_prev = c_prev.clone();
            buf.c = c.clone();
        }
        if let Some(gates) = &step.gates {
            buf.gates = gates.clone();
        }
        if let Some(hh) = &step.hh {
            buf.hh = hh.clone();
        }
        buf.dh = d_state.h.clone();
        if let Some(dc) = &d_state.c {
            buf.dc = dc.clone();
        }
        self.backward_gates(backend, &mut buf);
        let (d_xp, d_hh) = (&buf.d_xp, buf.d_hh(kind));
        add_weight_grads(
            backend,
            &mut grads.weight_ih,
            grads.bias_ih.as_mut(),
            d_xp,
            x,
        );
        add_weight_grads(
            backend,
            &mut grads.weight_hh,
            grads.bias_hh.as_mut(),
            d_hh,
            &prev.h,
        );
        let d_x = back_project(backend, &params.weight_ih, d_xp, None);
        let d_h = back_project(
            backend,
            &params.weight_hh,
            d_hh,
            buf.dh_direct(kind).cloned(),
        );
        let d_c = kind.has_cell_state().then(|| buf.dc_prev.clone());
        Ok((d_x, CellState { h: d_h, c: d_c }))
    }
}

/// A layer's cell as the model keeps it: its kind, from the configuration, and its parameters,
/// borrowed. [`CellKind`] picks the cell's equations here and nowhere else.
#[derive(Debug)]
pub struct LayerCell<'a, B: Backend> {
    kind: CellKind,
    params: &'a CellParams<B>,
}

// Manual impls: a derive would ask `B: Copy`, but only a reference is copied.
impl<B: Backend> Clone for LayerCell<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for LayerCell<'_, B> {}

impl<'a, B: Backend> LayerCell<'a, B> {
    /// The `kind` cell on `params`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `weight_ih` does not have `G*H` rows for the kind's `G` gates and
    /// the `H` columns of `weight_hh`.
    pub fn new(backend: &B, kind: CellKind, params: &'a CellParams<B>) -> Result<Self> {
        let (_, hidden) = params.sizes(backend);
        let (rows, cols) = backend.shape(&params.weight_ih);
        let expected = (kind.gates() * hidden, cols);
        if (rows, cols) != expected {
            let what = format!("weight_ih of a {} cell", kind.name());
            return Err(Error::shape(what, expected, (rows, cols)));
        }
        Ok(LayerCell { kind, params })
    }

    /// The `kind` cell on parameters made for it (the model's own).
    pub(crate) fn of(kind: CellKind, params: &'a CellParams<B>) -> Self {
        LayerCell { kind, params }
    }
}

impl<B: CellKernels> Cell<B> for LayerCell<'_, B> {
    fn kind(&self) -> CellKind {
        self.kind
    }

    fn params(&self) -> &CellParams<B> {
        self.params
    }

    fn forward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
        gates_forward(backend, self.kind, buf)
    }

    fn backward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
        gates_backward(backend, self.kind, buf)
    }

    steps_by_the_backend!();
}
