//! Where `Cpu` runs a time loop ([`CellKernels::install`](crate::cell::CellKernels::install)):
//! on its pool, the pool's other threads spinning so that every kernel of every step can cut its
//! work for the cost of a microsecond (`with_threads_awake`), or alone on the caller's thread,
//! no kernel cut.
//!
//! Which is faster depends on the machine as much as on the shape. On a 2-core AMD EPYC the pool
//! paid from `2^19` multiply-adds per step, the size this crate used everywhere before; on a
//! 2-core Intel Xeon, with that size, two threads were 7 to 21% slower than one on several loops
//! of `2^16` to `2^21` multiply-adds per step, and much faster on others of the same sizes; on
//! the same kind of machine, on a day when the hypervisor took up to half a core from it
//! ("steal"), the pool lost even at `2^23` (BENCHMARKS.md, "Where a time loop runs"). So the
//! choice is measured where it is made:
//!
//! | one step's multiply-adds ([`TimeLoop::step_work`]) | where the loop runs |
//! |---|---|
//! | below `2^16` | the caller's thread (a kernel is cut only where the cut pays for waking a thread) |
//! | `2^16` and more | timed: the first call on the pool (a warm-up, not counted), then the calls alternate between the caller's thread alone and the pool; from the verdict on, the faster of the two |
//!
//! The verdict compares the median time per step of each place. It comes once each place has
//! [`MIN_SAMPLES`] calls and [`MIN_TIME`] of loops, or [`MAX_SAMPLES`] calls; or at once if,
//! after a call in each place, one took more than [`CLEAR`] times the other. A tie goes to the
//! caller's thread. Trials are kept for the process, one per kind of loop: the pass (forward,
//! backward, a stream's step), the step's multiply-adds, the number of steps rounded up to a
//! power of two, and the pool's thread count. While it runs, up to half of a trial's calls run
//! in the slower place: a few dozen loops in all.
//!
//! The results do not depend on the choice: every kernel gives the same bits on one thread as
//! on several. Loops of one kind run at once from several threads (clones of a backend shared
//! between threads) time each other as well; the verdict is then that of a busy machine.

use super::plan::{self, Threads};
use super::with_threads_awake;
use crate::cell::{LoopPass, TimeLoop};
use std::sync::Mutex;
use std::time::{Duration, Instant};

/// Steps of fewer multiply-adds run on the caller's thread, untimed.
const TIMED_FROM: usize = 1 << 16;
/// Calls in each place before a verdict, unless it is clear sooner.
pub const MIN_SAMPLES: usize = 4;
/// Time of loops in each place before a verdict, unless [`MAX_SAMPLES`] come first.
pub const MIN_TIME: Duration = Duration::from_millis(2);
/// Calls in one place after which the verdict comes whatever the time.
pub const MAX_SAMPLES: usize = 32;
/// A ratio of the first two calls' times that decides at once.
pub const CLEAR: f64 = 2.0;

/// Where a loop runs.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Place {
    /// On the pool, its threads spinning: kernels cut by the plan's sizes.
    Pool,
    /// On the caller's thread, kernels cut only where a cut pays for a wake-up.
    Caller,
    /// On the caller's thread, nothing cut.
    Alone,
}

/// What a trial is kept under.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct Key {
    pass: LoopPass,
    step_work: usize,
    /// `steps` rounded up to a power of two: its number of bits.
    steps_bits: u32,
    threads: usize,
}

/// The timings of one place: seconds per step of each call, and of whole loops in all.
#[derive(Debug, Clone, Copy)]
struct Samples {
    per_step: [f64; MAX_SAMPLES],
    count: usize,
    total: f64,
}

impl Samples {
    const EMPTY: Samples = Samples {
        per_step: [0.0; MAX_SAMPLES],
        count: 0,
        total: 0.0,
    };

    fn push(&mut self, seconds: f64, steps: usize) {
        if self.count < MAX_SAMPLES {
            self.per_step[self.count] = seconds / steps.max(1) as f64;
            self.count += 1;
            self.total += seconds;
        }
    }

    /// The median time per step (of the lower two for an even count).
    fn median(&self) -> f64 {
        let mut xs = self.per_step;
        let xs = &mut xs[..self.count];
        xs.sort_by(f64::total_cmp);
        xs[(self.count - 1) / 2]
    }

    fn enough(&self) -> bool {
        self.count >= MIN_SAMPLES && self.total >= MIN_TIME.as_secs_f64()
    }
}

/// One kind of loop's trial: its calls so far, their timings, and the verdict once it came.
#[derive(Debug, Clone, Copy)]
struct Trial {
    calls: usize,
    pool: Samples,
    alone: Samples,
    verdict: Option<Place>,
}

impl Trial {
    const NEW: Trial = Trial {
        calls: 0,
        pool: Samples::EMPTY,
        alone: Samples::EMPTY,
        verdict: None,
    };

    /// Where the next call runs, and whether it is timed.
    fn next(&mut self) -> (Place, bool) {
        if let Some(place) = self.verdict {
            return (place, false);
        }
        self.calls += 1;
        match self.calls {
            1 => (Place::Pool, false),
            n if n % 2 == 0 => (Place::Alone, true),
            _ => (Place::Pool, true),
        }
    }

    /// Counts a timed call, and gives the verdict when the samples allow.
    fn record(&mut self, place: Place, seconds: f64, steps: usize) {
        if self.verdict.is_some() {
            return;
        }
        match place {
            Place::Pool => self.pool.push(seconds, steps),
            Place::Alone => self.alone.push(seconds, steps),
            Place::Caller => unreachable!("a trial times only the pool and the thread alone"),
        }
        let (pool, alone) = (&self.pool, &self.alone);
        if pool.count == 0 || alone.count == 0 {
            return;
        }
        let (p, a) = (pool.median(), alone.median());
        let clear = p > CLEAR * a || a > CLEAR * p;
        let done = pool.enough() && alone.enough();
        let most = pool.count.max(alone.count) >= MAX_SAMPLES;
        if clear || done || most {
            self.verdict = Some(if p < a { Place::Pool } else { Place::Alone });
        }
    }
}

/// Every trial of the process (a handful of kinds of loop: a list is enough).
static TRIALS: Mutex<Vec<(Key, Trial)>> = Mutex::new(Vec::new());

/// Runs `f` on the trial of `key`, made if it is new.
fn with_trial<R>(key: Key, f: impl FnOnce(&mut Trial) -> R) -> R {
    // A panic elsewhere while the lock was held leaves whole trials: use them.
    let mut trials = TRIALS.lock().unwrap_or_else(|e| e.into_inner());
    let at = match trials.iter().position(|(k, _)| *k == key) {
        Some(at) => at,
        None => {
            trials.push((key, Trial::NEW));
            trials.len() - 1
        }
    };
    f(&mut trials[at].1)
}

/// Runs `work`, the time loop `time_loop` describes, where this module's table says.
pub fn run<R: Send>(pool: &Threads, time_loop: TimeLoop, work: impl FnOnce() -> R + Send) -> R {
    let threads = pool.current_num_threads();
    if pool.always() {
        return run_in(pool, Place::Pool, work);
    }
    if time_loop.step_work < TIMED_FROM || threads < 2 {
        return run_in(pool, Place::Caller, work);
    }
    let key = Key {
        pass: time_loop.pass,
        step_work: time_loop.step_work,
        steps_bits: usize::BITS - time_loop.steps.saturating_sub(1).leading_zeros(),
        threads,
    };
    let (place, timed) = with_trial(key, Trial::next);
    if !timed {
        return run_in(pool, place, work);
    }
    let start = Instant::now();
    let result = run_in(pool, place, work);
    let seconds = start.elapsed().as_secs_f64();
    with_trial(key, |trial| trial.record(place, seconds, time_loop.steps));
    result
}

/// Runs `work` in `place`.
fn run_in<R: Send>(pool: &Threads, place: Place, work: impl FnOnce() -> R + Send) -> R {
    match place {
        Place::Pool => pool.install(|| with_threads_awake(pool, work)),
        Place::Caller => work(),
        Place::Alone => plan::alone(work),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn trial_of(pool_times: &[f64], alone_times: &[f64]) -> Trial {
        let mut trial = Trial::NEW;
        assert_eq!(
            trial.next(),
            (Place::Pool, false),
            "the first call warms up"
        );
        let (mut p, mut a) = (pool_times.iter(), alone_times.iter());
        while trial.verdict.is_none() {
            let (place, timed) = trial.next();
            assert!(timed);
            let seconds = match place {
                Place::Pool => p.next(),
                _ => a.next(),
            };
            let Some(&seconds) = seconds else { break };
            trial.record(place, seconds, 10);
        }
        trial
    }

    #[test]
    fn the_faster_place_wins_once_both_have_their_samples() {
        let trial = trial_of(
            &[1e-3, 1.1e-3, 0.9e-3, 1e-3],
            &[1.2e-3, 1.3e-3, 1.2e-3, 1.25e-3],
        );
        assert_eq!(trial.verdict, Some(Place::Pool));
        assert_eq!((trial.pool.count, trial.alone.count), (4, 4));
        let trial = trial_of(&[1.2e-3; 4], &[1.1e-3; 4]);
        assert_eq!(trial.verdict, Some(Place::Alone));
        // Once given, the verdict is where every call runs, untimed.
        let mut trial = trial;
        assert_eq!(trial.next(), (Place::Alone, false));
    }

    #[test]
    fn a_tie_goes_to_one_thread_and_a_clear_gap_decides_at_once() {
        assert_eq!(trial_of(&[1e-3; 4], &[1e-3; 4]).verdict, Some(Place::Alone));
        let trial = trial_of(&[1e-3], &[2.5e-3]);
        assert_eq!(trial.verdict, Some(Place::Pool));
        assert_eq!((trial.pool.count, trial.alone.count), (1, 1));
    }

    #[test]
    fn short_loops_are_timed_until_enough_time_or_the_most_samples() {
        // 4 calls of 0.1 ms each are not 2 ms: the trial goes on, to 20 calls a place.
        let trial = trial_of(&[1e-4; 40], &[1.1e-4; 40]);
        assert_eq!((trial.pool.count, trial.alone.count), (20, 20));
        assert_eq!(trial.verdict, Some(Place::Pool));
        // Loops of 10 µs stop at the most samples.
        let trial = trial_of(&[1e-5; 40], &[1.1e-5; 40]);
        assert_eq!(trial.alone.count, MAX_SAMPLES);
        assert_eq!(trial.verdict, Some(Place::Pool));
    }

    #[test]
    fn the_median_ignores_one_slow_call() {
        let trial = trial_of(&[1e-3, 9e-3, 1e-3, 1e-3], &[1.5e-3; 4]);
        assert_eq!(trial.verdict, Some(Place::Pool));
    }
}
