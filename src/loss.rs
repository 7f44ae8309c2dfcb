//! Cross-entropy fused with softmax, the loss of next-character prediction.

use crate::backend::Backend;
use crate::error::{Error, Result, check_ids};
use crate::scalar::Scalar;

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
    pub fn forward<B: Backend>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
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
        check_ids("targets", targets, classes)?;
        let mut grad = backend.zeros(rows, classes);
        let mut loss = backend.softmax_cross_entropy(logits, targets, &mut grad);
        if self.reduction == Reduction::Mean {
            let scale = B::Scalar::of(1.0 / rows as f64);
            loss = loss * scale;
            backend.scale(&mut grad, scale);
        }
        Ok((loss, grad))
    }
}
