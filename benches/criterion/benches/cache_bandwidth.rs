//! The bound that `step_latency` is measured against: how fast this machine's caches stream a
//! batch-1 step's weights to one core, and to each core its own half of them.
//!
//! At batch 1 a streaming step (`Rnn::step`) is a matrix-vector product: it reads every weight of
//! `W_hh` (`G H x H`, `G` = 1, 4, 3 for the Elman, LSTM and GRU cells) and of the output layer
//! (`V x H`) once, and does two flops per weight. Its time is bound below by those bytes over
//! the bandwidth of the cache level they live in. This bench measures that bandwidth for the
//! footprint of each `step_latency` case: `f32` buffers of exactly those bytes, summed over and
//! over with enough independent accumulators that the adds are never what waits (64 lanes: 8
//! AVX2 or 4 AVX-512 registers, the widest the CPU has). "one thread": one buffer swept by the
//! caller; "two threads" (each its own half, as a cut of `W_hh`'s rows gives): the bytes of both
//! halves over the slower thread's time. Each figure is the median of 15 timings of at least 20
//! ms each.
//!
//! It prints one line per case: the bytes a step reads, the bandwidths, and the bound in
//! microseconds (bytes / bandwidth), for one and two threads.
//!
//! ```text
//! cargo bench --manifest-path benches/criterion/Cargo.toml --bench cache_bandwidth
//! ```
//!
//! Not a criterion bench (it measures the machine, not the crate): `harness = false`, plain
//! output. Reading is the bound's best case: the crate's kernel also multiplies and adds, and
//! writes `G H` results per step.

use std::hint::black_box;
use std::sync::Barrier;
use std::time::{Duration, Instant};

const VOCAB: usize = 65;
const LANES: usize = 64;
const TIMINGS: usize = 15;
const MIN_TIMING: Duration = Duration::from_millis(20);

/// Sums `xs` (a multiple of `LANES` long) in `LANES` independent lanes.
#[inline(always)]
fn sweep_lanes(xs: &[f32]) -> f32 {
    let mut acc = [0.0f32; LANES];
    for chunk in xs.chunks_exact(LANES) {
        for (a, x) in acc.iter_mut().zip(chunk) {
            *a += x;
        }
    }
    acc.iter().sum()
}

/// [`sweep_lanes`] compiled for AVX-512.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn sweep_avx512(xs: &[f32]) -> f32 {
    sweep_lanes(xs)
}

/// [`sweep_lanes`] compiled for AVX2.
#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2")]
fn sweep_avx2(xs: &[f32]) -> f32 {
    sweep_lanes(xs)
}

/// [`sweep_lanes`] with the widest vectors this CPU has, as the crate's kernels choose theirs.
fn sweep(xs: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        if is_x86_feature_detected!("avx512f") {
            // SAFETY: the CPU has AVX-512F, checked just above.
            return unsafe { sweep_avx512(xs) };
        }
        if is_x86_feature_detected!("avx2") {
            // SAFETY: the CPU has AVX2, checked just above.
            return unsafe { sweep_avx2(xs) };
        }
    }
    sweep_lanes(xs)
}

/// Seconds for `reps` sweeps of `xs`, after one sweep to bring it into the caches.
fn time_sweeps(xs: &[f32], reps: usize) -> f64 {
    black_box(sweep(xs));
    let start = Instant::now();
    for _ in 0..reps {
        black_box(sweep(black_box(xs)));
    }
    start.elapsed().as_secs_f64()
}

/// Sweeps of `values` floats that take at least `MIN_TIMING` on one thread.
fn reps_for(values: usize) -> usize {
    let xs = vec![1.0f32; values];
    let mut reps = 1;
    while time_sweeps(&xs, reps) < MIN_TIMING.as_secs_f64() {
        reps *= 2;
    }
    reps
}

fn median(mut xs: Vec<f64>) -> f64 {
    xs.sort_by(f64::total_cmp);
    xs[xs.len() / 2]
}

/// Bytes per second of `parts` threads each sweeping its own buffer of `values / parts` floats.
fn bandwidth(values: usize, parts: usize) -> f64 {
    let each = (values / parts).div_ceil(LANES) * LANES;
    let reps = reps_for(each);
    let buffers: Vec<Vec<f32>> = (0..parts).map(|_| vec![1.0f32; each]).collect();
    let barrier = Barrier::new(parts);
    let timings = (0..TIMINGS)
        .map(|_| {
            let slowest = std::thread::scope(|s| {
                let handles: Vec<_> = (buffers.iter())
                    .map(|xs| {
                        s.spawn(|| {
                            barrier.wait();
                            time_sweeps(xs, reps)
                        })
                    })
                    .collect();
                (handles.into_iter())
                    .map(|h| h.join().expect("a sweep panicked"))
                    .fold(0.0, f64::max)
            });
            (each * parts * reps * 4) as f64 / slowest
        })
        .collect();
    median(timings)
}

fn main() {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            let line = s.lines().find(|l| l.starts_with("model name"))?;
            Some(line.split(':').nth(1)?.trim().to_string())
        })
        .unwrap_or_else(|| "unknown".into());
    println!("CPU: {cpu}; vocabulary {VOCAB}, f32, batch 1");
    println!(
        "| case | weights read per step | one thread GB/s | bound µs | two threads GB/s | bound µs |"
    );
    println!("|---|---|---|---|---|---|");
    let filter = std::env::args().skip(1).find(|a| !a.starts_with('-'));
    for (cell, gates) in [("rnn", 1), ("lstm", 4), ("gru", 3)] {
        for hidden in [256, 512, 1024] {
            let case = format!("{cell}/h{hidden}");
            if filter.as_ref().is_some_and(|f| !case.contains(f.as_str())) {
                continue;
            }
            let values = gates * hidden * hidden + VOCAB * hidden;
            let bytes = (values * 4) as f64;
            let (one, two) = (bandwidth(values, 1), bandwidth(values, 2));
            println!(
                "| {case} | {:.0} KiB | {:.1} | {:.1} | {:.1} | {:.1} |",
                bytes / 1024.0,
                one / 1e9,
                bytes / one * 1e6,
                two / 1e9,
                bytes / two * 1e6
            );
        }
    }
}
