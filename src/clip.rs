//! Gradient clipping against exploding gradients.
//!
//! Two rules, as PyTorch offers them: element-wise by value (`clip_grad_value_`, min-char-rnn's
//! `np.clip(g, -5, 5)`) and by the global L2 norm over all parameters (`clip_grad_norm_`, Pascanu,
//! Mikolov & Bengio 2013). Both act on the parameter gradients only, not on the input or
//! initial-state gradients.

use crate::backend::Backend;
pub use crate::diagnostics::ClipRecord;
use crate::error::{Error, Result};
use crate::model::Gradients;
use crate::scalar::Scalar;

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
    for g in grads.params_mut().matrices_mut() {
        backend.clamp(g, -threshold, threshold);
    }
    Ok(())
}

/// The global L2 norm `sqrt(sum over all parameter gradients of g^2)`, in `f64`.
///
/// A matrix whose sum of squares overflows its own scalar type (entries near `1e19` in `f32`)
/// is summed again in `f64` with scaling, so a finite gradient always has a finite norm
/// unless the norm itself exceeds `f64`'s range. NaN or infinite entries give a NaN or infinite
/// norm.
pub fn norm<B: Backend>(backend: &B, grads: &Gradients<B>) -> f64 {
    let norms: Vec<f64> = grads
        .params()
        .matrices()
        .map(|g| {
            let sum = backend.sum_squares(g).to_f64();
            if sum.is_finite() {
                sum.sqrt()
            } else {
                scaled_norm(backend.to_vec(g).into_iter().map(Scalar::to_f64))
            }
        })
        .collect();
    scaled_norm(norms)
}

/// `sqrt(sum x^2)` without overflow: every term is divided by the largest magnitude first.
fn scaled_norm(values: impl IntoIterator<Item = f64>) -> f64 {
    let values: Vec<f64> = values.into_iter().collect();
    let largest = values.iter().fold(0.0f64, |m, v| m.max(v.abs()));
    if largest == 0.0 || !largest.is_finite() || values.iter().any(|v| v.is_nan()) {
        return values.iter().map(|v| v * v).sum::<f64>().sqrt();
    }
    largest
        * values
            .iter()
            .map(|v| (v / largest).powi(2))
            .sum::<f64>()
            .sqrt()
}

/// Scales all parameter gradients by `max_norm / norm` when their global L2 norm exceeds
/// `max_norm`, and returns the norm before clipping (PyTorch's `clip_grad_norm_`).
///
/// The norm and the scale factor are computed in `f64`; a pre-clip norm beyond the scalar's range
/// (above about `3.4e38` for `f32`) is returned as infinity; the clipping is then right to within
/// the rounding of a scale factor that small.
///
/// ```
/// use recurrent::prelude::*;
///
/// let mut rng = StdRng::seed_from_u64(0);
/// let rnn = Rnn::new(NaiveCpu::<f64>::default(), RnnConfig::rnn(3, 5).output(3), &mut rng)?;
/// let trace = rnn.forward(&Input::ids(vec![0, 1, 2, 0], 1), None)?;
/// let (_, d) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &[1, 2, 0, 1])?;
/// let mut grads = rnn.backward(&trace, &d)?;
/// let before = clip::norm(rnn.backend(), &grads);
/// // Over the bound: every gradient is scaled by max_norm / norm; the norm before is returned.
/// let max_norm = before / 4.0;
/// assert_eq!(clip::global_norm(&mut grads, max_norm)?, before);
/// let after = clip::norm(rnn.backend(), &grads);
/// assert!((after - max_norm).abs() <= 1e-12 * max_norm);
/// // Under the bound: nothing changes.
/// let kept = grads.get("weight_hh_l0").cloned()?;
/// assert_eq!(clip::global_norm(&mut grads, 2.0 * max_norm)?, after);
/// assert_eq!(grads.get("weight_hh_l0")?, &kept);
/// assert!(clip::global_norm(&mut grads, -1.0).is_err()); // not a norm
/// # Ok::<(), recurrent::Error>(())
/// ```
///
/// # Errors
/// [`Error::Config`] unless `max_norm` is finite and positive; [`Error::NonFinite`] if the norm
/// is NaN or infinite (a gradient already overflowed: scaling cannot repair it). The gradients
/// are unchanged on error.
pub fn global_norm<B: Backend>(grads: &mut Gradients<B>, max_norm: B::Scalar) -> Result<B::Scalar> {
    clip_global(grads, max_norm).map(B::Scalar::of)
}

/// As [`global_norm`], and returns the norm before and after clipping: the record that
/// [`GradientFlow::record_clip`](crate::diagnostics::GradientFlow::record_clip) keeps. The
/// norm after is measured on the clipped gradients (one more pass over them), not assumed.
///
/// # Errors
/// As [`global_norm`]; the gradients are unchanged on error.
pub fn global_norm_recorded<B: Backend>(
    grads: &mut Gradients<B>,
    max_norm: B::Scalar,
) -> Result<ClipRecord> {
    let before = clip_global(grads, max_norm)?;
    let after = norm(grads.backend(), grads);
    Ok(ClipRecord {
        max_norm: max_norm.to_f64(),
        before,
        after,
    })
}

/// The body of [`global_norm`]: clips and returns the norm before, in `f64`.
fn clip_global<B: Backend>(grads: &mut Gradients<B>, max_norm: B::Scalar) -> Result<f64> {
    check_threshold("max norm", max_norm)?;
    let backend = grads.backend().clone();
    let total = norm(&backend, grads);
    if !total.is_finite() {
        return Err(Error::NonFinite {
            what: "gradient norm".to_string(),
        });
    }
    if total > max_norm.to_f64() {
        let scale = B::Scalar::of(max_norm.to_f64() / total);
        for g in grads.params_mut().matrices_mut() {
            backend.scale(g, scale);
        }
    }
    Ok(total)
}
