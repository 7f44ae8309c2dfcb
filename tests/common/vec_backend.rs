//! `VecBackend`: a third backend, written in the tests on the core [`Backend`] trait alone, as
//! the proof that the trait is the whole seam. It declares [`CellKernels`],
//! [`LossKernels`] and [`UpdateKernels`] with empty bodies, so the cells' equations, the loss and
//! the optimiser updates it runs are the crate's generic code, on its 25 operations.
//!
//! It shares no code with `NaiveCpu` or `DenseMatrix`: each operation is written from its doc
//! contract on a storage of its own, [`VecMatrix`], column-major (element `(i, j)` at
//! `data[j * rows + i]`), so that generic code which assumed the row-major layout of
//! `DenseMatrix` would fail here. Only the trait's interface is row-major: `from_vec` takes the
//! elements row by row and `to_vec` gives them back so.
//!
//! GEMM materialises `op(A)` and `op(B)` and multiplies column by column; the prepared operand,
//! [`VecPrepared`], is `op(B)` materialised once. Every operation checks its operands' shapes
//! and indices first and panics with a message that starts with its name.
//!
//! Included by `common/conformance.rs` (the conformance suites' `every_backend!` list) and by
//! path from the suites that take one backend at a time: `gradcheck.rs`, `parity.rs`,
//! `backend_conformance_finite.rs`.

use recurrent::{
    Activation, Backend, CellKernels, Error, LossKernels, Result, Scalar, Transpose, UpdateKernels,
};
use std::borrow::Cow;
use std::marker::PhantomData;

/// The backend: stateless, for `f32` or `f64`.
#[derive(Debug, Clone, Copy, Default)]
pub struct VecBackend<T> {
    scalar: PhantomData<T>,
}

impl<T> VecBackend<T> {
    pub fn new() -> Self {
        VecBackend {
            scalar: PhantomData,
        }
    }
}

/// A `rows x cols` matrix stored column by column: column `j` is
/// `data[j * rows .. (j + 1) * rows]`.
#[derive(Debug, Clone)]
pub struct VecMatrix<T> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Scalar> VecMatrix<T> {
    fn zeros(rows: usize, cols: usize) -> Self {
        VecMatrix {
            rows,
            cols,
            data: vec![T::zero(); rows * cols],
        }
    }

    /// The matrix whose element `(i, j)` is `f(i, j)`, evaluated column by column.
    fn from_fn(rows: usize, cols: usize, mut f: impl FnMut(usize, usize) -> T) -> Self {
        let mut data = Vec::with_capacity(rows * cols);
        for j in 0..cols {
            data.extend((0..rows).map(|i| f(i, j)));
        }
        VecMatrix { rows, cols, data }
    }

    fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    fn at(&self, i: usize, j: usize) -> T {
        self.data[j * self.rows + i]
    }

    fn at_mut(&mut self, i: usize, j: usize) -> &mut T {
        &mut self.data[j * self.rows + i]
    }

    fn column(&self, j: usize) -> &[T] {
        &self.data[j * self.rows..(j + 1) * self.rows]
    }

    fn column_mut(&mut self, j: usize) -> &mut [T] {
        &mut self.data[j * self.rows..(j + 1) * self.rows]
    }

    /// `op(self)`: borrowed as it is, or a transposed copy.
    fn op(&self, t: Transpose) -> Cow<'_, Self> {
        match t {
            Transpose::No => Cow::Borrowed(self),
            Transpose::Yes => Cow::Owned(VecMatrix::from_fn(self.cols, self.rows, |i, j| {
                self.at(j, i)
            })),
        }
    }
}

/// A GEMM right-hand operand `op(B)` (`k x n`), materialised: its own copy, untransposed.
#[derive(Debug, Clone)]
pub struct VecPrepared<T> {
    op_b: VecMatrix<T>,
}

// ---------------------------------------------------------------------------------------------
// Checks, each panicking with the operation's name.
// ---------------------------------------------------------------------------------------------

fn same_shape<T: Scalar>(op: &str, a: &VecMatrix<T>, b: &VecMatrix<T>) {
    assert_eq!(
        a.shape(),
        b.shape(),
        "{op}: the operands' shapes (rows, cols) differ"
    );
}

/// Every index below `bound`, checked before anything is written.
fn check_indices(op: &str, what: &str, indices: &[usize], bound: usize) {
    if let Some((at, bad)) = indices.iter().enumerate().find(|&(_, &i)| i >= bound) {
        panic!("{op}: {what} {bad} at position {at} is not below {bound}");
    }
}

/// The block `start .. start + len` lies within `0 .. size`.
fn check_range(op: &str, what: &str, start: usize, len: usize, size: usize) {
    assert!(
        start.checked_add(len).is_some_and(|end| end <= size),
        "{op}: {what} {start}..{start}+{len} does not fit in {size}"
    );
}

// ---------------------------------------------------------------------------------------------
// The kernels behind the trait methods.
// ---------------------------------------------------------------------------------------------

/// `C <- alpha * A * B + beta * C` for `A` (`m x k`), `B` (`k x n`), `C` (`m x n`), shapes
/// checked by the caller. Column `j` of `A * B` is `sum_p B[p, j] * A[:, p]`, accumulated over
/// `p` in order, so every element is its dot product summed left to right. With `beta = 0`,
/// `C` is not read.
fn product<T: Scalar>(c: &mut VecMatrix<T>, alpha: T, a: &VecMatrix<T>, b: &VecMatrix<T>, beta: T) {
    let mut acc = vec![T::zero(); a.rows];
    for j in 0..b.cols {
        acc.fill(T::zero());
        for (p, &b_pj) in b.column(j).iter().enumerate() {
            for (s, &a_ip) in acc.iter_mut().zip(a.column(p)) {
                *s = *s + a_ip * b_pj;
            }
        }
        for (out, &s) in c.column_mut(j).iter_mut().zip(&acc) {
            *out = if beta == T::zero() {
                alpha * s
            } else {
                alpha * s + beta * *out
            };
        }
    }
}

/// `a[i] <- f(a[i], b[i])` for every element, same shapes.
fn zip_with<T: Scalar>(op: &str, a: &mut VecMatrix<T>, b: &VecMatrix<T>, f: impl Fn(T, T) -> T) {
    same_shape(op, a, b);
    for (x, &y) in a.data.iter_mut().zip(&b.data) {
        *x = f(*x, y);
    }
}

fn map<T: Scalar>(m: &mut VecMatrix<T>, f: impl Fn(T) -> T) {
    for x in &mut m.data {
        *x = f(*x);
    }
}

fn activation<T: Scalar>(act: Activation, x: T) -> T {
    match act {
        Activation::Identity => x,
        Activation::Tanh => x.tanh(),
        Activation::Sigmoid => T::one() / (T::one() + (-x).exp()),
        // A comparison, not `max(x, 0)`, which would turn NaN into 0.
        Activation::Relu => {
            if x < T::zero() {
                T::zero()
            } else {
                x
            }
        }
    }
}

/// The activation's derivative, from its output `y`.
fn slope<T: Scalar>(act: Activation, y: T) -> T {
    match act {
        Activation::Identity => T::one(),
        Activation::Tanh => T::one() - y * y,
        Activation::Sigmoid => y * (T::one() - y),
        Activation::Relu => {
            if y > T::zero() {
                T::one()
            } else {
                T::zero()
            }
        }
    }
}

/// Runs `f` on a copy of every row (rows are strided in column-major storage), then writes the
/// row back.
fn for_each_row<T: Scalar>(m: &mut VecMatrix<T>, mut f: impl FnMut(&mut [T])) {
    let mut row = vec![T::zero(); m.cols];
    for i in 0..m.rows {
        for (j, v) in row.iter_mut().enumerate() {
            *v = m.at(i, j);
        }
        f(&mut row);
        for (j, &v) in row.iter().enumerate() {
            *m.at_mut(i, j) = v;
        }
    }
}

fn row_max<T: Scalar>(row: &[T]) -> T {
    row.iter().fold(T::neg_infinity(), |max, &v| max.max(v))
}

/// `e^(x - max) / sum e^(x - max)`.
fn softmax<T: Scalar>(row: &mut [T]) {
    let max = row_max(row);
    let mut total = T::zero();
    for v in row.iter_mut() {
        *v = (*v - max).exp();
        total = total + *v;
    }
    for v in row.iter_mut() {
        *v = *v / total;
    }
}

/// `x - max - ln(sum e^(x - max))`.
fn log_softmax<T: Scalar>(row: &mut [T]) {
    let max = row_max(row);
    let total = row.iter().fold(T::zero(), |s, &v| s + (v - max).exp());
    let log_total = total.ln();
    for v in row.iter_mut() {
        *v = *v - max - log_total;
    }
}

// ---------------------------------------------------------------------------------------------
// The trait.
// ---------------------------------------------------------------------------------------------

impl<T: Scalar> Backend for VecBackend<T> {
    type Scalar = T;
    type Matrix = VecMatrix<T>;
    type Prepared = VecPrepared<T>;

    fn zeros(&self, rows: usize, cols: usize) -> VecMatrix<T> {
        VecMatrix::zeros(rows, cols)
    }

    fn from_vec(&self, rows: usize, cols: usize, data: Vec<T>) -> Result<VecMatrix<T>> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape {
                what: "VecBackend::from_vec (rows * cols elements)".to_string(),
                expected: format!("{rows} x {cols}"),
                given: format!("{} elements", data.len()),
            });
        }
        Ok(VecMatrix::from_fn(rows, cols, |i, j| data[i * cols + j]))
    }

    fn to_vec(&self, m: &VecMatrix<T>) -> Vec<T> {
        let cols = m.cols;
        (0..m.rows * cols)
            .map(|k| m.at(k / cols, k % cols))
            .collect()
    }

    fn shape(&self, m: &VecMatrix<T>) -> (usize, usize) {
        m.shape()
    }

    fn gemm(
        &self,
        c: &mut VecMatrix<T>,
        alpha: T,
        a: &VecMatrix<T>,
        ta: Transpose,
        b: &VecMatrix<T>,
        tb: Transpose,
        beta: T,
    ) {
        let (m, k) = ta.apply(a.shape());
        let (kb, n) = tb.apply(b.shape());
        assert_eq!(k, kb, "gemm: op(A) is {m} x {k}, op(B) is {kb} x {n}");
        assert_eq!(c.shape(), (m, n), "gemm: C is not {m} x {n}");
        product(c, alpha, &a.op(ta), &b.op(tb), beta);
    }

    fn prepare_rhs(&self, b: &VecMatrix<T>, tb: Transpose, _rows: usize) -> VecPrepared<T> {
        VecPrepared {
            op_b: b.op(tb).into_owned(),
        }
    }

    fn gemm_prepared(
        &self,
        c: &mut VecMatrix<T>,
        alpha: T,
        a: &VecMatrix<T>,
        b: &VecPrepared<T>,
        beta: T,
    ) {
        let ((m, k), (kb, n)) = (a.shape(), b.op_b.shape());
        assert_eq!(k, kb, "gemm_prepared: A is {m} x {k}, op(B) is {kb} x {n}");
        assert_eq!(c.shape(), (m, n), "gemm_prepared: C is not {m} x {n}");
        product(c, alpha, a, &b.op_b, beta);
    }

    fn copy_rows(
        &self,
        dst: &mut VecMatrix<T>,
        dst_row: usize,
        src: &VecMatrix<T>,
        src_row: usize,
        count: usize,
    ) {
        assert_eq!(dst.cols, src.cols, "copy_rows: column counts differ");
        check_range("copy_rows", "dst rows", dst_row, count, dst.rows);
        check_range("copy_rows", "src rows", src_row, count, src.rows);
        for j in 0..src.cols {
            let from = &src.column(j)[src_row..src_row + count];
            dst.column_mut(j)[dst_row..dst_row + count].copy_from_slice(from);
        }
    }

    fn copy_columns(
        &self,
        dst: &mut VecMatrix<T>,
        dst_col: usize,
        src: &VecMatrix<T>,
        src_col: usize,
        width: usize,
    ) {
        assert_eq!(dst.rows, src.rows, "copy_columns: row counts differ");
        check_range("copy_columns", "dst columns", dst_col, width, dst.cols);
        check_range("copy_columns", "src columns", src_col, width, src.cols);
        // Columns are contiguous: the block is one slice on either side.
        let rows = src.rows;
        let from = &src.data[src_col * rows..(src_col + width) * rows];
        dst.data[dst_col * rows..(dst_col + width) * rows].copy_from_slice(from);
    }

    fn gather_rows(&self, out: &mut VecMatrix<T>, src: &VecMatrix<T>, rows: &[usize]) {
        let want = (rows.len(), src.cols);
        assert_eq!(out.shape(), want, "gather_rows: out is not {want:?}");
        check_indices("gather_rows", "row", rows, src.rows);
        for j in 0..src.cols {
            let from = src.column(j);
            for (o, &r) in out.column_mut(j).iter_mut().zip(rows) {
                *o = from[r];
            }
        }
    }

    fn mul(&self, a: &mut VecMatrix<T>, b: &VecMatrix<T>) {
        zip_with("mul", a, b, |x, y| x * y);
    }

    fn gather_columns(&self, out: &mut VecMatrix<T>, table: &VecMatrix<T>, ids: &[usize]) {
        let want = (ids.len(), table.rows);
        assert_eq!(out.shape(), want, "gather_columns: out is not {want:?}");
        check_indices("gather_columns", "id", ids, table.cols);
        for (r, &id) in ids.iter().enumerate() {
            for (j, &v) in table.column(id).iter().enumerate() {
                *out.at_mut(r, j) = v;
            }
        }
    }

    fn scatter_add_columns(&self, table: &mut VecMatrix<T>, ids: &[usize], src: &VecMatrix<T>) {
        let want = (ids.len(), table.rows);
        assert_eq!(
            src.shape(),
            want,
            "scatter_add_columns: src is not {want:?}"
        );
        check_indices("scatter_add_columns", "id", ids, table.cols);
        for (r, &id) in ids.iter().enumerate() {
            for (j, t) in table.column_mut(id).iter_mut().enumerate() {
                *t = *t + src.at(r, j);
            }
        }
    }

    fn add_row(&self, m: &mut VecMatrix<T>, row: &VecMatrix<T>) {
        assert_eq!(
            row.shape(),
            (1, m.cols),
            "add_row: row is not 1 x {}",
            m.cols
        );
        for (j, &b) in row.data.iter().enumerate() {
            for v in m.column_mut(j) {
                *v = *v + b;
            }
        }
    }

    fn add_column_sums(&self, acc: &mut VecMatrix<T>, m: &VecMatrix<T>) {
        let want = (1, m.cols);
        assert_eq!(acc.shape(), want, "add_column_sums: acc is not {want:?}");
        for (j, a) in acc.data.iter_mut().enumerate() {
            let sum = m.column(j).iter().fold(T::zero(), |s, &v| s + v);
            *a = *a + sum;
        }
    }

    fn axpy(&self, y: &mut VecMatrix<T>, alpha: T, x: &VecMatrix<T>) {
        zip_with("axpy", y, x, |yi, xi| yi + alpha * xi);
    }

    fn scale(&self, m: &mut VecMatrix<T>, alpha: T) {
        map(m, |v| alpha * v);
    }

    fn clamp(&self, m: &mut VecMatrix<T>, lo: T, hi: T) {
        // Comparisons, false for NaN, which stays.
        map(m, |v| {
            if v < lo {
                lo
            } else if v > hi {
                hi
            } else {
                v
            }
        });
    }

    fn sum_squares(&self, m: &VecMatrix<T>) -> T {
        m.data.iter().fold(T::zero(), |s, &v| s + v * v)
    }

    fn activate(&self, m: &mut VecMatrix<T>, act: Activation) {
        map(m, |x| activation(act, x));
    }

    fn activate_backward(&self, d: &mut VecMatrix<T>, y: &VecMatrix<T>, act: Activation) {
        zip_with("activate_backward", d, y, |di, yi| di * slope(act, yi));
    }

    fn softmax_rows(&self, m: &mut VecMatrix<T>) {
        for_each_row(m, softmax);
    }

    fn log_softmax_rows(&self, m: &mut VecMatrix<T>) {
        for_each_row(m, log_softmax);
    }

    fn gather_per_row(&self, out: &mut VecMatrix<T>, src: &VecMatrix<T>, cols: &[usize]) {
        assert_eq!(
            cols.len(),
            src.rows,
            "gather_per_row: not one column per row"
        );
        let want = (src.rows, 1);
        assert_eq!(out.shape(), want, "gather_per_row: out is not {want:?}");
        check_indices("gather_per_row", "column", cols, src.cols);
        for (r, &c) in cols.iter().enumerate() {
            out.data[r] = src.at(r, c);
        }
    }

    fn scatter_add_per_row(&self, dst: &mut VecMatrix<T>, cols: &[usize], src: &VecMatrix<T>) {
        let rows = dst.rows;
        assert_eq!(
            cols.len(),
            rows,
            "scatter_add_per_row: not one column per row"
        );
        let want = (rows, 1);
        assert_eq!(
            src.shape(),
            want,
            "scatter_add_per_row: src is not {want:?}"
        );
        check_indices("scatter_add_per_row", "column", cols, dst.cols);
        for (r, &c) in cols.iter().enumerate() {
            let v = dst.at_mut(r, c);
            *v = *v + src.data[r];
        }
    }
}

// The crate's generic code for the cells, the loss and the updates: nothing overridden.
impl<T: Scalar> CellKernels for VecBackend<T> {}
impl<T: Scalar> LossKernels for VecBackend<T> {}
impl<T: Scalar> UpdateKernels for VecBackend<T> {}
