//! Backend conformance for GEMM, `C <- alpha * op(A) * op(B) + beta * C`: the checks every
//! [`Backend`] must pass, generic over `B` like `backend_conformance.rs`, whose test-side helpers
//! (`common/conformance.rs`) they share.
//!
//! - `gemm` is its definition for every `m, n, k` in `0..=17`, every transpose pair and every
//!   `(alpha, beta)` in [`ALPHA_BETA`], for a few odd large sizes and for one large enough to be
//!   split across threads. With `beta = 0` the output starts full of NaN, so a kernel that reads
//!   `C` (or forgets to write it) fails: BLAS semantics. `k = 0` gives `beta * C`.
//! - A right-hand operand prepared once (`prepare`) gives the bits of the unprepared product.
//!
//! Inputs are small integers, so every sum and product is exact in f32 and f64 and the results
//! are compared with `==`.
//!
//! The backends are those of `every_backend!` in `common/conformance.rs`:
//! `cargo test --test backend_conformance_gemm module_name::`.

#[path = "common/conformance.rs"]
#[macro_use]
mod conformance;

use conformance::{Host, Lcg, assert_exact, download};
use recurrent::{Backend, Scalar, Transpose};

/// Every `(op(A), op(B))` combination.
const TRANSPOSES: [(Transpose, Transpose); 4] = [
    (Transpose::No, Transpose::No),
    (Transpose::No, Transpose::Yes),
    (Transpose::Yes, Transpose::No),
    (Transpose::Yes, Transpose::Yes),
];

/// `(alpha, beta)` pairs for `gemm`: overwrite, accumulate, general, and `alpha = 0`.
/// Whenever `beta = 0`, `C` is pre-filled with NaN.
const ALPHA_BETA: [(f64, f64); 6] = [
    (1.0, 0.0),
    (1.0, 1.0),
    (-1.0, 0.5),
    (0.5, 0.0),
    (2.0, -1.0),
    (0.0, 1.0),
];

// ---------------------------------------------------------------------------------------------
// GEMM: C <- alpha * op(A) * op(B) + beta * C.
// ---------------------------------------------------------------------------------------------

/// `alpha * op(A) * op(B) + beta * C` by the definition; with `beta = 0`, `C` is not read.
fn gemm_reference(
    alpha: f64,
    a: &Host,
    ta: Transpose,
    b: &Host,
    tb: Transpose,
    beta: f64,
    c: &Host,
) -> Host {
    let (k, _) = tb.apply((b.rows, b.cols));
    Host::from_fn(c.rows, c.cols, |i, j| {
        let dot = (0..k).fold(0.0, |acc, p| acc + a.op_at(ta, i, p) * b.op_at(tb, p, j));
        if beta == 0.0 {
            alpha * dot
        } else {
            alpha * dot + beta * c.at(i, j)
        }
    })
}

/// One `gemm` with `op(A)`: `m x k`, `op(B)`: `k x n`, on fresh small-integer operands; `C` holds
/// NaN when `beta = 0`. Compared exactly.
fn gemm_case<B: Backend>(
    backend: &B,
    rng: &mut Lcg,
    (m, n, k): (usize, usize, usize),
    (ta, tb): (Transpose, Transpose),
    (alpha, beta): (f64, f64),
) {
    // `apply` swaps for `Yes`, so it maps the shape of `op(A)` back to the stored shape too.
    let (a_rows, a_cols) = ta.apply((m, k));
    let (b_rows, b_cols) = tb.apply((k, n));
    let a = Host::small(rng, a_rows, a_cols);
    let b = Host::small(rng, b_rows, b_cols);
    let c = if beta == 0.0 {
        Host::filled(m, n, f64::NAN)
    } else {
        Host::small(rng, m, n)
    };
    let want = gemm_reference(alpha, &a, ta, &b, tb, beta, &c);

    let mut c_dev = c.upload(backend);
    let (a_dev, b_dev) = (a.upload(backend), b.upload(backend));
    let (alpha_s, beta_s) = (B::Scalar::of(alpha), B::Scalar::of(beta));
    backend.gemm(&mut c_dev, alpha_s, &a_dev, ta, &b_dev, tb, beta_s);
    let got = download(backend, &c_dev);
    assert_exact(
        &got,
        &want,
        format_args!("gemm m={m} n={n} k={k} ta={ta:?} tb={tb:?} alpha={alpha} beta={beta}"),
    );
}

/// Every `(m, n, k)` in `0..=17`, every transpose pair, every `(alpha, beta)`.
fn check_gemm_every_size_to_17<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(2);
    for m in 0..=17 {
        for n in 0..=17 {
            for k in 0..=17 {
                for transposes in TRANSPOSES {
                    for scalars in ALPHA_BETA {
                        gemm_case(backend, &mut rng, (m, n, k), transposes, scalars);
                    }
                }
            }
        }
    }
}

/// Sizes past any register or cache block, none a multiple of a power of two above 1.
fn check_gemm_odd_large_sizes<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(3);
    for size in [
        (33, 65, 47),
        (129, 31, 70),
        (1, 100, 129),
        (65, 1, 33),
        (47, 47, 1),
    ] {
        for transposes in TRANSPOSES {
            for scalars in ALPHA_BETA {
                gemm_case(backend, &mut rng, size, transposes, scalars);
            }
        }
    }
}

/// Products big enough that a threaded backend splits them across threads: the split must not
/// change a single bit.
fn check_gemm_large_enough_to_thread<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(9);
    // Many rows (split by rows), and one row with many columns (batch 1: split by columns).
    for size in [(131, 257, 131), (1, 1031, 513)] {
        for transposes in TRANSPOSES {
            for scalars in [(1.0, 0.0), (-1.0, 0.5)] {
                gemm_case(backend, &mut rng, size, transposes, scalars);
            }
        }
    }
}

/// With `k = 0` the product is empty: `C <- beta * C`, and zeros when `beta = 0` even over NaN.
fn check_gemm_k_zero_gives_beta_c<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(4);
    for (m, n) in [(1, 1), (3, 5), (17, 4)] {
        for (ta, tb) in TRANSPOSES {
            for (alpha, beta) in ALPHA_BETA {
                let a = backend.zeros(ta.apply((m, 0)).0, ta.apply((m, 0)).1);
                let b = backend.zeros(tb.apply((0, n)).0, tb.apply((0, n)).1);
                let (c, want) = if beta == 0.0 {
                    (Host::filled(m, n, f64::NAN), Host::filled(m, n, 0.0))
                } else {
                    let c = Host::small(&mut rng, m, n);
                    let want = Host::from_fn(m, n, |i, j| beta * c.at(i, j));
                    (c, want)
                };
                let mut c_dev = c.upload(backend);
                let (alpha_s, beta_s) = (B::Scalar::of(alpha), B::Scalar::of(beta));
                backend.gemm(&mut c_dev, alpha_s, &a, ta, &b, tb, beta_s);
                let got = download(backend, &c_dev);
                assert_exact(
                    &got,
                    &want,
                    format_args!("gemm k=0 {m}x{n} {ta:?} {tb:?} beta={beta}"),
                );
            }
        }
    }
}

/// `gemm_prepared` on `op(B)` prepared for `hint` rows, multiplied with `m` rows, compared
/// exactly with the definition.
fn prepared_case<B: Backend>(
    backend: &B,
    rng: &mut Lcg,
    (m, n, k): (usize, usize, usize),
    hint: usize,
    tb: Transpose,
    (alpha, beta): (f64, f64),
) {
    let (b_rows, b_cols) = tb.apply((k, n));
    let a = Host::small(rng, m, k);
    let b = Host::small(rng, b_rows, b_cols);
    let c = if beta == 0.0 {
        Host::filled(m, n, f64::NAN)
    } else {
        Host::small(rng, m, n)
    };
    let want = gemm_reference(alpha, &a, Transpose::No, &b, tb, beta, &c);
    let (a_dev, b_dev) = (a.upload(backend), b.upload(backend));
    let prepared = backend.prepare_rhs(&b_dev, tb, hint);
    let mut c_dev = c.upload(backend);
    let (alpha_s, beta_s) = (B::Scalar::of(alpha), B::Scalar::of(beta));
    backend.gemm_prepared(&mut c_dev, alpha_s, &a_dev, &prepared, beta_s);
    assert_exact(
        &download(backend, &c_dev),
        &want,
        format_args!("gemm_prepared m={m} n={n} k={k} hint={hint} tb={tb:?} beta={beta}"),
    );
}

/// Every shape to 17 (and row counts past every register block, with and without threads),
/// prepared for the rows it is used with and for other counts.
fn check_gemm_prepared<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(12);
    for m in (0..=17).chain([31, 32, 33]) {
        for n in 0..=17 {
            for k in 0..=17 {
                for tb in [Transpose::No, Transpose::Yes] {
                    for scalars in ALPHA_BETA {
                        prepared_case(backend, &mut rng, (m, n, k), m, tb, scalars);
                    }
                }
            }
        }
    }
    for (size, hint) in [
        ((9, 5, 3), 1),
        ((3, 5, 7), 32),
        ((64, 257, 131), 64),
        ((40, 1031, 65), 40),
        // Large enough for `Cpu` to split the product across threads: by panels, and one row.
        ((64, 257, 600), 64),
        ((1, 1031, 1100), 1),
        // Four panels of 16 (f64, AVX-512), the last partial, on three threads: two parts of two
        // panels, not three.
        ((128, 59, 2048), 128),
    ] {
        for tb in [Transpose::No, Transpose::Yes] {
            for scalars in [(1.0, 0.0), (-1.0, 0.5)] {
                prepared_case(backend, &mut rng, size, hint, tb, scalars);
            }
        }
    }
}

/// One module per `module => backend` entry, with one `#[test]` per check.
macro_rules! conformance_suite {
    ($($module:ident => $backend:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[test] fn gemm_every_size_to_17() { check_gemm_every_size_to_17(&$backend) }
            #[test] fn gemm_odd_large_sizes() { check_gemm_odd_large_sizes(&$backend) }
            #[test] fn gemm_large_enough_to_thread() { check_gemm_large_enough_to_thread(&$backend) }
            #[test] fn gemm_k_zero_gives_beta_c() { check_gemm_k_zero_gives_beta_c(&$backend) }
            #[test] fn gemm_prepared() { check_gemm_prepared(&$backend) }
        }
    )+};
}

every_backend!(conformance_suite);
