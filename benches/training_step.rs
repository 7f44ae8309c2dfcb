//! The hot loop: one training step (forward, loss, backward) of a character-level Elman RNN with
//! token-id input, on the naive reference backend. This is the baseline that faster backends
//! must beat.
//!
//! IDs are `backend/cell/op/HxB` (hidden size x batch); sequence length 25 and vocabulary 65.
//! Throughput is in tokens (`T * B` per step).
//!
//! ```text
//! cargo bench --bench training_step
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::prelude::*;
use std::hint::black_box;

const VOCAB: usize = 65;
const STEPS: usize = 25;

struct Setup {
    rnn: Rnn<NaiveCpu<f32>>,
    input: Input<NaiveCpu<f32>>,
    targets: Vec<usize>,
}

fn setup(hidden: usize, batch: usize) -> Setup {
    let mut rng = StdRng::seed_from_u64(7);
    let config = RnnConfig::rnn(VOCAB, hidden).output(VOCAB);
    let rnn = Rnn::new(NaiveCpu::new(), config, &mut rng).expect("valid config");
    let ids = (0..STEPS * batch)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    let targets = (0..STEPS * batch)
        .map(|_| rng.random_range(0..VOCAB))
        .collect();
    Setup {
        rnn,
        input: Input::ids(ids, batch),
        targets,
    }
}

fn training_step(s: &Setup) -> Gradients<NaiveCpu<f32>> {
    let trace = s.rnn.forward(&s.input, None).expect("valid input");
    let (_, d_logits) = CrossEntropy::sum()
        .forward(s.rnn.backend(), trace.logits(), &s.targets)
        .expect("valid targets");
    s.rnn.backward(&trace, &d_logits).expect("matching shapes")
}

fn bench_training_step(c: &mut Criterion) {
    let mut group = c.benchmark_group("naive/rnn");
    group.sample_size(10);
    for (hidden, batch) in [(32, 1), (100, 1), (128, 8)] {
        let s = setup(hidden, batch);
        group.throughput(Throughput::Elements((STEPS * batch) as u64));
        let size = format!("{hidden}x{batch}");
        group.bench_with_input(BenchmarkId::new("forward", &size), &s, |b, s| {
            b.iter(|| black_box(s.rnn.forward(&s.input, None).expect("valid input")))
        });
        group.bench_with_input(BenchmarkId::new("train_step", &size), &s, |b, s| {
            b.iter(|| black_box(training_step(s)))
        });
    }
    group.finish();
}

criterion_group!(benches, bench_training_step);
criterion_main!(benches);
