//! Hyperparameter checks shared by the optimisers and schedules: each returns the value, or
//! [`Error::Config`] naming the optimiser, the hyperparameter, the allowed range and the value.

use crate::error::{Error, Result};

fn bad(owner: &str, what: &str, range: &str, value: f64) -> Error {
    Error::config(format!("{owner}: {what} must be {range}, given {value}"))
}

/// A learning rate: finite and positive.
pub(crate) fn learning_rate(owner: &str, lr: f64) -> Result<f64> {
    match lr.is_finite() && lr > 0.0 {
        true => Ok(lr),
        false => Err(bad(owner, "learning rate", "finite and positive", lr)),
    }
}

/// Finite and `> 0` (an epsilon, a decay factor).
pub(crate) fn positive(owner: &str, what: &str, value: f64) -> Result<f64> {
    match value.is_finite() && value > 0.0 {
        true => Ok(value),
        false => Err(bad(owner, what, "finite and positive", value)),
    }
}

/// Finite and `>= 0` (a weight decay, an initial accumulator).
pub(crate) fn non_negative(owner: &str, what: &str, value: f64) -> Result<f64> {
    match value.is_finite() && value >= 0.0 {
        true => Ok(value),
        false => Err(bad(owner, what, "finite and >= 0", value)),
    }
}

/// In `[0, 1)` (a momentum, a running average's decay).
pub(crate) fn unit(owner: &str, what: &str, value: f64) -> Result<f64> {
    match (0.0..1.0).contains(&value) {
        true => Ok(value),
        false => Err(bad(owner, what, "in [0, 1)", value)),
    }
}

/// In `[0, 1]` (a dampening).
pub(crate) fn closed_unit(owner: &str, what: &str, value: f64) -> Result<f64> {
    match (0.0..=1.0).contains(&value) {
        true => Ok(value),
        false => Err(bad(owner, what, "in [0, 1]", value)),
    }
}
