//! `NaiveCpu`: the reference backend. Textbook loops, no tricks; every other backend is tested
//! against it.

use super::{Activation, Backend, DenseMatrix, Transpose, sigmoid};
use crate::error::Result;
use crate::scalar::Scalar;
use std::marker::PhantomData;

/// The reference CPU backend: plain loops over [`DenseMatrix`], for `f32` and `f64`.
///
/// It is slow on purpose: each kernel is the definition written as a loop, so that it can serve as
/// the oracle for faster backends.
#[derive(Debug, Clone, Copy, Default)]
pub struct NaiveCpu<T> {
    scalar: PhantomData<T>,
}

impl<T> NaiveCpu<T> {
    /// The backend (it holds no state).
    pub fn new() -> Self {
        NaiveCpu {
            scalar: PhantomData,
        }
    }
}

/// Element `(i, j)` of `op(m)`.
fn op_get<T: Scalar>(m: &DenseMatrix<T>, t: Transpose, i: usize, j: usize) -> T {
    match t {
        Transpose::No => m.get(i, j),
        Transpose::Yes => m.get(j, i),
    }
}

pub(crate) fn same_shape<T: Scalar>(op: &str, a: &DenseMatrix<T>, b: &DenseMatrix<T>) {
    assert_eq!(a.shape(), b.shape(), "{op}: operand shapes differ");
}

// The element-wise kernels' definitions, on slices: `Cpu` runs them on ranges of elements.

/// `a <- a * b`, element by element.
pub(crate) fn mul<T: Scalar>(a: &mut [T], b: &[T]) {
    for (ai, &bi) in a.iter_mut().zip(b) {
        *ai = *ai * bi;
    }
}

/// `y <- y + alpha * x`.
pub(crate) fn axpy<T: Scalar>(y: &mut [T], alpha: T, x: &[T]) {
    for (yi, &xi) in y.iter_mut().zip(x) {
        *yi = *yi + alpha * xi;
    }
}

/// `m <- alpha * m`.
pub(crate) fn scale<T: Scalar>(m: &mut [T], alpha: T) {
    for v in m {
        *v = alpha * *v;
    }
}

/// Each value limited to `[lo, hi]`, NaN kept.
pub(crate) fn clamp<T: Scalar>(m: &mut [T], lo: T, hi: T) {
    for v in m {
        if *v < lo {
            *v = lo;
        } else if *v > hi {
            *v = hi;
        }
    }
}

impl<T: Scalar> Backend for NaiveCpu<T> {
    type Scalar = T;
    type Matrix = DenseMatrix<T>;

    fn zeros(&self, rows: usize, cols: usize) -> DenseMatrix<T> {
        DenseMatrix::zeros(rows, cols)
    }

    fn from_vec(&self, rows: usize, cols: usize, data: Vec<T>) -> Result<DenseMatrix<T>> {
        DenseMatrix::from_vec(rows, cols, data)
    }

    fn to_vec(&self, m: &DenseMatrix<T>) -> Vec<T> {
        m.as_slice().to_vec()
    }

    fn shape(&self, m: &DenseMatrix<T>) -> (usize, usize) {
        m.shape()
    }

    fn gemm(
        &self,
        c: &mut DenseMatrix<T>,
        alpha: T,
        a: &DenseMatrix<T>,
        ta: Transpose,
        b: &DenseMatrix<T>,
        tb: Transpose,
        beta: T,
    ) {
        let (m, k) = ta.apply(a.shape());
        let (kb, n) = tb.apply(b.shape());
        assert_eq!(k, kb, "gemm: inner dimensions differ");
        assert_eq!(c.shape(), (m, n), "gemm: C has the wrong shape");
        for i in 0..m {
            for j in 0..n {
                let mut acc = T::zero();
                for p in 0..k {
                    acc = acc + op_get(a, ta, i, p) * op_get(b, tb, p, j);
                }
                let out = &mut c.as_mut_slice()[i * n + j];
                *out = if beta == T::zero() {
                    alpha * acc
                } else {
                    alpha * acc + beta * *out
                };
            }
        }
    }

    type Prepared = (DenseMatrix<T>, Transpose);

    fn prepare_rhs(
        &self,
        b: &DenseMatrix<T>,
        tb: Transpose,
        _rows: usize,
    ) -> (DenseMatrix<T>, Transpose) {
        (b.clone(), tb)
    }

    fn gemm_prepared(
        &self,
        c: &mut DenseMatrix<T>,
        alpha: T,
        a: &DenseMatrix<T>,
        (b, tb): &(DenseMatrix<T>, Transpose),
        beta: T,
    ) {
        self.gemm(c, alpha, a, Transpose::No, b, *tb, beta);
    }

    fn copy_rows(
        &self,
        dst: &mut DenseMatrix<T>,
        dst_row: usize,
        src: &DenseMatrix<T>,
        src_row: usize,
        count: usize,
    ) {
        assert_eq!(dst.cols(), src.cols(), "copy_rows: column counts differ");
        assert!(dst_row + count <= dst.rows(), "copy_rows: dst too short");
        assert!(src_row + count <= src.rows(), "copy_rows: src too short");
        for r in 0..count {
            for j in 0..src.cols() {
                dst.row_mut(dst_row + r)[j] = src.get(src_row + r, j);
            }
        }
    }

    fn copy_columns(
        &self,
        dst: &mut DenseMatrix<T>,
        dst_col: usize,
        src: &DenseMatrix<T>,
        src_col: usize,
        width: usize,
    ) {
        assert_eq!(dst.rows(), src.rows(), "copy_columns: row counts differ");
        assert!(
            dst_col + width <= dst.cols(),
            "copy_columns: dst too narrow"
        );
        assert!(
            src_col + width <= src.cols(),
            "copy_columns: src too narrow"
        );
        for r in 0..src.rows() {
            for j in 0..width {
                dst.row_mut(r)[dst_col + j] = src.get(r, src_col + j);
            }
        }
    }

    fn gather_rows(&self, out: &mut DenseMatrix<T>, src: &DenseMatrix<T>, rows: &[usize]) {
        assert_eq!(
            out.shape(),
            (rows.len(), src.cols()),
            "gather_rows: out shape"
        );
        for (r, &from) in rows.iter().enumerate() {
            assert!(from < src.rows(), "gather_rows: row out of range");
            for j in 0..src.cols() {
                out.row_mut(r)[j] = src.get(from, j);
            }
        }
    }

    fn mul(&self, a: &mut DenseMatrix<T>, b: &DenseMatrix<T>) {
        same_shape("mul", a, b);
        mul(a.as_mut_slice(), b.as_slice());
    }

    fn gather_columns(&self, out: &mut DenseMatrix<T>, table: &DenseMatrix<T>, ids: &[usize]) {
        assert_eq!(
            out.shape(),
            (ids.len(), table.rows()),
            "gather_columns: out shape"
        );
        for (r, &id) in ids.iter().enumerate() {
            assert!(id < table.cols(), "gather_columns: id out of range");
            for j in 0..table.rows() {
                out.row_mut(r)[j] = table.get(j, id);
            }
        }
    }

    fn scatter_add_columns(&self, table: &mut DenseMatrix<T>, ids: &[usize], src: &DenseMatrix<T>) {
        assert_eq!(
            src.shape(),
            (ids.len(), table.rows()),
            "scatter_add_columns: src shape"
        );
        let cols = table.cols();
        for (r, &id) in ids.iter().enumerate() {
            assert!(id < cols, "scatter_add_columns: id out of range");
            for j in 0..table.rows() {
                let t = &mut table.as_mut_slice()[j * cols + id];
                *t = *t + src.get(r, j);
            }
        }
    }

    fn add_row(&self, m: &mut DenseMatrix<T>, row: &DenseMatrix<T>) {
        assert_eq!(row.shape(), (1, m.cols()), "add_row: row shape");
        for r in 0..m.rows() {
            for j in 0..m.cols() {
                m.row_mut(r)[j] = m.get(r, j) + row.get(0, j);
            }
        }
    }

    fn add_column_sums(&self, acc: &mut DenseMatrix<T>, m: &DenseMatrix<T>) {
        assert_eq!(acc.shape(), (1, m.cols()), "add_column_sums: acc shape");
        for j in 0..m.cols() {
            let mut sum = T::zero();
            for r in 0..m.rows() {
                sum = sum + m.get(r, j);
            }
            acc.row_mut(0)[j] = acc.get(0, j) + sum;
        }
    }

    fn axpy(&self, y: &mut DenseMatrix<T>, alpha: T, x: &DenseMatrix<T>) {
        same_shape("axpy", y, x);
        axpy(y.as_mut_slice(), alpha, x.as_slice());
    }

    fn scale(&self, m: &mut DenseMatrix<T>, alpha: T) {
        scale(m.as_mut_slice(), alpha);
    }

    fn clamp(&self, m: &mut DenseMatrix<T>, lo: T, hi: T) {
        clamp(m.as_mut_slice(), lo, hi);
    }

    fn sum_squares(&self, m: &DenseMatrix<T>) -> T {
        let mut sum = T::zero();
        for &v in m.as_slice() {
            sum = sum + v * v;
        }
        sum
    }

    fn activate(&self, m: &mut DenseMatrix<T>, act: Activation) {
        for v in m.as_mut_slice() {
            *v = match act {
                Activation::Identity => *v,
                Activation::Tanh => v.tanh(),
                Activation::Sigmoid => sigmoid(*v),
                // Not `max`, which would turn NaN into 0: NaN must propagate.
                Activation::Relu if *v < T::zero() => T::zero(),
                Activation::Relu => *v,
            };
        }
    }

    fn activate_backward(&self, d: &mut DenseMatrix<T>, y: &DenseMatrix<T>, act: Activation) {
        same_shape("activate_backward", d, y);
        for (di, &yi) in d.as_mut_slice().iter_mut().zip(y.as_slice()) {
            let slope = match act {
                Activation::Identity => T::one(),
                Activation::Tanh => T::one() - yi * yi,
                Activation::Sigmoid => yi * (T::one() - yi),
                Activation::Relu if yi > T::zero() => T::one(),
                Activation::Relu => T::zero(),
            };
            *di = *di * slope;
        }
    }

    fn softmax_rows(&self, m: &mut DenseMatrix<T>) {
        for r in 0..m.rows() {
            let row = m.row_mut(r);
            let max = row.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let mut sum = T::zero();
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                sum = sum + *v;
            }
            for v in row.iter_mut() {
                *v = *v / sum;
            }
        }
    }

    fn log_softmax_rows(&self, m: &mut DenseMatrix<T>) {
        for r in 0..m.rows() {
            let row = m.row_mut(r);
            let max = row.iter().fold(T::neg_infinity(), |a, &b| a.max(b));
            let mut sum = T::zero();
            for &v in row.iter() {
                sum = sum + (v - max).exp();
            }
            let log_sum = sum.ln();
            for v in row.iter_mut() {
                *v = *v - max - log_sum;
            }
        }
    }

    fn gather_per_row(&self, out: &mut DenseMatrix<T>, src: &DenseMatrix<T>, cols: &[usize]) {
        assert_eq!(cols.len(), src.rows(), "gather_per_row: one column per row");
        assert_eq!(out.shape(), (src.rows(), 1), "gather_per_row: out shape");
        for (r, &col) in cols.iter().enumerate() {
            assert!(col < src.cols(), "gather_per_row: column out of range");
            out.row_mut(r)[0] = src.get(r, col);
        }
    }

    fn scatter_add_per_row(&self, dst: &mut DenseMatrix<T>, cols: &[usize], src: &DenseMatrix<T>) {
        assert_eq!(
            cols.len(),
            dst.rows(),
            "scatter_add_per_row: one column per row"
        );
        assert_eq!(
            src.shape(),
            (dst.rows(), 1),
            "scatter_add_per_row: src shape"
        );
        for (r, &col) in cols.iter().enumerate() {
            assert!(col < dst.cols(), "scatter_add_per_row: column out of range");
            let v = &mut dst.row_mut(r)[col];
            *v = *v + src.get(r, 0);
        }
    }
}
