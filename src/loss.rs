//! Cross-entropy fused with softmax, the loss of next-character prediction.

use crate::backend::{Backend, NaiveCpu};
use crate::error::{Error, Result, check_ids};
use crate::scalar::Scalar;
use num_traits::{One, Zero};

/// Where a backend may compute softmax cross-entropy its own way: [`LossKernels`].
///
/// The default is the generic code on [`Backend`] operations; a backend declares the trait with
/// an empty body to use it (`impl LossKernels for MyBackend {}`), and overrides it only to compute
/// the same values faster.
pub trait LossKernels: Backend {
    /// Softmax and cross-entropy over rows, fused. For each row `r` of `logits` (`n x V`),
    /// writes `softmax(logits[r]) - onehot(targets[r])` to row `r` of `grad` (`n x V`) and
    /// returns the sum over rows of `-ln softmax(logits[r])[targets[r]]`. Targets are below `V`
    /// (checked by the caller).
    ///
    /// The default: `ln p` by [`log_softmax_rows`](Backend::log_softmax_rows), the targets'
    /// entries picked by [`gather_per_row`](Backend::gather_per_row) and summed; `p` by
    /// [`softmax_rows`](Backend::softmax_rows), and `-1` added at each target by
    /// [`scatter_add_per_row`](Backend::scatter_add_per_row).
    fn softmax_cross_entropy(
        &self,
        logits: &Self::Matrix,
        targets: &[usize],
        grad: &mut Self::Matrix,
    ) -> Self::Scalar {
        let rows = targets.len();
        let mut log_p = logits.clone();
        self.log_softmax_rows(&mut log_p);
        let mut picked = self.zeros(rows, 1);
        self.gather_per_row(&mut picked, &log_p, targets);
        let mut total = self.zeros(1, 1);
        self.add_column_sums(&mut total, &picked);
        // `0 - sum`, so that no loss is -0.
        let loss = Self::Scalar::zero() - self.to_vec(&total)[0];
        self.copy_rows(grad, 0, logits, 0, rows);
        self.softmax_rows(grad);
        let minus_ones = vec![-Self::Scalar::one(); rows];
        let minus_ones = self.from_vec(rows, 1, minus_ones).expect("one per row");
        self.scatter_add_per_row(grad, targets, &minus_ones);
        loss
    }
}

/// The reference backend runs the generic code.
impl<T: Scalar> LossKernels for NaiveCpu<T> {}

/// How the per-position losses are combined.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub enum Reduction {
    /// Sum over all steps and batch entries, as the walkthrough and min-char-rnn do.
    #[default]
    Sum,
    /// Mean over all `T*B` positions, as PyTorch's `CrossEntropyLoss()` default.
    Mean,
}

/// Softmax cross-entropy against class indices:
/// `E = -sum_r ln softmax(y_r)[target_r]` (or its mean), over the rows `r` of the logits
/// (`T*B x V`, time-major, so the sum runs over time steps and the batch).
///
/// The gradient with respect to the logits is `p - onehot(target)` per row (divided by the row
/// count for [`Reduction::Mean`]): softmax and cross-entropy share one backward.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct CrossEntropy {
    reduction: Reduction,
}

impl CrossEntropy {
    /// The loss summed over steps and batch.
    pub fn sum() -> Self {
        CrossEntropy {
            reduction: Reduction::Sum,
        }
    }

    /// The loss averaged over steps and batch.
    pub fn mean() -> Self {
        CrossEntropy {
            reduction: Reduction::Mean,
        }
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// The loss and its gradient `dE/d logits` (`T*B x V`).
    ///
    /// # Errors
    /// [`Error::Empty`] for no rows; [`Error::Shape`] if `targets.len()` is not the number of
    /// rows; [`Error::Index`] for a target not below `V`, naming its position.
    pub fn forward<B: LossKernels>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
    ) -> Result<(B::Scalar, B::Matrix)> {
        self.forward_masked(backend, logits, targets, None)
    }

    /// As [`forward`](CrossEntropy::forward), counting only the rows where `mask` is `true`
    /// (the real steps of a variable-length batch, [`Trace::mask`](crate::Trace::mask)): the
    /// others take no loss and get a zero gradient, and their targets are not read. The mean
    /// divides by the number of rows counted.
    ///
    /// # Errors
    /// As [`forward`](CrossEntropy::forward); also [`Error::Shape`] if `mask` has not one entry
    /// per row, and [`Error::Empty`] if it selects no row.
    pub fn forward_masked<B: LossKernels>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
        mask: Option<&[bool]>,
    ) -> Result<(B::Scalar, B::Matrix)> {
        let (rows, classes) = backend.shape(logits);
        if rows == 0 {
            return Err(Error::empty("logits"));
        }
        if targets.len() != rows {
            return Err(Error::shape(
                "targets (one per logits row)",
                rows,
                targets.len(),
            ));
        }
        let mut grad = backend.zeros(rows, classes);
        let mut loss = match mask {
            None => {
                check_ids("targets", targets, classes)?;
                backend.softmax_cross_entropy(logits, targets, &mut grad)
            }
            Some(mask) => {
                if mask.len() != rows {
                    return Err(Error::shape("mask (one per logits row)", rows, mask.len()));
                }
                let mut kept = Vec::with_capacity(rows);
                kept.extend((0..rows).filter(|&r| mask[r]));
                if kept.is_empty() {
                    return Err(Error::empty("mask selection"));
                }
                if let Some(&r) = kept.iter().find(|&&r| targets[r] >= classes) {
                    return Err(Error::Index {
                        what: "targets".to_string(),
                        position: r,
                        value: targets[r],
                        bound: classes,
                    });
                }
                let kept_targets: Vec<usize> = kept.iter().map(|&r| targets[r]).collect();
                // Softmax cross-entropy of the kept rows, their gradient put back in place.
                let mut kept_logits = backend.zeros(kept.len(), classes);
                backend.gather_rows(&mut kept_logits, logits, &kept);
                let mut kept_grad = backend.zeros(kept.len(), classes);
                let loss =
                    backend.softmax_cross_entropy(&kept_logits, &kept_targets, &mut kept_grad);
                for (i, &r) in kept.iter().enumerate() {
                    backend.copy_rows(&mut grad, r, &kept_grad, i, 1);
                }
                loss
            }
        };
        if self.reduction == Reduction::Mean {
            let counted = mask.map_or(rows, |m| m.iter().filter(|&&keep| keep).count());
            let scale = B::Scalar::of(1.0 / counted as f64);
            loss = loss * scale;
            backend.scale(&mut grad, scale);
        }
        Ok((loss, grad))
    }
}
