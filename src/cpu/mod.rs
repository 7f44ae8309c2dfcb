//! `Cpu`: the fast CPU backend: the [`Backend`] operations, and overrides of the generic cell,
//! loss and update code in `fused.rs`.
//!
//! Where a training step's time goes is the GEMM: the input and output projections and
//! weight gradients over all `T*B` rows, which run on `gemm.rs`, SIMD and
//! cache-blocked, threaded when large; and the per-step recurrence, which runs on
//! `packed.rs`, a kernel of its own on `W_hh` packed once per sequence. The fused
//! cell kernels and the activations (`O(B*H)` per step against the recurrence's `O(B*H^2)`) have
//! loops of their own, split across the threads by batch rows (`cells`); the scatter-add, bias
//! rows and column sums by rows or columns, and the element-wise kernels and the optimiser update
//! by ranges of elements (`kernels`); the copies and gathers run on the caller's thread.

mod cells;
mod fused;
mod gemm;
mod kernels;
mod loops;
mod math;
mod packed;
mod plan;
mod step;

use crate::backend::naive;
use crate::backend::{Activation, Backend, DenseMatrix, NaiveCpu, Transpose};
use crate::error::Result;
use crate::scalar::Scalar;
use gemm::{MatMul, Operand};
use math::Activations;
use packed::Packed;
use plan::Threads;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, Weak};

/// The fast CPU backend for `f32` and `f64`: a SIMD, cache-blocked GEMM (`matrixmultiply`) with
/// its rows split across threads for large products, on the same [`DenseMatrix`] storage as
/// [`NaiveCpu`], so results move between the two freely.
///
/// The recurrence's products (`h W_hh^T` and `d hh W_hh` at every step) have a kernel of their
/// own: register-blocked (AVX-512, AVX2 + FMA or portable, chosen at run time) on a copy of
/// `W_hh` packed once per sequence ([`Backend::prepare_rhs`]), split across the threads by
/// columns when large, so that each thread reads only its part of `W_hh`. The cell's
/// element-wise step is split by batch rows. [`CellKernels::install`](crate::cell::CellKernels::install)
/// runs a time loop either on a thread of the pool, the others taking its jobs without going
/// to sleep between them, or alone on the caller's thread: whichever its first calls timed
/// faster for that kind of loop on this machine (`src/cpu/loops.rs`).
///
/// `Cpu::default()` uses every core the process may run on
/// ([`std::thread::available_parallelism`]); [`Cpu::with_threads`] sets the count.
///
/// The threads are a pool shared by the backend's clones (a clone is cheap) and by every other
/// `Cpu` of the same thread count; they end when the last of them is dropped. Whether a kernel
/// splits its work across them depends on its size (the table in `src/cpu/plan.rs`) and on
/// where its time loop runs.
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::Transpose;
///
/// let two = Cpu::<f64>::with_threads(2);
/// assert!((1..=2).contains(&two.threads())); // 1 if the system refused to start a thread
/// assert_eq!(Cpu::<f64>::with_threads(0).threads(), 1); // at least one: the caller's
/// // A clone, and any other `Cpu` of two threads, runs on the same pool.
/// let same_pool = Cpu::<f64>::with_threads(2);
/// assert_eq!(same_pool.threads(), two.threads());
///
/// // Threads change the speed, never the bits: one thread, two, and two splitting every
/// // kernel whatever its size give the same product.
/// let product = |backend: &Cpu<f64>| -> recurrent::Result<Vec<f64>> {
///     let a = backend.from_vec(3, 4, (0..12).map(|v| v as f64 / 7.0).collect())?;
///     let b = backend.from_vec(5, 4, (0..20).map(|v| (v as f64).sin()).collect())?;
///     let mut c = backend.zeros(3, 5);
///     backend.gemm(&mut c, 1.0, &a, Transpose::No, &b, Transpose::Yes, 0.0); // A B^T
///     Ok(backend.to_vec(&c))
/// };
/// let one = product(&Cpu::with_threads(1))?;
/// assert_eq!(product(&two)?, one);
/// assert_eq!(product(&two.clone().split_always())?, one);
/// // The storage is `NaiveCpu`'s: its matrices work on both, and the reference agrees.
/// let naive = NaiveCpu::<f64>::new();
/// let a = naive.from_vec(3, 4, (0..12).map(|v| v as f64 / 7.0).collect())?;
/// let b = naive.from_vec(5, 4, (0..20).map(|v| (v as f64).sin()).collect())?;
/// let mut c = naive.zeros(3, 5);
/// naive.gemm(&mut c, 1.0, &a, Transpose::No, &b, Transpose::Yes, 0.0);
/// let reference = naive.to_vec(&c);
/// assert!(one.iter().zip(&reference).all(|(x, y)| (x - y).abs() <= 1e-15 * y.abs().max(1.0)));
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Cpu<T> {
    /// `None` for one thread: everything runs on the caller's.
    pool: Option<Threads>,
    /// The reference, for the element-wise kernels that are plain loops over slices already.
    reference: NaiveCpu<T>,
}

impl<T> Cpu<T> {
    /// The backend on every available core.
    pub fn new() -> Self {
        let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
        Self::with_threads(threads)
    }

    /// The backend on at most `threads` threads (at least one). If the operating system refuses
    /// to start the threads, it runs on the caller's thread alone.
    ///
    /// Backends of the same thread count share one pool (a second `Cpu::new()` does not start
    /// more threads than there are cores), which ends when the last of them is dropped.
    pub fn with_threads(threads: usize) -> Self {
        let pool = (threads > 1).then(|| shared_pool(threads)).flatten();
        if let Some(pool) = &pool {
            plan::costs(pool);
        }
        let pool = pool.map(Threads::new);
        Cpu {
            pool,
            reference: NaiveCpu::new(),
        }
    }

    /// The same backend (the same pool), with every kernel that can be split across the threads
    /// split, whatever its size, instead of only where it was measured to pay. Slower
    /// for small work; for tests that the split kernels give the same bits as one thread.
    pub fn split_always(self) -> Self {
        Cpu {
            pool: self.pool.map(Threads::split_always),
            ..self
        }
    }

    /// The most threads one kernel uses.
    pub fn threads(&self) -> usize {
        self.pool.as_ref().map_or(1, |p| p.current_num_threads())
    }
}

/// The live pool of `threads` threads if there is one, else a new one (`None` if the system
/// refuses to start it).
fn shared_pool(threads: usize) -> Option<Arc<rayon::ThreadPool>> {
    static POOLS: Mutex<Vec<Weak<rayon::ThreadPool>>> = Mutex::new(Vec::new());
    // A panic elsewhere while the list was held leaves it valid: every entry is a `Weak`.
    let mut pools = POOLS
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    pools.retain(|pool| pool.strong_count() > 0);
    let live = pools.iter().filter_map(Weak::upgrade);
    if let Some(pool) = live
        .into_iter()
        .find(|p| p.current_num_threads() == threads)
    {
        return Some(pool);
    }
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .ok()
        .map(Arc::new)?;
    pools.push(Arc::downgrade(&pool));
    Some(pool)
}

impl<T> Default for Cpu<T> {
    fn default() -> Self {
        Self::new()
    }
}

fn operand<T>(m: &DenseMatrix<T>, transpose: Transpose) -> Operand<'_, T>
where
    T: Copy + Default,
{
    Operand {
        data: m.as_slice(),
        rows: m.rows(),
        cols: m.cols(),
        transpose,
    }
}

/// How long a thread of the pool waits for a job, spinning, during [`CellKernels::install`](crate::cell::CellKernels::install) before it
/// leaves the wait to the pool (which puts it to sleep).
const SPIN_PATIENCE: std::time::Duration = std::time::Duration::from_millis(2);

/// Runs `work` on this thread of `pool` while the pool's other threads take its jobs spinning,
/// instead of going to sleep between them.
///
/// The time loops hand the pool two or more jobs per step (the recurrent product, the cell),
/// between which this thread works alone for a while. A waiting rayon thread sleeps after a few
/// dozen microseconds and takes tens of microseconds to wake: the job meant for it was then
/// run by this thread after its own, and a profile of a 2 x 512 LSTM training step found one
/// thread working alone for a third of the step, half of that in the recurrent product. Spinning
/// threads (as OpenMP's do, under PyTorch) take each job at once.
///
/// Each waiting thread gives up after [`SPIN_PATIENCE`] without a job, so none spins for long
/// once the loops are over, and none can block `work` for good. The worst cases cost that
/// delay: when several callers share the pool (clones of the backend used from several threads),
/// a spinning task may pick up another caller's loop, or this thread another caller's spinning
/// task, and then waits for it to end or give up.
fn with_threads_awake<R: Send>(pool: &rayon::ThreadPool, work: impl FnOnce() -> R + Send) -> R {
    /// Sets the flag when dropped: when `work` returns, and when it panics.
    struct Done<'a>(&'a AtomicBool);
    impl Drop for Done<'_> {
        fn drop(&mut self) {
            self.0.store(true, Ordering::Release);
        }
    }
    let done = AtomicBool::new(false);
    pool.scope(|scope| {
        for _ in 1..pool.current_num_threads() {
            scope.spawn(|_| take_jobs_until(pool, &done));
        }
        let _done = Done(&done);
        plan::while_awake(work)
    })
}

/// Runs the pool's jobs as they come until `done`, or until none has come for [`SPIN_PATIENCE`].
fn take_jobs_until(pool: &rayon::ThreadPool, done: &AtomicBool) {
    let mut idle_since = std::time::Instant::now();
    let mut polls = 0u32;
    while !done.load(Ordering::Acquire) {
        if pool.yield_now() == Some(rayon::Yield::Executed) {
            idle_since = std::time::Instant::now();
            continue;
        }
        std::hint::spin_loop();
        polls = polls.wrapping_add(1);
        // Every 64 idle polls: the clock (it costs about as much as a poll), and a yield to the
        // system, so that a thread of another process (or another test) waiting for this core
        // gets it.
        if polls.is_multiple_of(64) {
            if idle_since.elapsed() > SPIN_PATIENCE {
                return;
            }
            std::thread::yield_now();
        }
    }
}

/// `op(B)` prepared by [`Cpu`] for many products: a copy packed in panels for the
/// register-blocked kernel, which beats both the general GEMM and the dot-product kernel for
/// every batch from 1 to 32 (measured in `benches/training_step.rs`).
#[derive(Debug, Clone)]
pub struct CpuRhs<T>(Packed<T>);

impl<T: Scalar + MatMul + Activations> Backend for Cpu<T> {
    type Scalar = T;
    type Matrix = DenseMatrix<T>;

    // Storage is the reference's: the same `DenseMatrix`.
    fn zeros(&self, rows: usize, cols: usize) -> DenseMatrix<T> {
        self.reference.zeros(rows, cols)
    }

    fn empty(&self, rows: usize, cols: usize) -> DenseMatrix<T> {
        DenseMatrix::reused(rows, cols)
    }

    fn from_vec(&self, rows: usize, cols: usize, data: Vec<T>) -> Result<DenseMatrix<T>> {
        self.reference.from_vec(rows, cols, data)
    }

    fn to_vec(&self, m: &DenseMatrix<T>) -> Vec<T> {
        self.reference.to_vec(m)
    }

    fn shape(&self, m: &DenseMatrix<T>) -> (usize, usize) {
        self.reference.shape(m)
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
        let (m, n) = c.shape();
        assert_eq!(ta.apply(a.shape()).0, m, "gemm: C has the wrong shape");
        gemm::gemm(
            c.as_mut_slice(),
            n,
            alpha,
            operand(a, ta),
            operand(b, tb),
            beta,
            self.pool.as_ref(),
        );
    }

    type Prepared = CpuRhs<T>;

    fn prepare_rhs(&self, b: &DenseMatrix<T>, tb: Transpose, _rows: usize) -> CpuRhs<T> {
        CpuRhs(Packed::new(operand(b, tb), self.pool.as_ref()))
    }

    fn gemm_prepared(
        &self,
        c: &mut DenseMatrix<T>,
        alpha: T,
        a: &DenseMatrix<T>,
        CpuRhs(packed): &CpuRhs<T>,
        beta: T,
    ) {
        let (k, n) = packed.shape();
        assert_eq!(a.cols(), k, "gemm_prepared: inner dimensions differ");
        assert_eq!(
            c.shape(),
            (a.rows(), n),
            "gemm_prepared: C has the wrong shape"
        );
        packed.gemm(
            c.as_mut_slice(),
            alpha,
            a.as_slice(),
            beta,
            self.pool.as_ref(),
        );
    }

    fn copy_rows(
        &self,
        dst: &mut DenseMatrix<T>,
        dst_row: usize,
        src: &DenseMatrix<T>,
        src_row: usize,
        count: usize,
    ) {
        kernels::copy_rows(dst, dst_row, src, src_row, count)
    }

    fn copy_columns(
        &self,
        dst: &mut DenseMatrix<T>,
        dst_col: usize,
        src: &DenseMatrix<T>,
        src_col: usize,
        width: usize,
    ) {
        self.reference
            .copy_columns(dst, dst_col, src, src_col, width)
    }

    fn gather_rows(&self, out: &mut DenseMatrix<T>, src: &DenseMatrix<T>, rows: &[usize]) {
        kernels::gather_rows(out, src, rows)
    }

    fn mul(&self, a: &mut DenseMatrix<T>, b: &DenseMatrix<T>) {
        naive::same_shape("mul", a, b);
        kernels::elementwise(self.pool.as_ref(), a, b.as_slice(), naive::mul)
    }

    fn gather_columns(&self, out: &mut DenseMatrix<T>, table: &DenseMatrix<T>, ids: &[usize]) {
        kernels::gather_columns(out, table, ids)
    }

    fn scatter_add_columns(&self, table: &mut DenseMatrix<T>, ids: &[usize], src: &DenseMatrix<T>) {
        kernels::scatter_add_columns(table, ids, src, self.pool.as_ref())
    }

    fn add_row(&self, m: &mut DenseMatrix<T>, row: &DenseMatrix<T>) {
        kernels::add_row(m, row, self.pool.as_ref())
    }

    fn add_column_sums(&self, acc: &mut DenseMatrix<T>, m: &DenseMatrix<T>) {
        kernels::add_column_sums(acc, m, self.pool.as_ref())
    }

    fn axpy(&self, y: &mut DenseMatrix<T>, alpha: T, x: &DenseMatrix<T>) {
        naive::same_shape("axpy", y, x);
        kernels::elementwise(self.pool.as_ref(), y, x.as_slice(), |y, x| {
            naive::axpy(y, alpha, x)
        })
    }

    fn scale(&self, m: &mut DenseMatrix<T>, alpha: T) {
        kernels::elementwise(self.pool.as_ref(), m, &[], |m, _| naive::scale(m, alpha))
    }

    fn clamp(&self, m: &mut DenseMatrix<T>, lo: T, hi: T) {
        kernels::elementwise(self.pool.as_ref(), m, &[], |m, _| naive::clamp(m, lo, hi))
    }

    // In 16 interleaved partial sums (`kernels::in_lanes`), not the reference's one chain: a
    // clipped gradient of millions of entries waited out one addition's latency per entry.
    fn sum_squares(&self, m: &DenseMatrix<T>) -> T {
        kernels::in_lanes(m.as_slice(), T::zero(), |a, x| a + x * x, |a, b| a + b)
    }

    fn all_finite(&self, m: &DenseMatrix<T>) -> bool {
        kernels::all_finite(m.as_slice(), self.pool.as_ref())
    }

    fn activate(&self, m: &mut DenseMatrix<T>, act: Activation) {
        let (rows, cols) = m.shape();
        let block = cells::Activate {
            m: m.as_mut_slice(),
            cols,
        };
        let pool = self.pool.as_ref();
        let work = plan::Work::values(plan::Kernel::Activate, rows, cols, 1);
        match act {
            Activation::Tanh => cells::in_row_blocks(pool, block, rows, work, |b| {
                T::tanh_slice(b.m);
            }),
            Activation::Sigmoid => cells::in_row_blocks(pool, block, rows, work, |b| {
                T::sigmoid_slice(b.m);
            }),
            _ => self.reference.activate(m, act),
        }
    }

    fn activate_backward(&self, d: &mut DenseMatrix<T>, y: &DenseMatrix<T>, act: Activation) {
        self.reference.activate_backward(d, y, act)
    }

    fn softmax_rows(&self, m: &mut DenseMatrix<T>) {
        self.reference.softmax_rows(m)
    }

    fn log_softmax_rows(&self, m: &mut DenseMatrix<T>) {
        self.reference.log_softmax_rows(m)
    }

    fn gather_per_row(&self, out: &mut DenseMatrix<T>, src: &DenseMatrix<T>, cols: &[usize]) {
        self.reference.gather_per_row(out, src, cols)
    }

    fn scatter_add_per_row(&self, dst: &mut DenseMatrix<T>, cols: &[usize], src: &DenseMatrix<T>) {
        self.reference.scatter_add_per_row(dst, cols, src)
    }
}
