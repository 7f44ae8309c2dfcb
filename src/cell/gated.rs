//! The gated cells, LSTM (Hochreiter & Schmidhuber 1997) and GRU (Cho et al. 2014), as PyTorch's
//! `nn.LSTM` and `nn.GRU` compute them. Both are their parameters and a [`CellKind`]; their
//! equations and derivatives are in `lstm.rs` and `gru.rs` beside this file.

use super::{Cell, CellKernels, CellKind, CellParams, StepBuffers, steps_by_the_backend};
use crate::backend::Backend;
use crate::error::Result;
use rand::Rng;

/// Defines a gated cell type: a [`CellParams`] whose recurrence is `$kind`.
macro_rules! gated_cell {
    (
        $(#[$doc:meta])* $name:ident, $kind:ident, $torch:literal, $rows:literal, $order:literal,
        $forward:ident, $backward:ident
    ) => {
        $(#[$doc])*
        #[derive(Debug, Clone)]
        pub struct $name<B: Backend> {
            params: CellParams<B>,
        }

        impl<B: Backend> $name<B> {
            #[doc = concat!(
                "A cell with `input` inputs and `hidden` units, with biases, initialised as ",
                "PyTorch initialises `", $torch, "` (uniform in `[-1/sqrt(H), 1/sqrt(H)]`) from `rng`.",
                "\n\n# Errors\n[`Error::Config`](crate::Error::Config) if `hidden` is zero."
            )]
            pub fn new<R: Rng + ?Sized>(
                backend: &B,
                input: usize,
                hidden: usize,
                rng: &mut R,
            ) -> Result<Self> {
                let params = CellParams::init(backend, CellKind::$kind, input, hidden, true, rng)?;
                Ok($name { params })
            }

            #[doc = concat!(
                "A cell from given weights: `weight_ih` `(", $rows, ", I)`, `weight_hh` `(",
                $rows, ", H)` and optional biases `(1, ", $rows, ")`, gates stacked by rows in ",
                "the order ", $order, ".\n\n# Errors\nAs [`CellParams::from_weights`]."
            )]
            pub fn from_weights(
                backend: &B,
                weight_ih: B::Matrix,
                weight_hh: B::Matrix,
                biases: Option<(B::Matrix, B::Matrix)>,
            ) -> Result<Self> {
                let kind = CellKind::$kind;
                let params = CellParams::from_weights(backend, kind, weight_ih, weight_hh, biases)?;
                Ok($name { params })
            }
        }

        impl<B: CellKernels> Cell<B> for $name<B> {
            fn kind(&self) -> CellKind {
                CellKind::$kind
            }

            fn params(&self) -> &CellParams<B> {
                &self.params
            }

            fn forward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
                backend.$forward(buf)
            }

            fn backward_gates(&self, backend: &B, buf: &mut StepBuffers<B>) {
                backend.$backward(buf)
            }

            steps_by_the_backend!();
        }
    };
}

gated_cell!(
    /// The long short-term memory cell, as PyTorch's `nn.LSTMCell`, gates in the order i, f, g, o:
    ///
    /// ```text
    /// i = sigmoid(W_ii x + b_ii + W_hi h + b_hi)     f = sigmoid(W_if x + b_if + W_hf h + b_hf)
    /// g = tanh(W_ig x + b_ig + W_hg h + b_hg)        o = sigmoid(W_io x + b_io + W_ho h + b_ho)
    /// c' = f * c + i * g                             h' = o * tanh(c')
    /// ```
    ///
    /// The cell vector `c` carries the gradient back through time multiplied only by `f`, which
    /// is how the LSTM keeps long-range gradients from vanishing. No peepholes, no projection.
    LstmCell, Lstm, "nn.LSTMCell", "4H", "i, f, g, o", lstm_forward, lstm_backward
);

gated_cell!(
    /// The gated recurrent unit, as PyTorch's `nn.GRUCell`, gates in the order r, z, n:
    ///
    /// ```text
    /// r = sigmoid(W_ir x + b_ir + W_hr h + b_hr)     z = sigmoid(W_iz x + b_iz + W_hz h + b_hz)
    /// n = tanh(W_in x + b_in + r * (W_hn h + b_hn))  h' = (1 - z) * n + z * h
    /// ```
    ///
    /// The reset gate `r` multiplies `W_hn h + b_hn` after the product (the cuDNN form PyTorch
    /// uses), so `b_in` and `b_hn` are not interchangeable; `z` weighs the old state.
    GruCell, Gru, "nn.GRUCell", "3H", "r, z, n", gru_forward, gru_backward
);
