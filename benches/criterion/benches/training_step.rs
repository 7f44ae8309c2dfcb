//! The hot loop: a character-level model with token-id input (vocabulary 65, sequence 64), on
//! the naive reference backend and the fast `Cpu` backend, f32.
//!
//! IDs are `backend/cell/op/HxB` (hidden size x batch); `op` is `forward` (the forward pass
//! alone), `train_step` (forward, summed cross-entropy, BPTT, global-norm clipping and an SGD
//! update), or `step_forward` / `step_backward`: one time step of the cell alone through the
//! [`Cell`](recurrent::Cell) API, input width `H` (as in an upper layer). Throughput is in
//! tokens: `T * B` per sequence, `B` per step. Before timing, the fast backend's logits
//! and gradients are checked against the naive backend's on the same weights.
//!
//! ```text
//! cd benches/criterion                        # a crate of its own (see its Cargo.toml)
//! cargo bench --bench training_step           # everything
//! cargo bench --bench training_step -- cpu/lstm     # a subset
//! ```

use criterion::{BenchmarkId, Criterion, Throughput, criterion_group, criterion_main};
use recurrent::Kernels;
use recurrent::prelude::*;
use recurrent::rand::rngs::StdRng;
use recurrent::rand::{RngExt, SeedableRng};
use recurrent::{Cell, CellState, GruCell, LstmCell, Nonlinearity, RnnCell, Scalar};
use std::hint::black_box;

const VOCAB: usize = 65;
const STEPS: usize = 64;

/// One benchmark case: a model, a batch of ids and their targets.
struct Setup<B: Kernels> {
    rnn: Rnn<B>,
    input: Input<B>,
    targets: Vec<usize>,
}

fn setup<B: Kernels>(backend: B, config: RnnConfig, batch: usize) -> Setup<B> {
    let mut rng = StdRng::seed_from_u64(7);
    let rnn = Rnn::new(backend, config, &mut rng).expect("valid config");
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

fn gradients<B: Kernels>(s: &Setup<B>) -> Gradients<B> {
    let trace = s.rnn.forward(&s.input, None).expect("valid input");
    let (_, d_logits) = CrossEntropy::sum()
        .forward(s.rnn.backend(), trace.logits(), &s.targets)
        .expect("valid targets");
    s.rnn.backward(&trace, &d_logits).expect("matching shapes")
}

fn train_step<B: Kernels>(s: &mut Setup<B>, sgd: &mut Sgd<B>) {
    let mut grads = gradients(s);
    clip::global_norm(&mut grads, B::Scalar::of(5.0)).expect("finite gradients");
    sgd.step(&mut s.rnn, &grads).expect("matching shapes");
}

/// The largest difference between two backends' results, relative to `max(1, |x|)`.
fn largest_difference(a: &[f32], b: &[f32]) -> f32 {
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
        .fold(0.0, f32::max)
}

/// Checks that `Cpu` gives what `NaiveCpu` gives on the same weights, before any timing.
fn check_agreement(config: &RnnConfig, batch: usize) {
    let naive = setup(NaiveCpu::<f32>::new(), config.clone(), batch);
    let fast = setup(Cpu::<f32>::new(), config.clone(), batch);
    let (gn, gf) = (gradients(&naive), gradients(&fast));
    for ((name, a), (_, b)) in gn.named().into_iter().zip(gf.named()) {
        let diff = largest_difference(a.as_slice(), b.as_slice());
        assert!(diff < 1e-3, "{name}: cpu differs from naive by {diff}");
    }
}

type MakeConfig = fn(usize, usize) -> RnnConfig;

const CELLS: [(&str, MakeConfig); 3] = [
    ("rnn", RnnConfig::rnn),
    ("lstm", RnnConfig::lstm),
    ("gru", RnnConfig::gru),
];

fn bench_backend<B: Kernels>(c: &mut Criterion, name: &str, backend: B, sizes: &[(usize, usize)]) {
    for (cell, make) in CELLS {
        let mut group = c.benchmark_group(format!("{name}/{cell}"));
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_secs(1));
        group.measurement_time(std::time::Duration::from_secs(3));
        for &(hidden, batch) in sizes {
            let config = make(VOCAB, hidden).output(VOCAB);
            if name == "cpu" {
                check_agreement(&config, batch);
            }
            let mut s = setup(backend.clone(), config, batch);
            let mut sgd = Sgd::new(1e-3).expect("valid rate");
            group.throughput(Throughput::Elements((STEPS * batch) as u64));
            let size = format!("{hidden}x{batch}");
            group.bench_function(BenchmarkId::new("forward", &size), |b| {
                b.iter(|| black_box(s.rnn.forward(&s.input, None).expect("valid input")))
            });
            group.bench_function(BenchmarkId::new("train_step", &size), |b| {
                b.iter(|| train_step(&mut s, &mut sgd))
            });
        }
        group.finish();
    }
}

/// A cell of each kind with `hidden` inputs and units.
fn cell<B: Kernels>(backend: &B, kind: &str, hidden: usize) -> Box<dyn Cell<B>> {
    let mut rng = StdRng::seed_from_u64(9);
    match kind {
        "rnn" => Box::new(
            RnnCell::new(backend, hidden, hidden, Nonlinearity::Tanh, &mut rng).expect("valid"),
        ),
        "lstm" => Box::new(LstmCell::new(backend, hidden, hidden, &mut rng).expect("valid")),
        _ => Box::new(GruCell::new(backend, hidden, hidden, &mut rng).expect("valid")),
    }
}

fn random_matrix<B: Kernels>(backend: &B, rows: usize, cols: usize, rng: &mut StdRng) -> B::Matrix {
    let data = (0..rows * cols)
        .map(|_| B::Scalar::of(rng.random_range(-1.0..1.0)))
        .collect();
    backend.from_vec(rows, cols, data).expect("sized to fit")
}

fn bench_steps<B: Kernels>(c: &mut Criterion, name: &str, backend: B, sizes: &[(usize, usize)]) {
    for (kind, _) in CELLS {
        let mut group = c.benchmark_group(format!("{name}/{kind}"));
        group.sample_size(10);
        group.warm_up_time(std::time::Duration::from_secs(1));
        group.measurement_time(std::time::Duration::from_secs(2));
        for &(hidden, batch) in sizes {
            let cell = cell(&backend, kind, hidden);
            let mut rng = StdRng::seed_from_u64(10);
            let x = random_matrix(&backend, batch, hidden, &mut rng);
            let mut prev = CellState::zeros(&backend, cell.kind(), batch, hidden);
            prev.h = random_matrix(&backend, batch, hidden, &mut rng);
            let step = cell.step_forward(&backend, &x, &prev).expect("valid step");
            let d_state = step.state.clone();
            let mut grads = cell.params().zeros_like(&backend);
            group.throughput(Throughput::Elements(batch as u64));
            let size = format!("{hidden}x{batch}");
            group.bench_function(BenchmarkId::new("step_forward", &size), |b| {
                b.iter(|| black_box(cell.step_forward(&backend, &x, &prev).expect("valid step")))
            });
            group.bench_function(BenchmarkId::new("step_backward", &size), |b| {
                b.iter(|| {
                    let back = cell.step_backward(&backend, &x, &prev, &step, &d_state, &mut grads);
                    black_box(back.expect("matching shapes"))
                })
            });
        }
        group.finish();
    }
}

fn steps(c: &mut Criterion) {
    bench_steps(c, "naive", NaiveCpu::<f32>::new(), &[(128, 1), (128, 32)]);
    bench_steps(
        c,
        "cpu",
        Cpu::<f32>::new(),
        &[(128, 1), (512, 1), (128, 32), (512, 32)],
    );
}

fn naive(c: &mut Criterion) {
    bench_backend(c, "naive", NaiveCpu::<f32>::new(), &[(128, 1), (128, 32)]);
}

fn cpu(c: &mut Criterion) {
    let sizes = [
        (128, 1),
        (256, 1),
        (512, 1),
        (128, 32),
        (256, 32),
        (512, 32),
    ];
    bench_backend(c, "cpu", Cpu::<f32>::new(), &sizes);
}

criterion_group!(benches, steps, naive, cpu);
criterion_main!(benches);
