//! The LSTM cell's equations (Hochreiter & Schmidhuber 1997, in PyTorch's `nn.LSTM` form),
//! forward and backward, written once on the matrix operations of [`Backend`].
//!
//! With the projections `xp = x_t W_ih^T + b_ih` and `hh = h_{t-1} W_hh^T + b_hh` done, each
//! `B x 4H`, gates stacked in the order i, f, g, o:
//!
//! ```text
//! i = sigmoid(xp_i + hh_i)   f = sigmoid(xp_f + hh_f)   g = tanh(xp_g + hh_g)   o = sigmoid(xp_o + hh_o)
//! c_t = f * c_{t-1} + i * g
//! h_t = o * tanh(c_t)
//! ```
//!
//! Backward, from `dh = dE/dh_t` and `dc = dE/dc_t` (what step `t + 1` passed back), with the
//! derivatives taken from the saved outputs (`sigmoid' = y (1 - y)`, `tanh' = 1 - y^2`):
//!
//! ```text
//! dc_t    = dc + dh * o * (1 - tanh(c_t)^2)
//! d_i     = dc_t * g * i (1 - i)          d_f = dc_t * c_{t-1} * f (1 - f)
//! d_g     = dc_t * i * (1 - g^2)          d_o = dh * tanh(c_t) * o (1 - o)
//! dc_{t-1} = dc_t * f
//! ```
//!
//! `d_i, d_f, d_g, d_o` are the gradient of the pre-activations, both `dE/d xp` and `dE/d hh`.
//! The cell vector carries the gradient back multiplied only by `f`: that is how the LSTM keeps
//! long-range gradients from vanishing. Each product is evaluated left to right, as written.
//!
//! These are the defaults of [`CellKernels::lstm_forward`](super::CellKernels::lstm_forward)
//! and [`lstm_backward`](super::CellKernels::lstm_backward); a backend may run a fused kernel of
//! the same equations instead.

use super::{StepBuffers, check_step_shapes, copy_all, one_minus};
use crate::backend::{Activation, Backend};
use num_traits::One;

/// The forward step: `gates`, `c` and `h` from `xp`, `hh` and `c_prev`.
pub(crate) fn forward<B: Backend>(backend: &B, buf: &mut StepBuffers<B>) {
    let b = &*buf;
    let (wide, narrow) = ([&b.xp, &b.hh, &b.gates], [&b.c, &b.h]);
    check_step_shapes(backend, "lstm_forward", 4, &b.c_prev, &wide, &narrow);
    let (batch, hidden) = backend.shape(&buf.c_prev);
    let one = B::Scalar::one();
    let ([i, f, g, o, t], _) = buf.scratch.take::<5>(backend, batch, hidden);
    // The pre-activations of all four gates, then each block activated in place.
    copy_all(backend, &mut buf.gates, &buf.xp);
    backend.axpy(&mut buf.gates, one, &buf.hh);
    let blocks = [
        (&mut *i, Activation::Sigmoid),
        (&mut *f, Activation::Sigmoid),
        (&mut *g, Activation::Tanh),
        (&mut *o, Activation::Sigmoid),
    ];
    for (k, (gate, act)) in blocks.into_iter().enumerate() {
        backend.copy_columns(gate, 0, &buf.gates, k * hidden, hidden);
        backend.activate(gate, act);
        backend.copy_columns(&mut buf.gates, k * hidden, gate, 0, hidden);
    }
    // c_t = f * c_{t-1} + i * g
    copy_all(backend, &mut buf.c, f);
    backend.mul(&mut buf.c, &buf.c_prev);
    copy_all(backend, t, i);
    backend.mul(t, g);
    backend.axpy(&mut buf.c, one, t);
    // h_t = o * tanh(c_t)
    copy_all(backend, &mut buf.h, &buf.c);
    backend.activate(&mut buf.h, Activation::Tanh);
    backend.mul(&mut buf.h, o);
}

/// The backward step: `d_xp` (the gates' pre-activation gradient, `B x 4H`) and `dc_prev` from
/// the saved `gates`, `c_prev` and `c`, and `dh`, `dc`.
pub(crate) fn backward<B: Backend>(backend: &B, buf: &mut StepBuffers<B>) {
    let b = &*buf;
    let (wide, narrow) = ([&b.gates, &b.d_xp], [&b.c, &b.dh, &b.dc, &b.dc_prev]);
    check_step_shapes(backend, "lstm_backward", 4, &b.c_prev, &wide, &narrow);
    let (batch, hidden) = backend.shape(&buf.c_prev);
    let one = B::Scalar::one();
    let ([i, f, g, o, tc, dc_t, t, om], ones) = buf.scratch.take::<8>(backend, batch, hidden);
    for (k, gate) in [&mut *i, &mut *f, &mut *g, &mut *o].into_iter().enumerate() {
        backend.copy_columns(gate, 0, &buf.gates, k * hidden, hidden);
    }
    copy_all(backend, tc, &buf.c);
    backend.activate(tc, Activation::Tanh);
    // dc_t = dc + dh * o * (1 - tanh(c_t)^2)
    copy_all(backend, t, &buf.dh);
    backend.mul(t, o);
    backend.activate_backward(t, tc, Activation::Tanh);
    copy_all(backend, dc_t, &buf.dc);
    backend.axpy(dc_t, one, t);
    // d_i = dc_t * g * i (1 - i),  d_f = dc_t * c_{t-1} * f (1 - f),  d_o = dh * tanh(c_t) * o (1 - o)
    let sigmoid_gates = [
        (0, &*dc_t, &*g, &*i),
        (1, &*dc_t, &buf.c_prev, &*f),
        (3, &buf.dh, &*tc, &*o),
    ];
    for (k, first, second, gate) in sigmoid_gates {
        copy_all(backend, t, first);
        backend.mul(t, second);
        backend.mul(t, gate);
        one_minus(backend, om, ones, gate);
        backend.mul(t, om);
        backend.copy_columns(&mut buf.d_xp, k * hidden, t, 0, hidden);
    }
    // d_g = dc_t * i * (1 - g^2)
    copy_all(backend, t, dc_t);
    backend.mul(t, i);
    backend.activate_backward(t, g, Activation::Tanh);
    backend.copy_columns(&mut buf.d_xp, 2 * hidden, t, 0, hidden);
    // dc_{t-1} = dc_t * f
    copy_all(backend, &mut buf.dc_prev, dc_t);
    backend.mul(&mut buf.dc_prev, f);
}
