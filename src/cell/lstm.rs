//! The LSTM cell (Hochreiter & Schmidhuber 1997), as PyTorch's `nn.LSTM` computes it.

use super::{Cell, CellKind, CellParams};
use crate::backend::Backend;
use crate::error::Result;
use rand::Rng;

/// The long short-term memory cell, as PyTorch's `nn.LSTMCell`, gates in the order i, f, g, o:
///
/// ```text
/// i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     f = sigmoid(W_if x + b_if + W_hf h + b_hf)
/// g = tanh(W_ig x + b_ig + W_hg h + b_hg)        o = sigmoid(W_io x + b_io + W_ho h + b_ho)
/// c' = f * c + i * g                             h' = o * tanh(c')
/// ```
///
/// The cell vector `c` carries the gradient back through time multiplied only by `f`, which is
/// how the LSTM keeps long-range gradients from vanishing. No peepholes, no projection.
#[derive(Debug, Clone)]
pub struct LstmCell<B: Backend> {
    params: CellParams<B>,
}

impl<B: Backend> LstmCell<B> {
    /// A cell with `input` inputs and `hidden` units, with biases, initialised as PyTorch
    /// initialises `nn.LSTMCell` (uniform in `[-1/sqrt(H), 1/sqrt(H)]`) from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if `hidden` is zero.
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Result<Self> {
        let params = CellParams::init(backend, CellKind::Lstm, input, hidden, true, rng)?;
        Ok(LstmCell { params })
    }

    /// A cell from given weights: `weight_ih` `(4H, I)`, `weight_hh` `(4H, H)`, and optional
    /// biases `(1, 4H)`, gates stacked by rows in the order i, f, g, o.
    ///
    /// # Errors
    /// As [`CellParams::from_weights`].
    pub fn from_weights(
        backend: &B,
        weight_ih: B::Matrix,
        weight_hh: B::Matrix,
        biases: Option<(B::Matrix, B::Matrix)>,
    ) -> Result<Self> {
        let params =
            CellParams::from_weights(backend, CellKind::Lstm, weight_ih, weight_hh, biases)?;
        Ok(LstmCell { params })
    }
}

impl<B: Backend> Cell<B> for LstmCell<B> {
    fn kind(&self) -> CellKind {
        CellKind::Lstm
    }

    fn params(&self) -> &CellParams<B> {
        &self.params
    }
}
