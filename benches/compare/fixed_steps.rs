//! A fixed number of training steps (or forward passes) of one case of the `compare` grid, on
//! one thread, for counts that do not drift: instructions under `valgrind --tool=callgrind`,
//! where the grid's timed loop (`recurrent_timing.rs`) runs for a time, not a count.
//!
//! ```text
//! cargo bench --bench fixed_steps --no-run     # then, with the binary it names:
//! valgrind --tool=callgrind target/release/deps/fixed_steps-* lstm 256 32 3 [train|forward]
//! ```
//!
//! Arguments: cell (`rnn`, `lstm`, `gru`), hidden size, batch, steps, and the operation (default
//! `train`: forward, summed cross-entropy, BPTT, global-norm clipping at 5, an SGD update, as
//! the grid's). Vocabulary 65, token ids, sequence 64, seed 7, as the grid. It uses only the
//! prelude, so the same file builds against older commits for a before / after comparison.

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::prelude::*;
use std::hint::black_box;

const VOCAB: usize = 65;
const SEQ: usize = 64;

fn arg(args: &[String], i: usize, what: &str) -> usize {
    let usage = "usage: fixed_steps CELL HIDDEN BATCH STEPS [train|forward]";
    let text = args.get(i).unwrap_or_else(|| panic!("{usage}: no {what}"));
    text.parse()
        .unwrap_or_else(|_| panic!("{usage}: {what} {text:?} is not a number"))
}

fn main() {
    let args: Vec<String> = std::env::args().collect();
    let cell = args.get(1).map_or("lstm", String::as_str);
    let (hidden, batch, steps) = (
        arg(&args, 2, "hidden"),
        arg(&args, 3, "batch"),
        arg(&args, 4, "steps"),
    );
    let train = args.get(5).is_none_or(|op| op == "train");
    let mut rng = StdRng::seed_from_u64(7);
    let config = match cell {
        "rnn" => RnnConfig::rnn(VOCAB, hidden),
        "gru" => RnnConfig::gru(VOCAB, hidden),
        _ => RnnConfig::lstm(VOCAB, hidden),
    };
    let backend = Cpu::<f32>::with_threads(1);
    let mut rnn = Rnn::new(backend, config.output(VOCAB), &mut rng).expect("valid config");
    let n = SEQ * batch;
    let ids = (0..n).map(|_| rng.random_range(0..VOCAB)).collect();
    let targets: Vec<usize> = (0..n).map(|_| rng.random_range(0..VOCAB)).collect();
    let input = Input::ids(ids, batch);
    let mut sgd = Sgd::new(1e-3).expect("valid rate");
    let mut loss = 0.0;
    for _ in 0..steps {
        let trace = rnn.forward(&input, None).expect("valid input");
        if !train {
            black_box(trace);
            continue;
        }
        let (l, d_logits) = CrossEntropy::sum()
            .forward(rnn.backend(), trace.logits(), &targets)
            .expect("valid targets");
        let mut grads = rnn.backward(&trace, &d_logits).expect("matching shapes");
        clip::global_norm(&mut grads, 5.0).expect("finite gradients");
        sgd.step(&mut rnn, &grads).expect("matching shapes");
        loss = l;
    }
    println!("{cell} h{hidden} b{batch}: loss after {steps} steps {loss}");
}
