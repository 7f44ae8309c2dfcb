//! The element types the crate computes in: `f32` and `f64`.

use num_traits::Float;
use rand_distr::uniform::SampleUniform;
use std::fmt::{Debug, Display};
use std::iter::Sum;

mod sealed {
    /// Implemented for `f32` and `f64` only, so that no other crate can implement
    /// [`Scalar`](super::Scalar).
    pub trait Sealed {}
    impl Sealed for f32 {}
    impl Sealed for f64 {}
}

/// A floating-point element type: implemented for `f32` and `f64`, and sealed: no other type can
/// implement it (the kernels, the file formats and the tolerances of the tests are written for
/// those two), so methods can be added to it without breaking anyone.
pub trait Scalar:
    sealed::Sealed + Float + Debug + Display + Default + Sum + SampleUniform + Send + Sync + 'static
{
    /// Converts an `f64` constant, rounding to nearest for `f32`.
    fn of(x: f64) -> Self;

    /// Widens to `f64` (exact for both implementors).
    fn to_f64(self) -> f64;
}

impl Scalar for f32 {
    fn of(x: f64) -> Self {
        x as f32
    }

    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Scalar for f64 {
    fn of(x: f64) -> Self {
        x
    }

    fn to_f64(self) -> f64 {
        self
    }
}
