//! Where a training step of `examples/word_lm`'s recipe spends its time, on `Cpu<f32>`: each
//! phase of a step (forward with dropout, loss, backward, clipping, SGD) timed over 10 steps
//! after 2 of warm-up, then the three GEMMs of the output layer and the loss alone, median of 7.
//! The shapes are the recipe's: 35 steps x 20 streams = 700 rows, 200 units, a vocabulary of
//! 18,328 (WikiText-2's test and valid words). `benches/tasks/word_lm_gemm_torch.py` times the
//! same GEMMs and loss in PyTorch.
//!
//! ```text
//! cargo bench --bench word_lm_step -- 2        # threads (default 2)
//! cargo bench --bench word_lm_step -- 2 steps  # the step phases only (for a profiler)
//! ```

use recurrent::backend::Transpose;
use recurrent::prelude::*;
use recurrent::rand::{RngExt, SeedableRng};
use std::time::Instant;

const ROWS: usize = 700;
const UNITS: usize = 200;
const WORDS: usize = 18_328;

fn main() {
    let threads = (std::env::args().skip(1))
        .find_map(|a| a.parse().ok())
        .unwrap_or(2);
    let cpu = Cpu::<f32>::with_threads(threads);
    println!("threads {threads}, {ROWS} rows, {UNITS} units, {WORDS} words");
    phases(&cpu);
    if !std::env::args().any(|a| a == "steps") {
        output_layer(&cpu);
    }
}

/// The median of 7 timings of `f` (after one warm-up call), in milliseconds.
fn median_ms(mut f: impl FnMut()) -> f64 {
    f();
    let mut times: Vec<f64> = (0..7)
        .map(|_| {
            let start = Instant::now();
            f();
            start.elapsed().as_secs_f64() * 1e3
        })
        .collect();
    times.sort_by(f64::total_cmp);
    times[3]
}

fn phases(cpu: &Cpu<f32>) {
    let config = RnnConfig::lstm(UNITS, UNITS)
        .layers(2)
        .embedding(WORDS, UNITS)
        .output(WORDS)
        .tie_weights(true)
        .input_dropout(0.2)
        .dropout(0.2)
        .output_dropout(0.2);
    let mut rng = StdRng::seed_from_u64(1);
    let mut rnn = Rnn::new(cpu.clone(), config, &mut rng).expect("a valid model");
    let mut sgd = Sgd::new(20.0).expect("a valid rate");
    let ids: Vec<usize> = (0..ROWS).map(|_| rng.random_range(0..WORDS)).collect();
    let targets: Vec<usize> = (0..ROWS).map(|_| rng.random_range(0..WORDS)).collect();
    let input = Input::ids(ids, 20);
    let loss = CrossEntropy::mean();
    let (mut state, mut sums, steps) = (None, [0.0f64; 5], 12);
    for step in 0..steps {
        let mut marks = vec![Instant::now()];
        let trace = (rnn.forward_train(&input, state.as_ref(), &mut rng)).expect("forward");
        marks.push(Instant::now());
        let (_, d) = (loss.forward(rnn.backend(), trace.logits(), &targets)).expect("loss");
        marks.push(Instant::now());
        let mut grads = rnn.backward(&trace, &d).expect("backward");
        marks.push(Instant::now());
        clip::global_norm(&mut grads, 0.25).expect("clip");
        marks.push(Instant::now());
        sgd.step(&mut rnn, &grads).expect("update");
        marks.push(Instant::now());
        state = Some(trace.final_state());
        if step >= 2 {
            for (sum, pair) in sums.iter_mut().zip(marks.windows(2)) {
                *sum += (pair[1] - pair[0]).as_secs_f64() * 1e3 / (steps - 2) as f64;
            }
        }
    }
    let names = ["forward_train", "loss", "backward", "clip", "sgd"];
    for (name, ms) in names.iter().zip(sums) {
        println!("step phase {name:14} {ms:8.2} ms");
    }
    println!(
        "step phase {:14} {:8.2} ms",
        "all",
        sums.iter().sum::<f64>()
    );
}

fn output_layer(cpu: &Cpu<f32>) {
    let fill = |rows: usize, cols: usize| {
        let data = (0..rows * cols)
            .map(|i| ((i % 13) as f32 - 6.0) * 0.01)
            .collect();
        cpu.from_vec(rows, cols, data).expect("a matrix")
    };
    let (h, w) = (fill(ROWS, UNITS), fill(WORDS, UNITS));
    let (mut z, dz) = (fill(ROWS, WORDS), fill(ROWS, WORDS));
    let (mut dh, mut dw) = (fill(ROWS, UNITS), fill(WORDS, UNITS));
    let flops = 2.0 * (ROWS * UNITS * WORDS) as f64;
    let (no, yes) = (Transpose::No, Transpose::Yes);
    let gemms: [(&str, &mut dyn FnMut()); 3] = [
        ("logits = H W^T", &mut || {
            cpu.gemm(&mut z, 1.0, &h, no, &w, yes, 0.0)
        }),
        ("dH = dZ W", &mut || {
            cpu.gemm(&mut dh, 1.0, &dz, no, &w, no, 0.0)
        }),
        ("dW = dZ^T H", &mut || {
            cpu.gemm(&mut dw, 1.0, &dz, yes, &h, no, 0.0)
        }),
    ];
    for (name, f) in gemms {
        let ms = median_ms(f);
        println!(
            "gemm {name:16} {ms:8.2} ms {:7.1} GFLOP/s",
            flops / ms / 1e6
        );
    }
    let logits = dz;
    let targets: Vec<usize> = (0..ROWS).map(|i| i * 7 % WORDS).collect();
    let loss = CrossEntropy::mean();
    let ms = median_ms(|| {
        loss.forward(cpu, &logits, &targets).expect("loss");
    });
    println!("loss and gradient {ms:8.2} ms");
    let ms = median_ms(|| {
        loss.value(cpu, &logits, &targets).expect("loss");
    });
    println!("loss alone        {ms:8.2} ms");
}
