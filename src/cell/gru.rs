//! The GRU cell (Cho et al. 2014), as PyTorch's `nn.GRU` computes it.

use super::{Cell, CellKind, CellParams};
use crate::backend::Backend;
use crate::error::Result;
use rand::Rng;

/// The gated recurrent unit, as PyTorch's `nn.GRUCell`, gates in the order r, z, n:
///
/// ```text
/// r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
/// n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h
/// ```
///
/// The reset gate `r` multiplies `W_hn h + b_hn` after the product (the cuDNN form PyTorch uses),
/// so `b_in` and `b_hn` are not interchangeable; `z` weighs the old state.
#[derive(Debug, Clone)]
pub struct GruCell<B: Backend> {
    params: CellParams<B>,
}

impl<B: Backend> GruCell<B> {
    /// A cell with `input` inputs and `hidden` units, with biases, initialised as PyTorch
    /// initialises `nn.GRUCell` (uniform in `[-1/sqrt(H), 1/sqrt(H)]`) from `rng`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if `hidden` is zero.
    pub fn new<R: Rng + ?Sized>(
        backend: &B,
        input: usize,
        hidden: usize,
        rng: &mut R,
    ) -> Result<Self> {
        let params = CellParams::init(backend, CellKind::Gru, input, hidden, true, rng)?;
        Ok(GruCell { params })
    }

    /// A cell from given weights: `weight_ih` `(3H, I)`, `weight_hh` `(3H, H)`, and optional
    /// biases `(1, 3H)`, gates stacked by rows in the order r, z, n.
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
            CellParams::from_weights(backend, CellKind::Gru, weight_ih, weight_hh, biases)?;
        Ok(GruCell { params })
    }
}

impl<B: Backend> Cell<B> for GruCell<B> {
    fn kind(&self) -> CellKind {
        CellKind::Gru
    }

    fn params(&self) -> &CellParams<B> {
        &self.params
    }
}
