//! The tensor backend: the matrix layer, the only place that knows how numbers are stored.
//!
//! [`Backend`] is a set of matrix operations: storage, GEMM, copies and gathers, element-wise
//! arithmetic, activations, row softmax and a few reductions. Everything above it (the cells'
//! equations in [`cell`](crate::cell), softmax and the loss, BPTT, the model, the optimisers) is
//! written once against it and runs on every implementor. A backend is a value, cheap to clone,
//! held by the model, so that a backend with a context (a thread pool, a device stream) fits
//! without an API change.
//!
//! A backend that can do better than the generic code overrides it through the extension traits
//! of the layers above, each with the generic code as its default methods:
//! [`CellKernels`](crate::cell::CellKernels) (a cell's element-wise step, and where the time
//! loop runs), [`LossKernels`](crate::loss::LossKernels) (softmax cross-entropy) and
//! [`UpdateKernels`](crate::optim::UpdateKernels) (an optimiser's update). A new backend
//! implements [`Backend`] and declares the three with empty bodies
//! (`impl CellKernels for MyBackend {}`, and so on). ARCHITECTURE.md walks through it.
//!
//! All matrices are two-dimensional, and their elements cross the trait in row-major order
//! ([`Backend::from_vec`], [`Backend::to_vec`]); how a backend stores them is its own affair (the
//! test suite's third backend stores columns). A sequence of `T` steps with batch `B` is one
//! matrix of `T * B` rows, time-major: rows `t * B .. t * B + B` are step `t`.
//!
//! [`NaiveCpu`] is the reference implementation: plain loops, obviously correct, and only the
//! core trait. [`Cpu`](crate::Cpu) is the fast one. Every backend is tested against the same
//! definitions by the conformance suites in `tests/backend_conformance*.rs`.

mod dense;
pub(crate) mod naive;

pub(crate) use dense::spare_vec;
pub use dense::{DenseMatrix, release_spare_buffers};
pub use naive::NaiveCpu;

use crate::error::Result;
use crate::scalar::Scalar;
use std::fmt::Debug;

/// Whether a GEMM operand is used as stored or transposed (exhaustive: BLAS's two cases).
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
///
/// Exhaustive on purpose: every backend implements every activation
/// ([`Backend::activate`]), so a new one would be a breaking change for backends whatever
/// the attribute said.
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

/// The matrix operations for one scalar type: every other part of the crate is generic code
/// over these 25 methods (and the GEMM's prepared operand).
///
/// Each method's doc gives its shapes. Kernels assume their shapes were checked by the caller:
/// public entry points of the crate validate user data and return [`Error`](crate::Error); a
/// shape mismatch that reaches a kernel is a bug in the crate and panics with the kernel's name.
///
/// # Panics
///
/// Called directly, a method panics when its operands do not have the shapes its doc gives
/// (each method's `# Panics` section says which), or when an index is out of range; the
/// crate's backends name the method in the message. Only [`from_vec`](Backend::from_vec)
/// returns an `Err` for a wrong length, because it takes user data. A backend of your own
/// should do the same: check, and panic with the method's name, rather than compute on a
/// mismatch.
pub trait Backend: Clone + Debug + Send + Sync + 'static {
    /// The element type, `f32` or `f64`.
    type Scalar: Scalar;
    /// A two-dimensional matrix, stored as the backend likes; its elements go in and out in
    /// row-major order.
    type Matrix: Clone + Debug + Send + Sync;

    /// A `rows x cols` matrix of zeros.
    ///
    /// # Panics
    /// If `rows * cols` overflows `usize` or the memory cannot be allocated.
    fn zeros(&self, rows: usize, cols: usize) -> Self::Matrix;

    /// A `rows x cols` matrix whose values are unspecified, as PyTorch's `torch.empty`: for an
    /// output the caller writes whole before reading any of it (a trace filled step by step, a
    /// GEMM's `C` with `beta = 0`, a kernel's output that its contract says it writes whole).
    /// Any values may be there, NaN included.
    ///
    /// The default is [`zeros`](Backend::zeros). [`Cpu`](crate::Cpu) hands out a reused buffer
    /// as its previous matrix left it, which saves writing zeros that would be overwritten: a
    /// tenth of an LSTM's forward pass at batch 32.
    ///
    /// # Panics
    /// As [`zeros`](Backend::zeros).
    fn empty(&self, rows: usize, cols: usize) -> Self::Matrix {
        self.zeros(rows, cols)
    }

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
    ///
    /// # Panics
    /// If the shapes do not fit: the columns of `op(A)` differ from the rows of `op(B)`, or `C`
    /// is not `m x n`.
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
    ///
    /// # Panics
    /// As [`gemm`](Backend::gemm), if the shapes do not fit.
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
    ///
    /// # Panics
    /// If the column counts differ, or either row range runs past its matrix.
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
    ///
    /// # Panics
    /// If the row counts differ, or either column block runs past its matrix.
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
    ///
    /// # Panics
    /// If `out` is not `rows.len() x c`, or an index is not below `m`.
    fn gather_rows(&self, out: &mut Self::Matrix, src: &Self::Matrix, rows: &[usize]);

    /// Element-wise product in place: `a <- a * b`, same shapes.
    ///
    /// # Panics
    /// If the shapes differ.
    fn mul(&self, a: &mut Self::Matrix, b: &Self::Matrix);

    /// Embedding lookup on a weight stored as PyTorch stores `weight_ih`, `(R, V)`:
    /// row `r` of `out` (`n x R`, `n = ids.len()`) becomes column `ids[r]` of `table`.
    ///
    /// This is `onehot(ids) * table^T` without the one-hot matrix. Ids are below `V`.
    ///
    /// # Panics
    /// If `out` is not `ids.len() x R`, or an id is not below `V`.
    fn gather_columns(&self, out: &mut Self::Matrix, table: &Self::Matrix, ids: &[usize]);

    /// The gradient of [`gather_columns`](Backend::gather_columns): for every `r`, column
    /// `ids[r]` of `table` (`R x V`) gains row `r` of `src` (`n x R`). Repeated ids accumulate.
    ///
    /// # Panics
    /// If `src` is not `ids.len() x R`, or an id is not below `V`.
    fn scatter_add_columns(&self, table: &mut Self::Matrix, ids: &[usize], src: &Self::Matrix);

    /// Broadcast add of a bias: every row of `m` (`n x c`) gains `row` (`1 x c`).
    ///
    /// # Panics
    /// If `row` is not `1 x c`.
    fn add_row(&self, m: &mut Self::Matrix, row: &Self::Matrix);

    /// Column sums, accumulated: `acc[0, j] += sum_r m[r, j]`; `acc` is `1 x c`.
    ///
    /// # Panics
    /// If `acc` is not `1 x c`.
    fn add_column_sums(&self, acc: &mut Self::Matrix, m: &Self::Matrix);

    /// `y <- y + alpha * x`, same shapes.
    ///
    /// # Panics
    /// If the shapes differ.
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
    ///
    /// # Panics
    /// If `d` and `y` have different shapes.
    fn activate_backward(&self, d: &mut Self::Matrix, y: &Self::Matrix, act: Activation);

    /// Softmax of every row in place, shifted by the row maximum so that no `exp` overflows.
    fn softmax_rows(&self, m: &mut Self::Matrix);

    /// Log-softmax of every row in place: `x - max - ln(sum exp(x - max))`.
    fn log_softmax_rows(&self, m: &mut Self::Matrix);

    /// Per-row gather of single entries: `out[r, 0] = src[r, cols[r]]` for every row `r` of
    /// `src` (`n x c`); `out` is `n x 1`. Columns are below `c`. (PyTorch's
    /// `src.gather(1, cols)`; the cross-entropy reads the log-probability of each target.)
    ///
    /// # Panics
    /// If `cols.len()` is not `n`, `out` is not `n x 1`, or a column is not below `c`.
    fn gather_per_row(&self, out: &mut Self::Matrix, src: &Self::Matrix, cols: &[usize]);

    /// The gradient of [`gather_per_row`](Backend::gather_per_row): `dst[r, cols[r]] += src[r, 0]`
    /// for every row `r` of `dst` (`n x c`); `src` is `n x 1`. (PyTorch's
    /// `dst.scatter_add_(1, cols, src)`.)
    ///
    /// # Panics
    /// If `cols.len()` is not `n`, `src` is not `n x 1`, or a column is not below `c`.
    fn scatter_add_per_row(&self, dst: &mut Self::Matrix, cols: &[usize], src: &Self::Matrix);
}

/// `1 / (1 + e^-x)`, the one definition both CPU backends use.
#[inline(always)]
pub(crate) fn sigmoid<T: Scalar>(x: T) -> T {
    T::one() / (T::one() + (-x).exp())
}
