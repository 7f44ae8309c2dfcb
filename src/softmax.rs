//! Softmax over the rows of a matrix: next-character probabilities from logits.
//!
//! Both functions shift each row by its maximum before exponentiating, so large logits do not
//! overflow: `softmax(x) = exp(x - m) / sum exp(x - m)` with `m = max x`, the same value.

use crate::backend::Backend;

/// `p[r, j] = exp(x[r, j]) / sum_k exp(x[r, k])` for every row `r` of `logits` (`n x V`).
///
/// A row that is all `-inf` has no probabilities and gives NaN, as in PyTorch.
pub fn softmax<B: Backend>(backend: &B, logits: &B::Matrix) -> B::Matrix {
    let mut p = logits.clone();
    backend.softmax_rows(&mut p);
    p
}

/// `ln softmax(x)` for every row, computed as `x - m - ln sum exp(x - m)`: finite where
/// `ln(softmax(x))` would underflow to `-inf`.
pub fn log_softmax<B: Backend>(backend: &B, logits: &B::Matrix) -> B::Matrix {
    let mut p = logits.clone();
    backend.log_softmax_rows(&mut p);
    p
}
