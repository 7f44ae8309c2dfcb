//! The threading plan: whether a kernel cuts its work into parts for the pool's threads.
//!
//! Cutting a kernel of `t` seconds (on one thread) into `p` parts saves `t (1 - 1/p)` and costs
//! a hand-off: another thread must take its part and the caller wait for it. Both sides differ
//! from one machine to the next. A thread of the pool that spins between jobs (inside
//! [`CellKernels::install`](crate::cell::CellKernels::install)'s time loops) takes one within a
//! microsecond on some processors and several on others; a sleeping one (outside them) takes
//! tens of microseconds to wake, more under some hypervisors. Thresholds fixed on one processor
//! cut steps that then ran slower on two threads than on one on another.
//!
//! So the plan is measured where it runs, once per process, the first time a pool of two or more
//! threads is asked (a few milliseconds):
//!
//! - `handoff`, `wake`: what a `join` of two jobs of known length takes beyond that length, with
//!   the other thread spinning and after it has gone to sleep (the median of many);
//! - `madd`: the time of one multiply-add of the recurrence's kernel on one thread (`f32`, a
//!   `4 x 256` by `256 x 1024` product, as at batch 4, hidden 256);
//! - `element`: the time of one `f32` sigmoid, which stands for a value of a cell's step;
//! - `stream`: the time of one `y += a x` on `f32`, which stands for a value of the other
//!   element-wise kernels.
//!
//! A kernel estimates its time on one thread from its size and these rates, and is cut into
//! `p` parts (every thread of the pool) only if `t (1 - 1/p) >= MARGIN * cost`, with the cost of
//! a hand-off to a spinning or a sleeping thread as the caller is inside the loops or not. The
//! margin of 3 leaves room for the estimate's error, for imbalance and for the caches a cut
//! shares: a kernel is cut only where the cut saves clearly more than it costs, so no cut makes a
//! kernel slower than on one thread. `f64` kernels take longer than the `f32` rates say, so they
//! are cut a little later than they could be, never earlier. The results do not depend on the
//! plan: every kernel gives the same bits however it is cut.

use super::gemm::Operand;
use super::math::Activations;
use super::packed::Packed;
use crate::backend::Transpose;
use std::cell::Cell;
use std::hint::black_box;
use std::sync::{Arc, OnceLock};
use std::time::{Duration, Instant};

/// How much more a cut must save than it costs.
const MARGIN: f64 = 3.0;

/// The measured costs, in nanoseconds.
#[derive(Debug, Clone, Copy)]
pub struct Costs {
    /// A hand-off to a spinning thread.
    pub handoff: f64,
    /// A hand-off to a sleeping thread.
    pub wake: f64,
    /// One multiply-add of the recurrence's kernel.
    pub madd: f64,
    /// One value of a cell's element-wise step.
    pub element: f64,
    /// One value of a streaming element-wise kernel.
    pub stream: f64,
}

/// A pool of threads, and whether every kernel that can be split is
/// ([`Cpu::split_always`](super::Cpu::split_always)) or only those the measured costs say pay.
#[derive(Debug, Clone)]
pub struct Threads {
    pool: Arc<rayon::ThreadPool>,
    always: bool,
}

impl Threads {
    /// `pool`, split as the measured costs say.
    pub fn new(pool: Arc<rayon::ThreadPool>) -> Self {
        Threads {
            pool,
            always: false,
        }
    }

    /// The same pool, with every kernel that can be split split.
    pub fn split_always(self) -> Self {
        Threads {
            always: true,
            ..self
        }
    }
}

impl std::ops::Deref for Threads {
    type Target = rayon::ThreadPool;

    fn deref(&self) -> &rayon::ThreadPool {
        &self.pool
    }
}

/// The work of a kernel, which the plan turns into a time.
#[derive(Debug, Clone, Copy)]
pub enum Work {
    /// Multiply-adds of a matrix product.
    Madds(usize),
    /// Values of a cell's step (activations and their arithmetic).
    Elements(usize),
    /// Values of a streaming kernel (a copy, an `axpy`, a sum).
    Stream(usize),
}

thread_local! {
    /// Whether this thread runs a time loop with the pool's other threads spinning.
    static AWAKE: Cell<bool> = const { Cell::new(false) };
}

/// Runs `work` with this thread marked as one whose pool spins ([`parts`] then counts a
/// hand-off, not a wake-up), and unmarks it after, also if `work` panics.
pub fn while_awake<R>(work: impl FnOnce() -> R) -> R {
    struct Reset(bool);
    impl Drop for Reset {
        fn drop(&mut self) {
            AWAKE.with(|a| a.set(self.0));
        }
    }
    let _reset = Reset(AWAKE.with(|a| a.replace(true)));
    work()
}

/// How many parts (1 to the pool's threads) a kernel of `work` on `pool` is cut into, at most
/// `most` (its rows or columns).
pub fn parts(pool: Option<&Threads>, work: Work, most: usize) -> usize {
    let Some(pool) = pool else { return 1 };
    let threads = pool.current_num_threads().min(most);
    if threads < 2 || pool.always {
        return threads.max(1);
    }
    let costs = costs(pool);
    let time = costs.time(work);
    let cost = if AWAKE.with(Cell::get) {
        costs.handoff
    } else {
        costs.wake
    };
    let saved = time * (1.0 - 1.0 / threads as f64);
    if saved >= MARGIN * cost { threads } else { 1 }
}

/// Whether a time loop whose steps do `work` each is worth running with the pool's threads
/// spinning: whether such a step would be cut at all.
pub fn worth_spinning(pool: &Threads, step: Work) -> bool {
    if pool.always {
        return true;
    }
    let costs = costs(pool);
    let threads = pool.current_num_threads() as f64;
    costs.time(step) * (1.0 - 1.0 / threads) >= MARGIN * costs.handoff
}

impl Costs {
    /// Nanoseconds `work` takes on one thread, by these rates.
    fn time(&self, work: Work) -> f64 {
        match work {
            Work::Madds(n) => n as f64 * self.madd,
            Work::Elements(n) => n as f64 * self.element,
            Work::Stream(n) => n as f64 * self.stream,
        }
    }
}

/// The costs of this machine, measured on `pool` the first time they are asked for.
pub fn costs(pool: &rayon::ThreadPool) -> Costs {
    static COSTS: OnceLock<Costs> = OnceLock::new();
    *COSTS.get_or_init(|| measure(pool))
}

/// Measures [`Costs`] (see the module's documentation).
fn measure(pool: &rayon::ThreadPool) -> Costs {
    let job = Duration::from_micros(40);
    let handoff = pool
        .install(|| super::with_threads_awake(pool, || median(41, || join_overhead(pool, job))));
    let wake = median(15, || {
        std::thread::sleep(Duration::from_micros(500));
        join_overhead(pool, job)
    });
    Costs {
        handoff,
        wake,
        madd: madd_time(),
        element: per_value(f32::sigmoid_slice),
        stream: per_value(|xs| {
            let x = black_box(0.5f32);
            xs.iter_mut().for_each(|v| *v += x * *v);
        }),
    }
}

/// What `join` of two jobs of `job` each takes beyond `job`, in nanoseconds: the hand-off.
fn join_overhead(pool: &rayon::ThreadPool, job: Duration) -> f64 {
    let spin = || {
        let start = Instant::now();
        while start.elapsed() < job {
            std::hint::spin_loop();
        }
    };
    let start = Instant::now();
    pool.join(spin, spin);
    (start.elapsed().saturating_sub(job)).as_nanos() as f64
}

/// Nanoseconds per multiply-add of the packed kernel on this thread.
fn madd_time() -> f64 {
    let (m, k, n) = (4, 256, 1024);
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
