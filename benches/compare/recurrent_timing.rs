//! The `recurrent` half of the side-by-side comparison (`benches/compare/run.sh`): plain timings,
//! no criterion, printed as one JSON object per line so that `table.py` can set them beside
//! PyTorch's and JAX's (`peers.py`), which print the same fields.
//!
//! The grid: vocabulary 65, token-id input, sequence 64, hidden 128 / 256 / 512, batch 1 and 32,
//! cells rnn / lstm / gru; plus min-char-rnn's shape (rnn, hidden 100, sequence 25, batch 1). All
//! on `Cpu::<f32>::new()` (every available core; `RECURRENT_THREADS=n` sets the count), or, built
//! with `--features candle` and run with `RECURRENT_BACKEND=candle`, on `Candle::<f32>::cpu()`
//! (the lines then say `"impl":"recurrent-candle"`; with `--features cuda` and
//! `RECURRENT_CANDLE_CUDA=<ordinal>` too, on that GPU: `"recurrent-candle-cuda"`). For each case,
//! two operations:
//!
//! - `train`: forward, summed cross-entropy, BPTT, global-norm clipping at 5, an SGD update;
//! - `forward`: the forward pass alone (`Rnn::forward`, logits and the caches BPTT would need).
//!
//! Each is warmed up, then timed call by call for about 1.5 s; the median is printed:
//!
//! ```text
//! {"impl":"recurrent","cell":"lstm","hidden":512,"batch":32,"seq":64,"op":"train","median_s":..}
//! ```
//!
//! A last line gives this machine's f32 GEMM peak, the median GFLOP/s of a 2048^3 product through
//! the public `Backend::gemm` of `Cpu<f32>`: `{"impl":"recurrent","op":"gemm_peak","gflops":..}`.
//!
//! ```text
//! cargo bench --bench compare                     # everything
//! cargo bench --bench compare -- lstm/h512/b32    # cases whose id contains the filter
//! cargo bench --bench compare -- gemm_peak        # the GEMM peak alone
//! ```
//!
//! Case ids are `cell/hH/bB/tT/op`, e.g. `gru/h256/b1/t64/train`. Flags (`--bench`, which cargo
//! adds) are ignored.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::prelude::*;
use recurrent::{DenseMatrix, Transpose};
use std::hint::black_box;
#[path = "median.rs"]
mod median;
use median::median_seconds;

const VOCAB: usize = 65;

/// `Cpu`: every core, or `RECURRENT_THREADS` of them.
fn backend() -> Cpu<f32> {
    match std::env::var("RECURRENT_THREADS")
        .ok()
        .and_then(|n| n.parse().ok())
    {
        Some(threads) => Cpu::with_threads(threads),
        None => Cpu::new(),
    }
}
/// The side of the square product that measures the GEMM peak.
const PEAK_N: usize = 2048;

type MakeConfig = fn(usize, usize) -> RnnConfig;

/// One shape of the grid.
struct Case {
    cell: &'static str,
    make: MakeConfig,
    hidden: usize,
    batch: usize,
    seq: usize,
}

impl Case {
    fn id(&self, op: &str) -> String {
        format!(
            "{}/h{}/b{}/t{}/{op}",
            self.cell, self.hidden, self.batch, self.seq
        )
    }
}

fn grid() -> Vec<Case> {
    let cells: [(&str, MakeConfig); 3] = [
        ("rnn", RnnConfig::rnn),
        ("lstm", RnnConfig::lstm),
        ("gru", RnnConfig::gru),
    ];
    let mut cases = Vec::new();
    for (cell, make) in cells {
        for batch in [1, 32] {
            for hidden in [128, 256, 512] {
                cases.push(Case {
                    cell,
                    make,
                    hidden,
                    batch,
                    seq: 64,
                });
            }
        }
    }
    // min-char-rnn's shape.
    cases.push(Case {
        cell: "rnn",
        make: RnnConfig::rnn,
        hidden: 100,
        batch: 1,
        seq: 25,
    });
    cases
}

/// A model, a batch of token ids and their targets: `seq * batch` of each, time-major.
struct Setup<B: Backend> {
    rnn: Rnn<B>,
    input: Input<B>,
    targets: Vec<usize>,
}

fn setup<B: Kernels<Scalar = f32>>(backend: B, case: &Case) -> Setup<B> {
    let mut rng = StdRng::seed_from_u64(7);
    let config = (case.make)(VOCAB, case.hidden).output(VOCAB);
    let rnn = Rnn::new(backend, config, &mut rng).expect("valid config");
    let n = case.seq * case.batch;
    let ids = (0..n).map(|_| rng.random_range(0..VOCAB)).collect();
    let targets = (0..n).map(|_| rng.random_range(0..VOCAB)).collect();
    Setup {
        rnn,
        input: Input::ids(ids, case.batch),
        targets,
    }
}

/// One training step; returns the loss before the update.
fn train_step<B: Kernels<Scalar = f32>>(s: &mut Setup<B>, sgd: &mut Sgd<B>) -> f32 {
    let trace = s.rnn.forward(&s.input, None).expect("valid input");
    let (loss, d_logits) = CrossEntropy::sum()
        .forward(s.rnn.backend(), trace.logits(), &s.targets)
        .expect("valid targets");
    let mut grads = s.rnn.backward(&trace, &d_logits).expect("matching shapes");
    clip::global_norm(&mut grads, 5.0).expect("finite gradients");
    sgd.step(&mut s.rnn, &grads).expect("matching shapes");
    loss
}

fn print_case(name: &str, case: &Case, op: &str, median_s: f64, extra: &str) {
    println!(
        "{{\"impl\":\"{name}\",\"cell\":\"{}\",\"hidden\":{},\"batch\":{},\"seq\":{},\
         \"op\":\"{op}\",\"median_s\":{median_s:.9}{extra}}}",
        case.cell, case.hidden, case.batch, case.seq
    );
}

/// Times `case` on `backend`, printing one line per operation whose id holds `filter`; `name`
/// is the line's `impl`.
fn run_case<B: Kernels<Scalar = f32>>(backend: B, name: &str, case: &Case, filter: &str) {
    let (train_id, forward_id) = (case.id("train"), case.id("forward"));
    if !train_id.contains(filter) && !forward_id.contains(filter) {
        return;
    }
    let mut s = setup(backend, case);
    if train_id.contains(filter) {
        // A small rate keeps the weights near their initialisation over thousands of steps.
        let mut sgd = Sgd::new(1e-3).expect("valid rate");
        let tokens = (case.seq * case.batch) as f32;
        let first_loss = train_step(&mut s, &mut sgd) / tokens;
        let median = median_seconds(|| {
            black_box(train_step(&mut s, &mut sgd));
        });
        print_case(
            name,
            case,
            "train",
            median,
            &format!(",\"loss0_per_token\":{first_loss:.6}"),
        );
    }
    if forward_id.contains(filter) {
        let median = median_seconds(|| {
            black_box(s.rnn.forward(&s.input, None).expect("valid input"));
        });
        print_case(name, case, "forward", median, "");
    }
}

/// This machine's f32 GEMM peak through the crate's own GEMM: `C <- A B`, all `n x n`.
fn gemm_peak() {
    let backend = backend();
    let n = PEAK_N;
    let mut rng = StdRng::seed_from_u64(11);
    let mut random = || -> DenseMatrix<f32> {
        let data = (0..n * n).map(|_| rng.random_range(-1.0..1.0)).collect();
        backend.from_vec(n, n, data).expect("n * n values")
    };
    let (a, b) = (random(), random());
    let mut c = backend.zeros(n, n);
    let median = median_seconds(|| {
        backend.gemm(&mut c, 1.0, &a, Transpose::No, &b, Transpose::No, 0.0);
        black_box(&c);
    });
    check_product(&backend, &a, &b, &c);
    let gflops = 2.0 * (n as f64).powi(3) / median / 1e9;
    println!(
        "{{\"impl\":\"recurrent\",\"op\":\"gemm_peak\",\"n\":{n},\"median_s\":{median:.9},\
         \"gflops\":{gflops:.3},\"threads\":{}}}",
        backend.threads()
    );
}

/// A peak is only worth printing if the product is right: a few entries of `C = A B` against
/// dot products in f64.
fn check_product(
    backend: &Cpu<f32>,
    a: &DenseMatrix<f32>,
    b: &DenseMatrix<f32>,
    c: &DenseMatrix<f32>,
) {
    let (a, b, c) = (backend.to_vec(a), backend.to_vec(b), backend.to_vec(c));
    let n = PEAK_N;
    for (i, j) in [
        (0, 0),
        (1, 2047),
        (777, 1234),
        (2047, 0),
        (1024, 1024),
        (2047, 2047),
    ] {
        let dot: f64 = (0..n)
            .map(|p| f64::from(a[i * n + p]) * f64::from(b[p * n + j]))
            .sum();
        let got = f64::from(c[i * n + j]);
        assert!(
            (got - dot).abs() <= 1e-3 * dot.abs().max(1.0),
            "gemm_peak: C[{i}][{j}] is {got}, expected {dot}"
        );
    }
}

/// `Candle<f32>` on candle's CPU device, or, built with `--features cuda` and run with
/// `RECURRENT_CANDLE_CUDA=<ordinal>`, on that GPU (`scripts/gpu_check.sh`).
#[cfg(feature = "candle")]
fn run_on_candle(case: &Case, filter: &str) {
    #[cfg(feature = "cuda")]
    if let Ok(ordinal) = std::env::var("RECURRENT_CANDLE_CUDA") {
        let ordinal = ordinal
            .parse()
            .expect("RECURRENT_CANDLE_CUDA is a device ordinal");
        let backend = recurrent::Candle::<f32>::cuda(ordinal).expect("the CUDA device opens");
        return run_case(backend, "recurrent-candle-cuda", case, filter);
    }
    run_case(
        recurrent::Candle::<f32>::cpu(),
        "recurrent-candle",
        case,
        filter,
    );
}

#[cfg(not(feature = "candle"))]
fn run_on_candle(_: &Case, _: &str) {
    panic!(
        "RECURRENT_BACKEND=candle needs the build's feature `candle`: cargo bench --features candle --bench compare"
    );
}

fn main() {
    // `cargo bench -- ARGS` adds `--bench`; every flag is ignored, the first word is the filter.
    let filter = std::env::args()
        .skip(1)
        .find(|a| !a.starts_with("--"))
        .unwrap_or_default();
    println!(
        "{{\"impl\":\"recurrent\",\"op\":\"info\",\"threads\":{},\"version\":\"{}\"}}",
        backend().threads(),
        env!("CARGO_PKG_VERSION")
    );
    let on_candle = std::env::var("RECURRENT_BACKEND").is_ok_and(|b| b == "candle");
    for case in grid() {
        if on_candle {
            run_on_candle(&case, &filter);
        } else {
            run_case(backend(), "recurrent", &case, &filter);
        }
    }
    if "gemm_peak".contains(filter.as_str()) {
        gemm_peak();
    }
}
