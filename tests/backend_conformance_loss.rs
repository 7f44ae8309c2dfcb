//! Backend conformance for the row softmax kernels, the per-row gather and scatter-add, and the
//! softmax cross-entropy built on them (with its gradient, and its value alone) ([`LossKernels`], generic by default, fused in `Cpu`): the
//! checks every backend must pass, generic over `B` like `backend_conformance.rs`, whose
//! test-side helpers (`common/conformance.rs`) and list of backends they share.
//!
//! Results through `exp` and `ln` are compared with [`tolerance`]; the gathers and scatter-adds,
//! on small integers, with `==`. Logits of +-1000 check the max shift: without it `exp`
//! overflows or underflows.

#[path = "common/conformance.rs"]
#[macro_use]
mod conformance;

use conformance::{
    Host, Lcg, agrees, assert_close, assert_exact, download, expect_panic, tolerance,
};
use recurrent::{Backend, LossKernels, Scalar};

// ---------------------------------------------------------------------------------------------
// Softmax, log-softmax, cross-entropy.
// ---------------------------------------------------------------------------------------------

/// Logits: small integers, one column, no rows, and rows of +-1000 where an unshifted `exp`
/// overflows (`e^1000`) or underflows every term to 0 (`e^-1000`).
fn logit_cases(rng: &mut Lcg) -> Vec<Host> {
    #[rustfmt::skip]
    let huge = vec![
        1000.0, 1000.0, 1000.0,
        -1000.0, 999.0, 1000.0,
        -1000.0, -1000.0, -999.0,
        0.0, 1000.0, -1000.0,
    ];
    vec![
        Host::small(rng, 7, 5),
        Host {
            rows: 4,
            cols: 3,
            data: huge,
        },
        Host::small(rng, 3, 1),
        Host::small(rng, 0, 4),
        Host::small(rng, 2, 17),
    ]
}

/// `(max_j x[i, j], sum_j exp(x[i, j] - max))` of row `i`.
fn row_max_and_sum(x: &Host, i: usize) -> (f64, f64) {
    let max = (0..x.cols)
        .map(|j| x.at(i, j))
        .fold(f64::NEG_INFINITY, f64::max);
    let sum = (0..x.cols).map(|j| (x.at(i, j) - max).exp()).sum();
    (max, sum)
}

fn softmax_reference(x: &Host) -> Host {
    let stats: Vec<_> = (0..x.rows).map(|i| row_max_and_sum(x, i)).collect();
    Host::from_fn(x.rows, x.cols, |i, j| {
        (x.at(i, j) - stats[i].0).exp() / stats[i].1
    })
}

fn log_softmax_reference(x: &Host) -> Host {
    let stats: Vec<_> = (0..x.rows).map(|i| row_max_and_sum(x, i)).collect();
    Host::from_fn(x.rows, x.cols, |i, j| {
        x.at(i, j) - stats[i].0 - stats[i].1.ln()
    })
}

fn check_softmax_rows<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(15);
    let tol = tolerance::<B>();
    for x in logit_cases(&mut rng) {
        let mut m = x.upload(backend);
        backend.softmax_rows(&mut m);
        let got = download(backend, &m);
        assert_close(
            &got,
            &softmax_reference(&x),
            tol,
            format_args!("softmax_rows of {x:?}"),
        );
        for i in 0..got.rows {
            let sum: f64 = (0..got.cols).map(|j| got.at(i, j)).sum();
            assert!(
                agrees(sum, 1.0, tol),
                "softmax_rows: row {i} of {x:?} sums to {sum}"
            );
        }
    }
}

fn check_log_softmax_rows<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(16);
    for x in logit_cases(&mut rng) {
        let mut m = x.upload(backend);
        backend.log_softmax_rows(&mut m);
        let got = download(backend, &m);
        let want = log_softmax_reference(&x);
        assert_close(
            &got,
            &want,
            tolerance::<B>(),
            format_args!("log_softmax_rows of {x:?}"),
        );
    }
}

fn check_softmax_cross_entropy<B: LossKernels>(backend: &B) {
    let mut rng = Lcg::new(17);
    let tol = tolerance::<B>();
    for x in logit_cases(&mut rng) {
        // On the +-1000 rows these targets give losses from ln 3 up to 1000.
        let targets: Vec<usize> = (0..x.rows).map(|r| r % x.cols).collect();
        let log_p = log_softmax_reference(&x);
        let want_loss: f64 = targets
            .iter()
            .enumerate()
            .map(|(r, &t)| -log_p.at(r, t))
            .sum();
        let p = softmax_reference(&x);
        let want_grad = Host::from_fn(x.rows, x.cols, |i, j| {
            p.at(i, j) - f64::from(u8::from(j == targets[i]))
        });

        // The gradient starts as NaN: every element must be written.
        let mut grad = Host::filled(x.rows, x.cols, f64::NAN).upload(backend);
        let loss = backend
            .softmax_cross_entropy(&x.upload(backend), &targets, &mut grad)
            .to_f64();
        assert!(
            agrees(loss, want_loss, tol),
            "softmax_cross_entropy of {x:?}: loss {loss}, expected {want_loss}"
        );
        let got = download(backend, &grad);
        assert_close(
            &got,
            &want_grad,
            tol,
            format_args!("softmax_cross_entropy gradient of {x:?}"),
        );
        // The value alone (evaluation): the same loss, nothing else written.
        let value = backend
            .cross_entropy_sum(&x.upload(backend), &targets)
            .to_f64();
        assert!(
            agrees(value, want_loss, tol),
            "cross_entropy_sum of {x:?}: {value}, expected {want_loss}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Per-row gather and scatter-add.
// ---------------------------------------------------------------------------------------------

/// `(rows, cols)` of the per-row cases: empty, one entry, and a column picked in every row.
const PER_ROW: [(usize, usize); 4] = [(0, 3), (1, 1), (4, 7), (17, 5)];

fn check_gather_per_row<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(18);
    for (rows, cols) in PER_ROW {
        let src = Host::small(&mut rng, rows, cols);
        let picks: Vec<usize> = (0..rows).map(|r| (r * 5 + 2) % cols).collect();
        let mut out = Host::filled(rows, 1, f64::NAN).upload(backend);
        backend.gather_per_row(&mut out, &src.upload(backend), &picks);
        let want = Host::from_fn(rows, 1, |r, _| src.at(r, picks[r]));
        assert_exact(
            &download(backend, &out),
            &want,
            format_args!("gather_per_row {rows}x{cols}"),
        );
    }
}

fn check_scatter_add_per_row_accumulates<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(19);
    for (rows, cols) in PER_ROW {
        let dst = Host::small(&mut rng, rows, cols);
        let src = Host::small(&mut rng, rows, 1);
        let picks: Vec<usize> = (0..rows).map(|r| (r * 3 + 1) % cols).collect();
        let mut got = dst.upload(backend);
        backend.scatter_add_per_row(&mut got, &picks, &src.upload(backend));
        let want = Host::from_fn(rows, cols, |r, j| {
            dst.at(r, j) + if j == picks[r] { src.at(r, 0) } else { 0.0 }
        });
        assert_exact(
            &download(backend, &got),
            &want,
            format_args!("scatter_add_per_row {rows}x{cols}"),
        );
    }
}

fn check_kernels_panic_with_their_name<B: LossKernels>(backend: &B) {
    let z = |r, c| backend.zeros(r, c);
    let m23 = z(2, 3);
    expect_panic("gather_per_row", || {
        backend.gather_per_row(&mut z(2, 1), &m23, &[0, 3])
    });
    expect_panic("gather_per_row", || {
        backend.gather_per_row(&mut z(1, 1), &m23, &[0, 1])
    });
    expect_panic("scatter_add_per_row", || {
        backend.scatter_add_per_row(&mut z(2, 3), &[0, 3], &z(2, 1))
    });
    expect_panic("scatter_add_per_row", || {
        backend.scatter_add_per_row(&mut z(2, 3), &[0, 1], &z(2, 2))
    });
    // A target out of range: the fused kernel names itself, the generic code the gather.
    let out_of_range = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.softmax_cross_entropy(&z(1, 3), &[3], &mut z(1, 3));
    }));
    assert!(
        out_of_range.is_err(),
        "softmax_cross_entropy: a target out of range did not panic"
    );
    let out_of_range = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        backend.cross_entropy_sum(&z(1, 3), &[3]);
    }));
    assert!(
        out_of_range.is_err(),
        "cross_entropy_sum: a target out of range did not panic"
    );
}

// ---------------------------------------------------------------------------------------------
// The backends under test.
// ---------------------------------------------------------------------------------------------

/// One module per `module => backend` entry, with one `#[test]` per check.
macro_rules! conformance_suite {
    ($($module:ident => $backend:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[test] fn softmax_rows() { check_softmax_rows(&$backend) }
            #[test] fn log_softmax_rows() { check_log_softmax_rows(&$backend) }
            #[test] fn softmax_cross_entropy() { check_softmax_cross_entropy(&$backend) }
            #[test] fn gather_per_row() { check_gather_per_row(&$backend) }
            #[test] fn scatter_add_per_row_accumulates() { check_scatter_add_per_row_accumulates(&$backend) }
            #[test] fn kernels_panic_with_their_name() { check_kernels_panic_with_their_name(&$backend) }
        }
    )+};
}

every_backend!(conformance_suite);
