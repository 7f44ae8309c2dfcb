//! The timing loop of the Rust sides of the comparison, `recurrent_timing.rs` and
//! `rust_peers/src/main.rs`, which include this file by path so that every Rust library is
//! timed the same way.

use std::time::{Duration, Instant};

/// Time spent in repetitions of one operation, after warm-up.
const BUDGET: Duration = Duration::from_millis(1500);
/// Warm-up: at least this long and at least `MIN_WARMUP_CALLS` calls.
const WARMUP: Duration = Duration::from_millis(300);
const MIN_WARMUP_CALLS: usize = 3;
const MIN_REPS: usize = 5;
const MAX_REPS: usize = 5000;

/// Warms `f` up, then times it call by call for about `BUDGET`; the median in seconds.
pub fn median_seconds(mut f: impl FnMut()) -> f64 {
    let start = Instant::now();
    let mut calls = 0;
    while calls < MIN_WARMUP_CALLS || start.elapsed() < WARMUP {
        f();
        calls += 1;
    }
    let per_call = start.elapsed().as_secs_f64() / calls as f64;
    let reps = ((BUDGET.as_secs_f64() / per_call).ceil() as usize).clamp(MIN_REPS, MAX_REPS);
    let mut times: Vec<f64> = (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .collect();
    times.sort_by(f64::total_cmp);
    let mid = times.len() / 2;
    if times.len() % 2 == 1 {
        times[mid]
    } else {
        0.5 * (times[mid - 1] + times[mid])
    }
}
