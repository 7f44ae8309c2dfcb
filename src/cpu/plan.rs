//! The threading plan: whether a kernel cuts its work into parts for the pool's threads.
//!
//! A cut saves at most `t (1 - 1/p)` of a kernel of `t` seconds cut into `p` parts, and costs a
//! hand-off: another thread must take its part and the caller wait for it, within a microsecond
//! or so when the pool's threads spin (inside
//! [`CellKernels::install`](crate::cell::CellKernels::install)'s time loops), tens of
//! microseconds when they sleep (outside them). The sizes below from which each kernel cuts
//! were measured on one AMD EPYC (`benches/training_step.rs` and the `benches/compare` grid),
//! but for the loop's step, chosen so that the grid's smallest batch-32 step (the Elman cell at
//! hidden 128, `2^19`) is cut in two, and not tuned further:
//!
//! | kernel | cut when |
//! |---|---|
//! | the recurrence's product, one row (`packed`, `m = 1`) | `2^19` multiply-adds |
//! | the recurrence's product, several rows (`packed`) | `2^22` multiply-adds |
//! | a one-row GEMM (`gemm row`) | `2^19` multiply-adds |
//! | a GEMM (`gemm`) | `2^21` multiply-adds |
//! | a loop's step by rows of the batch (`step`) | `2^18` multiply-adds, a block of rows a part |
//! | cell steps, activations, packing, bias rows, column sums, scatter-adds | `2^14` values |
//! | element-wise kernels outside the loops (`elementwise`, `all_finite`, `update`) | `2^18` values |
//!
//! Inside the time loops that run on the pool (`loops.rs` chooses them) the pool's threads spin,
//! and those sizes decide; inside a loop that runs alone on the caller's thread nothing is cut.
//! Outside the loops (and in loops too small to time) a cut must also wake a sleeping thread,
//! which costs from tens to hundreds of microseconds depending on the machine: there a kernel is
//! cut only if its estimated time on one thread, `t`, is such that `t (1 - 1/p) >= 3 w`, with
//! `w` the cost of a wake-up. `w` and the rates behind `t` (one multiply-add of the packed
//! kernel, one `f32` sigmoid, one `y += a x`) are measured once per process, when the first pool
//! starts (about 15 ms). Cutting by measured costs inside the loops too, and timing trials of
//! every kernel at every shape, were tried on an Intel Xeon and not kept: each made some cases
//! much slower (BENCHMARKS.md, "Issue 16 on an Intel Xeon"); whole loops are timed instead.
//!
//! The results do not depend on the plan: every kernel gives the same bits however it is cut.
//! [`Threads::split_always`] cuts every kernel that can be cut (for tests).

use super::gemm::Operand;
use super::math::Activations;
use super::packed::Packed;
use crate::backend::Transpose;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How much more a cut outside the loops must save than a wake-up costs.
const MARGIN: f64 = 3.0;

/// A pool of threads, and whether every kernel that can be cut is
/// ([`Cpu::split_always`](super::Cpu::split_always)) or only from the sizes of the plan.
#[derive(Debug, Clone)]
pub struct Threads {
    pool: Arc<rayon::ThreadPool>,
    always: bool,
}

impl Threads {
    /// `pool`, cut from the sizes of the plan.
    pub fn new(pool: Arc<rayon::ThreadPool>) -> Self {
        Threads {
            pool,
            always: false,
        }
    }

    /// The same pool, with every kernel that can be cut cut.
    pub fn split_always(self) -> Self {
        Threads {
            always: true,
            ..self
        }
    }

    /// Whether every kernel that can be cut is (and every time loop runs on the pool).
    pub fn always(&self) -> bool {
        self.always
    }
}

impl std::ops::Deref for Threads {
    type Target = rayon::ThreadPool;

    fn deref(&self) -> &rayon::ThreadPool {
        &self.pool
    }
}

/// The kinds of kernel the plan tells apart: each has its size from which it is cut (the table
/// in the module's documentation) and the measured rate its time is estimated with.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Kernel {
    /// The recurrence's product on the packed `W_hh`.
    Packed,
    /// A one-row GEMM, cut by columns.
    GemmRow,
    /// A GEMM, cut by rows.
    Gemm,
    /// A recurrent step: the product with `W_hh` and the cell's step, cut by rows of the batch.
    Step,
    /// A cell's fused step, forward or backward.
    CellStep,
    /// A sigmoid or tanh over a matrix.
    Activate,
    /// Row kernels: packing, bias rows, column sums, scatter-adds.
    Rows,
    /// Element-wise kernels called outside the loops: arithmetic, the finiteness check, the
    /// optimiser's update.
    Elementwise,
}

impl Kernel {
    /// Work per part below which it is not cut, and values below which it does not wake the
    /// pool at all.
    fn thresholds(self, rows: usize) -> (usize, usize) {
        match self {
            Kernel::Packed if rows == 1 => (1 << 19, 0),
            Kernel::Packed => (1 << 22, 0),
            Kernel::GemmRow => (1 << 19, 0),
            Kernel::Gemm => (1 << 21, 0),
            Kernel::Step => (1 << 18, 0),
            Kernel::Elementwise => (1 << 14, 1 << 18),
            Kernel::CellStep | Kernel::Activate | Kernel::Rows => (1 << 14, 0),
        }
    }
}

/// A kernel at a shape: a product `m x k` by `k x n` (work: its multiply-adds), or values in
/// `rows x width` read and written by `operands` (work: `rows x width`; the values moved,
/// `rows x width x operands`, decide whether it wakes the pool).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Work {
    kernel: Kernel,
    /// `m`, or `rows`.
    rows: usize,
    /// What is cut, in its unit.
    amount: usize,
    /// What is read and written, in values (the amount for a product).
    moved: usize,
}

impl Work {
    /// A product `m x k` by `k x n`.
    pub fn product(kernel: Kernel, m: usize, k: usize, n: usize) -> Self {
        let amount = m.saturating_mul(k).saturating_mul(n);
        Work {
            kernel,
            rows: m,
            amount,
            moved: amount,
        }
    }

    /// An element-wise kernel over `rows x width` values, `operands` of them read or written.
    pub fn values(kernel: Kernel, rows: usize, width: usize, operands: usize) -> Self {
        let amount = rows.saturating_mul(width);
        Work {
            kernel,
            rows,
            amount,
            moved: amount.saturating_mul(operands),
        }
    }
}

/// How the kernels a thread calls may be cut.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Mode {
    /// The pool's threads may sleep: a cut must pay for a wake-up.
    Asleep,
    /// Inside a time loop with the pool's other threads spinning: the sizes alone decide.
    Awake,
    /// Inside a time loop that runs on this thread alone: nothing is cut.
    Alone,
}

thread_local! {
    /// How this thread's kernels may be cut now.
    static MODE: std::cell::Cell<Mode> = const { std::cell::Cell::new(Mode::Asleep) };
}

/// Runs `work` with this thread in `mode`, and restores the mode it had after, also if `work`
/// panics.
fn in_mode<R>(mode: Mode, work: impl FnOnce() -> R) -> R {
    struct Reset(Mode);
    impl Drop for Reset {
        fn drop(&mut self) {
            MODE.with(|m| m.set(self.0));
        }
    }
    let _reset = Reset(MODE.with(|m| m.replace(mode)));
    work()
}

/// Runs `work` with this thread marked as one whose pool spins (its kernels cut by the sizes
/// alone).
pub fn while_awake<R>(work: impl FnOnce() -> R) -> R {
    in_mode(Mode::Awake, work)
}

/// Runs `work` with no kernel cut: a time loop on this thread alone.
pub fn alone<R>(work: impl FnOnce() -> R) -> R {
    in_mode(Mode::Alone, work)
}

/// The measured costs, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// Waking a sleeping thread of the pool for a job.
    pub wake: f64,
    /// One multiply-add of the packed kernel, on one thread.
    pub madd: f64,
    /// One `f32` sigmoid: a value of a cell's step or an activation.
    pub element: f64,
    /// One `y += a x` on `f32`: a value of the other element-wise kernels.
    pub stream: f64,
}

impl Costs {
    /// Nanoseconds `work` takes on one thread, by these rates.
    fn time(&self, work: &Work) -> f64 {
        let rate = match work.kernel {
            Kernel::Packed | Kernel::Gemm | Kernel::GemmRow | Kernel::Step => self.madd,
            Kernel::CellStep | Kernel::Activate => self.element,
            Kernel::Rows | Kernel::Elementwise => self.stream,
        };
        work.amount as f64 * rate
    }
}

/// The costs of this machine, measured on `pool` the first time they are asked for.
pub fn costs(pool: &rayon::ThreadPool) -> Costs {
    static COSTS: OnceLock<Costs> = OnceLock::new();
    *COSTS.get_or_init(|| measure(pool))
}

/// Measures [`Costs`].
fn measure(pool: &rayon::ThreadPool) -> Costs {
    let job = Duration::from_micros(200);
    let wake = median(15, || {
        std::thread::sleep(Duration::from_micros(500));
        join_overhead(pool, job)
    });
    Costs {
        wake,
        madd: madd_time(),
        element: per_value(f32::sigmoid_slice),
        stream: per_value(|xs| {
            let x = black_box(0.5f32);
            xs.iter_mut().for_each(|v| *v += x * *v);
        }),
    }
}

/// What `join` of two jobs of `job` each takes beyond `job`, in nanoseconds.
fn join_overhead(pool: &rayon::ThreadPool, job: Duration) -> f64 {
    let spin = || {
        let start = Instant::now();
        while start.elapsed() < job {
            std::hint::spin_loop();
        }
    };
    let start = Instant::now();
    pool.join(spin, spin);
    start.elapsed().saturating_sub(job).as_nanos() as f64
}

/// Nanoseconds per multiply-add of the packed kernel on this thread (`8 x 256` by `256 x 1024`).
fn madd_time() -> f64 {
    let (m, k, n) = (8, 256, 1024);
    let b: Vec<f32> = (0..k * n).map(|i| (i % 7) as f32 * 0.125).collect();
    let a: Vec<f32> = (0..m * k).map(|i| (i % 5) as f32 * 0.25).collect();
    let operand = Operand {
        data: &b,
        rows: n,
        cols: k,
        transpose: Transpose::Yes,
    };
    let packed = Packed::new(operand, None);
    let mut c = vec![0.0f32; m * n];
    let time = median(9, || {
        let start = Instant::now();
        packed.gemm(&mut c, 1.0, black_box(&a), 0.0, None);
        start.elapsed().as_nanos() as f64
    });
    black_box(&c);
    time / (m * k * n) as f64
}

/// Nanoseconds per value of `kernel` over a few thousand `f32`s on this thread.
fn per_value(kernel: impl Fn(&mut [f32])) -> f64 {
    let mut xs: Vec<f32> = (0..4096).map(|i| (i % 97) as f32 * 0.01 - 0.5).collect();
    let time = median(9, || {
        let start = Instant::now();
        kernel(black_box(&mut xs));
        start.elapsed().as_nanos() as f64
    });
    time / xs.len() as f64
}

/// The median of `runs` results of `sample`.
fn median(runs: usize, mut sample: impl FnMut() -> f64) -> f64 {
    let mut xs: Vec<f64> = (0..runs).map(|_| sample()).collect();
    xs.sort_by(f64::total_cmp);
    xs[runs / 2]
}

/// How a call of a kernel runs: in how many parts.
pub struct Split {
    parts: usize,
}

impl Split {
    /// Parts to cut the kernel into (1: run it on the caller's thread).
    pub fn parts(&self) -> usize {
        self.parts
    }
}

/// How a call of `work` on `pool` runs: at most `most` parts (its rows or column blocks), as
/// the module's documentation says.
pub fn split(pool: Option<&Threads>, work: Work, most: usize) -> Split {
    let Some(pool) = pool else {
        return Split { parts: 1 };
    };
    let threads = pool.current_num_threads().min(most).max(1);
    let mode = MODE.with(std::cell::Cell::get);
    if mode == Mode::Alone {
        return Split { parts: 1 };
    }
    if pool.always {
        return Split { parts: threads };
    }
    let (per_part, wake) = work.kernel.thresholds(work.rows);
    if work.moved < wake {
        return Split { parts: 1 };
    }
    let parts = match work.kernel {
        // All or nothing.
        Kernel::GemmRow if work.amount >= per_part => threads,
        Kernel::GemmRow => 1,
        _ => threads.min(work.amount / per_part).max(1),
    };
    // Outside the loops, a kernel is cut only if that pays for the wake-up.
    if parts > 1 && mode == Mode::Asleep {
        let costs = costs(pool);
        let saved = costs.time(&work) * (1.0 - 1.0 / parts as f64);
        if saved < MARGIN * costs.wake {
            return Split { parts: 1 };
        }
    }
    Split { parts }
}
