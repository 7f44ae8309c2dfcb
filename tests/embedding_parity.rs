//! Parity of the embedding input with PyTorch: every case of `tests/fixtures/embedding/`
//! (written by `tests/fixtures/generate.py`, PyTorch f64) runs token ids through
//! `nn.Embedding(V, E)`, a two-layer recurrent module and the output `nn.Linear`, over a
//! variable-length batch (lengths 3, 5, 1 of 5 steps), with the cross-entropy summed over the
//! real steps. Untied and tied (`out.weight = embedding.weight`, whose gradient is the sum of its
//! two uses). Compared: the logits, the loss, and the gradient of every parameter under every
//! name the fixture holds (for a tied case `grad.embedding.weight` and `grad.out.weight`, the
//! one gradient), on every backend.
//!
//! The cases: a one-direction LSTM untied and tied, a bidirectional GRU untied and tied
//! (`E = 2H`), and a tied Elman RNN.
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
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/embedding");
    let mut files: Vec<PathBuf> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    assert_eq!(files.len(), 5, "the generator writes 5 embedding cases");
    files
}

/// The worst error of `got` against `want`, asserting the bound.
fn compare(case: &str, what: &str, got: &[f64], want: &[f64], worst: &mut (f64, String)) {
    assert_eq!(got.len(), want.len(), "{case}: {what}: lengths differ");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let error = (g - w).abs() / w.abs().max(1.0);
        assert!(
            error <= TOLERANCE,
            "{case}: {what}[{i}]: got {g}, PyTorch {w} (error {error:.2e})"
        );
        if error > worst.0 || worst.1.is_empty() {
            *worst = (error, format!("{what}[{i}]"));
        }
    }
}

/// Runs one case; returns the worst error and where.
fn check_case<B: Kernels<Scalar = f64>>(backend: &B, path: &Path) -> (f64, String) {
    let case = path.file_stem().unwrap().to_string_lossy().to_string();
    let dict = StateDict::read(path).unwrap();
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    let tied = case.ends_with("_tied");
    assert_eq!(
        config.ties_weights(),
        tied,
        "{case}: tie_weights from the metadata"
    );
    assert!(config.embedding_dim().is_some(), "{case}: an embedding");
    let rnn = Rnn::from_state_dict(backend.clone(), config, &dict, false).unwrap();
    let batch = dict.get("input").unwrap().shape()[1];
    let input = Input::ids(indices(&dict, "input"), batch).with_lengths(indices(&dict, "lengths"));
    let trace = rnn.forward(&input, None).unwrap();
    let (loss, d_logits) = CrossEntropy::sum()
        .forward_masked(
            backend,
            trace.logits(),
            &indices(&dict, "targets"),
            trace.mask(),
        )
        .unwrap();
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    assert!(
        grads.input().is_none(),
        "{case}: ids have no input gradient"
    );
    let mut worst = (0.0, String::new());
    let logits = backend.to_vec(trace.logits());
    compare(
        &case,
        "logits",
        &logits,
        floats(&dict, "logits"),
        &mut worst,
    );
    compare(&case, "loss", &[loss], floats(&dict, "loss"), &mut worst);
    let mut compared = 0;
    for name in dict.names().filter_map(|n| n.strip_prefix("grad.")) {
        let got = backend.to_vec(grads.get(name).unwrap());
        let want = floats(&dict, &format!("grad.{name}"));
        compare(&case, &format!("grad.{name}"), &got, want, &mut worst);
        compared += 1;
    }
    // Every gradient the model has was compared, the tied one under both names.
    assert_eq!(compared, grads.named().len() + usize::from(tied), "{case}");
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
fn embedding_matches_pytorch_on_the_naive_backend() {
    every_case("naive", NaiveCpu::<f64>::new());
}

#[test]
fn embedding_matches_pytorch_on_the_fast_backend() {
    every_case("cpu", Cpu::<f64>::new());
}

#[test]
fn embedding_matches_pytorch_on_the_vec_backend() {
    every_case("vec", VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn embedding_matches_pytorch_on_the_candle_backend() {
    every_case("candle", recurrent::Candle::<f64>::cpu());
}
