//! Regression losses between a prediction and a target of the same shape: [`Mse`], [`L1`],
//! [`Huber`] (PyTorch's `mse_loss`, `l1_loss`, `huber_loss`).
//!
//! With `d = x - y` per entry:
//!
//! ```text
//! mse:    l = d^2                                         dl/dx = 2 d
//! l1:     l = |d|                                         dl/dx = sign(d), 0 at d = 0
//! huber:  l = d^2 / 2            if |d| <= delta          dl/dx = clamp(d, -delta, delta)
//!         l = delta (|d| - delta / 2)  otherwise
//! ```
//!
//! Huber is computed from `c = clamp(d, -delta, delta)` as `l = c d - c^2 / 2`, equal to both
//! branches, so that it needs only [`Backend`] operations; L1 reads `d` back
//! ([`to_vec`](Backend::to_vec)) for `|d|` and `sign(d)`, once per call.

use super::{Pair, Reduction, total};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::scalar::Scalar;
use num_traits::{Float, Zero};

/// Mean squared error, PyTorch's `mse_loss`: `l = (x - y)^2` per entry, summed or averaged over
/// every entry counted.
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::loss::Mse;
/// # fn main() -> recurrent::Result<()> {
/// let cpu = NaiveCpu::<f64>::default();
/// let x = cpu.from_vec(2, 1, vec![1.0, 2.0])?;
/// let y = cpu.from_vec(2, 1, vec![0.0, 4.0])?;
/// let (loss, grad) = Mse::mean().forward(&cpu, &x, &y)?;
/// assert_eq!(loss, (1.0 + 4.0) / 2.0);
/// assert_eq!(cpu.to_vec(&grad), vec![1.0, -2.0]); // 2 (x - y) / 2
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct Mse {
    reduction: Reduction,
}

/// L1 loss, PyTorch's `l1_loss`: `l = |x - y|` per entry; its gradient is `sign(x - y)`, 0 where
/// they are equal (as PyTorch).
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::loss::L1;
/// # fn main() -> recurrent::Result<()> {
/// let cpu = NaiveCpu::<f64>::default();
/// let x = cpu.from_vec(3, 1, vec![1.0, 2.0, 5.0])?;
/// let y = cpu.from_vec(3, 1, vec![0.0, 2.0, 7.0])?;
/// let mask = [true, true, false]; // the third row is padding
/// let (loss, grad) = L1::mean().forward_masked(&cpu, &x, &y, Some(&mask))?;
/// assert_eq!(loss, (1.0 + 0.0) / 2.0);
/// assert_eq!(cpu.to_vec(&grad), vec![0.5, 0.0, 0.0]);
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Default)]
pub struct L1 {
    reduction: Reduction,
}

/// Huber loss, PyTorch's `huber_loss(delta)`: quadratic for `|x - y| <= delta`, linear beyond,
/// `delta = 1` by default.
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::loss::Huber;
/// # fn main() -> recurrent::Result<()> {
/// let cpu = NaiveCpu::<f64>::default();
/// let x = cpu.from_vec(1, 2, vec![0.5, 3.0])?;
/// let y = cpu.zeros(1, 2);
/// let (loss, grad) = Huber::sum().delta(1.0)?.forward(&cpu, &x, &y)?;
/// assert_eq!(loss, 0.5 * 0.25 + (3.0 - 0.5));
/// assert_eq!(cpu.to_vec(&grad), vec![0.5, 1.0]);
/// assert!(Huber::sum().delta(0.0).is_err()); // delta must be positive
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Huber {
    reduction: Reduction,
    delta: f64,
}

impl Default for Huber {
    /// Summed, `delta = 1`.
    fn default() -> Self {
        Huber::with_reduction(Reduction::default())
    }
}

/// The constructors and the shared entry point of the three losses.
macro_rules! elementwise_loss {
    ($name:ident) => {
        impl $name {
            /// The loss summed over every entry counted.
            pub fn sum() -> Self {
                Self::with_reduction(Reduction::Sum)
            }

            /// The loss averaged over every entry counted (PyTorch's default).
            pub fn mean() -> Self {
                Self::with_reduction(Reduction::Mean)
            }

            /// The reduction in use.
            pub fn reduction(&self) -> Reduction {
                self.reduction
            }

            /// The loss between `prediction` and `target` (both `n x V`) and its gradient
            /// with respect to `prediction`.
            ///
            /// # Errors
            /// [`Error::Empty`] for no entries; [`Error::Shape`] for a target of another shape;
            /// [`Error::NonFinite`] for a NaN or infinite target, naming its row and column.
            pub fn forward<B: Backend>(
                &self,
                backend: &B,
                prediction: &B::Matrix,
                target: &B::Matrix,
            ) -> Result<(B::Scalar, B::Matrix)> {
                self.forward_masked(backend, prediction, target, None)
            }

            /// As `forward`, counting only the rows where `mask` is `true` (see the
            /// [module docs](crate::loss)); the mean divides by the entries of those rows.
            ///
            /// # Errors
            /// As `forward`; also [`Error::Shape`] if `mask` has not one entry per row and
            /// [`Error::Empty`] if it selects none.
            pub fn forward_masked<B: Backend>(
                &self,
                backend: &B,
                prediction: &B::Matrix,
                target: &B::Matrix,
                mask: Option<&[bool]>,
            ) -> Result<(B::Scalar, B::Matrix)> {
                let pair = Pair::new(backend, prediction, target, mask)?;
                let scale = self.reduction.scale(pair.count(backend));
                let (loss, grad) = self.counted(backend, &pair, scale);
                Ok((loss, pair.gradient(backend, grad)))
            }
        }
    };
}

elementwise_loss!(Mse);
elementwise_loss!(L1);
elementwise_loss!(Huber);

impl Mse {
    /// The loss with reduction `reduction`.
    pub fn with_reduction(reduction: Reduction) -> Self {
        Mse { reduction }
    }

    /// `scale * sum d^2` and `2 scale d`, on the counted rows.
    fn counted<B: Backend>(
        &self,
        backend: &B,
        pair: &Pair<B>,
        scale: B::Scalar,
    ) -> (B::Scalar, B::Matrix) {
        let mut d = pair.difference(backend);
        let loss = backend.sum_squares(&d) * scale;
        backend.scale(&mut d, scale + scale);
        (loss, d)
    }
}

impl L1 {
    /// The loss with reduction `reduction`.
    pub fn with_reduction(reduction: Reduction) -> Self {
        L1 { reduction }
    }

    /// `scale * sum |d|` and `scale sign(d)`, on the counted rows, through the host.
    fn counted<B: Backend>(
        &self,
        backend: &B,
        pair: &Pair<B>,
        scale: B::Scalar,
    ) -> (B::Scalar, B::Matrix) {
        let d = pair.difference(backend);
        let (rows, cols) = backend.shape(&d);
        let d = backend.to_vec(&d);
        let zero = B::Scalar::zero();
        let sum: B::Scalar = d.iter().map(|v| v.abs()).sum();
        let sign = |v: B::Scalar| match v {
            v if v > zero => scale,
            v if v < zero => -scale,
            v => v * scale, // 0 at 0; NaN stays NaN
        };
        let grad = backend.from_vec(rows, cols, d.into_iter().map(sign).collect());
        (sum * scale, grad.expect("the shape of d"))
    }
}

impl Huber {
    /// The loss with reduction `reduction` and `delta = 1`.
    pub fn with_reduction(reduction: Reduction) -> Self {
        Huber {
            reduction,
            delta: 1.0,
        }
    }

    /// The loss with threshold `delta` between its quadratic and linear parts.
    ///
    /// # Errors
    /// [`Error::Config`] unless `delta` is finite and positive (PyTorch refuses `delta <= 0`).
    pub fn delta(self, delta: f64) -> Result<Self> {
        if !(delta.is_finite() && delta > 0.0) {
            return Err(Error::config(format!(
                "Huber delta: expected a finite positive number, given {delta}"
            )));
        }
        Ok(Huber { delta, ..self })
    }

    /// The threshold between the quadratic and the linear part.
    pub fn threshold(&self) -> f64 {
        self.delta
    }

    /// `scale * sum (c d - c^2 / 2)` and `scale c` with `c = clamp(d, -delta, delta)`.
    fn counted<B: Backend>(
        &self,
        backend: &B,
        pair: &Pair<B>,
        scale: B::Scalar,
    ) -> (B::Scalar, B::Matrix) {
        let d = pair.difference(backend);
        let delta = B::Scalar::of(self.delta);
        let mut c = d.clone();
        backend.clamp(&mut c, -delta, delta);
        let mut cd = c.clone();
        backend.mul(&mut cd, &d);
        let half = B::Scalar::of(0.5);
        let loss = (total(backend, &cd) - half * backend.sum_squares(&c)) * scale;
        backend.scale(&mut c, scale);
        (loss, c)
    }
}
