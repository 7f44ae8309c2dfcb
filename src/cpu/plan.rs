//! The threading plan: whether a kernel cuts its work into parts for the pool's threads.
//!
//! Cutting a kernel of `t` seconds (on one thread) into `p` parts saves up to `t (1 - 1/p)` and
//! costs a hand-off: another thread must take its part and the caller wait for it. Both sides
//! differ from one machine to the next, and by shape. A thread that spins between jobs (inside
//! [`CellKernels::install`](crate::cell::CellKernels::install)'s time loops) takes one within a
//! microsecond on some processors and several on others; a sleeping one takes tens of
//! microseconds to wake. And `t` is not the multiply-adds alone: at batch 1 the recurrence's
//! product streams `W_hh` from the caches, and whether `W_hh` fits one core's cache (or half of
//! it, each of two cores' caches) decides whether a cut halves the time or only adds the
//! hand-off. Fixed sizes tuned on one processor cut steps that then ran slower on two threads
//! than on one on another.
//!
//! So each kernel finds out, where it runs, for each shape. The first [`TRIALS`] calls of a kernel
//! at a given shape (its name and sizes, the pool's thread count, and whether the pool's threads
//! are spinning) alternate between one thread and a cut into every thread, timing each; from
//! then on, for the rest of the process, the shape is cut only if the fastest cut call was at
//! least [`GAIN`] faster than the fastest uncut one. So a cut is kept only where it was measured
//! to pay on this machine, at this shape. Kernels smaller than [`MIN_TRIAL`] values never cut (a
//! hand-off alone costs more than they take).
//!
//! The results do not depend on the plan: every kernel gives the same bits however it is cut.
//! [`Threads::split_always`] skips the trials and cuts every kernel that can be cut (for tests).

use std::collections::HashMap;
use std::hash::Hash;
use std::sync::{Arc, Mutex, OnceLock, PoisonError};
use std::time::Instant;

/// Calls of a shape timed before its verdict: half on one thread, half cut.
const TRIALS: u32 = 8;

/// How much faster the cut calls must have been (their fastest against the uncut calls' fastest)
/// for the shape to be cut from then on.
const GAIN: f64 = 0.05;

/// Kernels of fewer values (multiply-adds for a product, elements otherwise) never cut: below
/// this a kernel takes about a microsecond, less than a hand-off.
const MIN_TRIAL: usize = 1 << 12;

/// Shapes with a verdict or a trial under way, at most; beyond, new shapes stay on one thread.
const MAX_SHAPES: usize = 4096;

/// A pool of threads, and whether every kernel that can be cut is
/// ([`Cpu::split_always`](super::Cpu::split_always)) or only where the trials found it pays.
#[derive(Debug, Clone)]
pub struct Threads {
    pool: Arc<rayon::ThreadPool>,
    always: bool,
}

impl Threads {
    /// `pool`, cut where the trials say.
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
}

impl std::ops::Deref for Threads {
    type Target = rayon::ThreadPool;

    fn deref(&self) -> &rayon::ThreadPool {
        &self.pool
    }
}

/// A kernel at a shape: its name (one per kernel, so that two kernels of the same sizes are
/// timed apart) and up to three sizes, whose product is its amount of work.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct Work {
    kernel: &'static str,
    sizes: [usize; 3],
}

impl Work {
    /// A product `m x k` by `k x n`.
    pub fn product(kernel: &'static str, m: usize, k: usize, n: usize) -> Self {
        Work {
            kernel,
            sizes: [m, k, n],
        }
    }

    /// An element-wise kernel over `rows x width` values.
    pub fn values(kernel: &'static str, rows: usize, width: usize) -> Self {
        Work {
            kernel,
            sizes: [rows, width, 1],
        }
    }

    fn amount(&self) -> usize {
        self.sizes.iter().fold(1, |a, &s| a.saturating_mul(s))
    }
}

thread_local! {
    /// Whether this thread runs a time loop with the pool's other threads spinning.
    static AWAKE: std::cell::Cell<bool> = const { std::cell::Cell::new(false) };
}

/// Runs `work` with this thread marked as one whose pool spins (trials of kernels called from it
/// are kept apart from those with the pool asleep), and unmarks it after, also if `work` panics.
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

/// The shape as the trials tell them apart.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
struct Shape {
    work: Work,
    threads: usize,
    awake: bool,
}

/// What the trials of a shape found so far.
#[derive(Debug, Clone, Copy)]
struct Record {
    calls: u32,
    /// The fastest uncut and cut calls, in seconds.
    best: [f64; 2],
    /// Whether to cut, once decided.
    verdict: Option<bool>,
}

fn records() -> std::sync::MutexGuard<'static, HashMap<Shape, Record>> {
    static RECORDS: OnceLock<Mutex<HashMap<Shape, Record>>> = OnceLock::new();
    let records = RECORDS.get_or_init(|| Mutex::new(HashMap::new()));
    // A panic while the map was held leaves it valid: every entry is complete.
    records.lock().unwrap_or_else(PoisonError::into_inner)
}

/// How a call of a kernel runs: in how many parts, and, while its shape is on trial, a clock
/// that records the call's time when dropped (keep it alive until the kernel is done).
#[must_use = "the trial times the call until this is dropped"]
pub struct Split {
    parts: usize,
    timing: Option<(Shape, Instant)>,
}

impl Split {
    /// Parts to cut the kernel into (1: run it on the caller's thread).
    pub fn parts(&self) -> usize {
        self.parts
    }
}

impl Drop for Split {
    fn drop(&mut self) {
        let Some((shape, start)) = self.timing else {
            return;
        };
        let seconds = start.elapsed().as_secs_f64();
        let mut records = records();
        if let Some(record) = records.get_mut(&shape) {
            let slot = &mut record.best[usize::from(self.parts > 1)];
            *slot = slot.min(seconds);
            record.calls += 1;
            if record.calls >= TRIALS && record.verdict.is_none() {
                record.verdict = Some(record.best[1] < record.best[0] * (1.0 - GAIN));
            }
        }
    }
}

/// How a call of `work` on `pool` runs: at most `most` parts (its rows or column blocks), as
/// the module's documentation says.
pub fn split(pool: Option<&Threads>, work: Work, most: usize) -> Split {
    let uncut = Split {
        parts: 1,
        timing: None,
    };
    let Some(pool) = pool else { return uncut };
    let threads = pool.current_num_threads().min(most);
    if threads < 2 {
        return uncut;
    }
    if pool.always {
        return Split {
            parts: threads,
            timing: None,
        };
    }
    if work.amount() < MIN_TRIAL {
        return uncut;
    }
    let shape = Shape {
        work,
        threads: pool.current_num_threads(),
        awake: AWAKE.with(std::cell::Cell::get),
    };
    let mut records = records();
    if records.len() >= MAX_SHAPES && !records.contains_key(&shape) {
        return uncut;
    }
    let record = records.entry(shape).or_insert(Record {
        calls: 0,
        best: [f64::INFINITY; 2],
        verdict: None,
    });
    match record.verdict {
        Some(cut) => Split {
            parts: if cut { threads } else { 1 },
            timing: None,
        },
        // Alternating: uncut, cut, uncut, ... (a call that panicked is not counted, so the
        // count may lag; the alternation only needs to give both their turns).
        None => Split {
            parts: if record.calls % 2 == 1 { threads } else { 1 },
            timing: Some((shape, Instant::now())),
        },
    }
}
