//! Gradient clipping against exploding gradients.
//!
//! Two rules, as PyTorch offers them: element-wise by value (`clip_grad_value_`, min-char-rnn's
//! `np.clip(g, -5, 5)`) and by the global L2 norm over all parameters (`clip_grad_norm_`, Pascanu,
//! Mikolov & Bengio 2013). Both act on the parameter gradients only, not on the input or
//! initial-state gradients.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::Gradients;
use crate::scalar::Scalar;
use num_traits::Float;

fn check_threshold<T: Scalar>(what: &str, t: T) -> Result<()> {
    if t.is_finite() && t > T::zero() {
        Ok(())
    } else {
        Err(Error::config(format!(
            "{what} must be finite and positive, given {t}"
        )))
    }
}

/// Clamps every parameter gradient entry into `[-threshold, threshold]`.
///
/// # Errors
/// [`Error::Config`] unless `threshold` is finite and positive; gradients are unchanged then.
pub fn by_value<B: Backend>(grads: &mut Gradients<B>, threshold: B::Scalar) -> Result<()> {
    check_threshold("clip threshold", threshold)?;
    let backend = grads.backend().clone();
    for (_, g) in grads.params_mut().named_mut() {
        backend.clamp(g, -threshold, threshold);
    }
    Ok(())
}

/// The global L2 norm `sqrt(sum over all parameter gradients of g^2)`.
pub fn norm<B: Backend>(backend: &B, grads: &Gradients<B>) -> B::Scalar {
    let sum: B::Scalar = grads
        .named()
        .iter()
        .map(|(_, g)| backend.sum_squares(g))
        .sum();
    sum.sqrt()
}

/// Scales all parameter gradients by `max_norm / norm` when their global L2 norm exceeds
/// `max_norm`, and returns the norm before clipping (PyTorch's `clip_grad_norm_`).
///
/// # Errors
/// [`Error::Config`] unless `max_norm` is finite and positive; [`Error::NonFinite`] if the norm
/// is NaN or infinite (a gradient already overflowed: scaling cannot repair it). The gradients
/// are unchanged on error.
pub fn global_norm<B: Backend>(grads: &mut Gradients<B>, max_norm: B::Scalar) -> Result<B::Scalar> {
    check_threshold("max norm", max_norm)?;
    let backend = grads.backend().clone();
    let total = norm(&backend, grads);
    if !total.is_finite() {
        return Err(Error::NonFinite {
            what: "gradient norm".to_string(),
        });
    }
    if total > max_norm {
        let scale = max_norm / total;
        for (_, g) in grads.params_mut().named_mut() {
            backend.scale(g, scale);
        }
    }
    Ok(total)
}
