//! The GEMM of the fast CPU backend: `matrixmultiply`'s packed, SIMD, cache-blocked kernels
//! (AVX-512, AVX2 + FMA or SSE2, chosen at run time), with the rows of `C` split across the
//! threads of a persistent pool when the product is large enough to pay for them, and a kernel
//! of its own for thin products (a few rows of `C`), where packing costs more than it saves.
//! The recurrence, whose right-hand operand is the same at every step, has its own kernel on
//! an operand packed once (`packed.rs`).
//!
//! This file, `packed.rs` and `math.rs` are the only ones of the crate with `unsafe`: `matrixmultiply`
//! takes raw pointers and strides. Every call checks, before the `unsafe` block, that each slice
//! holds every element its shape and strides reach.

#![allow(unsafe_code)]

use super::cells::{Blocks, in_parts};
use super::plan::{self, Kernel, Threads, Work};
use crate::backend::Transpose;

/// Element types `matrixmultiply` has kernels for.
pub trait MatMul:
    Copy
    + Send
    + Sync
    + std::ops::Mul<Output = Self>
    + std::ops::Add<Output = Self>
    + Default
    + PartialEq
{
    /// `self * a + b` with one rounding (`f32::mul_add`). Only for code compiled with FMA
    /// enabled: elsewhere it is a slow library call.
    fn fused_mul_add(self, a: Self, b: Self) -> Self;

    /// `matrixmultiply::sgemm` or `dgemm`, with its contract.
    ///
    /// # Safety
    /// For every `i < m`, `p < k`, `j < n`: `a + i*rsa + p*csa`, `b + p*rsb + j*csb` and
    /// `c + i*rsc + j*csc` are in bounds of live allocations, and `c` is not aliased.
    #[allow(clippy::too_many_arguments)]
    unsafe fn raw_gemm(
        m: usize,
        k: usize,
        n: usize,
        alpha: Self,
        a: *const Self,
        rsa: isize,
        csa: isize,
        b: *const Self,
        rsb: isize,
        csb: isize,
        beta: Self,
        c: *mut Self,
        rsc: isize,
        csc: isize,
    );
}

macro_rules! impl_matmul {
    ($t:ty, $f:path) => {
        impl MatMul for $t {
            #[inline(always)]
            fn fused_mul_add(self, a: $t, b: $t) -> $t {
                self.mul_add(a, b)
            }

            unsafe fn raw_gemm(
                m: usize,
                k: usize,
                n: usize,
                alpha: $t,
                a: *const $t,
                rsa: isize,
                csa: isize,
                b: *const $t,
                rsb: isize,
                csb: isize,
                beta: $t,
                c: *mut $t,
                rsc: isize,
                csc: isize,
            ) {
                // SAFETY: the caller upholds `raw_gemm`'s contract, which is `$f`'s.
                unsafe { $f(m, k, n, alpha, a, rsa, csa, b, rsb, csb, beta, c, rsc, csc) }
            }
        }
    };
}

impl_matmul!(f32, matrixmultiply::sgemm);
impl_matmul!(f64, matrixmultiply::dgemm);

/// A row-major operand of shape `(rows, cols)` used as `op(X)`.
#[derive(Clone, Copy)]
pub struct Operand<'a, T> {
    pub data: &'a [T],
    pub rows: usize,
    pub cols: usize,
    pub transpose: Transpose,
}

impl<T> Operand<'_, T> {
    /// Shape of `op(X)`.
    pub fn op_shape(&self) -> (usize, usize) {
        self.transpose.apply((self.rows, self.cols))
    }

    /// `(row stride, column stride)` of `op(X)` in `data`.
    pub fn strides(&self) -> (isize, isize) {
        match self.transpose {
            Transpose::No => (self.cols as isize, 1),
            Transpose::Yes => (1, self.cols as isize),
        }
    }
}

/// `C <- alpha op(A) op(B) + beta C` for row-major `c` of shape `(m, n)`, its rows split across
/// `pool`'s threads when the product is large. With `beta = 0`, `C` is not read.
pub fn gemm<T: MatMul>(
    c: &mut [T],
    n: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
    pool: Option<&Threads>,
) {
    let (m, k) = a.op_shape();
    let (kb, nb) = b.op_shape();
    assert_eq!(k, kb, "gemm: inner dimensions differ");
    assert_eq!(n, nb, "gemm: C has the wrong shape");
    assert_eq!(c.len(), m * n, "gemm: C has the wrong shape");
    assert_eq!(
        a.data.len(),
        a.rows * a.cols,
        "gemm: A's data does not fit its shape"
    );
    assert_eq!(
        b.data.len(),
        b.rows * b.cols,
        "gemm: B's data does not fit its shape"
    );
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 {
        scale_or_zero(c, beta);
        return;
    }
    if k <= THIN_ROWS && b.transpose == Transpose::No {
        // A sum of a few outer products (a weight gradient from one step's few rows).
        outer(c, n, alpha, a, b, beta);
        return;
    }
    if a.transpose == Transpose::No && m <= THIN_ROWS {
        // One row (batch 1): its columns split across the threads, each thread with its own
        // rows of `W` (the recurrence's matrix-vector product, the whole step at batch 1).
        let split = plan::split(
            pool.filter(|_| m == 1),
            Work::product(Kernel::GemmRow, 1, k, n),
            n,
        );
        match pool {
            Some(pool) if split.parts() > 1 => {
                let parts = split.parts();
                in_parts(pool, Blocks::new(c, 1), n, parts, &|block: Blocks<
                    '_,
                    T,
                >| {
                    thin(block.data, n, block.first, alpha, a, b, beta)
                });
            }
            _ => thin(c, n, 0, alpha, a, b, beta),
        }
        return;
    }
    let split = plan::split(pool, Work::product(Kernel::Gemm, m, k, n), m);
    let parts = split.parts();
    match pool {
        Some(pool) if parts > 1 => {
            in_parts(pool, Blocks::new(c, n), m, parts, &|block: Blocks<
                '_,
                T,
            >| {
                let count = block.data.len() / n;
                rows_block(block.data, n, alpha, a, b, beta, block.first, count)
            });
        }
        _ => rows_block(c, n, alpha, a, b, beta, 0, m),
    }
}

/// `C <- beta C`, with `beta = 0` writing zeros (so a NaN in `C` does not survive).
fn scale_or_zero<T: MatMul>(c: &mut [T], beta: T) {
    for v in c {
        *v = if beta == T::default() {
            T::default()
        } else {
            beta * *v
        };
    }
}

/// Rows `first .. first + count` of the product into `block` (those rows of `C`).
#[allow(clippy::too_many_arguments)]
fn rows_block<T: MatMul>(
    block: &mut [T],
    n: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
    first: usize,
    count: usize,
) {
    let (_, k) = a.op_shape();
    let (rsa, csa) = a.strides();
    let (rsb, csb) = b.strides();
    assert_eq!(block.len(), count * n, "gemm: block size");
    assert!(first + count <= a.op_shape().0, "gemm: rows out of range");
    // The last element reached: op(A)[first + count - 1, k - 1] and op(B)[k - 1, n - 1].
    let a_offset = first as isize * rsa;
    let a_last = a_offset + (count as isize - 1) * rsa + (k as isize - 1) * csa;
    let b_last = (k as isize - 1) * rsb + (n as isize - 1) * csb;
    assert!(
        (a_last as usize) < a.data.len() && (b_last as usize) < b.data.len(),
        "gemm: strides"
    );
    // SAFETY: count, k, n >= 1 here (`gemm` returns early when m, n or k is 0, and splits a
    // non-empty C into non-empty blocks); the asserts above show that the furthest element
    // reached through each operand's strides lies inside its slice (strides are non-negative,
    // so every other element reached lies before it); `block` is exactly `count x n` with strides
    // (n, 1) and is borrowed mutably, so it is not aliased.
    unsafe {
        T::raw_gemm(
            count,
            k,
            n,
            alpha,
            a.data.as_ptr().offset(a_offset),
            rsa,
            csa,
            b.data.as_ptr(),
            rsb,
            csb,
            beta,
            block.as_mut_ptr(),
            n as isize,
            1,
        );
    }
}

/// Up to this many rows of `C`, the product runs on [`thin`]: dot products or row updates
/// straight from the stored operands, without packing.
const THIN_ROWS: usize = 4;

/// `C <- alpha A op(B) + beta C` for a few rows of `A`: the portable loops of [`thin_loops`],
/// compiled a second time for AVX2 + FMA and run that way when the processor has them.
///
/// `c` holds columns `first .. first + width` of every row of `C` (`width = c.len() / m`), so
/// that threads can each take a block of columns; `n` is the width of the whole of `C`.
fn thin<T: MatMul>(
    c: &mut [T],
    n: usize,
    first: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
) {
    #[cfg(target_arch = "x86_64")]
    if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
        // SAFETY: `thin_avx2` only needs the AVX2 and FMA instructions, detected just above.
        unsafe { thin_avx2(c, n, first, alpha, a, b, beta) };
        return;
    }
    thin_loops(c, n, first, alpha, a, b, beta);
}

/// [`thin_loops`] compiled with AVX2 and FMA enabled, so that the compiler vectorises its loops
/// eight `f32` (four `f64`) lanes wide instead of SSE2's four (two).
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn thin_avx2<T: MatMul>(
    c: &mut [T],
    n: usize,
    first: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
) {
    thin_loops(c, n, first, alpha, a, b, beta);
}

/// `C <- alpha A op(B) + beta C` for a few rows of `A`, safe code the compiler vectorises:
/// with `op(B) = B^T` each entry is a dot product of two contiguous rows (the recurrence
/// `h W_hh^T`); with `op(B) = B` each row of `C` gathers scaled rows of `B` (`dh W_hh`).
#[inline(always)]
fn thin_loops<T: MatMul>(
    c: &mut [T],
    n: usize,
    first: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
) {
    let (m, k) = a.op_shape();
    let width = c.len() / m;
    let zero = T::default();
    for (i, c_row) in c.chunks_exact_mut(width).enumerate() {
        let a_row = &a.data[i * k..(i + 1) * k];
        match b.transpose {
            Transpose::Yes => {
                for (j, out) in (first..).zip(c_row.iter_mut()) {
                    let acc = dot(a_row, &b.data[j * k..(j + 1) * k]);
                    *out = if beta == zero {
                        alpha * acc
                    } else {
                        alpha * acc + beta * *out
                    };
                }
            }
            Transpose::No => {
                if beta == zero {
                    c_row.fill(zero);
                } else {
                    c_row.iter_mut().for_each(|v| *v = beta * *v);
                }
                for (p, &x) in a_row.iter().enumerate() {
                    let scale = alpha * x;
                    let w_row = &b.data[p * n + first..p * n + first + width];
                    for (out, &w) in c_row.iter_mut().zip(w_row) {
                        *out = *out + scale * w;
                    }
                }
            }
        }
    }
}

/// `C <- alpha op(A) B + beta C` for a small inner dimension `k`: each row of `C` is a
/// combination of the `k` contiguous rows of `B`, weighted by a row of `op(A)`; no packing.
fn outer<T: MatMul>(
    c: &mut [T],
    n: usize,
    alpha: T,
    a: Operand<'_, T>,
    b: Operand<'_, T>,
    beta: T,
) {
    let (_, k) = a.op_shape();
    let (rsa, csa) = a.strides();
    let zero = T::default();
    for (i, c_row) in c.chunks_exact_mut(n).enumerate() {
        if beta == zero {
            c_row.fill(zero);
        } else {
            c_row.iter_mut().for_each(|v| *v = beta * *v);
        }
        for p in 0..k {
            let scale = alpha * a.data[i * rsa as usize + p * csa as usize];
            for (out, &w) in c_row.iter_mut().zip(&b.data[p * n..(p + 1) * n]) {
                *out = *out + scale * w;
            }
        }
    }
}

/// `sum x_i y_i` with eight independent accumulators, so that the adds fill a vector register
/// instead of forming one dependent chain (eight measured faster than 32 for `H` from 128 to
/// 512).
#[inline(always)]
fn dot<T: MatMul>(x: &[T], y: &[T]) -> T {
    const LANES: usize = 8;
    let mut acc = [T::default(); LANES];
    let (xs, ys) = (x.chunks_exact(LANES), y.chunks_exact(LANES));
    let (x_tail, y_tail) = (xs.remainder(), ys.remainder());
    for (cx, cy) in xs.zip(ys) {
        for l in 0..LANES {
            acc[l] = acc[l] + cx[l] * cy[l];
        }
    }
    // A plain left-to-right sum of the lanes: a pairwise tree here kept the compiler from
    // holding `acc` in one vector register, and the loop above ran 2.3 times slower (22.6 against
    // 53 GFLOP/s for a 128 x 512 product, measured in a scratch benchmark of these loops).
    let mut sum = acc.iter().fold(T::default(), |s, &v| s + v);
    for (&a, &b) in x_tail.iter().zip(y_tail) {
        sum = sum + a * b;
    }
    sum
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Every path of `gemm` (outer products, thin rows, `matrixmultiply`'s blocks) against
    /// plain sums, for every transpose pair, over ragged small shapes: small enough for Miri
    /// (`scripts/miri.sh`), which checks the `unsafe` calls; with a pool that splits every
    /// product it can, so that the split paths run too. `C` starts as NaN when `beta = 0`, so a
    /// kernel that reads it or skips an entry is caught.
    #[test]
    fn every_path_matches_plain_sums() {
        // No pool under Miri: rayon's idle workers (crossbeam-epoch) trip its Stacked Borrows
        // check, and products this small never use the pool anyway.
        let pool = (!cfg!(miri)).then(|| {
            let pool = rayon::ThreadPoolBuilder::new().num_threads(2).build();
            Threads::new(std::sync::Arc::new(pool.unwrap())).split_always()
        });
        let shapes = [
            (1, 1, 1),
            (3, 2, 5),
            (2, 7, 3),
            (5, 6, 4),
            (9, 5, 7),
            (6, 0, 3),
        ];
        for (m, k, n) in shapes {
            for (ta, tb) in [(false, false), (false, true), (true, false), (true, true)] {
                for (alpha, beta) in [(1.0, 0.0), (2.0, 0.5)] {
                    for pool in [None, pool.as_ref()] {
                        check(m, k, n, ta, tb, alpha, beta, pool);
                    }
                }
            }
        }
    }

    #[allow(clippy::too_many_arguments)]
    fn check(
        m: usize,
        k: usize,
        n: usize,
        ta: bool,
        tb: bool,
        alpha: f64,
        beta: f64,
        pool: Option<&Threads>,
    ) {
        let t = |yes| if yes { Transpose::Yes } else { Transpose::No };
        let (a_shape, b_shape) = (t(ta).apply((m, k)), t(tb).apply((k, n)));
        let a: Vec<f64> = (0..m * k).map(|i| (i % 7) as f64 - 3.0).collect();
        let b: Vec<f64> = (0..k * n).map(|i| (i % 5) as f64 - 2.0).collect();
        let operand = |data, (rows, cols), transpose| Operand {
            data,
            rows,
            cols,
            transpose,
        };
        let start = if beta == 0.0 { f64::NAN } else { 1.0 };
        let mut c = vec![start; m * n];
        let (op_a, op_b) = (operand(&a, a_shape, t(ta)), operand(&b, b_shape, t(tb)));
        gemm(&mut c, n, alpha, op_a, op_b, beta, pool);
        for i in 0..m {
            for j in 0..n {
                let at = |p| if ta { a[p * m + i] } else { a[i * k + p] };
                let bt = |p| if tb { b[j * k + p] } else { b[p * n + j] };
                let sum: f64 = (0..k).map(|p| at(p) * bt(p)).sum();
                let want = alpha * sum + if beta == 0.0 { 0.0 } else { beta };
                assert_eq!(c[i * n + j], want, "{m}x{k}x{n} {ta} {tb} {alpha} {beta}");
            }
        }
    }
}
