//! The Elman cell of the walkthrough: `h_t = tanh(W_hh h_{t-1} + b + W_xh x_t)`.

use super::{
    Cell, CellKernels, CellKind, CellParams, Nonlinearity, StepBuffers, copy_all,
    steps_by_the_backend,
};
use crate::backend::Backend;
use crate::error::Result;
use num_traits::One;
use rand::Rng;

/// The Elman (vanilla) recurrent cell, as PyTorch's `nn.RNNCell`:
///
/// ```text
/// h_t = act(W_ih x_t + b_ih + W_hh h_{t-1} + b_hh)      act = tanh (default) or ReLU
/// ```
///
/// The walkthrough's single bias `b` is `b_ih + b_hh`; set one of them to zero to match it.
/// The derivative is taken from the saved output: `1 - h_t^2` for tanh, `[h_t > 0]` for ReLU.
#[derive(Debug, Clone)]
pub struct RnnCell<B: Backend> {
    params: CellParams<B>,
    nonlinearity: Nonlinearity,
}

impl<B: Backend> RnnCell<B> {
    /// A cell with `input` inputs and `hidden` units, with biases, initialised as PyTorch
    /// initialises `nn.RNNCell` (uniform in `[-1/sqrt(H), 1/sqrt(H)]`) from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if `hidden` is zero.
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        input: usize,
        hidden: usize,
        nonlinearity: Nonlinearity,
        rng: &mut R,
    ) -> Result<Self> {
        let kind = CellKind::Rnn(nonlinearity);
        let params = CellParams::init(backend, kind, input, hidden, true, rng)?;
        Ok(RnnCell {
            params,
            nonlinearity,
        })
    }

    /// A cell from given weights: `weight_ih` `(H, I)`, `weight_hh` `(H, H)`, and optional
    /// biases `(1, H)` (both or neither).
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) if the shapes do not fit together, [`Error::Config`](crate::Error::Config) if `H` is zero.
    pub fn from_weights(
        backend: &B,
        weight_ih: B::Matrix,
        weight_hh: B::Matrix,
        biases: Option<(B::Matrix, B::Matrix)>,
        nonlinearity: Nonlinearity,
    ) -> Result<Self> {
        let kind = CellKind::Rnn(nonlinearity);
        let params = CellParams::from_weights(backend, kind, weight_ih, weight_hh, biases)?;
        Ok(RnnCell {
            params,
            nonlinearity,
        })
    }
}

impl<B: CellKernels> Cell<B> for RnnCell<B> {
    fn kind(&self) -> CellKind {
        CellKind::Rnn(self.nonlinearity)
    }

    fn params(&self) -> &CellParams<B> {
        &self.params
    }

    fn forward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
        forward(backend, self.nonlinearity, buf)
    }

    fn backward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
        backward(backend, self.nonlinearity, buf)
    }

    steps_by_the_backend!();
}

/// The Elman cell's element-wise step: `h_t = act(xp + hh)`.
pub(crate) fn forward<B: Backend>(
    backend: &B,
    nonlinearity: Nonlinearity,
    buf: &mut StepBuffers<B>,
) {
    copy_all(backend, &mut buf.h, &buf.xp);
    backend.axpy(&mut buf.h, B::Scalar::one(), &buf.hh);
    backend.activate(&mut buf.h, nonlinearity.activation());
}

/// Its derivative: `d pre = dh * act'(pre)`, taken from the saved output `h_t` (`1 - h_t^2` for
/// tanh, `[h_t > 0]` for ReLU), written to `d_xp`, which is also `dE/d hh`.
pub(crate) fn backward<B: Backend>(
    backend: &B,
    nonlinearity: Nonlinearity,
    buf: &mut StepBuffers<B>,
) {
    copy_all(backend, &mut buf.d_xp, &buf.dh);
    backend.activate_backward(&mut buf.d_xp, &buf.h, nonlinearity.activation());
}
