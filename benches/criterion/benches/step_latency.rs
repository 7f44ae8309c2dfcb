//! The latency of one streaming step at batch 1 (`Rnn::step`: a token in, the next token's logits
//! out), as in generation or online inference: every cell at hidden 256, 512 and 1024, vocabulary
//! 65, one layer, `f32`, on `Cpu` with every core and with one thread.
//!
//! At batch 1 a step is a matrix-vector product with `W_hh` (`4H x H` for the LSTM: 4 MB at
//! hidden 512 in `f32`), bound by how fast the weights stream from the caches; BENCHMARKS.md
//! sets these latencies beside that bound.
//!
//! ```text
//! cd benches/criterion                        # a crate of its own (see its Cargo.toml)
//! cargo bench --bench step_latency
//! cargo bench --bench step_latency -- lstm/h512     # one case
//! ```

use criterion::{BenchmarkId, Criterion, criterion_group, criterion_main};
use recurrent::prelude::*;
use recurrent::rand::SeedableRng;
use recurrent::rand::rngs::StdRng;
use recurrent::{Kernels, RnnConfig};
use std::time::Duration;

const VOCAB: usize = 65;

/// One model and its stream, stepped through the ids `0, 1, 2, ...` in turn.
fn bench_case<B: Kernels>(c: &mut Criterion, group: &str, backend: B, config: RnnConfig) {
    let hidden = config.hidden_size();
    let rnn = Rnn::new(backend, config, &mut StdRng::seed_from_u64(7)).unwrap();
    let mut stream = rnn.stream(1).unwrap();
    let mut id = 0;
    let mut group = c.benchmark_group(group);
    group.sample_size(20);
    group.warm_up_time(Duration::from_millis(500));
    group.measurement_time(Duration::from_secs(2));
    group.bench_function(BenchmarkId::from_parameter(format!("h{hidden}")), |b| {
        b.iter(|| {
            id = (id + 1) % VOCAB;
            rnn.step(&mut stream, &[id]).unwrap();
        })
    });
    group.finish();
}

fn step_latency(c: &mut Criterion) {
    type MakeConfig = fn(usize, usize) -> RnnConfig;
    let cells: [(&str, MakeConfig); 3] = [
        ("rnn", RnnConfig::rnn),
        ("lstm", RnnConfig::lstm),
        ("gru", RnnConfig::gru),
    ];
    for (name, make) in cells {
        for hidden in [256, 512, 1024] {
            let config = make(VOCAB, hidden).output(VOCAB);
            bench_case(
                c,
                &format!("{name}/all_cores"),
                Cpu::<f32>::new(),
                config.clone(),
            );
            bench_case(
                c,
                &format!("{name}/one_thread"),
                Cpu::<f32>::with_threads(1),
                config,
            );
        }
    }
}

criterion_group!(benches, step_latency);
criterion_main!(benches);
