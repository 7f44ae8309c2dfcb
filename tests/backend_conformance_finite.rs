//! Backend conformance of `all_finite`: `true` exactly when no element is NaN or infinite, for
//! every shape from `0 x 0` to `9 x 9` and a long row, with a bad value at every position, and
//! with finite values so large that their squares overflow; and one large enough to be split
//! across threads. `NaiveCpu` and the tests' `VecBackend` (`common/vec_backend.rs`) run the
//! trait's default, `Cpu` its own kernel.

#[path = "common/vec_backend.rs"]
mod vec_backend;

use recurrent::{Backend, Cpu, NaiveCpu, Scalar};
use vec_backend::VecBackend;

/// Shapes checked: every one up to 9 x 9, and rows longer than `Cpu`'s blocks of 64.
fn shapes() -> impl Iterator<Item = (usize, usize)> {
    let small = (0..10).flat_map(|r| (0..10).map(move |c| (r, c)));
    small.chain([(1, 200), (3, 129)])
}

fn check<B: Backend>(backend: B, largest: f64) {
    for (rows, cols) in shapes() {
        let finite: Vec<f64> = (0..rows * cols)
            .map(|i| ((i * 37) % 19) as f64 - 9.0)
            .collect();
        let make = |values: &[f64]| {
            let values = values.iter().map(|&v| B::Scalar::of(v)).collect();
            backend.from_vec(rows, cols, values).unwrap()
        };
        assert!(backend.all_finite(&make(&finite)), "{rows} x {cols}");
        let mut huge = finite.clone();
        huge.iter_mut().for_each(|v| *v *= largest / 9.0);
        assert!(backend.all_finite(&make(&huge)), "{rows} x {cols}, huge");
        for at in 0..rows * cols {
            for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
                let mut values = finite.clone();
                values[at] = bad;
                let m = make(&values);
                assert!(!backend.all_finite(&m), "{rows} x {cols}: {bad} at {at}");
            }
        }
    }
    // Long enough for `Cpu` to split the values across threads: a bad value at either end and
    // on either side of the middle, where two threads' ranges meet.
    let (rows, cols) = (4, 70_001);
    let len = rows * cols;
    let finite = vec![B::Scalar::of(1.5); len];
    let m = backend.from_vec(rows, cols, finite.clone()).unwrap();
    assert!(backend.all_finite(&m), "{rows} x {cols}");
    for at in [0, len / 2 - 1, len / 2, len / 2 + 1, len - 1] {
        let mut values = finite.clone();
        values[at] = B::Scalar::of(f64::NAN);
        let m = backend.from_vec(rows, cols, values).unwrap();
        assert!(!backend.all_finite(&m), "{rows} x {cols}: NaN at {at}");
    }
}

#[test]
fn naive_f32() {
    check(NaiveCpu::<f32>::new(), 3e38);
}

#[test]
fn naive_f64() {
    check(NaiveCpu::<f64>::new(), 1e308);
}

#[test]
fn cpu_f32() {
    check(Cpu::<f32>::new(), 3e38);
}

#[test]
fn cpu_f64() {
    check(Cpu::<f64>::new(), 1e308);
}

#[test]
fn vec_f32() {
    check(VecBackend::<f32>::new(), 3e38);
}

#[test]
fn vec_f64() {
    check(VecBackend::<f64>::new(), 1e308);
}
