//! Test-side data for the backend conformance suites (`tests/backend_conformance*.rs`): a
//! deterministic generator, a host matrix of `f64`, comparisons with a stated tolerance, and the
//! check that a shape misuse panics with the kernel's name.
//!
//! Each suite includes it by path, `#[path = "common/conformance.rs"] mod conformance;`, so that
//! it stays apart from `common/mod.rs`, which the other tests share.

// Each suite uses a different subset.
#![allow(dead_code)]

use recurrent::{Backend, Scalar, Transpose};

/// The tests' own backend on the core trait alone (`vec_backend.rs`, next to this file).
#[path = "vec_backend.rs"]
pub mod vec_backend;

/// Calls `$suite!` on every backend under test, `module_name => backend_value`, one line per
/// backend and scalar type (the candle backend with the feature `candle`): a new backend joins `backend_conformance.rs`, `_gemm.rs`, `_loss.rs`
/// and `_update.rs` by a line here (`_cells.rs` has its own list, by scalar type, and
/// `_finite.rs` one test per backend).
#[allow(unused_macros)]
macro_rules! every_backend {
    ($suite:ident) => {
        $suite! {
            naive_f32 => recurrent::NaiveCpu::<f32>::new(),
            naive_f64 => recurrent::NaiveCpu::<f64>::new(),
            cpu_f32 => recurrent::Cpu::<f32>::new(),
            cpu_f64 => recurrent::Cpu::<f64>::new(),
            cpu_f32_one_thread => recurrent::Cpu::<f32>::with_threads(1),
            cpu_f64_three_threads => recurrent::Cpu::<f64>::with_threads(3).split_always(),
            vec_f32 => crate::conformance::vec_backend::VecBackend::<f32>::new(),
            vec_f64 => crate::conformance::vec_backend::VecBackend::<f64>::new(),
        }
        // The candle backend, with the feature `candle` (a second call: a `cfg` cannot sit on
        // one entry of a macro's list).
        #[cfg(feature = "candle")]
        $suite! {
            candle_f32 => recurrent::Candle::<f32>::cpu(),
            candle_f64 => recurrent::Candle::<f64>::cpu(),
        }
    };
}
use std::fmt;
use std::panic::{AssertUnwindSafe, catch_unwind};

/// The tolerance for results computed through `tanh`, `exp` or `ln`: 32 epsilons of the scalar
/// type (`3.8e-6` for f32, `7.1e-15` for f64), relative to `max(1, |expected|)`.
pub fn tolerance<B: Backend>() -> f64 {
    32.0 * <B::Scalar as num_traits::Float>::epsilon().to_f64()
}

/// A 64-bit linear congruential generator (Knuth's MMIX constants, high bits): deterministic
/// inputs that do not change with a `rand` release.
pub struct Lcg(u64);

impl Lcg {
    pub fn new(seed: u64) -> Self {
        Lcg(seed)
    }

    pub fn next_u32(&mut self) -> u32 {
        self.0 = self
            .0
            .wrapping_mul(6_364_136_223_846_793_005)
            .wrapping_add(1_442_695_040_888_963_407);
        (self.0 >> 32) as u32
    }

    /// Uniform in `0..n` (the modulo bias does not matter here).
    pub fn below(&mut self, n: usize) -> usize {
        self.next_u32() as usize % n
    }

    /// An integer in `-4..=4`.
    pub fn small(&mut self) -> f64 {
        self.below(9) as f64 - 4.0
    }

    /// A multiple of `1/256` in `[-bound, bound]`: about eleven significant bits for a `bound`
    /// up to 4, so exact in f32 and f64 and the same number on both sides of a comparison.
    pub fn dyadic(&mut self, bound: usize) -> f64 {
        (self.below(2 * 256 * bound + 1) as f64 - (256 * bound) as f64) / 256.0
    }
}

/// A row-major `rows x cols` matrix of `f64` on the test's side: inputs are made here, and
/// results are read back into one to be compared.
#[derive(Clone, Debug)]
pub struct Host {
    pub rows: usize,
    pub cols: usize,
    pub data: Vec<f64>,
}

impl Host {
    pub fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> f64) -> Host {
        let data = (0..rows * cols).map(|i| f(i / cols, i % cols)).collect();
        Host { rows, cols, data }
    }

    pub fn filled(rows: usize, cols: usize, value: f64) -> Host {
        Host::from_fn(rows, cols, |_, _| value)
    }

    /// Small integers in `-4..=4`.
    pub fn small(rng: &mut Lcg, rows: usize, cols: usize) -> Host {
        Host::from_fn(rows, cols, |_, _| rng.small())
    }

    /// Multiples of `1/256` in `[-bound, bound]` (see [`Lcg::dyadic`]).
    pub fn dyadic(rng: &mut Lcg, rows: usize, cols: usize, bound: usize) -> Host {
        Host::from_fn(rows, cols, |_, _| rng.dyadic(bound))
    }

    pub fn at(&self, i: usize, j: usize) -> f64 {
        self.data[i * self.cols + j]
    }

    pub fn at_mut(&mut self, i: usize, j: usize) -> &mut f64 {
        &mut self.data[i * self.cols + j]
    }

    /// Element `(i, j)` of `op(self)`.
    pub fn op_at(&self, t: Transpose, i: usize, j: usize) -> f64 {
        match t {
            Transpose::No => self.at(i, j),
            Transpose::Yes => self.at(j, i),
        }
    }

    pub fn upload<B: Backend>(&self, backend: &B) -> B::Matrix {
        let data = self.data.iter().map(|&x| B::Scalar::of(x)).collect();
        backend
            .from_vec(self.rows, self.cols, data)
            .expect("from_vec: data has rows * cols elements")
    }
}

/// Reads a backend matrix back, with the shape the backend reports.
pub fn download<B: Backend>(backend: &B, m: &B::Matrix) -> Host {
    let (rows, cols) = backend.shape(m);
    let data = backend.to_vec(m).into_iter().map(Scalar::to_f64).collect();
    Host { rows, cols, data }
}

/// Whether `got` is within `tol * max(1, |want|)` of `want`; NaN matches only NaN, and `tol = 0`
/// asks for equality.
pub fn agrees(got: f64, want: f64, tol: f64) -> bool {
    if want.is_nan() {
        return got.is_nan();
    }
    got == want || (got - want).abs() <= tol * want.abs().max(1.0)
}

/// The first difference between `got` and `want` (shape, length or element), `None` if they
/// agree within `tol` (see [`agrees`]).
pub fn mismatch(got: &Host, want: &Host, tol: f64) -> Option<String> {
    if (got.rows, got.cols, got.data.len()) != (want.rows, want.cols, want.data.len()) {
        return Some(format!(
            "shape {}x{} with {} elements, expected {}x{}",
            got.rows,
            got.cols,
            got.data.len(),
            want.rows,
            want.cols
        ));
    }
    let i = (0..want.data.len()).find(|&i| !agrees(got.data[i], want.data[i], tol))?;
    let (r, c) = (i / want.cols, i % want.cols);
    Some(format!(
        "element ({r}, {c}) is {}, expected {}",
        got.data[i], want.data[i]
    ))
}

/// Panics with `context` and the first difference unless `got` equals `want` exactly.
#[track_caller]
pub fn assert_exact(got: &Host, want: &Host, context: fmt::Arguments) {
    assert_close(got, want, 0.0, context);
}

/// Panics with `context` and the first difference unless `got` agrees with `want` within `tol`.
#[track_caller]
pub fn assert_close(got: &Host, want: &Host, tol: f64, context: fmt::Arguments) {
    if let Some(difference) = mismatch(got, want, tol) {
        panic!("{context}: {difference}");
    }
}

/// Runs `call`, which must panic with a message that contains `kernel`.
pub fn expect_panic(kernel: &str, call: impl FnOnce()) {
    let payload = catch_unwind(AssertUnwindSafe(call))
        .err()
        .unwrap_or_else(|| panic!("{kernel}: a shape misuse did not panic"));
    let message = (payload.downcast_ref::<String>().map(String::as_str))
        .or_else(|| payload.downcast_ref::<&str>().copied())
        .unwrap_or_default();
    assert!(
        message.contains(kernel),
        "{kernel}: the panic {message:?} does not name the kernel"
    );
}
