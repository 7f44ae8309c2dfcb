//! The tensor backend: the only place that knows how numbers are stored.
//!
//! Everything above this module (cells, softmax, loss, BPTT, the model, optimisers) is written
//! once against [`Backend`] and runs on every implementor. A backend is a value, cheap to clone,
//! held by the model, so that a backend with a context (a thread pool, a device stream) fits
//! without an API change.
//!
//! All matrices are row-major and two-dimensional. A sequence of `T` steps with batch `B` is one
//! matrix of `T * B` rows, time-major: rows `t * B .. t * B + B` are step `t`.
//!
//! [`NaiveCpu`] is the reference implementation: plain loops, obviously correct. [`Cpu`] is the
//! fast one. Every backend is tested against the same definitions by the conformance suites in
//! `tests/backend_conformance*.rs`.

mod cpu;
mod dense;
mod naive;
mod update;

pub use cpu::{Cpu, CpuRhs};
pub(crate) use dense::spare_vec;
pub use dense::{DenseMatrix, release_spare_buffers};
pub use naive::NaiveCpu;
pub use update::UpdateRule;

use crate::error::Result;
use crate::scalar::Scalar;
use std::fmt::Debug;

/// Whether a GEMM operand is used as stored or transposed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Transpose {
    /// Use the matrix as stored: `op(A) = A`.
    No,
    /// Use its transpose: `op(A) = A^T`.
    Yes,
}

impl Transpose {
    /// The shape of `op(A)` for a stored shape `(rows, cols)`.
    pub fn apply(self, (rows, cols): (usize, usize)) -> (usize, usize) {
        match self {
            Transpose::No => (rows, cols),
            Transpose::Yes => (cols, rows),
        }
    }
}

/// An element-wise activation function.
///
/// Derivatives are taken from the function's output `y`, as the backward pass has it saved:
/// `tanh' = 1 - y^2`, `sigmoid' = y (1 - y)`, `relu' = [y > 0]`, `identity' = 1`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Activation {
    /// `y = x`.
    Identity,
    /// `y = tanh(x)`.
    Tanh,
    /// `y = 1 / (1 + e^-x)`.
    Sigmoid,
    /// `y = max(x, 0)`.
    Relu,
}

/// Storage and kernels for one scalar type.
///
/// Kernels assume their shapes were checked by the caller: public entry points of the crate
/// validate user data and return [`Error`](crate::Error); a shape mismatch that reaches a kernel
/// is a bug in the crate and panics with the kernel's name.
pub trait Backend: Clone + Debug + Send + Sync + 'static {
    /// The element type, `f32` or `f64`.
    type Scalar: Scalar;
    /// A row-major two-dimensional matrix.
    type Matrix: Clone + Debug + Send + Sync;

    /// A `rows x cols` matrix of zeros.
    fn zeros(&self, rows: usize, cols: usize) -> Self::Matrix;

    /// A `rows x cols` matrix from row-major `data`.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) if `data.len() != rows * cols`.
    // A backend is a value that may hold a context (a pool, a device), so it builds matrices.
    #[allow(clippy::wrong_self_convention)]
    fn from_vec(&self, rows: usize, cols: usize, data: Vec<Self::Scalar>) -> Result<Self::Matrix>;

    /// The elements of `m` in row-major order.
    fn to_vec(&self, m: &Self::Matrix) -> Vec<Self::Scalar>;

    /// `(rows, cols)` of `m`.
    fn shape(&self, m: &Self::Matrix) -> (usize, usize);

    /// `C <- alpha * op(A) * op(B) + beta * C`, BLAS semantics: with `beta = 0`, `C` is not read
    /// (a NaN in it does not propagate).
    ///
    /// Shapes: `op(A)` is `m x k`, `op(B)` is `k x n`, `C` is `m x n`; `k = 0` gives `beta * C`.
    // The BLAS signature, argument for argument, so that it reads as the BLAS call it is.
    #[allow(clippy::too_many_arguments)]
    fn gemm(
        &self,
        c: &mut Self::Matrix,
        alpha: Self::Scalar,
        a: &Self::Matrix,
        ta: Transpose,
        b: &Self::Matrix,
        tb: Transpose,
        beta: Self::Scalar,
    );

    /// A right-hand operand `op(B)` prepared by [`prepare_rhs`](Backend::prepare_rhs) for many
    /// products with it: a copy laid out for the backend's kernel, independent of `B` (a later
    /// change to `B` does not reach it).
    type Prepared: Clone + Debug + Send + Sync;

    /// Prepares `op(B)` (`k x n`) for [`gemm_prepared`](Backend::gemm_prepared): the recurrence
    /// multiplies every step by the same `W_hh`, so a backend can lay it out for its kernel once
    /// per sequence instead of once per step. `rows` is the number of rows of the `A`s it will
    /// be multiplied with (the batch); a backend may choose the layout by it, and products with
    /// any other number of rows are still correct.
    fn prepare_rhs(&self, b: &Self::Matrix, tb: Transpose, rows: usize) -> Self::Prepared;

    /// `C <- alpha * A * op(B) + beta * C` for `op(B)` prepared by
    /// [`prepare_rhs`](Backend::prepare_rhs): [`gemm`](Backend::gemm) with `A` not transposed,
    /// the same semantics and the same results up to rounding.
    fn gemm_prepared(
        &self,
        c: &mut Self::Matrix,
        alpha: Self::Scalar,
        a: &Self::Matrix,
        b: &Self::Prepared,
        beta: Self::Scalar,
    );

    /// Copies `count` rows of `src` starting at `src_row` over the rows of `dst` starting at
    /// `dst_row`. Both have the same number of columns.
    fn copy_rows(
        &self,
        dst: &mut Self::Matrix,
        dst_row: usize,
        src: &Self::Matrix,
        src_row: usize,
        count: usize,
    );

    /// Copies the column block `src_col .. src_col + width` of `src` over the block
    /// `dst_col .. dst_col + width` of `dst`, for every row. Both have the same number of rows.
    /// This joins the two directions of a bidirectional layer and splits their gradient.
    fn copy_columns(
        &self,
        dst: &mut Self::Matrix,
        dst_col: usize,
        src: &Self::Matrix,
        src_col: usize,
        width: usize,
    );

    /// Row gather: row `r` of `out` (`n x c`, `n = rows.len()`) becomes row `rows[r]` of `src`
    /// (`m x c`). Indices are below `m`.
    fn gather_rows(&self, out: &mut Self::Matrix, src: &Self::Matrix, rows: &[usize]);

    /// Element-wise product in place: `a <- a * b`, same shapes.
    fn mul(&self, a: &mut Self::Matrix, b: &Self::Matrix);

    /// Embedding lookup on a weight stored as PyTorch stores `weight_ih`, `(R, V)`:
    /// row `r` of `out` (`n x R`, `n = ids.len()`) becomes column `ids[r]` of `table`.
    ///
    /// This is `onehot(ids) * table^T` without the one-hot matrix. Ids are below `V`.
    fn gather_columns(&self, out: &mut Self::Matrix, table: &Self::Matrix, ids: &[usize]);

    /// The gradient of [`gather_columns`](Backend::gather_columns): for every `r`, column
    /// `ids[r]` of `table` (`R x V`) gains row `r` of `src` (`n x R`). Repeated ids accumulate.
    fn scatter_add_columns(&self, table: &mut Self::Matrix, ids: &[usize], src: &Self::Matrix);

    /// Broadcast add of a bias: every row of `m` (`n x c`) gains `row` (`1 x c`).
    fn add_row(&self, m: &mut Self::Matrix, row: &Self::Matrix);

    /// Column sums, accumulated: `acc[0, j] += sum_r m[r, j]`; `acc` is `1 x c`.
    fn add_column_sums(&self, acc: &mut Self::Matrix, m: &Self::Matrix);

    /// `y <- y + alpha * x`, same shapes.
    fn axpy(&self, y: &mut Self::Matrix, alpha: Self::Scalar, x: &Self::Matrix);

    /// `m <- alpha * m`.
    fn scale(&self, m: &mut Self::Matrix, alpha: Self::Scalar);

    /// Clamps every element into `[lo, hi]`; NaN stays NaN.
    fn clamp(&self, m: &mut Self::Matrix, lo: Self::Scalar, hi: Self::Scalar);

    /// `sum_ij m[i, j]^2`, the squared Frobenius norm.
    fn sum_squares(&self, m: &Self::Matrix) -> Self::Scalar;

    /// Whether every element is finite: no NaN, no infinity (`true` for an empty matrix). Large
    /// finite elements whose squares overflow are finite.
    ///
    /// The default (which [`NaiveCpu`] keeps) reads the sum of squares, and every element only
    /// when that is not finite.
    fn all_finite(&self, m: &Self::Matrix) -> bool {
        use num_traits::Float;
        self.sum_squares(m).is_finite() || self.to_vec(m).iter().all(|v| v.is_finite())
    }

    /// Applies `act` to every element in place.
    fn activate(&self, m: &mut Self::Matrix, act: Activation);

    /// The activation's backward pass from its saved output: `d <- d * act'(x)`, with the
    /// derivative computed from `y = act(x)` (see [`Activation`]).
    fn activate_backward(&self, d: &mut Self::Matrix, y: &Self::Matrix, act: Activation);

    /// The LSTM cell's element-wise step, fused. From the input and hidden projections `xp` and
    /// `hh` (`B x 4H`, biases included, PyTorch's gate order i, f, g, o), writes `gates`, the
    /// activations of the pre-activations `xp + hh`: `sigmoid, sigmoid, tanh, sigmoid`. Then
    /// `c = f * c_prev + i * g` and `h = o * tanh(c)` (`B x H` each).
    #[allow(clippy::too_many_arguments)]
    fn lstm_cell(
        &self,
        xp: &Self::Matrix,
        hh: &Self::Matrix,
        c_prev: &Self::Matrix,
        gates: &mut Self::Matrix,
        c: &mut Self::Matrix,
        h: &mut Self::Matrix,
    );

    /// Backward of [`lstm_cell`](Backend::lstm_cell) from the saved activated `gates`, `c_prev`
    /// and `c`, given `dh` and `dc`, the gradients reaching `h` and (from the next step) `c`.
    /// Writes `d_gates` (`B x 4H`), the gradient of the pre-activations, and `dc_prev`:
    ///
    /// ```text
    /// dc_t  = dc + dh * o * (1 - tanh(c)^2)
    /// d_i = dc_t * g * i(1-i)   d_f = dc_t * c_prev * f(1-f)   d_g = dc_t * i * (1-g^2)
    /// d_o = dh * tanh(c) * o(1-o)                               dc_prev = dc_t * f
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn lstm_cell_backward(
        &self,
        gates: &Self::Matrix,
        c_prev: &Self::Matrix,
        c: &Self::Matrix,
        dh: &Self::Matrix,
        dc: &Self::Matrix,
        d_gates: &mut Self::Matrix,
        dc_prev: &mut Self::Matrix,
    );

    /// The GRU cell's element-wise step, fused, from `xp` and `hh` (`B x 3H`, order r, z, n):
    ///
    /// ```text
    /// r = sigmoid(xp_r + hh_r)   z = sigmoid(xp_z + hh_z)   n = tanh(xp_n + r * hh_n)
    /// h = (1 - z) * n + z * h_prev
    /// ```
    ///
    /// The reset gate multiplies `hh_n = W_hn h_prev + b_hn` after the product, as PyTorch
    /// does. Writes the activations r, z, n to `gates` (`B x 3H`) and the new state to `h`.
    fn gru_cell(
        &self,
        xp: &Self::Matrix,
        hh: &Self::Matrix,
        h_prev: &Self::Matrix,
        gates: &mut Self::Matrix,
        h: &mut Self::Matrix,
    );

    /// Backward of [`gru_cell`](Backend::gru_cell) from the saved `gates`, `hh` and `h_prev`,
    /// given `dh`. Writes `d_xp` and `d_hh` (`B x 3H`) and `dh_prev`, the part of the gradient
    /// reaching `h_prev` directly (`dh * z`; the part through `W_hh` is added by the caller):
    ///
    /// ```text
    /// d_an = dh * (1 - z) * (1 - n^2)        d_xp_n = d_an     d_hh_n = d_an * r
    /// d_ar = d_an * hh_n * r(1-r)            d_xp_r = d_hh_r = d_ar
    /// d_az = dh * (h_prev - n) * z(1-z)      d_xp_z = d_hh_z = d_az
    /// ```
    #[allow(clippy::too_many_arguments)]
    fn gru_cell_backward(
        &self,
        gates: &Self::Matrix,
        hh: &Self::Matrix,
        h_prev: &Self::Matrix,
        dh: &Self::Matrix,
        d_xp: &mut Self::Matrix,
        d_hh: &mut Self::Matrix,
        dh_prev: &mut Self::Matrix,
    );

    /// Softmax of every row in place, shifted by the row maximum so that no `exp` overflows.
    fn softmax_rows(&self, m: &mut Self::Matrix);

    /// Log-softmax of every row in place: `x - max - ln(sum exp(x - max))`.
    fn log_softmax_rows(&self, m: &mut Self::Matrix);

    /// Fused softmax and cross-entropy over rows. For each row `r` of `logits` (`n x V`),
    /// writes `softmax(logits[r]) - onehot(targets[r])` to row `r` of `grad` and returns the
    /// sum over rows of `-ln softmax(logits[r])[targets[r]]`. Targets are below `V`.
    fn softmax_cross_entropy(
        &self,
        logits: &Self::Matrix,
        targets: &[usize],
        grad: &mut Self::Matrix,
    ) -> Self::Scalar;

    /// Runs `work`, a loop that calls this backend's kernels many times, where they run best,
    /// and returns its result. `step_work` is the size of one iteration: the multiply-adds of
    /// its largest product (`B * G*H * H` for a recurrent step).
    ///
    /// [`Cpu`] runs a loop whose steps are large enough to split on a thread of its pool, so
    /// that each kernel splits its work across the pool without handing it over from the
    /// caller's thread and waking that thread again, twice per time step; smaller loops, and
    /// every loop by default, run on the caller's thread.
    fn install<R: Send>(&self, step_work: usize, work: impl FnOnce() -> R + Send) -> R {
        let _ = step_work;
        work()
    }

    /// One optimiser update of one parameter, element-wise and in place: `param` (`r x c`) moves
    /// by `rule` (see [`UpdateRule`] for each rule's formulas) from `grad` (`r x c`), reading
    /// and writing the rule's `state` buffers (`r x c` each, in the order and number
    /// [`UpdateRule::state_names`] gives).
    ///
    /// The default goes through [`to_vec`](Backend::to_vec) and
    /// [`from_vec`](Backend::from_vec) and runs the reference loops, so a new backend works
    /// before it has a kernel of its own.
    fn update(
        &self,
        rule: &UpdateRule,
        param: &mut Self::Matrix,
        grad: &Self::Matrix,
        state: &mut [Self::Matrix],
    ) {
        update::update_via_vec(self, rule, param, grad, state)
    }
}

/// `1 / (1 + e^-x)`, the one definition both CPU backends use.
#[inline(always)]
pub(crate) fn sigmoid<T: Scalar>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}

/// The shape checks of [`Backend::lstm_cell`], shared by the CPU backends: every `wide` matrix
/// `B x 4H` and every state `B x H`, as `c_prev` is.
pub(crate) fn check_lstm_shapes<T: Copy + Default>(
    op: &str,
    c_prev: &DenseMatrix<T>,
    wide: &[&DenseMatrix<T>],
    states: &[&DenseMatrix<T>],
) {
    let (batch, hidden) = c_prev.shape();
    for m in wide {
        assert_eq!(m.shape(), (batch, 4 * hidden), "{op}: gates shape");
    }
    for m in states {
        assert_eq!(m.shape(), (batch, hidden), "{op}: state shapes");
    }
}

/// The shape checks of [`Backend::gru_cell`], shared by the CPU backends.
pub(crate) fn check_gru_shapes<T: Copy + Default>(
    op: &str,
    h_prev: &DenseMatrix<T>,
    wide: &[&DenseMatrix<T>],
    states: &[&DenseMatrix<T>],
) {
    let (batch, hidden) = h_prev.shape();
    for m in wide {
        assert_eq!(m.shape(), (batch, 3 * hidden), "{op}: gate shapes");
    }
    for m in states {
        assert_eq!(m.shape(), (batch, hidden), "{op}: state shapes");
    }
}
