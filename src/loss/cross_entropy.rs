//! Cross-entropy against class indices, fused with softmax: the loss of next-character
//! prediction and of sequence classification, with PyTorch's options.
//!
//! For a row of logits `x` (`V` classes) with target class `y`, class weights `w` (all 1 by
//! default) and label smoothing `e`, with `ln p = log_softmax(x)`:
//!
//! ```text
//! l      = (1 - e) (-w_y ln p_y) + (e / V) (-sum_c w_c ln p_c)
//! dl/dx  = (1 - e) w_y (p - onehot(y)) + (e / V) (W p - w),     W = sum_c w_c
//! ```
//!
//! Rows whose target is `ignore_index` (or that a mask leaves out) take no loss and a zero
//! gradient. `Sum` adds the rows' losses; `Mean` divides the sum by `sum w_y` over the counted
//! rows (their number without weights), the smoothing term included: PyTorch's weighted mean.

use super::{LossKernels, Reduction, counted_rows, put_back, select};
use crate::backend::{Backend, Transpose};
use crate::error::{Error, Result, check_ids};
use crate::scalar::Scalar;
use num_traits::{One, Zero};
use std::sync::Arc;

/// Softmax cross-entropy against class indices:
/// `E = -sum_r ln softmax(y_r)[target_r]` (or its mean), over the rows `r` of the logits
/// (`T*B x V`, time-major, so the sum runs over time steps and the batch), as PyTorch's
/// `cross_entropy`, with its options [`ignore_index`](CrossEntropy::ignore_index),
/// [`label_smoothing`](CrossEntropy::label_smoothing) and class
/// [`weights`](CrossEntropy::weights) (the equations are in the
/// [module docs](crate::loss)).
///
/// Without options, the gradient with respect to the logits is `p - onehot(target)` per row
/// (divided by the row count for [`Reduction::Mean`]): softmax and cross-entropy share one
/// backward, which a backend may fuse ([`LossKernels`]). The options run generic code.
///
/// ```
/// use recurrent::prelude::*;
/// # fn main() -> recurrent::Result<()> {
/// let cpu = NaiveCpu::<f64>::default();
/// let logits = cpu.from_vec(3, 2, vec![1.0, 0.0, 0.0, 2.0, 5.0, 5.0])?;
/// let loss = CrossEntropy::mean().ignore_index(9).label_smoothing(0.1)?.weights(vec![1.0, 3.0])?;
/// let (value, grad) = loss.forward(&cpu, &logits, &[0, 1, 9])?; // the third row is ignored
/// assert!(value > 0.0);
/// assert_eq!(cpu.to_vec(&grad)[4..], [0.0, 0.0]);
/// assert!(CrossEntropy::mean().label_smoothing(1.5).is_err());
/// assert!(loss.forward(&cpu, &logits, &[0, 2, 1]).is_err()); // class 2 of 2
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CrossEntropy {
    reduction: Reduction,
    ignore_index: Option<usize>,
    label_smoothing: f64,
    weights: Option<Arc<[f64]>>,
}

impl CrossEntropy {
    /// The loss summed over steps and batch.
    pub fn sum() -> Self {
        Self::with_reduction(Reduction::Sum)
    }

    /// The loss averaged over steps and batch.
    pub fn mean() -> Self {
        Self::with_reduction(Reduction::Mean)
    }

    /// The loss with reduction `reduction` and no options.
    pub fn with_reduction(reduction: Reduction) -> Self {
        CrossEntropy {
            reduction,
            ..Self::default()
        }
    }

    /// The reduction in use.
    pub fn reduction(&self) -> Reduction {
        self.reduction
    }

    /// Rows whose target is `index` take no loss, get a zero gradient and do not count in the
    /// mean (PyTorch's `ignore_index`; its default `-100` is no class index here, so none is
    /// ignored unless set). The index need not be below the class count.
    pub fn ignore_index(self, index: usize) -> Self {
        CrossEntropy {
            ignore_index: Some(index),
            ..self
        }
    }

    /// Mixes the one-hot target with the uniform distribution: `(1 - e) onehot + e / V`
    /// (PyTorch's `label_smoothing`).
    ///
    /// # Errors
    /// [`Error::Config`] unless `e` is in `[0, 1]`.
    pub fn label_smoothing(self, e: f64) -> Result<Self> {
        if !(0.0..=1.0).contains(&e) {
            return Err(Error::config(format!(
                "label_smoothing: expected a value in [0, 1], given {e}"
            )));
        }
        Ok(CrossEntropy {
            label_smoothing: e,
            ..self
        })
    }

    /// A weight per class (PyTorch's `weight`): a row's loss is scaled by its target's weight,
    /// and the mean divides by the sum of the counted targets' weights.
    ///
    /// # Errors
    /// [`Error::Config`] for no weights, or a weight that is negative, NaN or infinite.
    pub fn weights(self, weights: Vec<f64>) -> Result<Self> {
        if weights.is_empty() {
            return Err(Error::config(
                "class weights: expected one weight per class, given none",
            ));
        }
        if let Some(c) = weights.iter().position(|w| !(w.is_finite() && *w >= 0.0)) {
            return Err(Error::config(format!(
                "class weights[{c}]: expected a finite non-negative weight, given {}",
                weights[c]
            )));
        }
        Ok(CrossEntropy {
            weights: Some(weights.into()),
            ..self
        })
    }

    /// The ignored target, if any.
    pub fn ignored(&self) -> Option<usize> {
        self.ignore_index
    }

    /// The label smoothing, 0 by default.
    pub fn smoothing(&self) -> f64 {
        self.label_smoothing
    }

    /// The class weights, if set.
    pub fn class_weights(&self) -> Option<&[f64]> {
        self.weights.as_deref()
    }

    /// The loss and its gradient `dE/d logits` (`T*B x V`).
    ///
    /// # Errors
    /// [`Error::Empty`] for no rows; [`Error::Shape`] if `targets.len()` is not the number of
    /// rows, or class weights are not one per class; [`Error::Index`] for a target not below
    /// `V` (and not the ignored index), naming its position; [`Error::Empty`] for a mean over
    /// no counted target (every one ignored, or of weight 0), which PyTorch gives as NaN.
    pub fn forward<B: LossKernels>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
    ) -> Result<(B::Scalar, B::Matrix)> {
        self.forward_masked(backend, logits, targets, None)
    }

    /// The loss alone, for evaluation: [`forward`](CrossEntropy::forward)'s value without
    /// computing or allocating the gradient (on `Cpu`, one pass over the logits that writes
    /// nothing of their size). With `ignore_index`, smoothing or class weights it is
    /// `forward`'s value, gradient and all.
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// let cpu = Cpu::<f64>::new();
    /// let logits = cpu.from_vec(2, 3, vec![1.0, 2.0, 0.5, -1.0, 0.0, 3.0])?;
    /// let (loss, _) = CrossEntropy::mean().forward(&cpu, &logits, &[1, 2])?;
    /// let value = CrossEntropy::mean().value(&cpu, &logits, &[1, 2])?;
    /// assert!((value - loss).abs() < 1e-15);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// As [`forward`](CrossEntropy::forward).
    pub fn value<B: LossKernels>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
    ) -> Result<B::Scalar> {
        let (rows, classes) = backend.shape(logits);
        let plain =
            self.ignore_index.is_none() && self.label_smoothing == 0.0 && self.weights.is_none();
        if !plain || rows == 0 || targets.len() != rows {
            return Ok(self.forward(backend, logits, targets)?.0);
        }
        check_ids("targets", targets, classes)?;
        let loss = backend.cross_entropy_sum(logits, targets);
        Ok(match self.reduction {
            Reduction::Mean => loss * B::Scalar::of(1.0 / rows as f64),
            Reduction::Sum => loss,
        })
    }

    /// As [`forward`](CrossEntropy::forward), counting only the rows where `mask` is `true`
    /// (the real steps of a variable-length batch, [`Trace::mask`](crate::Trace::mask)): the
    /// others take no loss and get a zero gradient, and their targets are not read. The mean
    /// divides by the number of rows counted (with class weights, by the sum of their targets'
    /// weights; rows of the ignored index are not counted).
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
        let plain =
            self.ignore_index.is_none() && self.label_smoothing == 0.0 && self.weights.is_none();
        if !plain {
            return self.with_options(backend, logits, targets, mask);
        }
        let (mut loss, mut grad) = match mask {
            None => {
                check_ids("targets", targets, classes)?;
                // The kernel writes every row.
                let mut grad = backend.empty(rows, classes);
                let loss = backend.softmax_cross_entropy(logits, targets, &mut grad);
                (loss, grad)
            }
            // The rows left out keep their zeros.
            Some(mask) => {
                let mut grad = backend.zeros(rows, classes);
                (
                    plain_masked(backend, logits, targets, mask, &mut grad)?,
                    grad,
                )
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

    /// The loss with `ignore_index`, smoothing or weights: the equations of the module docs on
    /// the counted rows, then their gradient put back in place.
    fn with_options<B: Backend>(
        &self,
        backend: &B,
        logits: &B::Matrix,
        targets: &[usize],
        mask: Option<&[bool]>,
    ) -> Result<(B::Scalar, B::Matrix)> {
        let (rows, classes) = backend.shape(logits);
        let weights: Vec<f64> = match &self.weights {
            None => vec![1.0; classes],
            Some(w) if w.len() == classes => w.to_vec(),
            Some(w) => {
                return Err(Error::shape(
                    "class weights (one per class)",
                    classes,
                    w.len(),
                ));
            }
        };
        let in_mask = counted_rows(rows, mask)?.unwrap_or_else(|| (0..rows).collect());
        let kept: Vec<usize> = in_mask
            .into_iter()
            .filter(|&r| Some(targets[r]) != self.ignore_index)
            .collect();
        if let Some(&r) = kept.iter().find(|&&r| targets[r] >= classes) {
            return Err(Error::Index {
                what: "targets (neither ignored nor masked)".to_string(),
                position: r,
                value: targets[r],
                bound: classes,
            });
        }
        let kept_targets: Vec<usize> = kept.iter().map(|&r| targets[r]).collect();
        let w_y: Vec<f64> = kept_targets.iter().map(|&c| weights[c]).collect();
        let denominator: f64 = w_y.iter().sum();
        if self.reduction == Reduction::Mean && denominator == 0.0 {
            return Err(Error::empty(
                "targets counted by the mean (not ignored, not masked, of non-zero class weight)",
            ));
        }
        if kept.is_empty() {
            return Ok((B::Scalar::zero(), backend.zeros(rows, classes)));
        }
        let x = select(backend, logits, Some(&kept));
        let scale: B::Scalar = self.reduction.scale(denominator);
        let (loss, grad) = self.counted(backend, &x, &kept_targets, &weights);
        let mut grad = put_back(backend, grad, Some(&kept), rows);
        backend.scale(&mut grad, scale);
        Ok((loss * scale, grad))
    }

    /// The summed loss and its gradient on the counted rows `x` (`n x V`), unscaled.
    fn counted<B: Backend>(
        &self,
        backend: &B,
        x: &B::Matrix,
        targets: &[usize],
        weights: &[f64],
    ) -> (B::Scalar, B::Matrix) {
        let (n, classes) = backend.shape(x);
        let of = B::Scalar::of;
        let e = self.label_smoothing;
        let (keep, spread) = (of(1.0 - e), of(e / classes as f64));
        let w_y: Vec<B::Scalar> = targets.iter().map(|&c| of(weights[c])).collect();
        let w = backend.from_vec(1, classes, weights.iter().map(|&v| of(v)).collect());
        let w = w.expect("one per class");
        let mut log_p = x.clone();
        backend.log_softmax_rows(&mut log_p);
        let mut picked = backend.zeros(n, 1);
        backend.gather_per_row(&mut picked, &log_p, targets);
        let nll: B::Scalar = backend
            .to_vec(&picked)
            .iter()
            .zip(&w_y)
            .map(|(&lp, &w)| -(w * lp))
            .sum();
        // sum_c w_c ln p_c per row: log_p (n x V) times w^T (V x 1).
        let mut smooth = backend.zeros(n, 1);
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        if e > 0.0 {
            backend.gemm(
                &mut smooth,
                one,
                &log_p,
                Transpose::No,
                &w,
                Transpose::Yes,
                zero,
            );
        }
        let smooth: B::Scalar = backend.to_vec(&smooth).into_iter().sum();
        let loss = keep * nll - spread * smooth;
        (loss, self.gradient(backend, x, targets, &w_y, &w))
    }

    /// The summed loss's gradient on the counted rows `x`: row `r` is
    /// `a_r p_r - keep w_y onehot(y_r) - spread w` with `a_r = keep w_y + spread W`; `w_y` holds
    /// the targets' weights, `w` (`1 x V`) every class's.
    fn gradient<B: Backend>(
        &self,
        backend: &B,
        x: &B::Matrix,
        targets: &[usize],
        w_y: &[B::Scalar],
        w: &B::Matrix,
    ) -> B::Matrix {
        let (n, classes) = backend.shape(x);
        let e = self.label_smoothing;
        let (keep, spread) = (B::Scalar::of(1.0 - e), B::Scalar::of(e / classes as f64));
        let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
        let column = |values: Vec<B::Scalar>| backend.from_vec(n, 1, values).expect("one per row");
        let total_w: B::Scalar = backend.to_vec(w).into_iter().sum();
        // a p: the per-row factors broadcast over the columns by a rank-one product.
        let a = column(w_y.iter().map(|&wy| keep * wy + spread * total_w).collect());
        let ones = backend
            .from_vec(1, classes, vec![one; classes])
            .expect("1 x V");
        let mut grad = backend.zeros(n, classes);
        backend.gemm(
            &mut grad,
            one,
            &a,
            Transpose::No,
            &ones,
            Transpose::No,
            zero,
        );
        let mut p = x.clone();
        backend.softmax_rows(&mut p);
        backend.mul(&mut grad, &p);
        let at_target = column(w_y.iter().map(|&wy| -(keep * wy)).collect());
        backend.scatter_add_per_row(&mut grad, targets, &at_target);
        if e > 0.0 {
            let mut minus_w = w.clone();
            backend.scale(&mut minus_w, -spread);
            backend.add_row(&mut grad, &minus_w);
        }
        grad
    }
}

/// The plain loss (no options) of the rows `mask` keeps: their softmax cross-entropy, summed,
/// with their gradient put back in place in `grad`.
fn plain_masked<B: LossKernels>(
    backend: &B,
    logits: &B::Matrix,
    targets: &[usize],
    mask: &[bool],
    grad: &mut B::Matrix,
) -> Result<B::Scalar> {
    let (rows, classes) = backend.shape(logits);
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
    let loss = backend.softmax_cross_entropy(&kept_logits, &kept_targets, &mut kept_grad);
    for (i, &r) in kept.iter().enumerate() {
        backend.copy_rows(grad, r, &kept_grad, i, 1);
    }
    Ok(loss)
}
