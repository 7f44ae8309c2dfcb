//! No heap allocation inside the time loop on several threads either: a training step of an LSTM
//! large enough for its recurrent products and cell steps to be split across the threads (hidden
//! 256, batch 32) makes, on every thread together, as many allocations for 64 steps as for 8,
//! give or take a few: one per step would be 56 more.
//!
//! The splits hand their parts over through `join`, whose jobs live on the stack, and cut the
//! output of a product into column blocks without a list of row slices: neither allocates.
//! What a step does allocate is outside the time loops, and some of it varies by a few from one
//! call to the next: the jobs that start each loop go through rayon's queues, which allocate a
//! block of slots now and then (amortised over many jobs).
//! (`tests/allocations.rs` counts one thread's allocations, for every cell and shape.)

// A counting allocator needs `unsafe impl GlobalAlloc`; it only forwards to the system one.
#![allow(unsafe_code)]

mod common;

use common::{random_ids, rng};
use recurrent::prelude::*;
use recurrent::{RnnConfig, Scalar};
use std::alloc::{GlobalAlloc, Layout, System};
use std::sync::atomic::{AtomicUsize, Ordering};

/// The system allocator, counting the allocations of every thread.
struct Counting;

static ALLOCATIONS: AtomicUsize = AtomicUsize::new(0);

// SAFETY: every method forwards to `System`, which upholds `GlobalAlloc`'s contract; the
// counter is an atomic, which never allocates.
unsafe impl GlobalAlloc for Counting {
    unsafe fn alloc(&self, layout: Layout) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `alloc` is passed on unchanged.
        unsafe { System.alloc(layout) }
    }

    unsafe fn dealloc(&self, ptr: *mut u8, layout: Layout) {
        // SAFETY: `ptr` came from `System.alloc` with this `layout`, as the caller guarantees.
        unsafe { System.dealloc(ptr, layout) }
    }

    unsafe fn realloc(&self, ptr: *mut u8, layout: Layout, new_size: usize) -> *mut u8 {
        ALLOCATIONS.fetch_add(1, Ordering::Relaxed);
        // SAFETY: the caller's contract for `realloc` is passed on unchanged.
        unsafe { System.realloc(ptr, layout, new_size) }
    }
}

#[global_allocator]
static GLOBAL: Counting = Counting;

/// Allocations (all threads) of one training step over `steps` steps, after a warm-up step.
fn allocations_per_step(threads: usize, config: &RnnConfig, steps: usize, batch: usize) -> usize {
    let vocab = config.input_size();
    let backend = Cpu::<f32>::with_threads(threads);
    let mut rnn = Rnn::new(backend, config.clone(), &mut rng(1)).unwrap();
    let mut r = rng(2);
    let input = Input::ids(random_ids(steps * batch, vocab, &mut r), batch);
    let targets = random_ids(steps * batch, vocab, &mut r);
    let mut sgd = Sgd::new(0.01).unwrap();
    let mut step = || {
        let trace = rnn.forward(&input, None).unwrap();
        let (_, d) = CrossEntropy::sum()
            .forward_masked(rnn.backend(), trace.logits(), &targets, trace.mask())
            .unwrap();
        let mut grads = rnn.backward(&trace, &d).unwrap();
        clip::global_norm(&mut grads, f32::of(5.0)).unwrap();
        sgd.step(&mut rnn, &grads).unwrap();
    };
    step();
    let before = ALLOCATIONS.load(Ordering::Relaxed);
    step();
    ALLOCATIONS.load(Ordering::Relaxed) - before
}

/// How many more allocations 64 steps may make than 8 (rayon's queues; see the module's
/// documentation). One allocation per step would be 56.
const SLACK: usize = 6;

#[test]
fn a_threaded_training_step_allocates_as_much_for_64_steps_as_for_8() {
    let configs = [
        RnnConfig::lstm(16, 256).output(16),
        RnnConfig::gru(16, 256).output(16),
    ];
    for config in &configs {
        for threads in [1, 2, 3] {
            let short = allocations_per_step(threads, config, 8, 32);
            let long = allocations_per_step(threads, config, 64, 32);
            println!(
                "{:?}, {threads} threads: {short} / {long} allocations",
                config.kind()
            );
            assert!(
                long <= short + SLACK,
                "{:?}, {threads} threads: {long} allocations for 64 steps, {short} for 8",
                config.kind()
            );
        }
    }
}
