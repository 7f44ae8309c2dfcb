//! Helpers shared by the integration tests: seeded random data and small models.

#![allow(dead_code)]

pub mod tempdir;

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::Kernels;
use recurrent::{NaiveCpu, Rnn, RnnConfig, Scalar};

/// The largest relative error a finite-difference gradient check may find (f64, central
/// differences).
pub const TOLERANCE: f64 = 1e-6;

/// Prints a gradient check's report and asserts that it checked something and stayed within
/// [`TOLERANCE`].
pub fn assert_passes(what: &str, report: &recurrent::gradcheck::Report) {
    println!(
        "{what}: {} entries, worst relative error {:.3e} at {} (analytic {:.9e}, numeric {:.9e})",
        report.checked, report.worst, report.worst_at, report.analytic, report.numeric
    );
    assert!(report.checked > 0, "{what}: nothing was checked");
    assert!(
        report.worst < TOLERANCE,
        "{what}: worst relative error {:.3e} at {} (analytic {}, numeric {})",
        report.worst,
        report.worst_at,
        report.analytic,
        report.numeric
    );
}

/// The reference backend in f64, where gradient checks run.
pub type F64 = NaiveCpu<f64>;

/// A seeded generator, so that every run sees the same numbers.
pub fn rng(seed: u64) -> StdRng {
    StdRng::seed_from_u64(seed)
}

/// A `rows x cols` matrix with entries uniform in `[-scale, scale]`.
pub fn random_matrix<B: Kernels>(
    backend: &B,
    rows: usize,
    cols: usize,
    scale: f64,
    rng: &mut StdRng,
) -> B::Matrix {
    let data = (0..rows * cols)
        .map(|_| B::Scalar::of(rng.random_range(-scale..=scale)))
        .collect();
    backend.from_vec(rows, cols, data).expect("sizes match")
}

/// `count` ids below `bound`.
pub fn random_ids(count: usize, bound: usize, rng: &mut StdRng) -> Vec<usize> {
    (0..count).map(|_| rng.random_range(0..bound)).collect()
}

/// A model of shape `config` on the f64 reference backend, from `seed`.
pub fn model(config: RnnConfig, seed: u64) -> Rnn<F64> {
    Rnn::new(F64::new(), config, &mut rng(seed)).expect("valid config")
}
