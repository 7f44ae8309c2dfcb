//! No heap allocation inside the time loop: a training step (forward, loss, backward, clipping,
//! update) makes no more allocations for 64 steps than for 8 (one per step would be 56 more; it
//! can be fewer, since the 64-step matrices are large enough to reuse freed buffers), for every cell, one or two
//! directions, with and without lengths, on `NaiveCpu` and on one-threaded `Cpu` (batch 3, 8 and
//! 32). Every matrix of a pass, and `W_hh` packed for the recurrence's kernel, is sized before
//! its loop; the loop only reuses them.

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system one.
#![allow(unsafe_code)]

mod common;

use common::{random_ids, rng};
use recurrent::Kernels;
use recurrent::diagnostics::GradientFlow;
use recurrent::prelude::*;
use recurrent::{RnnConfig, Scalar};
use std::alloc::{GlobalAlloc, Layout, System};
use std::cell::Cell;

/// The system allocator, counting the allocations made on each thread.
struct Counting;

thread_local! {
    static ALLOCATIONS: Cell<usize> = const { Cell::new(0) };
}

// SAFETY: every method forwards to `System`, which upholds `GlobalAlloc`'s contract; the
// counter is a thread-local `Cell` with a const initialiser, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.with(|n| n.set(n.get() + 1));
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

fn allocations_during(f: impl FnOnce()) -> usize {
    let before = ALLOCATIONS.with(Cell::get);
    f();
    ALLOCATIONS.with(Cell::get) - before
}

/// Allocations of one training step over `steps` steps, after a warm-up step.
fn allocations_per_step<B: Kernels>(
    backend: B,
    config: &RnnConfig,
    (steps, batch): (usize, usize),
    lengths: bool,
) -> usize {
    allocations_of_step(backend, config, (steps, batch), (lengths, false))
}

/// As [`allocations_per_step`], with the gradient flow recorded (into a record reused from the
/// warm-up step) when `recorded`.
fn allocations_of_step<B: Kernels>(
    backend: B,
    config: &RnnConfig,
    (steps, batch): (usize, usize),
    (lengths, recorded): (bool, bool),
) -> usize {
    let vocab = config.input_size();
    let mut rnn = Rnn::new(backend, config.clone(), &mut rng(1)).unwrap();
    let mut r = rng(2);
    let mut input = Input::ids(random_ids(steps * batch, vocab, &mut r), batch);
    if lengths {
        input = input.with_lengths((0..batch).map(|b| (steps >> b).max(1)).collect());
    }
    let targets = random_ids(steps * batch, vocab, &mut r);
    let mut sgd = Sgd::new(0.01).unwrap();
    let mut flow = GradientFlow::new();
    let mut step = || {
        let trace = rnn.forward(&input, None).unwrap();
        let (_, d) = CrossEntropy::sum()
            .forward_masked(rnn.backend(), trace.logits(), &targets, trace.mask())
            .unwrap();
        let max_norm = B::Scalar::of(5.0);
        let grads = if recorded {
            let mut grads = rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
            flow.record_clip(clip::global_norm_recorded(&mut grads, max_norm).unwrap());
            grads
        } else {
            let mut grads = rnn.backward(&trace, &d).unwrap();
            clip::global_norm(&mut grads, max_norm).unwrap();
            grads
        };
        sgd.step(&mut rnn, &grads).unwrap();
    };
    step();
    allocations_during(step)
}

#[test]
fn a_training_step_allocates_no_more_for_64_steps_than_for_8() {
    let configs = [
        RnnConfig::rnn(7, 5).layers(2).output(7),
        RnnConfig::lstm(7, 5)
            .layers(2)
            .bidirectional(true)
            .output(7),
        RnnConfig::gru(7, 5).bidirectional(true).output(7),
    ];
    for config in &configs {
        for lengths in [false, true] {
            for batch in [3, 8, 32] {
                let naive = |steps| {
                    allocations_per_step(NaiveCpu::<f32>::new(), config, (steps, batch), lengths)
                };
                let (short, long) = (naive(8), naive(64));
                assert!(
                    long <= short,
                    "naive {config:?}, batch {batch}, lengths {lengths}: {long} > {short}"
                );
                let fast = |steps| {
                    let backend = Cpu::<f64>::with_threads(1);
                    allocations_per_step(backend, config, (steps, batch), lengths)
                };
                let (short, long) = (fast(8), fast(64));
                assert!(
                    long <= short,
                    "cpu {config:?}, batch {batch}, lengths {lengths}: {long} > {short}"
                );
            }
            let fast_short =
                allocations_per_step(Cpu::<f64>::with_threads(1), config, (8, 3), lengths);
            let short = fast_short;
            println!(
                "{:?} lengths {lengths}: {short} allocations per training step",
                config.kind()
            );
        }
    }
}

/// Recording the gradient flow adds no allocation per time step either: its vectors are sized
/// once (and reused from the previous call), its scratch matrices before the loops.
#[test]
fn a_recorded_training_step_allocates_no_more_for_64_steps_than_for_8() {
    let configs = [
        RnnConfig::rnn(7, 5).layers(2).output(7),
        RnnConfig::lstm(7, 5).bidirectional(true).output(7),
        RnnConfig::gru(7, 5).output(7),
    ];
    for config in &configs {
        for (lengths, batch) in [(false, 3), (true, 8)] {
            let naive = |steps| {
                let backend = NaiveCpu::<f32>::new();
                allocations_of_step(backend, config, (steps, batch), (lengths, true))
            };
            let (short, long) = (naive(8), naive(64));
            assert!(
                long <= short,
                "naive {config:?} batch {batch}: {long} > {short}"
            );
            let fast = |steps| {
                let backend = Cpu::<f64>::with_threads(1);
                allocations_of_step(backend, config, (steps, batch), (lengths, true))
            };
            let (short, long) = (fast(8), fast(64));
            assert!(
                long <= short,
                "cpu {config:?} batch {batch}: {long} > {short}"
            );
        }
    }
}

/// `Rnn::step` allocates nothing after its first call, on both backends, for every cell, at
/// batch 1 (generation) and 8 (where `Cpu`'s general GEMM would allocate its packing buffer).
#[test]
fn streaming_steps_allocate_nothing_after_the_first() {
    fn steps_after_warm_up<B: Kernels>(backend: B, config: &RnnConfig, batch: usize) -> usize {
        let rnn = Rnn::new(backend, config.clone(), &mut rng(3)).unwrap();
        let mut stream = rnn.stream(batch).unwrap();
        let ids: Vec<usize> = (0..batch).map(|b| b % config.input_size()).collect();
        rnn.step(&mut stream, &ids).unwrap();
        allocations_during(|| {
            for _ in 0..20 {
                rnn.step(&mut stream, &ids).unwrap();
            }
        })
    }
    let configs = [
        RnnConfig::rnn(7, 5).layers(2).output(7),
        RnnConfig::lstm(7, 5).layers(2).output(7),
        RnnConfig::gru(7, 5).output(7),
        RnnConfig::lstm(7, 5),
    ];
    for config in &configs {
        for batch in [1, 8] {
            let naive = steps_after_warm_up(NaiveCpu::<f32>::new(), config, batch);
            let fast = steps_after_warm_up(Cpu::<f32>::with_threads(1), config, batch);
            assert_eq!((naive, fast), (0, 0), "{config:?} batch {batch}");
        }
    }
}
