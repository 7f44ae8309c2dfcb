//! The element-wise part of each cell's step, forward and backward: the gate math that follows
//! the two projections. The kernels themselves are the backend's (fused per cell).

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
