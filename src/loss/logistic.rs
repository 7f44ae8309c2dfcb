//! Binary cross-entropy on logits, PyTorch's `binary_cross_entropy_with_logits`: one
//! independent yes/no label per entry (multi-label tagging), with a weight on the positives.
//!
//! For a logit `x`, a target `y` in `[0, 1]` and the positive weight `p` of its column:
//!
//! ```text
//! l     = -(p y ln sigmoid(x) + (1 - y) ln(1 - sigmoid(x)))
//!       = p y softplus(-x) + (1 - y) softplus(x)
//!       = (1 - y) x + (1 + (p - 1) y) softplus(-x)
//! dl/dx = sigmoid(x) (p y + 1 - y) - p y
//! softplus(-x) = max(-x, 0) + ln(1 + e^-|x|)
//! ```
//!
//! The last form of `softplus` never overflows and keeps `ln(1 + tiny)` exact (`ln_1p`), where
//! `ln(sigmoid(x))` would round to `-inf` for `x` below about -745 in f64. `softplus` is not a
//! [`Backend`] operation: the logits and targets are read back ([`to_vec`](Backend::to_vec)) once
//! per call.

use super::{Pair, Reduction};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use num_traits::{One, Zero};
use std::sync::Arc;

/// Binary cross-entropy on logits with an optional weight on the positives of each column
/// (PyTorch's `pos_weight`, one per column, broadcast over rows).
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::loss::BceWithLogits;
/// # fn main() -> recurrent::Result<()> {
/// let cpu = NaiveCpu::<f64>::default();
/// let logits = cpu.from_vec(1, 2, vec![0.0, -1000.0])?;
/// let labels = cpu.from_vec(1, 2, vec![1.0, 1.0])?;
/// let (loss, grad) = BceWithLogits::sum().pos_weight(vec![2.0, 1.0])?.forward(&cpu, &logits, &labels)?;
/// assert!((loss - (2.0 * 2f64.ln() + 1000.0)).abs() < 1e-12); // no ln(sigmoid(-1000)) = -inf
/// assert_eq!(cpu.to_vec(&grad), vec![2.0 * (0.5 - 1.0), -1.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct BceWithLogits {
    reduction: Reduction,
    pos_weight: Option<Arc<[f64]>>,
}

impl BceWithLogits {
    /// The loss summed over every entry counted.
    pub fn sum() -> Self {
        Self::with_reduction(Reduction::Sum)
    }

    /// The loss averaged over every entry counted (PyTorch's default).
    pub fn mean() -> Self {
        Self::with_reduction(Reduction::Mean)
    }

    /// The loss with reduction `reduction`, no positive weight.
    pub fn with_reduction(reduction: Reduction) -> Self {
        BceWithLogits {
            reduction,
            pos_weight: None,
        }
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// Weighs the positive term of column `j` by `weights[j]` (one per column of the logits).
    ///
    /// # Errors
    /// [`Error::Config`] for no weights, or a weight that is negative, NaN or infinite.
    pub fn pos_weight(self, weights: Vec<f64>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::config(
                "pos_weight: expected one weight per column, given none",
            ));
        }
        if let Some(j) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::config(format!(
                "pos_weight[{j}]: expected a finite non-negative weight, given {}",
                weights[j]
            )));
        }
        Ok(BceWithLogits {
            pos_weight: Some(weights.into()),
            ..self
        })
    }

    /// The positive weights, one per column, if set.
    pub fn positive_weights(&self) -> Option<&[f64]> {
        self.pos_weight.as_deref()
    }

    /// The loss of `logits` against `target` (both `n x V`, targets in `[0, 1]`, soft labels
    /// allowed) and its gradient with respect to the logits.
    ///
    /// # Errors
    /// [`Error::Empty`] for no entries; [`Error::Shape`] for a target of another shape or
    /// positive weights that are not one per column; [`Error::NonFinite`] for a NaN or
    /// infinite target; [`Error::Config`] for a target outside `[0, 1]` (PyTorch computes with
    /// it; here it is refused), each naming its row and column.
    pub fn forward<B: Backend>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        target: &B::Matrix,
    ) -> Result<(B::Scalar, B::Matrix)> {
        self.forward_masked(backend, logits, target, None)
    }

    /// As [`forward`](BceWithLogits::forward), counting only the rows where `mask` is `true`;
    /// the mean divides by the entries of those rows.
    ///
    /// # Errors
    /// As [`forward`](BceWithLogits::forward); also [`Error::Shape`] if `mask` has not one
    /// entry per row and [`Error::Empty`] if it selects none.
    pub fn forward_masked<B: Backend>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        target: &B::Matrix,
        mask: Option<&[bool]>,
    ) -> Result<(B::Scalar, B::Matrix)> {
        let pair = Pair::new(backend, logits, target, mask)?;
        let (rows, cols) = backend.shape(&pair.target);
        let weights: Vec<B::Scalar> = match &self.pos_weight {
            None => vec![B::Scalar::one(); cols],
            Some(w) if w.len() == cols => w.iter().map(|&v| B::Scalar::of(v)).collect(),
            Some(w) => {
                return Err(Error::shape("pos_weight (one per column)", cols, w.len()));
            }
        };
        let y = backend.to_vec(&pair.target);
        let (zero, one) = (B::Scalar::zero(), B::Scalar::one());
        if let Some(at) = y.iter().position(|&v| v < zero || v > one) {
            let row = pair.rows.as_ref().map_or(at / cols, |r| r[at / cols]);
            return Err(Error::config(format!(
                "targets (row {row}, column {}): expected a value in [0, 1], given {}",
                at % cols,
                y[at]
            )));
        }
        let x = backend.to_vec(&pair.prediction);
        let scale: B::Scalar = self.reduction.scale(pair.count(backend));
        let mut loss = zero;
        let mut grad = Vec::with_capacity(x.len());
        for (k, (&x, &y)) in x.iter().zip(&y).enumerate() {
            let p = weights[k % cols];
            let (l, g) = entry(x, y, p);
            loss = loss + l;
            grad.push(g * scale);
        }
        let grad = backend.from_vec(rows, cols, grad)?;
        Ok((loss * scale, pair.gradient(backend, grad)))
    }
}

/// One entry's loss and gradient, `(l, dl/dx)`, for logit `x`, target `y`, positive weight `p`.
fn entry<S: Scalar>(x: S, y: S, p: S) -> (S, S) {
    let (zero, one) = (S::zero(), S::one());
    let softplus_neg = (-x).max(zero) + (-x.abs()).exp().ln_1p();
    let log_weight = one + (p - one) * y;
    let loss = (one - y) * x + log_weight * softplus_neg;
    // sigmoid(x) without overflow: e^-|x| is at most 1.
    let e = (-x.abs()).exp();
    let sigmoid = if x >= zero {
        one / (one + e)
    } else {
        e / (one + e)
    };
    (loss, sigmoid * (p * y + one - y) - p * y)
}
