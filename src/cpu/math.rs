//! The sigmoid and tanh of the fast backend, over whole slices.
//!
//! For `f64` they are the standard library's, as in the reference. For `f32` the standard
//! library's (`expf`, `tanhf`) are scalar calls that keep the gate loops from vectorising: at
//! batch 32, hidden 512 they took a sixth of an LSTM training step. So `f32` values are widened
//! to `f64` and run through an exponential written as plain arithmetic, which the compiler
//! vectorises (eight or sixteen lanes), then rounded back to `f32`:
//!
//! - `exp(x) = 2^n * e^r` with `n = round(x / ln 2)` and `|r| <= ln 2 / 2`, `e^r` by its Taylor
//!   series to `r^10 / 10!` (remainder below `3e-13`, relative), `2^n` built from its bits;
//! - `sigmoid(x) = 1 / (1 + exp(-x))`;
//! - `tanh(x) = (e - 1) / (e + 1)` with `e = exp(2x)`, and `tanh(x) = x` below `2^-12`, where
//!   that is exact to `f32`'s precision and the quotient would lose digits.
//!
//! Computed in `f64`, the results are within `1e-12` (relative) of the true values before the
//! final rounding, so they are the correctly rounded `f32` values except in rare ties, at least
//! as close as `expf`-based formulas in `f32`. NaN stays NaN; infinities give the limits.
//!
//! The loops are compiled once per instruction set and run on the best one the processor has;
//! the `unsafe` here is only that call.

#![allow(unsafe_code)]

/// Element types with slice-wide sigmoid and tanh.
pub trait Activations: Copy {
    /// `x <- 1 / (1 + exp(-x))` for every element.
    fn sigmoid_slice(xs: &mut [Self]);
    /// `x <- tanh(x)` for every element.
    fn tanh_slice(xs: &mut [Self]);
}

impl Activations for f64 {
    fn sigmoid_slice(xs: &mut [f64]) {
        for x in xs {
            *x = 1.0 / (1.0 + (-*x).exp());
        }
    }

    fn tanh_slice(xs: &mut [f64]) {
        for x in xs {
            *x = x.tanh();
        }
    }
}

impl Activations for f32 {
    fn sigmoid_slice(xs: &mut [f32]) {
        dispatch(xs, Function::Sigmoid);
    }

    fn tanh_slice(xs: &mut [f32]) {
        dispatch(xs, Function::Tanh);
    }
}

/// The optimiser rule's loop ([`apply`](crate::optim::apply_update)) on slices of the
/// parameter, its gradient and its state buffers, compiled with FMA enabled where the processor
/// has it: its `mul_add`s are then single instructions instead of calls to the C library's `fma`
/// (which, at one call per element and operation, made an SGD step take longer than a batch-1
/// backward pass). A fused multiply-add rounds once either way: the results are the reference's,
/// bit for bit.
pub fn update<T: crate::scalar::Scalar>(
    rule: &crate::optim::UpdateRule,
    p: &mut [T],
    g: &[T],
    state: &mut [&mut [T]],
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: the processor has AVX2 and FMA, detected just above.
        return unsafe { update_fma(rule, p, g, state) };
    }
    crate::optim::apply_update(rule, p, g, state);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn update_fma<T: crate::scalar::Scalar>(
    rule: &crate::optim::UpdateRule,
    p: &mut [T],
    g: &[T],
    state: &mut [&mut [T]],
) {
    crate::optim::apply_update(rule, p, g, state);
}

#[derive(Clone, Copy)]
enum Function {
    Sigmoid,
    Tanh,
}

fn dispatch(xs: &mut [f32], function: Function) {
    #[cfg(target_arch = "x86_64")]
    {
        if std::is_x86_feature_detected!("avx512f") {
            // SAFETY: the processor has AVX-512F, detected just above.
            return unsafe { apply_avx512(xs, function) };
        }
        if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
            // SAFETY: the processor has AVX2 and FMA, detected just above.
            return unsafe { apply_avx2(xs, function) };
        }
    }
    apply(xs, function);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn apply_avx512(xs: &mut [f32], function: Function) {
    apply(xs, function);
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn apply_avx2(xs: &mut [f32], function: Function) {
    apply(xs, function);
}

#[inline(always)]
fn apply(xs: &mut [f32], function: Function) {
    match function {
        Function::Sigmoid => xs.iter_mut().for_each(|x| *x = sigmoid(*x)),
        Function::Tanh => xs.iter_mut().for_each(|x| *x = tanh(*x)),
    }
}

/// `x` limited to `[-bound, bound]`, NaN kept (`f64::clamp` would keep it too, but compiles to
/// code that does not vectorise as well).
#[inline(always)]
fn limit(x: f64, bound: f64) -> f64 {
    if x < -bound {
        -bound
    } else if x > bound {
        bound
    } else {
        x
    }
}

/// `exp(x)` for `|x| <= 300` or NaN.
#[inline(always)]
fn exp(x: f64) -> f64 {
    // Adding 1.5 * 2^52 rounds to an integer, which then sits in the low bits of the sum.
    const SHIFT: f64 = 6_755_399_441_055_744.0;
    let t = x * std::f64::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = x - n * std::f64::consts::LN_2;
    // The Taylor series of e^r to r^10 / 10!, by Horner's rule.
    let p = TAYLOR.iter().rev().fold(0.0, |p, &c| p * r + c);
    // `t`'s bits minus `SHIFT`'s are `n`; `n + 1023` in the exponent field is `2^n`.
    let n_bits = t.to_bits().wrapping_sub(SHIFT.to_bits());
    let scale = f64::from_bits(n_bits.wrapping_add(1023) << 52);
    p * scale
}

/// `1 / k!` for `k <= 10`: the Taylor coefficients of `e^r`.
const TAYLOR: [f64; 11] = {
    let mut c = [1.0; 11];
    let mut k = 1;
    while k < 11 {
        c[k] = c[k - 1] / k as f64;
        k += 1;
    }
    c
};

/// `1 / (1 + exp(-x))`; beyond `|x| = 120` the `f32` result no longer changes.
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    (1.0 / (1.0 + exp(-limit(f64::from(x), 120.0)))) as f32
}

/// `tanh(x)`; beyond `|x| = 20` it is `±1` in `f32` (and in `f64`).
#[inline(always)]
fn tanh(x: f32) -> f32 {
    const TINY: f64 = 1.0 / 4096.0;
    let wide = f64::from(x);
    let e = exp(2.0 * limit(wide, 20.0));
    let quotient = ((e - 1.0) / (e + 1.0)) as f32;
    if wide.abs() < TINY { x } else { quotient }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every kernel against the `f64` standard library rounded to `f32`, over a grid from the
    /// tiny to the saturated, and the special values.
    #[test]
    fn matches_the_rounded_f64_functions() {
        let mut xs: Vec<f32> = vec![0.0, -0.0, 1e-30, -1e-7, 2.4e-4, 0.1, 0.5, 1.0, -3.0];
        // Under Miri (`scripts/miri.sh`), which runs this a thousand times slower, every 50th
        // point of the grid; and its `exp` and `tanh` are deliberately inexact, so only the
        // kernels' agreement with each other is checked there.
        let every = if cfg!(miri) { 50 } else { 1 };
        xs.extend((-4000..=4000).step_by(every).map(|i| i as f32 * 0.01));
        xs.extend((-60..=60).map(|i| i as f32 * 2.5));
        let mut off_by_one = 0;
        for &x in &xs {
            let wide = f64::from(x);
            for (function, want) in [
                (Function::Sigmoid, 1.0 / (1.0 + (-wide).exp())),
                (Function::Tanh, wide.tanh()),
            ] {
                let mut got = [x];
                dispatch(&mut got, function);
                let mut portable = [x];
                apply(&mut portable, function);
                assert_eq!(got[0].to_bits(), portable[0].to_bits(), "dispatch at {x}");
                let rounded = want as f32;
                if got[0] != rounded && !cfg!(miri) {
                    // Only where the true value is all but halfway between two `f32`s.
                    let apart = (got[0].to_bits() as i64 - rounded.to_bits() as i64).abs();
                    assert_eq!(apart, 1, "{x}: {} against {want}", got[0]);
                    off_by_one += 1;
                }
            }
        }
        assert!(off_by_one * 1000 <= xs.len(), "{off_by_one} not rounded");
        for function in [Function::Sigmoid, Function::Tanh] {
            let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY];
            dispatch(&mut special, function);
            assert!(special[0].is_nan());
            let low = match function {
                Function::Sigmoid => 0.0,
                Function::Tanh => -1.0,
            };
            assert_eq!(special[1..], [1.0, low]);
        }
    }
}
