//! The GRU cell's equations (Cho et al. 2014, in PyTorch's `nn.GRU` form), forward and
//! backward, written once on the matrix operations of [`Backend`].
//!
//! With the projections `xp = x_t W_ih^T + b_ih` and `hh = h_{t-1} W_hh^T + b_hh` done, each
//! `B x 3H`, gates stacked in the order r, z, n:
//!
//! ```text
//! r = sigmoid(xp_r + hh_r)      z = sigmoid(xp_z + hh_z)
//! n = tanh(xp_n + r * hh_n)     (the reset gate multiplies W_hn h_{t-1} + b_hn, after the product)
//! h_t = (1 - z) * n + z * h_{t-1}
//! ```
//!
//! Backward, from `dh = dE/dh_t`, with the derivatives taken from the saved gates:
//!
//! ```text
//! d_an = dh * (1 - z) * (1 - n^2)              dE/d xp_n = d_an      dE/d hh_n = d_an * r
//! d_ar = d_an * hh_n * r (1 - r)               dE/d xp_r = dE/d hh_r = d_ar
//! d_az = dh * (h_{t-1} - n) * z (1 - z)        dE/d xp_z = dE/d hh_z = d_az
//! dh_direct = dh * z                           (the part of dE/dh_{t-1} that bypasses W_hh)
//! ```
//!
//! Each product is evaluated left to right, as written. These are the defaults of
//! [`CellKernels::gru_forward`](super::CellKernels::gru_forward) and
//! [`gru_backward`](super::CellKernels::gru_backward).

use super::{StepBuffers, check_step_shapes, copy_all, one_minus};
use crate::backend::{Activation, Backend};
use num_traits::One;

/// The forward step: `gates` and `h` from `xp`, `hh` and `h_prev`.
pub(crate) fn forward<B: Backend>(backend: &B, buf: &mut StepBuffers<B>) {
    let b = &*buf;
    let (wide, narrow) = ([&b.xp, &b.hh, &b.gates], [&b.h]);
    check_step_shapes(backend, "gru_forward", 3, &b.h_prev, &wide, &narrow);
    let (batch, hidden) = backend.shape(&buf.h_prev);
    let one = B::Scalar::one();
    let ([r, z, n, t, om], ones) = buf.scratch.take::<5>(backend, batch, hidden);
    // r = sigmoid(xp_r + hh_r), z = sigmoid(xp_z + hh_z)
    for (k, gate) in [&mut *r, &mut *z].into_iter().enumerate() {
        backend.copy_columns(gate, 0, &buf.xp, k * hidden, hidden);
        backend.copy_columns(t, 0, &buf.hh, k * hidden, hidden);
        backend.axpy(gate, one, t);
        backend.activate(gate, Activation::Sigmoid);
    }
    // n = tanh(xp_n + r * hh_n)
    backend.copy_columns(t, 0, &buf.hh, 2 * hidden, hidden);
    backend.mul(t, r);
    backend.copy_columns(n, 0, &buf.xp, 2 * hidden, hidden);
    backend.axpy(n, one, t);
    backend.activate(n, Activation::Tanh);
    for (k, gate) in [&*r, &*z, &*n].into_iter().enumerate() {
        backend.copy_columns(&mut buf.gates, k * hidden, gate, 0, hidden);
    }
    // h_t = (1 - z) * n + z * h_{t-1}
    one_minus(backend, om, ones, z);
    copy_all(backend, &mut buf.h, om);
    backend.mul(&mut buf.h, n);
    copy_all(backend, t, z);
    backend.mul(t, &buf.h_prev);
    backend.axpy(&mut buf.h, one, t);
}

/// The backward step: `d_xp`, `d_hh` (`B x 3H`) and `dh_direct` from the saved `gates`, `hh`
/// and `h_prev`, and `dh`.
pub(crate) fn backward<B: Backend>(backend: &B, buf: &mut StepBuffers<B>) {
    let b = &*buf;
    let (wide, narrow) = ([&b.gates, &b.hh, &b.d_xp, &b.d_hh], [&b.dh, &b.dh_direct]);
    check_step_shapes(backend, "gru_backward", 3, &b.h_prev, &wide, &narrow);
    let (batch, hidden) = backend.shape(&buf.h_prev);
    let one = B::Scalar::one();
    let ([r, z, n, hh_n, t, d_an, om], ones) = buf.scratch.take::<7>(backend, batch, hidden);
    for (k, gate) in [&mut *r, &mut *z, &mut *n].into_iter().enumerate() {
        backend.copy_columns(gate, 0, &buf.gates, k * hidden, hidden);
    }
    backend.copy_columns(hh_n, 0, &buf.hh, 2 * hidden, hidden);
    // d_an = dh * (1 - z) * (1 - n^2); dE/d hh_n = d_an * r
    one_minus(backend, om, ones, z);
    copy_all(backend, d_an, &buf.dh);
    backend.mul(d_an, om);
    backend.activate_backward(d_an, n, Activation::Tanh);
    backend.copy_columns(&mut buf.d_xp, 2 * hidden, d_an, 0, hidden);
    copy_all(backend, t, d_an);
    backend.mul(t, r);
    backend.copy_columns(&mut buf.d_hh, 2 * hidden, t, 0, hidden);
    // d_ar = d_an * hh_n * r (1 - r)
    one_minus(backend, om, ones, r);
    copy_all(backend, t, d_an);
    backend.mul(t, hh_n);
    backend.mul(t, r);
    backend.mul(t, om);
    backend.copy_columns(&mut buf.d_xp, 0, t, 0, hidden);
    backend.copy_columns(&mut buf.d_hh, 0, t, 0, hidden);
    // d_az = dh * (h_{t-1} - n) * z (1 - z); d_an's buffer now holds h_{t-1} - n.
    copy_all(backend, d_an, &buf.h_prev);
    backend.axpy(d_an, -one, n);
    one_minus(backend, om, ones, z);
    copy_all(backend, t, &buf.dh);
    backend.mul(t, d_an);
    backend.mul(t, z);
    backend.mul(t, om);
    backend.copy_columns(&mut buf.d_xp, hidden, t, 0, hidden);
    backend.copy_columns(&mut buf.d_hh, hidden, t, 0, hidden);
    // dh_direct = dh * z
    copy_all(backend, &mut buf.dh_direct, &buf.dh);
    backend.mul(&mut buf.dh_direct, z);
}
