//! Backend conformance: the checks every [`Backend`] must pass, written once, generic over `B`.
//!
//! Each check builds its inputs on the test's side as row-major `f64` data, uploads them with
//! `from_vec`, runs one kernel, reads the result back with `to_vec` and compares it with the
//! kernel's definition written here as plain loops over `f64`. Nothing is compared against
//! [`NaiveCpu`]: the reference backend is under test like any other.
//!
//! What passing proves, for one backend and one scalar type:
//! - `zeros`, `from_vec` (and its [`Error::Shape`] on a wrong length), `to_vec` and `shape`
//!   agree with each other on every shape, empty ones included.
//! - The row and column kernels (`copy_rows`; `copy_columns` for every row count and width in
//!   `0..=17` at several offsets, leaving the columns outside the block untouched; `gather_rows`
//!   with empty and repeated row lists; `gather_columns`, `scatter_add_columns` with repeated
//!   ids, `add_row`, `add_column_sums` into a non-zero accumulator), the element-wise kernels
//!   (`axpy`, `scale`, `mul` on every shape up to `17 x 17`, `clamp` keeping NaN,
//!   `sum_squares`) and every [`Activation`] forward and backward match their definitions.
//!   Outputs that must be overwritten start as NaN.
//! - `softmax_rows`, `log_softmax_rows` and `softmax_cross_entropy` (loss and `p - onehot`)
//!   match their definitions and stay finite for logits of +-1000, which overflow or underflow
//!   `exp` without the max shift; softmax rows sum to 1.
//! - A shape misuse that reaches a kernel panics with the kernel's name.
//!
//! Exactness: inputs are small integers in `-4..=4` or short dyadic fractions, so every sum and
//! product is exact in f32 and f64, and the arithmetic kernels are compared with `==`. Only
//! results that go through `tanh`, `exp` or `ln` are compared with a tolerance, [`tolerance`]:
//! 32 epsilons of the scalar type relative to `max(1, |expected|)`, that is about `3.8e-6` for
//! f32 and `7.1e-15` for f64.
//!
//! GEMM is checked in `backend_conformance_gemm.rs`, the fused LSTM and GRU cells in
//! `backend_conformance_cells.rs`, the optimiser kernel in `backend_conformance_update.rs`; the
//! test-side helpers they share are in `common/conformance.rs`.
//!
//! A new backend joins by adding one line per scalar type to the list of `every_backend!` in
//! `common/conformance.rs`, `module_name => backend_value` (and one to the call in
//! `backend_conformance_cells.rs`). Every check then runs as a `#[test]` in that module:
//! `cargo test --test backend_conformance module_name::`.

#[path = "common/conformance.rs"]
#[macro_use]
mod conformance;

use conformance::{Host, Lcg, assert_close, assert_exact, download, expect_panic, tolerance};
use recurrent::{Activation, Backend, Error, Scalar, Transpose};

/// Every [`Activation`] variant (the exhaustive matches in the references below break the build
/// when a variant is added, as a reminder to list it here).
const ACTIVATIONS: [Activation; 4] = [
    Activation::Identity,
    Activation::Tanh,
    Activation::Sigmoid,
    Activation::Relu,
];

// ---------------------------------------------------------------------------------------------
// Storage: zeros, from_vec, to_vec, shape.
// ---------------------------------------------------------------------------------------------

/// The last two are large enough for `Cpu` to split the row kernels (`add_row`,
/// `add_column_sums`) across threads, the last the element-wise ones too (`axpy`, `scale`).
const SHAPES: [(usize, usize); 9] = [
    (0, 0),
    (0, 3),
    (3, 0),
    (1, 1),
    (4, 7),
    (17, 1),
    (17, 17),
    (181, 182),
    (513, 520),
];

fn check_zeros<B: Backend>(backend: &B) {
    for (rows, cols) in SHAPES {
        let z = backend.zeros(rows, cols);
        assert_eq!(backend.shape(&z), (rows, cols), "zeros: shape");
        let got = download(backend, &z);
        assert_exact(
            &got,
            &Host::filled(rows, cols, 0.0),
            format_args!("zeros {rows}x{cols}"),
        );
    }
}

fn check_from_vec_round_trip<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(1);
    for (rows, cols) in SHAPES {
        let host = Host::small(&mut rng, rows, cols);
        let m = host.upload(backend);
        assert_eq!(backend.shape(&m), (rows, cols), "from_vec: shape");
        // `to_vec` gives the elements back in the order they were given: row-major.
        let got = download(backend, &m);
        assert_exact(
            &got,
            &host,
            format_args!("from_vec then to_vec, {rows}x{cols}"),
        );
    }
}

fn check_from_vec_rejects_wrong_length<B: Backend>(backend: &B) {
    for (rows, cols, len) in [
        (2, 3, 5),
        (2, 3, 7),
        (0, 3, 1),
        (3, 0, 1),
        (1, 1, 0),
        (4, 4, 0),
    ] {
        let data = vec![B::Scalar::of(1.0); len];
        let result = backend.from_vec(rows, cols, data);
        assert!(
            matches!(result, Err(Error::Shape { .. })),
            "from_vec({rows}, {cols}) with {len} elements: {result:?}, expected Err(Error::Shape)"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Row and column kernels.
// ---------------------------------------------------------------------------------------------

fn check_copy_rows<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(5);
    // (dst rows, src rows, cols, dst_row, src_row, count)
    let cases = [
        (5, 4, 3, 1, 0, 4),
        (6, 6, 5, 0, 0, 6),
        (7, 3, 2, 6, 2, 1),
        (4, 4, 3, 2, 1, 0),
        (3, 5, 0, 1, 2, 2),
        (9, 8, 17, 3, 3, 5),
    ];
    for (dst_rows, src_rows, cols, dst_row, src_row, count) in cases {
        // Recognisable values outside -4..=4, so that an untouched row is told from a copied one.
        let dst = Host::from_fn(dst_rows, cols, |i, j| 100.0 + (i * cols + j) as f64);
        let src = Host::small(&mut rng, src_rows, cols);
        let mut want = dst.clone();
        for r in 0..count {
            for j in 0..cols {
                *want.at_mut(dst_row + r, j) = src.at(src_row + r, j);
            }
        }
        let mut dst_dev = dst.upload(backend);
        backend.copy_rows(&mut dst_dev, dst_row, &src.upload(backend), src_row, count);
        let got = download(backend, &dst_dev);
        let case = (dst_rows, src_rows, cols, dst_row, src_row, count);
        assert_exact(&got, &want, format_args!("copy_rows {case:?}"));
    }
}

/// One `copy_columns` of the block `src_col .. src_col + width` of a fresh `rows x src_cols`
/// matrix over `dst_col ..` of a `rows x dst_cols` one. The destination block starts as NaN (it
/// must be overwritten), the rest as recognisable values outside `-4..=4` (it must stay).
fn copy_columns_case<B: Backend>(
    backend: &B,
    rng: &mut Lcg,
    rows: usize,
    (dst_cols, dst_col): (usize, usize),
    (src_cols, src_col): (usize, usize),
    width: usize,
) {
    let in_block = |j: usize| (dst_col..dst_col + width).contains(&j);
    let dst = Host::from_fn(rows, dst_cols, |i, j| {
        if in_block(j) {
            f64::NAN
        } else {
            100.0 + (i * dst_cols + j) as f64
        }
    });
    let src = Host::small(rng, rows, src_cols);
    let want = Host::from_fn(rows, dst_cols, |i, j| {
        if in_block(j) {
            src.at(i, src_col + j - dst_col)
        } else {
            dst.at(i, j)
        }
    });
    let mut dst_dev = dst.upload(backend);
    backend.copy_columns(&mut dst_dev, dst_col, &src.upload(backend), src_col, width);
    let got = download(backend, &dst_dev);
    let case = (rows, dst_cols, dst_col, src_cols, src_col, width);
    assert_exact(
        &got,
        &want,
        format_args!("copy_columns (rows, dst_cols, dst_col, src_cols, src_col, width) {case:?}"),
    );
}

/// Every `rows` and `width` in `0..=17`, with the block at the left edge, the right edge or
/// inside each matrix; then a few odd large blocks.
fn check_copy_columns<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(18);
    // (dst_col, columns right of the dst block, src_col, columns right of the src block)
    let placements = [(0, 0, 0, 0), (0, 3, 2, 0), (5, 0, 0, 1), (1, 2, 3, 4)];
    for rows in 0..=17 {
        for width in 0..=17 {
            for (dst_col, dst_right, src_col, src_right) in placements {
                let dst = (dst_col + width + dst_right, dst_col);
                let src = (src_col + width + src_right, src_col);
                copy_columns_case(backend, &mut rng, rows, dst, src, width);
            }
        }
    }
    // (rows, (dst_cols, dst_col), (src_cols, src_col), width)
    for (rows, dst, src, width) in [
        (129, (70, 33), (37, 0), 37),
        (33, (65, 0), (129, 64), 65),
        (1, (200, 67), (133, 1), 131),
        (47, (9, 4), (5, 0), 5),
    ] {
        copy_columns_case(backend, &mut rng, rows, dst, src, width);
    }
}

/// Table shapes `(R, V)` and id lists for the embedding kernels, with repeats and empty lists.
fn embedding_cases(rng: &mut Lcg) -> Vec<((usize, usize), Vec<usize>)> {
    let mut cases = vec![
        ((5, 7), vec![]),
        ((5, 7), vec![0, 6, 2, 2, 6, 0, 1]),
        ((1, 1), vec![0, 0, 0]),
    ];
    // The last three span more than one of `Cpu`'s blocks of 16 table rows, with a partial one;
    // the last is large enough for `Cpu` to split the table's rows across threads, mid-block.
    for (r, v, n) in [
        (3, 4, 9),
        (17, 3, 5),
        (8, 33, 40),
        (37, 7, 200),
        (21, 70, 130),
        (301, 7, 120),
    ] {
        cases.push(((r, v), (0..n).map(|_| rng.below(v)).collect()));
    }
    cases
}

fn check_gather_columns<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(6);
    for ((r, v), ids) in embedding_cases(&mut rng) {
        let table = Host::small(&mut rng, r, v);
        let want = Host::from_fn(ids.len(), r, |row, j| table.at(j, ids[row]));
        let mut out = Host::filled(ids.len(), r, f64::NAN).upload(backend);
        backend.gather_columns(&mut out, &table.upload(backend), &ids);
        let got = download(backend, &out);
        assert_exact(
            &got,
            &want,
            format_args!("gather_columns table {r}x{v}, ids {ids:?}"),
        );
    }
}

/// `src` shapes `(m, c)` and row lists for `gather_rows`: every `m` and `c` in `0..=17` with a
/// random list (repeats likely, empty for some), explicit empty, repeated and reversed lists, and
/// odd large sizes.
fn gather_rows_cases(rng: &mut Lcg) -> Vec<((usize, usize), Vec<usize>)> {
    let mut cases = vec![
        ((5, 3), vec![]),
        ((5, 3), vec![4, 4, 4, 0, 0]),
        ((1, 17), vec![0, 0, 0, 0]),
        ((33, 129), (0..33).rev().collect()),
    ];
    for m in 0..=17 {
        for c in 0..=17 {
            let n = if m == 0 { 0 } else { rng.below(2 * m + 1) };
            cases.push(((m, c), (0..n).map(|_| rng.below(m)).collect()));
        }
    }
    cases.push(((129, 33), (0..70).map(|_| rng.below(129)).collect()));
    cases
}

fn check_gather_rows<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(19);
    for ((m, c), rows) in gather_rows_cases(&mut rng) {
        let src = Host::small(&mut rng, m, c);
        let want = Host::from_fn(rows.len(), c, |r, j| src.at(rows[r], j));
        // Every element of `out` must be written.
        let mut out = Host::filled(rows.len(), c, f64::NAN).upload(backend);
        backend.gather_rows(&mut out, &src.upload(backend), &rows);
        let got = download(backend, &out);
        assert_exact(
            &got,
            &want,
            format_args!("gather_rows src {m}x{c}, rows {rows:?}"),
        );
    }
}

fn check_scatter_add_columns_accumulates<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(7);
    for ((r, v), ids) in embedding_cases(&mut rng) {
        // The table starts non-zero: the kernel adds, it does not overwrite.
        let table = Host::small(&mut rng, r, v);
        let src = Host::small(&mut rng, ids.len(), r);
        let mut want = table.clone();
        for (row, &id) in ids.iter().enumerate() {
            for j in 0..r {
                *want.at_mut(j, id) += src.at(row, j);
            }
        }
        let mut table_dev = table.upload(backend);
        backend.scatter_add_columns(&mut table_dev, &ids, &src.upload(backend));
        let got = download(backend, &table_dev);
        assert_exact(
            &got,
            &want,
            format_args!("scatter_add_columns table {r}x{v}, ids {ids:?}"),
        );
    }
}

fn check_add_row<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(8);
    for (rows, cols) in SHAPES {
        let m = Host::small(&mut rng, rows, cols);
        let row = Host::small(&mut rng, 1, cols);
        let want = Host::from_fn(rows, cols, |i, j| m.at(i, j) + row.at(0, j));
        let mut m_dev = m.upload(backend);
        backend.add_row(&mut m_dev, &row.upload(backend));
        let got = download(backend, &m_dev);
        assert_exact(&got, &want, format_args!("add_row {rows}x{cols}"));
    }
}

fn check_add_column_sums_accumulates<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(9);
    for (rows, cols) in SHAPES {
        let m = Host::small(&mut rng, rows, cols);
        // The accumulator starts non-zero: the sums are added to it.
        let acc = Host::small(&mut rng, 1, cols);
        let want = Host::from_fn(1, cols, |_, j| {
            acc.at(0, j) + (0..rows).map(|i| m.at(i, j)).sum::<f64>()
        });
        let mut acc_dev = acc.upload(backend);
        backend.add_column_sums(&mut acc_dev, &m.upload(backend));
        let got = download(backend, &acc_dev);
        assert_exact(&got, &want, format_args!("add_column_sums {rows}x{cols}"));
    }
}

// ---------------------------------------------------------------------------------------------
// Element-wise kernels.
// ---------------------------------------------------------------------------------------------

fn check_axpy<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(10);
    for (rows, cols) in SHAPES {
        for alpha in [0.0, 1.0, -1.0, 0.5, 3.0] {
            let y = Host::small(&mut rng, rows, cols);
            let x = Host::small(&mut rng, rows, cols);
            let want = Host::from_fn(rows, cols, |i, j| y.at(i, j) + alpha * x.at(i, j));
            let mut y_dev = y.upload(backend);
            backend.axpy(&mut y_dev, B::Scalar::of(alpha), &x.upload(backend));
            let got = download(backend, &y_dev);
            assert_exact(
                &got,
                &want,
                format_args!("axpy {rows}x{cols} alpha={alpha}"),
            );
        }
    }
}

fn check_scale<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(11);
    for (rows, cols) in SHAPES {
        for alpha in [0.0, 1.0, -2.0, 0.25] {
            let m = Host::small(&mut rng, rows, cols);
            let want = Host::from_fn(rows, cols, |i, j| alpha * m.at(i, j));
            let mut m_dev = m.upload(backend);
            backend.scale(&mut m_dev, B::Scalar::of(alpha));
            let got = download(backend, &m_dev);
            assert_exact(
                &got,
                &want,
                format_args!("scale {rows}x{cols} alpha={alpha}"),
            );
        }
    }
}

/// Every shape up to `17 x 17` and a few odd large ones.
fn check_mul<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(20);
    let sizes = (0..=17).flat_map(|rows| (0..=17).map(move |cols| (rows, cols)));
    // The last is large enough for `Cpu` to split it across threads.
    for (rows, cols) in sizes.chain([(33, 65), (129, 31), (1, 1000), (301, 500)]) {
        let a = Host::small(&mut rng, rows, cols);
        let b = Host::small(&mut rng, rows, cols);
        let want = Host::from_fn(rows, cols, |i, j| a.at(i, j) * b.at(i, j));
        let mut a_dev = a.upload(backend);
        backend.mul(&mut a_dev, &b.upload(backend));
        let got = download(backend, &a_dev);
        assert_exact(&got, &want, format_args!("mul {rows}x{cols}"));
    }
}

fn check_clamp_keeps_nan<B: Backend>(backend: &B) {
    let (inf, nan) = (f64::INFINITY, f64::NAN);
    let data = vec![
        nan, -inf, inf, -1.5, 2.0, -1.75, 2.25, 0.0, -4.0, 4.0, nan, 1.0,
    ];
    let m = Host {
        rows: 3,
        cols: 4,
        data,
    };
    // The same values over and over, enough of them for `Cpu` to split the clamp across threads.
    let long = Host::from_fn(600, 500, |i, j| m.at(i % 3, j % 4));
    for m in [&m, &long] {
        for (lo, hi) in [(-1.5, 2.0), (0.5, 0.5), (-inf, 0.0)] {
            let want = Host::from_fn(m.rows, m.cols, |i, j| {
                let x = m.at(i, j);
                if x.is_nan() { x } else { x.max(lo).min(hi) }
            });
            let mut m_dev = m.upload(backend);
            backend.clamp(&mut m_dev, B::Scalar::of(lo), B::Scalar::of(hi));
            let got = download(backend, &m_dev);
            let size = (m.rows, m.cols);
            assert_exact(
                &got,
                &want,
                format_args!("clamp {size:?} into [{lo}, {hi}]"),
            );
        }
    }
}

fn check_sum_squares<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(12);
    for (rows, cols) in SHAPES.into_iter().chain([(33, 65)]) {
        let m = Host::small(&mut rng, rows, cols);
        let want: f64 = m.data.iter().map(|x| x * x).sum();
        let got = backend.sum_squares(&m.upload(backend)).to_f64();
        assert_eq!(got, want, "sum_squares {rows}x{cols}");
    }
}

/// `act(x)` by the definition.
fn activation_reference(act: Activation, x: f64) -> f64 {
    match act {
        Activation::Identity => x,
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        Activation::Relu => x.max(0.0),
    }
}

/// `act'(x)` from the saved output `y = act(x)`.
fn slope_reference(act: Activation, y: f64) -> f64 {
    match act {
        Activation::Identity => 1.0,
        Activation::Tanh => 1.0 - y * y,
        Activation::Sigmoid => y * (1.0 - y),
        Activation::Relu => f64::from(u8::from(y > 0.0)),
    }
}

fn check_activate_every_variant<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(13);
    // Row 0: saturating and exactly-representable specials; rows 1 and 2: multiples of 1/4.
    let specials = [
        0.0, 0.5, -0.5, 1.0, -1.0, 2.25, -3.75, 20.0, -20.0, 100.0, -100.0, 1000.0, -1000.0,
    ];
    let x = Host::from_fn(3, specials.len(), |i, j| {
        if i == 0 {
            specials[j]
        } else {
            rng.small() / 4.0
        }
    });
    for act in ACTIVATIONS {
        let tol = match act {
            Activation::Identity | Activation::Relu => 0.0,
            Activation::Tanh | Activation::Sigmoid => tolerance::<B>(),
        };
        let want = Host::from_fn(x.rows, x.cols, |i, j| activation_reference(act, x.at(i, j)));
        let mut m = x.upload(backend);
        backend.activate(&mut m, act);
        let got = download(backend, &m);
        assert_close(&got, &want, tol, format_args!("activate {act:?}"));
    }
}

/// A saved output `y` that `act` can produce, dyadic so that the slope is exact in f32.
fn saved_output(act: Activation, rng: &mut Lcg) -> f64 {
    match act {
        Activation::Identity => rng.small(),
        Activation::Tanh => rng.below(17) as f64 / 8.0 - 1.0,
        Activation::Sigmoid => rng.below(17) as f64 / 16.0,
        // Includes y = 0, where the slope is 0.
        Activation::Relu => rng.below(5) as f64 / 2.0,
    }
}

fn check_activate_backward_every_variant<B: Backend>(backend: &B) {
    let mut rng = Lcg::new(14);
    for act in ACTIVATIONS {
        for (rows, cols) in SHAPES {
            let y = Host::from_fn(rows, cols, |_, _| saved_output(act, &mut rng));
            let d = Host::small(&mut rng, rows, cols);
            let want = Host::from_fn(rows, cols, |i, j| {
                d.at(i, j) * slope_reference(act, y.at(i, j))
            });
            let mut d_dev = d.upload(backend);
            backend.activate_backward(&mut d_dev, &y.upload(backend), act);
            let got = download(backend, &d_dev);
            assert_exact(
                &got,
                &want,
                format_args!("activate_backward {act:?} {rows}x{cols}"),
            );
        }
    }
}

// ---------------------------------------------------------------------------------------------
// Shape misuse: a bug in the crate, which a kernel reports by panicking with its name.
// ---------------------------------------------------------------------------------------------

fn check_kernels_panic_with_their_name<B: Backend>(backend: &B) {
    let (one, z) = (B::Scalar::of(1.0), |r, c| backend.zeros(r, c));
    let (m23, m32) = (z(2, 3), z(3, 2));
    let no = Transpose::No;
    expect_panic("gemm", || {
        backend.gemm(&mut z(2, 2), one, &m23, no, &m23, no, one)
    });
    expect_panic("gemm", || {
        backend.gemm(&mut z(3, 3), one, &m23, no, &m32, no, one)
    });
    expect_panic("copy_rows", || {
        backend.copy_rows(&mut z(2, 3), 1, &m23, 0, 2)
    });
    expect_panic("copy_columns", || {
        backend.copy_columns(&mut z(3, 3), 0, &m23, 0, 2)
    });
    expect_panic("copy_columns", || {
        backend.copy_columns(&mut z(2, 3), 2, &m23, 0, 2)
    });
    expect_panic("gather_rows", || {
        backend.gather_rows(&mut z(2, 2), &m23, &[0, 1])
    });
    expect_panic("gather_rows", || {
        backend.gather_rows(&mut z(1, 3), &m23, &[2])
    });
    expect_panic("mul", || backend.mul(&mut z(2, 3), &m32));
    expect_panic("gather_columns", || {
        backend.gather_columns(&mut z(1, 2), &m23, &[3])
    });
    expect_panic("scatter_add_columns", || {
        backend.scatter_add_columns(&mut z(2, 3), &[3], &z(1, 2))
    });
    expect_panic("add_row", || backend.add_row(&mut z(2, 3), &z(1, 2)));
    expect_panic("add_column_sums", || {
        backend.add_column_sums(&mut z(1, 2), &m23)
    });
    expect_panic("axpy", || backend.axpy(&mut z(2, 3), one, &m32));
    expect_panic("activate_backward", || {
        backend.activate_backward(&mut z(2, 3), &m32, Activation::Tanh)
    });
}

// ---------------------------------------------------------------------------------------------
// The backends under test.
// ---------------------------------------------------------------------------------------------

/// One module per `module => backend` entry, with one `#[test]` per check.
macro_rules! conformance_suite {
    ($($module:ident => $backend:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[test] fn zeros() { check_zeros(&$backend) }
            #[test] fn from_vec_round_trip() { check_from_vec_round_trip(&$backend) }
            #[test] fn from_vec_rejects_wrong_length() { check_from_vec_rejects_wrong_length(&$backend) }
            #[test] fn copy_rows() { check_copy_rows(&$backend) }
            #[test] fn copy_columns() { check_copy_columns(&$backend) }
            #[test] fn gather_rows() { check_gather_rows(&$backend) }
            #[test] fn gather_columns() { check_gather_columns(&$backend) }
            #[test] fn scatter_add_columns_accumulates() { check_scatter_add_columns_accumulates(&$backend) }
            #[test] fn add_row() { check_add_row(&$backend) }
            #[test] fn add_column_sums_accumulates() { check_add_column_sums_accumulates(&$backend) }
            #[test] fn axpy() { check_axpy(&$backend) }
            #[test] fn scale() { check_scale(&$backend) }
            #[test] fn mul() { check_mul(&$backend) }
            #[test] fn clamp_keeps_nan() { check_clamp_keeps_nan(&$backend) }
            #[test] fn sum_squares() { check_sum_squares(&$backend) }
            #[test] fn activate_every_variant() { check_activate_every_variant(&$backend) }
            #[test] fn activate_backward_every_variant() { check_activate_backward_every_variant(&$backend) }
            #[test] fn kernels_panic_with_their_name() { check_kernels_panic_with_their_name(&$backend) }
        }
    )+};
}

every_backend!(conformance_suite);
