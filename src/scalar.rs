//! The element types the crate computes in: `f32` and `f64`.

use num_traits::Float;
use rand_distr::uniform::SampleUniform;
use std::fmt::{Debug, Display};
use std::iter::Sum;

/// A floating-point element type: implemented for `f32` and `f64`.
pub trait Scalar:
    Float + Debug + Display + Default + Sum + SampleUniform + Send + Sync + 'static
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
