//! Parity of the many-to-one head with PyTorch: every case of `tests/fixtures/heads/` (written
//! by `tests/fixtures/generate.py`, PyTorch f64) classifies each sequence of a variable-length
//! batch (lengths 3, 5, 1 of 5 steps) from the top layer's `h_n` of a packed batch
//! (`cat(h_n[-2], h_n[-1])` when bidirectional) through the output layer, with the mean
//! cross-entropy. Compared: the `B x V` logits, the loss, and the gradient of every parameter
//! and of the input; on every backend.
//!
//! The cases: two-layer LSTM and GRU, one and two directions, and a bidirectional Elman RNN.
//!
//! Tolerance: `1e-10` of `max(1, |expected|)`, as `tests/parity.rs`; the worst error is printed.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use fixture::{floats, indices};
use recurrent::{Cpu, CrossEntropy, Input, Kernels, NaiveCpu, Rnn, RnnConfig, StateDict};
use std::path::{Path, PathBuf};
use vec_backend::VecBackend;

const TOLERANCE: f64 = 1e-10;

fn fixtures() -> Vec<PathBuf> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/heads");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "the generator writes 5 head cases");
    files
}

/// Runs one case; returns the worst error and where.
fn check_case<B: Kernels<Scalar = f64>>(backend: &B, path: &Path) -> (f64, String) {
    let dict = StateDict::read(path).unwrap();
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    let rnn = Rnn::from_state_dict(backend.clone(), config, &dict, false).unwrap();
    let shape = dict.get("input").unwrap().shape().to_vec();
    let (steps, batch, width) = (shape[0], shape[1], shape[2]);
    let x = backend
        .from_vec(steps * batch, width, floats(&dict, "input").to_vec())
        .unwrap();
    let input = Input::dense(x, batch).with_lengths(indices(&dict, "lengths"));
    let trace = rnn.forward(&input, None).unwrap();
    // The head's features are h_n of the top layer: each direction's final state, side by side.
    let dirs = rnn.config().directions();
    let last = trace.final_state();
    let top = &last.layers()[last.layers().len() - dirs..];
    let h_n: Vec<Vec<f64>> = top.iter().map(|s| backend.to_vec(&s.h)).collect();
    let features = backend.to_vec(&trace.last_hidden(backend));
    let hidden = rnn.config().hidden_size();
    for b in 0..batch {
        let row: Vec<f64> = h_n
            .iter()
            .flat_map(|h| h[b * hidden..][..hidden].to_vec())
            .collect();
        assert_eq!(
            features[b * dirs * hidden..][..dirs * hidden],
            row[..],
            "sequence {b}"
        );
    }
    let logits = rnn.last_logits(&trace).unwrap();
    let targets = indices(&dict, "targets");
    let (loss, d_logits) = CrossEntropy::mean()
        .forward(backend, &logits, &targets)
        .unwrap();
    let grads = rnn.backward_last(&trace, &d_logits).unwrap();
    let mut compared: Vec<(String, Vec<f64>)> = vec![
        ("last_logits".into(), backend.to_vec(&logits)),
        ("loss".into(), vec![loss]),
        ("grad.input".into(), backend.to_vec(grads.input().unwrap())),
    ];
    for (name, g) in grads.named() {
        compared.push((format!("grad.{name}"), backend.to_vec(g)));
    }
    let mut worst = (0.0, String::new());
    for (what, got) in compared {
        let want = floats(&dict, &what);
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (g, w)) in got.iter().zip(want).enumerate() {
            let error = (g - w).abs() / w.abs().max(1.0);
            assert!(
                error <= TOLERANCE,
                "{}: {what}[{i}]: got {g}, PyTorch {w} (error {error:.2e})",
                path.display()
            );
            if error > worst.0 || worst.1.is_empty() {
                worst = (error, format!("{what}[{i}]"));
            }
        }
    }
    worst
}

fn every_case<B: Kernels<Scalar = f64>>(name: &str, backend: B) {
    for path in fixtures() {
        let (error, at) = check_case(&backend, &path);
        let case = path.file_stem().unwrap().to_string_lossy();
        println!("{name} {case}: worst relative error {error:.2e} at {at}");
    }
}

#[test]
fn many_to_one_head_matches_pytorch_on_the_naive_backend() {
    every_case("naive", NaiveCpu::<f64>::new());
}

#[test]
fn many_to_one_head_matches_pytorch_on_the_fast_backend() {
    every_case("cpu", Cpu::<f64>::new());
}

#[test]
fn many_to_one_head_matches_pytorch_on_the_vec_backend() {
    every_case("vec", VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn many_to_one_head_matches_pytorch_on_the_candle_backend() {
    every_case("candle", recurrent::Candle::<f64>::cpu());
}
