//! The element-wise part of each cell's step, forward and backward: the gate math that follows
//! the two projections. The kernels themselves are the backend's (fused per cell).
//!
//! Both directions work in place on [`StepBuffers`], matrices sized once per batch and reused
//! at every step, so that the time loop allocates nothing.

use super::{CellKind, CellState};
use crate::backend::Backend;
use num_traits::One;

/// What the forward pass of one step keeps for its backward pass: the new state, and for the
/// gated cells their activated gates (LSTM: i, f, g, o; GRU: r, z, n) and, for the GRU, the
/// recurrent projection `hh` whose `n` block the reset gate multiplied. The Elman cell needs only
/// the new state: its derivative comes from the output, `1 - h_t^2` for tanh.
#[derive(Debug, Clone)]
pub struct StepCache<B: Backend> {
    /// The state after the step.
    pub state: CellState<B>,
    /// The cell that took the step: its backward pass reads what only that cell saved.
    pub(crate) kind: CellKind,
    pub(crate) gates: Option<B::Matrix>,
    pub(crate) hh: Option<B::Matrix>,
}

/// The matrices one step reads and writes, `B x G*H` or `B x H`.
///
/// Forward reads `xp = x W_ih^T + b_ih`, `hh = h_{t-1} W_hh^T + b_hh`, `h_prev` and `c_prev` and
/// writes `gates` (activated), `h` and `c`. Backward reads those saved values and `dh`, `dc` (the
/// gradients reaching `h_t` and `c_t`) and writes `d_xp`, `d_hh` (GRU only: the Elman and LSTM
/// cells have `d_hh = d_xp`), `dh_direct` (GRU: the part of `dh_{t-1}` that bypasses `W_hh`) and
/// `dc_prev` (LSTM).
#[derive(Debug, Clone)]
pub(crate) struct StepBuffers<B: Backend> {
    pub xp: B::Matrix,
    pub hh: B::Matrix,
    pub gates: B::Matrix,
    pub h_prev: B::Matrix,
    pub c_prev: B::Matrix,
    pub h: B::Matrix,
    pub c: B::Matrix,
    pub dh: B::Matrix,
    pub dc: B::Matrix,
    pub d_xp: B::Matrix,
    pub d_hh: B::Matrix,
    pub dh_direct: B::Matrix,
    pub dc_prev: B::Matrix,
}

impl<B: Backend> StepBuffers<B> {
    /// Buffers for a batch of `batch` and `hidden` units of a `kind` cell, all zero.
    pub fn new(backend: &B, kind: CellKind, batch: usize, hidden: usize) -> Self {
        let wide = || backend.zeros(batch, kind.gates() * hidden);
        let narrow = || backend.zeros(batch, hidden);
        StepBuffers {
            xp: wide(),
            hh: wide(),
            gates: wide(),
            h_prev: narrow(),
            c_prev: narrow(),
            h: narrow(),
            c: narrow(),
            dh: narrow(),
            dc: narrow(),
            d_xp: wide(),
            d_hh: wide(),
            dh_direct: narrow(),
            dc_prev: narrow(),
        }
    }

    /// The gradient with respect to `hh` after [`gates_backward`]: its own buffer for the GRU,
    /// whose reset gate makes it differ from `d_xp`; `d_xp` itself for the others.
    pub fn d_hh(&self, kind: CellKind) -> &B::Matrix {
        match kind {
            CellKind::Gru => &self.d_hh,
            _ => &self.d_xp,
        }
    }

    /// The direct part of `dh_{t-1}` after [`gates_backward`], if the cell has one (the GRU).
    pub fn dh_direct(&self, kind: CellKind) -> Option<&B::Matrix> {
        (kind == CellKind::Gru).then_some(&self.dh_direct)
    }
}

/// Copies `src` over `dst`, same shape.
pub(crate) fn copy_all<B: Backend>(backend: &B, dst: &mut B::Matrix, src: &B::Matrix) {
    let (rows, _) = backend.shape(src);
    backend.copy_rows(dst, 0, src, 0, rows);
}

/// The element-wise part of a step forward: `h`, `c` and `gates` from `xp`, `hh`, `h_prev` and
/// `c_prev`.
pub(crate) fn gates_forward<B: Backend>(backend: &B, kind: CellKind, buf: &mut StepBuffers<B>) {
    let one = B::Scalar::one();
    match kind {
        CellKind::Rnn(nonlinearity) => {
            // h_t = act(xp + hh)
            copy_all(backend, &mut buf.h, &buf.xp);
            backend.axpy(&mut buf.h, one, &buf.hh);
            backend.activate(&mut buf.h, nonlinearity.activation());
        }
        CellKind::Lstm => {
            // gates = act(xp + hh): i, f, g, o; c = f c_prev + i g; h = o tanh(c)
            let b = &mut *buf;
            backend.lstm_cell(&b.xp, &b.hh, &b.c_prev, &mut b.gates, &mut b.c, &mut b.h);
        }
        CellKind::Gru => {
            backend.gru_cell(&buf.xp, &buf.hh, &buf.h_prev, &mut buf.gates, &mut buf.h);
        }
    }
}

/// The element-wise part of a step backward: `d_xp`, `d_hh`, `dh_direct` and `dc_prev` from
/// `dh`, `dc` and the step's saved values.
pub(crate) fn gates_backward<B: Backend>(backend: &B, kind: CellKind, buf: &mut StepBuffers<B>) {
    match kind {
        CellKind::Rnn(nonlinearity) => {
            // d pre = dh * act'(pre), from the saved output h_t.
            copy_all(backend, &mut buf.d_xp, &buf.dh);
            backend.activate_backward(&mut buf.d_xp, &buf.h, nonlinearity.activation());
        }
        CellKind::Lstm => {
            let b = &mut *buf;
            backend.lstm_cell_backward(
                &b.gates,
                &b.c_prev,
                &b.c,
                &b.dh,
                &b.dc,
                &mut b.d_xp,
                &mut b.dc_prev,
            );
        }
        CellKind::Gru => {
            let b = &mut *buf;
            backend.gru_cell_backward(
                &b.gates,
                &b.hh,
                &b.h_prev,
                &b.dh,
                &mut b.d_xp,
                &mut b.d_hh,
                &mut b.dh_direct,
            );
        }
    }
}
