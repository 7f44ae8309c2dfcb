//! [`Candle`]: a backend on [candle](https://github.com/huggingface/candle)'s tensors, behind the
//! cargo feature `candle` (off by default).
//!
//! Its matrix is a two-dimensional [`candle_core::Tensor`] on a [`candle_core::Device`], and every
//! operation of [`Backend`] is one or a few candle tensor operations: nothing loops over
//! elements on the host, and nothing is copied to the host but by [`Backend::to_vec`] and the
//! scalar of [`Backend::sum_squares`]. The cells' equations, the loss and the optimiser updates
//! are the crate's generic code ([`CellKernels`], [`LossKernels`] and [`UpdateKernels`] are
//! declared with their default methods), so a step is a sequence of device operations.
//!
//! # Devices
//!
//! - [`Candle::cpu`]: candle's CPU device. This is what the crate's tests run: the conformance,
//!   gradient-check and PyTorch-parity suites, under `cargo test --features candle`.
//! - `Candle::cuda`, with the feature `cuda` (which turns on `candle-core/cuda`): candle's
//!   CUDA device. It needs the CUDA toolkit to build and a GPU to run; neither exists where the
//!   crate is developed and tested, so the CUDA path has not been compiled or run there.
//!   `scripts/gpu_check.sh` is meant for a machine that has both.
//!
//! # Example
//!
//! ```
//! use recurrent::prelude::{SeedableRng, StdRng};
//! use recurrent::{Backend, Candle, Input, Rnn, RnnConfig};
//!
//! let backend = Candle::<f32>::cpu();
//! let config = RnnConfig::lstm(5, 8).output(5);
//! let rnn = Rnn::new(backend.clone(), config, &mut StdRng::seed_from_u64(0)).unwrap();
//! let trace = rnn.forward(&Input::ids(vec![1, 2, 3], 1), None).unwrap();
//! // Three steps of batch 1, five logits each; `to_vec` copies them to the host.
//! assert_eq!(backend.shape(trace.logits()), (3, 5));
//! assert_eq!(backend.to_vec(trace.logits()).len(), 15);
//! ```

use crate::backend::{Activation, Backend, Transpose};
use crate::cell::CellKernels;
use crate::error::{Error, Result};
use crate::loss::LossKernels;
use crate::optim::UpdateKernels;
use crate::scalar::Scalar;
use candle_core::{Device, Tensor, WithDType};
use std::marker::PhantomData;

/// The backend on candle: matrices are two-dimensional [`Tensor`]s of `T` (`f32` or `f64`) on
/// one [`Device`], which the backend holds (cloning it is cheap).
///
/// Build it with [`Candle::cpu`], or `Candle::cuda` with the feature `cuda`; the module's
/// documentation has an example and says which devices were tested.
///
/// # Panics
///
/// Its [`Backend`] methods panic, naming the operation, where every backend's do (operands of
/// the wrong shape, an index out of range: see the trait), and also where candle itself fails
/// (a device out of memory, a lost GPU), which the trait's methods cannot return as an `Err`.
#[derive(Debug, Clone)]
pub struct Candle<T> {
    device: Device,
    scalar: PhantomData<T>,
}

impl<T: Scalar + WithDType> Candle<T> {
    /// The backend on candle's CPU device.
    pub fn cpu() -> Self {
        Candle::on(Device::Cpu)
    }

    /// The backend on the CUDA device `ordinal` (feature `cuda`; not compiled or run where the
    /// crate is tested, which has no CUDA toolkit and no GPU).
    ///
    /// # Errors
    /// [`Error::Config`] with candle's message if candle cannot open the device.
    #[cfg(feature = "cuda")]
    pub fn cuda(ordinal: usize) -> Result<Self> {
        Device::new_cuda(ordinal)
            .map(Candle::on)
            .map_err(|e| Error::Config {
                message: format!("candle CUDA device {ordinal}: {e}"),
            })
    }

    /// The backend on a device of the caller's choice.
    pub fn on(device: Device) -> Self {
        Candle {
            device,
            scalar: PhantomData,
        }
    }

    /// The device its matrices live on.
    pub fn device(&self) -> &Device {
        &self.device
    }

    /// A zero-dimensional tensor of `v`, for broadcasts.
    fn scalar(&self, op: &str, v: T) -> Tensor {
        Tensor::new(v, &self.device).expect(op)
    }

    /// `rows x cols` zeros.
    fn zero(&self, op: &str, rows: usize, cols: usize) -> Tensor {
        Tensor::zeros((rows, cols), T::DTYPE, &self.device).expect(op)
    }

    /// Indices as a `u32` tensor of shape `shape` on the device.
    fn indices(&self, op: &str, indices: &[usize], shape: &[usize]) -> Tensor {
        let data: Vec<u32> = indices
            .iter()
            .map(|&i| u32::try_from(i).unwrap_or_else(|_| panic!("{op}: index {i} exceeds u32")))
            .collect();
        Tensor::from_vec(data, shape, &self.device).expect(op)
    }
}

// ---------------------------------------------------------------------------------------------
// Checks, each panicking with the operation's name.
// ---------------------------------------------------------------------------------------------

fn dims(op: &str, m: &Tensor) -> (usize, usize) {
    m.dims2()
        .unwrap_or_else(|e| panic!("{op}: not a two-dimensional tensor: {e}"))
}

fn same_shape(op: &str, a: &Tensor, b: &Tensor) {
    assert_eq!(
        dims(op, a),
        dims(op, b),
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

/// `op(m)`: the tensor, or its transpose (a strided view).
fn op_of(op: &str, m: &Tensor, t: Transpose) -> Tensor {
    match t {
        Transpose::No => m.clone(),
        Transpose::Yes => m.t().expect(op),
    }
}

impl<T: Scalar + WithDType> Candle<T> {
    /// `C <- alpha * A * B + beta * C` for `A` (`m x k`), `B` (`k x n`), `C` (`m x n`), shapes
    /// checked by the caller; with `beta = 0`, `C` is not read.
    fn product(&self, op: &str, c: &mut Tensor, alpha: T, a: &Tensor, b: &Tensor, beta: T) {
        let (m, k) = dims(op, a);
        let n = dims(op, b).1;
        let ab = if m == 0 || n == 0 || k == 0 {
            // candle's matmul is not asked about empty operands: an empty sum is zero.
            self.zero(op, m, n)
        } else {
            a.matmul(b).expect(op)
        };
        let alpha_ab = ab.broadcast_mul(&self.scalar(op, alpha)).expect(op);
        *c = if beta == T::zero() {
            alpha_ab
        } else {
            let beta_c = c.broadcast_mul(&self.scalar(op, beta)).expect(op);
            (alpha_ab + beta_c).expect(op)
        };
    }

    /// `where m < lo { lo } else { m }`, a comparison (false for NaN, which stays).
    fn below_to(&self, op: &str, m: &Tensor, lo: T, to: &Tensor) -> Tensor {
        m.broadcast_lt(&self.scalar(op, lo))
            .expect(op)
            .where_cond(to, m)
            .expect(op)
    }
}

// ---------------------------------------------------------------------------------------------
// The trait.
// ---------------------------------------------------------------------------------------------

impl<T: Scalar + WithDType> Backend for Candle<T> {
    type Scalar = T;
    type Matrix = Tensor;
    type Prepared = Tensor;

    fn zeros(&self, rows: usize, cols: usize) -> Tensor {
        self.zero("zeros", rows, cols)
    }

    fn from_vec(&self, rows: usize, cols: usize, data: Vec<T>) -> Result<Tensor> {
        if rows.checked_mul(cols) != Some(data.len()) {
            return Err(Error::Shape {
                what: "Candle::from_vec (rows * cols elements)".to_string(),
                expected: format!("{rows} x {cols}"),
                given: format!("{} elements", data.len()),
            });
        }
        Ok(Tensor::from_vec(data, (rows, cols), &self.device).expect("from_vec"))
    }

    fn to_vec(&self, m: &Tensor) -> Vec<T> {
        dims("to_vec", m);
        m.flatten_all()
            .and_then(|flat| flat.to_vec1::<T>())
            .expect("to_vec")
    }

    fn shape(&self, m: &Tensor) -> (usize, usize) {
        dims("shape", m)
    }

    fn gemm(
        &self,
        c: &mut Tensor,
        alpha: T,
        a: &Tensor,
        ta: Transpose,
        b: &Tensor,
        tb: Transpose,
        beta: T,
    ) {
        let (m, k) = ta.apply(dims("gemm", a));
        let (kb, n) = tb.apply(dims("gemm", b));
        assert_eq!(k, kb, "gemm: op(A) is {m} x {k}, op(B) is {kb} x {n}");
        assert_eq!(dims("gemm", c), (m, n), "gemm: C is not {m} x {n}");
        let (a, b) = (op_of("gemm", a, ta), op_of("gemm", b, tb));
        self.product("gemm", c, alpha, &a, &b, beta);
    }

    fn prepare_rhs(&self, b: &Tensor, tb: Transpose, _rows: usize) -> Tensor {
        // op(B), contiguous. It may share B's storage: no method here writes into a tensor
        // (each replaces its operand by a new one), so a later change to B does not reach it.
        op_of("prepare_rhs", b, tb)
            .contiguous()
            .expect("prepare_rhs")
    }

    fn gemm_prepared(&self, c: &mut Tensor, alpha: T, a: &Tensor, b: &Tensor, beta: T) {
        let ((m, k), (kb, n)) = (dims("gemm_prepared", a), dims("gemm_prepared", b));
        assert_eq!(k, kb, "gemm_prepared: A is {m} x {k}, op(B) is {kb} x {n}");
        assert_eq!(
            dims("gemm_prepared", c),
            (m, n),
            "gemm_prepared: C is not {m} x {n}"
        );
        self.product("gemm_prepared", c, alpha, a, b, beta);
    }

    fn copy_rows(
        &self,
        dst: &mut Tensor,
        dst_row: usize,
        src: &Tensor,
        src_row: usize,
        count: usize,
    ) {
        let (op, (dst_rows, dst_cols), (src_rows, src_cols)) =
            ("copy_rows", dims("copy_rows", dst), dims("copy_rows", src));
        assert_eq!(dst_cols, src_cols, "{op}: column counts differ");
        check_range(op, "dst rows", dst_row, count, dst_rows);
        check_range(op, "src rows", src_row, count, src_rows);
        if count == 0 || src_cols == 0 {
            return;
        }
        let block = src.narrow(0, src_row, count).expect(op);
        *dst = dst.slice_scatter0(&block, dst_row).expect(op);
    }

    fn copy_columns(
        &self,
        dst: &mut Tensor,
        dst_col: usize,
        src: &Tensor,
        src_col: usize,
        width: usize,
    ) {
        let op = "copy_columns";
        let ((dst_rows, dst_cols), (src_rows, src_cols)) = (dims(op, dst), dims(op, src));
        assert_eq!(dst_rows, src_rows, "{op}: row counts differ");
        check_range(op, "dst columns", dst_col, width, dst_cols);
        check_range(op, "src columns", src_col, width, src_cols);
        if width == 0 || src_rows == 0 {
            return;
        }
        let block = src.narrow(1, src_col, width).expect(op);
        // candle scatters along dimension 1 through transposes: made contiguous again, as the
        // gathers need.
        *dst = dst
            .slice_scatter(&block, 1, dst_col)
            .and_then(|t| t.contiguous())
            .expect(op);
    }

    fn gather_rows(&self, out: &mut Tensor, src: &Tensor, rows: &[usize]) {
        let op = "gather_rows";
        let (src_rows, cols) = dims(op, src);
        let want = (rows.len(), cols);
        assert_eq!(dims(op, out), want, "{op}: out is not {want:?}");
        check_indices(op, "row", rows, src_rows);
        if rows.is_empty() || cols == 0 {
            return;
        }
        let ids = self.indices(op, rows, &[rows.len()]);
        // candle's index-select, gather and scatter take contiguous operands only (a no-op for
        // those that already are).
        *out = src
            .contiguous()
            .and_then(|src| src.index_select(&ids, 0))
            .expect(op);
    }

    fn mul(&self, a: &mut Tensor, b: &Tensor) {
        same_shape("mul", a, b);
        *a = a.mul(b).expect("mul");
    }

    fn gather_columns(&self, out: &mut Tensor, table: &Tensor, ids: &[usize]) {
        let op = "gather_columns";
        let (rows, vocab) = dims(op, table);
        let want = (ids.len(), rows);
        assert_eq!(dims(op, out), want, "{op}: out is not {want:?}");
        check_indices(op, "id", ids, vocab);
        if ids.is_empty() || rows == 0 {
            return;
        }
        let index = self.indices(op, ids, &[ids.len()]);
        // Columns `ids` of the table (`R x n`), transposed to `n x R`.
        *out = table
            .contiguous()
            .and_then(|table| table.index_select(&index, 1))
            .and_then(|t| t.t())
            .and_then(|t| t.contiguous())
            .expect(op);
    }

    fn scatter_add_columns(&self, table: &mut Tensor, ids: &[usize], src: &Tensor) {
        let op = "scatter_add_columns";
        let (rows, vocab) = dims(op, table);
        let want = (ids.len(), rows);
        assert_eq!(dims(op, src), want, "{op}: src is not {want:?}");
        check_indices(op, "id", ids, vocab);
        if ids.is_empty() || rows == 0 {
            return;
        }
        let index = self.indices(op, ids, &[ids.len()]);
        // Column `ids[r]` gains column `r` of `src^T` (`R x n`); repeated ids accumulate.
        let src_t = src.t().and_then(|t| t.contiguous()).expect(op);
        *table = table
            .contiguous()
            .and_then(|table| table.index_add(&index, &src_t, 1))
            .expect(op);
    }

    fn add_row(&self, m: &mut Tensor, row: &Tensor) {
        let cols = dims("add_row", m).1;
        assert_eq!(
            dims("add_row", row),
            (1, cols),
            "add_row: row is not 1 x {cols}"
        );
        *m = m.broadcast_add(row).expect("add_row");
    }

    fn add_column_sums(&self, acc: &mut Tensor, m: &Tensor) {
        let op = "add_column_sums";
        let (rows, cols) = dims(op, m);
        let want = (1, cols);
        assert_eq!(dims(op, acc), want, "{op}: acc is not {want:?}");
        if rows == 0 || cols == 0 {
            return;
        }
        let sums = m.sum_keepdim(0).expect(op);
        *acc = (&*acc + sums).expect(op);
    }

    fn axpy(&self, y: &mut Tensor, alpha: T, x: &Tensor) {
        same_shape("axpy", y, x);
        let ax = x.broadcast_mul(&self.scalar("axpy", alpha)).expect("axpy");
        *y = (&*y + ax).expect("axpy");
    }

    fn scale(&self, m: &mut Tensor, alpha: T) {
        dims("scale", m);
        *m = m
            .broadcast_mul(&self.scalar("scale", alpha))
            .expect("scale");
    }

    fn clamp(&self, m: &mut Tensor, lo: T, hi: T) {
        let op = "clamp";
        let (rows, cols) = dims(op, m);
        let lo_t = Tensor::full(lo, (rows, cols), &self.device).expect(op);
        let hi_t = Tensor::full(hi, (rows, cols), &self.device).expect(op);
        // Comparisons, false for NaN, which stays.
        let low = self.below_to(op, m, lo, &lo_t);
        *m = low
            .broadcast_gt(&self.scalar(op, hi))
            .and_then(|above| above.where_cond(&hi_t, &low))
            .expect(op);
    }

    fn sum_squares(&self, m: &Tensor) -> T {
        let op = "sum_squares";
        let (rows, cols) = dims(op, m);
        if rows == 0 || cols == 0 {
            return T::zero();
        }
        m.sqr()
            .and_then(|s| s.sum_all())
            .and_then(|s| s.to_scalar::<T>())
            .expect(op)
    }

    fn activate(&self, m: &mut Tensor, act: Activation) {
        let op = "activate";
        dims(op, m);
        *m = match act {
            Activation::Identity => return,
            Activation::Tanh => m.tanh().expect(op),
            // 1 / (1 + e^-x), as the CPU backends compute it.
            Activation::Sigmoid => m
                .neg()
                .and_then(|t| t.exp())
                .and_then(|t| t.affine(1.0, 1.0))
                .and_then(|t| t.recip())
                .expect(op),
            // A comparison, not `max(x, 0)`, which would turn NaN into 0.
            Activation::Relu => {
                let zeros = m.zeros_like().expect(op);
                self.below_to(op, m, T::zero(), &zeros)
            }
        };
    }

    fn activate_backward(&self, d: &mut Tensor, y: &Tensor, act: Activation) {
        let op = "activate_backward";
        same_shape(op, d, y);
        let slope = match act {
            Activation::Identity => return,
            // 1 - y^2.
            Activation::Tanh => y.sqr().and_then(|s| s.affine(-1.0, 1.0)).expect(op),
            // y (1 - y).
            Activation::Sigmoid => y
                .affine(-1.0, 1.0)
                .and_then(|one_minus| y.mul(&one_minus))
                .expect(op),
            // [y > 0], as 1 or 0 (a NaN in d stays NaN, as on the CPU backends).
            Activation::Relu => y
                .broadcast_gt(&self.scalar(op, T::zero()))
                .and_then(|mask| mask.to_dtype(T::DTYPE))
                .expect(op),
        };
        *d = d.mul(&slope).expect(op);
    }

    fn softmax_rows(&self, m: &mut Tensor) {
        let op = "softmax_rows";
        let (rows, cols) = dims(op, m);
        if rows == 0 || cols == 0 {
            return;
        }
        let max = m.max_keepdim(1).expect(op);
        let e = m.broadcast_sub(&max).and_then(|t| t.exp()).expect(op);
        let total = e.sum_keepdim(1).expect(op);
        *m = e.broadcast_div(&total).expect(op);
    }

    fn log_softmax_rows(&self, m: &mut Tensor) {
        let op = "log_softmax_rows";
        let (rows, cols) = dims(op, m);
        if rows == 0 || cols == 0 {
            return;
        }
        let max = m.max_keepdim(1).expect(op);
        let shifted = m.broadcast_sub(&max).expect(op);
        let log_total = shifted
            .exp()
            .and_then(|e| e.sum_keepdim(1))
            .and_then(|s| s.log())
            .expect(op);
        *m = shifted.broadcast_sub(&log_total).expect(op);
    }

    fn gather_per_row(&self, out: &mut Tensor, src: &Tensor, cols: &[usize]) {
        let op = "gather_per_row";
        let (rows, width) = dims(op, src);
        assert_eq!(cols.len(), rows, "{op}: not one column per row");
        let want = (rows, 1);
        assert_eq!(dims(op, out), want, "{op}: out is not {want:?}");
        check_indices(op, "column", cols, width);
        if rows == 0 {
            return;
        }
        let index = self.indices(op, cols, &[rows, 1]);
        *out = src
            .contiguous()
            .and_then(|src| src.gather(&index, 1))
            .expect(op);
    }

    fn scatter_add_per_row(&self, dst: &mut Tensor, cols: &[usize], src: &Tensor) {
        let op = "scatter_add_per_row";
        let (rows, width) = dims(op, dst);
        assert_eq!(cols.len(), rows, "{op}: not one column per row");
        let want = (rows, 1);
        assert_eq!(dims(op, src), want, "{op}: src is not {want:?}");
        check_indices(op, "column", cols, width);
        if rows == 0 {
            return;
        }
        let index = self.indices(op, cols, &[rows, 1]);
        let src = src.contiguous().expect(op);
        *dst = dst
            .contiguous()
            .and_then(|dst| dst.scatter_add(&index, &src, 1))
            .expect(op);
    }
}

// The crate's generic code for the cells, the loss and the updates: nothing overridden.
impl<T: Scalar + WithDType> CellKernels for Candle<T> {}
impl<T: Scalar + WithDType> LossKernels for Candle<T> {}
impl<T: Scalar + WithDType> UpdateKernels for Candle<T> {}
