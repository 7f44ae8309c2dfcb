//! The sigmoid, tanh and exp of the fast backend, over whole slices.
//!
//! For `f64` they are the standard library's, as in the reference. For `f32` the standard
//! library's (`expf`, `tanhf`) are scalar calls that keep the gate and softmax loops from
//! vectorising, so the `f32` functions are written as plain `f32` arithmetic, which the compiler
//! vectorises (sixteen lanes with AVX-512, eight with AVX2):
//!
//! - `exp(y) = 2^n e^r` with `n = round(y / ln 2)` and `r = y - n ln 2` (`|r| <= ln 2 / 2`, with
//!   `ln 2` in two parts so that `r` is exact), `e^r - 1` by its Taylor series to `r^7 / 7!`, and
//!   `2^n` built from its bits;
//! - `sigmoid(x) = 1 / (1 + exp(-x))`, as `e / (1 + e)` with `e = exp(x)` for negative `x`;
//! - `tanh(x) = sign(x) (e - 1) / (e + 1)` with `e = exp(2|x|)`, where `e - 1` is assembled from
//!   `e^r - 1` so that no digits cancel for small `x`.
//!
//! **Error bound**: within 2.5 ulp of the true value for every `f32` input (the exp: within 2.5
//! ulp for every input whose result is a normal number, and within one subnormal step below
//! them). Measured over all 2^32 of them by the test `every_f32_within_the_bound` (run on demand;
//! it prints the worst case: 2.40 ulp for the sigmoid, 2.42 for tanh, logged in
//! `benches/compare/results/activation-error.txt`); a test over a million of them runs with the
//! suite. An earlier version widened to `f64` to be correctly
//! rounded, at about twice the cost; the difference is far below what training can see, and the
//! conformance suites compare `f32` backends to `3.8e-6` of `max(1, |v|)`. NaN stays NaN,
//! infinities give the limits, `tanh(-0) = -0`.
//!
//! No fused multiply-add is used, so every instruction set gives the same bits (tested).
//! The loops are compiled once per instruction set and run on the best one the processor has;
//! the `unsafe` here is only that call.

#![allow(unsafe_code)]

/// Element types with slice-wide sigmoid and tanh.
pub trait Activations: Copy {
    /// `x <- 1 / (1 + exp(-x))` for every element.
    fn sigmoid_slice(xs: &mut [Self]);
    /// `x <- tanh(x)` for every element.
    fn tanh_slice(xs: &mut [Self]);
    /// `x <- exp(x)` for every element (the softmax's).
    fn exp_slice(xs: &mut [Self]);
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

    fn exp_slice(xs: &mut [f64]) {
        for x in xs {
            *x = x.exp();
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

    fn exp_slice(xs: &mut [f32]) {
        dispatch(xs, Function::Exp);
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

#[derive(Clone, Copy, Debug)]
enum Function {
    Sigmoid,
    Tanh,
    Exp,
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
        // Beyond 104 in size the result is 0 or infinity in `f32` already.
        Function::Exp => xs
            .iter_mut()
            .for_each(|x| *x = exp_f32(limit_f32(*x, 104.0))),
    }
}

/// `1 / (1 + exp(-x))`, in `f32`, as `1 / (1 + e)` for `x >= 0` and `e / (1 + e)` for `x < 0`
/// with `e = exp(-|x|)`: `e` never overflows, so results in the subnormals (`x < -87.3`) come out
/// as they should. Beyond `|x| = 104` the `f32` result no longer changes (`0` and `1`).
#[inline(always)]
fn sigmoid(x: f32) -> f32 {
    let e = exp_f32(-limit_f32(x.abs(), 104.0));
    let numerator = if x < 0.0 { e } else { 1.0 };
    numerator / (1.0 + e)
}

/// `tanh(x) = sign(x) (e - 1) / (e + 1)` with `e = exp(2 |x|)`, in `f32`; `e - 1` is formed from
/// the reduced argument's `e^r - 1` without subtracting two nearly equal numbers, so small `x`
/// keep their relative precision. Beyond `|x| = 9.5` it is `±1` in `f32`.
#[inline(always)]
fn tanh(x: f32) -> f32 {
    let (n, r) = reduce(2.0 * limit_f32(x.abs(), 9.5));
    // 2^n for 0 <= n <= 28, from its bits.
    let scale = f32::from_bits(((n + 127) as u32) << 23);
    // e - 1 = 2^n (e^r - 1) + (2^n - 1): the product and 2^n - 1 are exact.
    let em1 = scale * expm1_reduced(r) + (scale - 1.0);
    (em1 / (em1 + 2.0)).copysign(x)
}

/// `x` limited to `[-bound, bound]`, NaN kept.
#[inline(always)]
fn limit_f32(x: f32, bound: f32) -> f32 {
    if x < -bound {
        -bound
    } else if x > bound {
        bound
    } else {
        x
    }
}

/// `exp(y)` for `|y| <= 104` or NaN: `2^n e^r`, the power of two applied as two halves so that
/// results beyond `f32`'s range round to infinity or into the subnormals as they should.
#[inline(always)]
fn exp_f32(y: f32) -> f32 {
    let (n, r) = reduce(y);
    let half = n >> 1;
    let low = f32::from_bits(((half + 127) as u32) << 23);
    let high = f32::from_bits(((n - half + 127) as u32) << 23);
    (1.0 + expm1_reduced(r)) * low * high
}

/// `y = n ln 2 + r` with `n` an integer and `|r| <= ln 2 / 2` (plus rounding), for `|y| < 2^21`.
///
/// `ln 2` is split in two (Cody and Waite): `LN2_HI` has 9 significant bits, so `n * LN2_HI` is
/// exact for `|n| < 2^15` and `y - n * LN2_HI` too (the two are within a factor of two), and
/// `LN2_LO` carries the rest.
#[inline(always)]
fn reduce(y: f32) -> (i32, f32) {
    const LN2_HI: f32 = 0.693_359_4; // 355 / 512
    const LN2_LO: f32 = -2.121_944_4e-4; // ln 2 - 355 / 512
    // Adding 1.5 * 2^23 rounds to an integer, which then sits in the low bits of the sum.
    const SHIFT: f32 = 12_582_912.0;
    let t = y * std::f32::consts::LOG2_E + SHIFT;
    let n = t - SHIFT;
    let r = (y - n * LN2_HI) - n * LN2_LO;
    (t.to_bits().wrapping_sub(SHIFT.to_bits()) as i32, r)
}

/// `e^r - 1` for `|r| <= 0.35`: `r + r^2 (1/2 + r/6 + ... + r^5/7!)`, the Taylor series to `r^7`
/// (the first term left out is below `1.2e-8` of the result, a fifth of an `f32` ulp). The
/// leading `r` is added last, exactly, so the rounding errors of the rest (at most a sixth of the
/// result) count for little.
#[inline(always)]
fn expm1_reduced(r: f32) -> f32 {
    const C: [f32; 6] = [
        1.0 / 2.0,
        1.0 / 6.0,
        1.0 / 24.0,
        1.0 / 120.0,
        1.0 / 720.0,
        1.0 / 5040.0,
    ];
    r + r * r * C.iter().rev().fold(0.0, |p, &c| p * r + c)
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The error bounds the module documents, in `f32` ulps of the true value.
    const MAX_ULPS: [(Function, f64); 3] = [
        (Function::Sigmoid, 2.5),
        (Function::Tanh, 2.5),
        (Function::Exp, 2.5),
    ];

    /// `function` of `x` in `f64` (within `1e-15` of the true value).
    fn reference(function: Function, x: f32) -> f64 {
        let x = f64::from(x);
        match function {
            Function::Sigmoid => 1.0 / (1.0 + (-x).exp()),
            Function::Tanh => x.tanh(),
            Function::Exp => x.exp(),
        }
    }

    /// `|got - want|` in units of the spacing of the `f32` numbers at `want` (for a `want` in the
    /// subnormals, the smallest subnormal); 0 where `want` rounds to an `f32` infinity (exp
    /// beyond 88.7) and `got` is that infinity.
    pub(super) fn ulps(got: f32, want: f64) -> f64 {
        if (want as f32).is_infinite() && got == want as f32 {
            return 0.0;
        }
        let exponent = want.abs().log2().floor().max(-126.0);
        (f64::from(got) - want).abs() / (exponent - 23.0).exp2()
    }

    /// The kernels against the `f64` functions on every 4099th `f32` bit pattern (a million
    /// numbers of every magnitude and both signs), and the special values; the whole range is
    /// checked by `every_f32_within_the_bound` below.
    #[test]
    fn within_the_documented_bound() {
        // Under Miri (`scripts/miri.sh`), which runs this a thousand times slower, a coarser
        // grid; and its `exp` and `tanh` are deliberately inexact, so only the kernels'
        // agreement with each other is checked there.
        let step = if cfg!(miri) { 40_000_003 } else { 4099 };
        let xs: Vec<f32> = (0..=u32::MAX)
            .step_by(step)
            .map(f32::from_bits)
            .filter(|x| !x.is_nan())
            .chain([
                0.0, -0.0, 1e-30, -1e-7, 2.4e-4, 0.1, 0.5, 1.0, -3.0, 9.0, -88.0,
            ])
            .collect();
        for (function, bound) in MAX_ULPS {
            let mut got = xs.clone();
            dispatch(&mut got, function);
            let mut portable = xs.clone();
            apply(&mut portable, function);
            for ((&x, &fast), &plain) in xs.iter().zip(&got).zip(&portable) {
                assert_eq!(fast.to_bits(), plain.to_bits(), "dispatch at {x}");
                let want = reference(function, x);
                if !cfg!(miri) {
                    assert!(ulps(fast, want) <= bound, "{x}: {fast} against {want}");
                }
            }
        }
        for function in [Function::Sigmoid, Function::Tanh, Function::Exp] {
            let mut special = [f32::NAN, f32::INFINITY, f32::NEG_INFINITY, -0.0];
            dispatch(&mut special, function);
            assert!(special[0].is_nan());
            let (high, low, at_zero) = match function {
                Function::Sigmoid => (1.0, 0.0, 0.5),
                Function::Tanh => (1.0, -1.0, -0.0),
                Function::Exp => (f32::INFINITY, 0.0, 1.0),
            };
            assert_eq!(special[1..3], [high, low]);
            assert_eq!(special[3].to_bits(), f32::to_bits(at_zero));
        }
    }

    /// Every `f32` (all 2^32 bit patterns but NaN): the largest error of each kernel, printed.
    /// Four billion evaluations: run it optimised, `cargo test --release --lib
    /// every_f32_within_the_bound -- --ignored --nocapture` (about a minute).
    #[test]
    #[ignore = "four billion evaluations: run it optimised, on demand"]
    fn every_f32_within_the_bound() {
        for (function, bound) in MAX_ULPS {
            let (mut worst, mut at) = (0.0f64, 0.0f32);
            let mut chunk = vec![0.0f32; 1 << 16];
            for high in 0..=u16::MAX {
                let base = u32::from(high) << 16;
                for (low, x) in chunk.iter_mut().enumerate() {
                    *x = f32::from_bits(base | low as u32);
                }
                let xs = chunk.clone();
                dispatch(&mut chunk, function);
                for (&x, &y) in xs.iter().zip(&chunk) {
                    let error = if x.is_nan() {
                        0.0
                    } else {
                        ulps(y, reference(function, x))
                    };
                    if error > worst {
                        (worst, at) = (error, x);
                    }
                }
            }
            println!("{function:?}: at most {worst:.3} ulp (at x = {at:e}); bound {bound}");
            assert!(worst <= bound);
        }
    }
}
