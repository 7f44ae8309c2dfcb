//! Losses with PyTorch's functional semantics, each giving its value and its gradient with
//! respect to the model's output, to pass to [`Rnn::backward`](crate::Rnn::backward) (or
//! [`Rnn::backward_last`](crate::Rnn::backward_last) for the many-to-one head).
//!
//! Every loss takes the output `x` (`n x V`: `T*B` rows time-major for a per-step head, `B` rows
//! for the many-to-one head) and targets, and combines the per-entry losses `l` by a
//! [`Reduction`]: `Sum` is `sum l`, `Mean` divides by the number of entries counted. With a row
//! mask ([`Trace::mask`](crate::Trace::mask), the real steps of a variable-length batch) only the
//! rows where it is `true` count: the others take no loss and get a zero gradient, and their
//! targets are not read.
//!
//! | loss | per entry, `d = x - y` | gradient `dl/dx` |
//! |---|---|---|
//! | [`Mse`] | `d^2` | `2 d` |
//! | [`L1`] | `abs(d)` | `sign(d)` (0 at `d = 0`) |
//! | [`Huber`] | `d^2 / 2` if `abs(d) <= delta`, else `delta (abs(d) - delta / 2)` | `clamp(d, -delta, delta)` |
//! | [`BceWithLogits`] | `p y softplus(-x) + (1 - y) softplus(x)` | `sigmoid(x) (p y + 1 - y) - p y` |
//! | [`CrossEntropy`] | `-w_y ln softmax(x)_y` per row (see its docs for smoothing) | `w_y (softmax(x) - onehot(y))` |
//!
//! `softplus(z) = ln(1 + e^z)` is computed as `max(z, 0) + ln(1 + e^-abs(z))`, which neither
//! overflows nor loses the small values that `ln(sigmoid(x))` rounds to `-inf`; `p` is the
//! class's `pos_weight`. The mean of the element-wise losses divides by the number of entries
//! counted (rows times columns), as PyTorch's `mean` over every element; the cross-entropy's
//! mean divides by the sum of the class weights of the counted targets (their number without
//! weights), as PyTorch's weighted mean.
//!
//! Where the matrix operations of [`Backend`] suffice, a loss is written on them ([`Mse`],
//! [`Huber`] through [`clamp`](Backend::clamp), [`CrossEntropy`]); [`L1`] and [`BceWithLogits`]
//! need `abs`, `sign` and `softplus`, which the trait does not have, and read the differences
//! back once per call ([`to_vec`](Backend::to_vec), `O(n V)`, outside the time loop).

mod cross_entropy;
mod elementwise;
mod logistic;

pub use cross_entropy::CrossEntropy;
pub use elementwise::{Huber, L1, Mse};
pub use logistic::BceWithLogits;

use crate::backend::{Backend, NaiveCpu};
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use num_traits::{Float, One, Zero};

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
    /// # Panics
    /// If `targets.len()` is not `n`, `grad` is not `n x V`, or a target is not below `V`.
    ///
    /// The default: the loss by [`cross_entropy_sum`](LossKernels::cross_entropy_sum); `p` by
    /// [`softmax_rows`](Backend::softmax_rows), and `-1` added at each target by
    /// [`scatter_add_per_row`](Backend::scatter_add_per_row).
    fn softmax_cross_entropy(
        &self,
        logits: &Self::Matrix,
        targets: &[usize],
        grad: &mut Self::Matrix,
    ) -> Self::Scalar {
        let rows = targets.len();
        let loss = self.cross_entropy_sum(logits, targets);
        self.copy_rows(grad, 0, logits, 0, rows);
        self.softmax_rows(grad);
        let minus_ones = vec![-Self::Scalar::one(); rows];
        let minus_ones = self.from_vec(rows, 1, minus_ones).expect("one per row");
        self.scatter_add_per_row(grad, targets, &minus_ones);
        loss
    }

    /// The loss of [`softmax_cross_entropy`](LossKernels::softmax_cross_entropy) without its
    /// gradient: the sum over rows of `-ln softmax(logits[r])[targets[r]]`, for evaluation.
    ///
    /// # Panics
    /// If `targets.len()` is not the number of rows, or a target is not below `V`.
    ///
    /// The default: `ln p` by [`log_softmax_rows`](Backend::log_softmax_rows) on a copy, the
    /// targets' entries picked by [`gather_per_row`](Backend::gather_per_row) and summed.
    fn cross_entropy_sum(&self, logits: &Self::Matrix, targets: &[usize]) -> Self::Scalar {
        let rows = targets.len();
        let mut log_p = logits.clone();
        self.log_softmax_rows(&mut log_p);
        let mut picked = self.zeros(rows, 1);
        self.gather_per_row(&mut picked, &log_p, targets);
        let mut total = self.zeros(1, 1);
        self.add_column_sums(&mut total, &picked);
        // `0 - sum`, so that no loss is -0.
        Self::Scalar::zero() - self.to_vec(&total)[0]
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
    /// Mean over the positions counted, as PyTorch's losses by default (`reduction="mean"`).
    Mean,
}

impl Reduction {
    /// The factor that turns a sum over `count` things into this reduction: 1 or `1 / count`.
    fn scale<S: Scalar>(self, count: f64) -> S {
        match self {
            Reduction::Sum => S::one(),
            Reduction::Mean => S::of(1.0 / count),
        }
    }
}

/// The rows a loss counts: all of them, or those `mask` selects.
///
/// # Errors
/// [`Error::Shape`] if `mask` has not one entry per row, [`Error::Empty`] if it selects none.
fn counted_rows(rows: usize, mask: Option<&[bool]>) -> Result<Option<Vec<usize>>> {
    let Some(mask) = mask else {
        return Ok(None);
    };
    if mask.len() != rows {
        return Err(Error::shape("mask (one per row)", rows, mask.len()));
    }
    let kept: Vec<usize> = (0..rows).filter(|&r| mask[r]).collect();
    if kept.is_empty() {
        return Err(Error::empty("mask selection"));
    }
    Ok(Some(kept))
}

/// `m`'s rows `rows` (all of `m` when `None`).
fn select<B: Backend>(backend: &B, m: &B::Matrix, rows: Option<&[usize]>) -> B::Matrix {
    match rows {
        None => m.clone(),
        Some(rows) => {
            let (_, cols) = backend.shape(m);
            let mut out = backend.zeros(rows.len(), cols);
            backend.gather_rows(&mut out, m, rows);
            out
        }
    }
}

/// The inverse of [`select`]: an `all x cols` matrix with row `rows[i]` from row `i` of `part`
/// and zeros elsewhere (`part` itself when `rows` is `None`).
fn put_back<B: Backend>(
    backend: &B,
    part: B::Matrix,
    rows: Option<&[usize]>,
    all: usize,
) -> B::Matrix {
    match rows {
        None => part,
        Some(rows) => {
            let (_, cols) = backend.shape(&part);
            let mut out = backend.zeros(all, cols);
            for (i, &r) in rows.iter().enumerate() {
                backend.copy_rows(&mut out, r, &part, i, 1);
            }
            out
        }
    }
}

/// `sum_ij m[i, j]`.
fn total<B: Backend>(backend: &B, m: &B::Matrix) -> B::Scalar {
    let (_, cols) = backend.shape(m);
    let mut sums = backend.zeros(1, cols);
    backend.add_column_sums(&mut sums, m);
    backend.to_vec(&sums).into_iter().sum()
}

/// The predictions and targets of an element-wise loss, restricted to the rows it counts.
struct Pair<B: Backend> {
    /// The counted rows (`None`: all).
    rows: Option<Vec<usize>>,
    /// The number of rows of the predictions.
    all: usize,
    prediction: B::Matrix,
    target: B::Matrix,
}

impl<B: Backend> Pair<B> {
    /// Checks `prediction` and `target` against each other and selects the counted rows.
    ///
    /// # Errors
    /// [`Error::Empty`] for no entries; [`Error::Shape`] for targets of another shape or a mask
    /// of the wrong length; [`Error::Empty`] for a mask that selects nothing;
    /// [`Error::NonFinite`] for a NaN or infinite target in a counted row, naming it.
    fn new(
        backend: &B,
        prediction: &B::Matrix,
        target: &B::Matrix,
        mask: Option<&[bool]>,
    ) -> Result<Self> {
        let (rows, cols) = backend.shape(prediction);
        if rows == 0 || cols == 0 {
            return Err(Error::empty("predictions"));
        }
        if backend.shape(target) != (rows, cols) {
            return Err(Error::shape(
                "targets (the shape of the predictions)",
                (rows, cols),
                backend.shape(target),
            ));
        }
        let counted = counted_rows(rows, mask)?;
        let target = select(backend, target, counted.as_deref());
        if !backend.all_finite(&target) {
            let at = backend.to_vec(&target).iter().position(|v| !v.is_finite());
            let at = at.expect("a non-finite entry");
            let row = counted.as_ref().map_or(at / cols, |rows| rows[at / cols]);
            return Err(Error::NonFinite {
                what: format!(
                    "targets (row {row}, column {}; finite values expected)",
                    at % cols
                ),
            });
        }
        Ok(Pair {
            prediction: select(backend, prediction, counted.as_deref()),
            rows: counted,
            all: rows,
            target,
        })
    }

    /// The number of entries counted, the divisor of the mean.
    fn count(&self, backend: &B) -> f64 {
        let (rows, cols) = backend.shape(&self.target);
        (rows * cols) as f64
    }

    /// `prediction - target`, for the counted rows.
    fn difference(&self, backend: &B) -> B::Matrix {
        let mut d = self.prediction.clone();
        backend.axpy(&mut d, -B::Scalar::one(), &self.target);
        d
    }

    /// The gradient of the counted rows in place among all rows.
    fn gradient(&self, backend: &B, part: B::Matrix) -> B::Matrix {
        put_back(backend, part, self.rows.as_deref(), self.all)
    }
}
