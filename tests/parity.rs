//! Parity with PyTorch: every case written by `tests/fixtures/generate.py` (PyTorch 2.15, f64)
//! is run here and compared with what PyTorch computed: outputs, final states, logits, the summed
//! cross-entropy loss, and the gradients of that loss for every parameter, the input and the
//! initial state.
//!
//! The fixtures cover RNN, LSTM and GRU, 1 and 2 layers, one and two directions, batch 1 and 3,
//! with and without an initial state, and variable-length batches, all with dense input. The
//! three cases in `tests/fixtures/golden/`, written by an independent script, give their input
//! as token ids too: each runs both as ids and as one-hot rows (see the README there).
//!
//! Every case runs on three backends in f64: `NaiveCpu`, `Cpu`, and `VecBackend`
//! (`common/vec_backend.rs`), which implements only the core `Backend` trait and runs the
//! crate's generic cell, loss and update code; with the feature `candle`, on `Candle` too (its
//! CPU device).
//!
//! Tolerance: `1e-10` of `max(1, |expected|)`, an absolute bound below 1 and a relative one
//! above. Both sides compute in f64 the same formulas in a different order; the worst error
//! seen is printed, about `8e-16` of `max(1, |expected|)`. That is not a bound in ulps: a small
//! gradient entry, a sum of larger terms, keeps their rounding error and can be thousands of
//! ulps from PyTorch's.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use fixture::{Worst, floats, indices};
use recurrent::Kernels;
use recurrent::{CellState, Cpu, CrossEntropy, Input, NaiveCpu, Rnn, RnnConfig, State, StateDict};
use std::path::{Path, PathBuf};
use vec_backend::VecBackend;

/// PyTorch's `(L*D, B, H)` state tensors as one `B x H` state per layer and direction.
fn state<B: Kernels<Scalar = f64>>(
    backend: &B,
    dict: &StateDict,
    h: &str,
    c: Option<&str>,
) -> Option<State<B>> {
    let shape = dict.get(h)?.shape().to_vec();
    let (count, batch, hidden) = (shape[0], shape[1], shape[2]);
    let part = |name: &str, k: usize| {
        let data = floats(dict, name)[k * batch * hidden..(k + 1) * batch * hidden].to_vec();
        backend.from_vec(batch, hidden, data).unwrap()
    };
    let layers = (0..count)
        .map(|k| CellState {
            h: part(h, k),
            c: c.filter(|c| dict.get(c).is_some()).map(|c| part(c, k)),
        })
        .collect();
    Some(State::new(layers))
}

fn flatten_state<B: Kernels<Scalar = f64>>(backend: &B, state: &State<B>, cell: bool) -> Vec<f64> {
    state
        .layers()
        .iter()
        .flat_map(|s| backend.to_vec(if cell { s.c.as_ref().unwrap() } else { &s.h }))
        .collect()
}

/// Runs one fixture through the model and compares everything; returns the worst error.
fn check_case<B: Kernels<Scalar = f64>>(backend: B, path: &Path, ids: bool) -> Worst {
    let dict = StateDict::read(path).unwrap();
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    let rnn = Rnn::from_state_dict(backend.clone(), config.clone(), &dict, false).unwrap();
    let shape = dict.get("input").unwrap().shape().to_vec();
    let (steps, batch, width) = (shape[0], shape[1], shape[2]);
    let mut input = match ids {
        true => Input::ids(indices(&dict, "input_tokens"), batch),
        false => Input::dense(
            backend
                .from_vec(steps * batch, width, floats(&dict, "input").to_vec())
                .unwrap(),
            batch,
        ),
    };
    // Equal-length cases run without lengths, the path most users take.
    if dict
        .metadata()
        .get("variable_lengths")
        .is_some_and(|v| v == "true")
    {
        input = input.with_lengths(indices(&dict, "lengths"));
    }
    let h0 = state(&backend, &dict, "h0", Some("c0"));
    let trace = rnn.forward(&input, h0.as_ref()).unwrap();
    let mut worst = Worst::default();
    worst.compare(
        "output",
        &backend.to_vec(trace.hidden()),
        floats(&dict, "output"),
    );
    worst.compare(
        "logits",
        &backend.to_vec(trace.logits()),
        floats(&dict, "logits"),
    );
    let final_state = trace.final_state();
    worst.compare(
        "h_n",
        &flatten_state(&backend, &final_state, false),
        floats(&dict, "h_n"),
    );
    if dict.get("c_n").is_some() {
        worst.compare(
            "c_n",
            &flatten_state(&backend, &final_state, true),
            floats(&dict, "c_n"),
        );
    }
    let targets = indices(&dict, "targets");
    let (loss, d_logits) = CrossEntropy::sum()
        .forward_masked(rnn.backend(), trace.logits(), &targets, trace.mask())
        .unwrap();
    worst.compare("loss", &[loss], floats(&dict, "loss"));
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    for (name, g) in grads.named() {
        worst.compare(
            &format!("grad.{name}"),
            &backend.to_vec(g),
            floats(&dict, &format!("grad.{name}")),
        );
    }
    if !ids {
        worst.compare(
            "grad.input",
            &backend.to_vec(grads.input().unwrap()),
            floats(&dict, "grad.input"),
        );
    }
    if h0.is_some() {
        let d0 = grads.initial_state();
        worst.compare(
            "grad.h0",
            &flatten_state(&backend, d0, false),
            floats(&dict, "grad.h0"),
        );
        if dict.get("grad.c0").is_some() {
            worst.compare(
                "grad.c0",
                &flatten_state(&backend, d0, true),
                floats(&dict, "grad.c0"),
            );
        }
    }
    worst
}

fn fixtures(dir: &Path) -> Vec<PathBuf> {
    let mut files: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "safetensors"))
        .collect();
    files.sort();
    files
}

/// Runs every committed fixture on `backend`; returns the worst error per cell kind.
fn check_every_fixture<B: Kernels<Scalar = f64>>(backend: B) -> Vec<(String, Worst)> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures");
    let files = fixtures(&dir);
    assert_eq!(files.len(), 54, "the generator writes 54 cases");
    let mut per_cell: Vec<(String, Worst)> = Vec::new();
    for path in &files {
        let case = path.file_stem().unwrap().to_string_lossy().to_string();
        let worst = check_case(backend.clone(), path, false);
        let cell = case.split('_').next().unwrap().to_string();
        match per_cell.iter_mut().find(|(c, _)| *c == cell) {
            Some((_, w)) => w.keep_worse(&case, &worst),
            None => {
                let mut w = Worst::default();
                w.keep_worse(&case, &worst);
                per_cell.push((cell, w));
            }
        }
    }
    assert_eq!(per_cell.len(), 3);
    per_cell
}

#[test]
fn every_fixture_matches_pytorch_on_the_naive_backend() {
    for (cell, worst) in check_every_fixture(NaiveCpu::<f64>::new()) {
        println!(
            "naive {cell}: worst relative error {:.2e} at {}",
            worst.error, worst.at
        );
    }
}

#[test]
fn every_fixture_matches_pytorch_on_the_fast_backend() {
    for (cell, worst) in check_every_fixture(Cpu::<f64>::new()) {
        println!(
            "cpu {cell}: worst relative error {:.2e} at {}",
            worst.error, worst.at
        );
    }
}

#[test]
fn every_fixture_matches_pytorch_on_the_vec_backend() {
    for (cell, worst) in check_every_fixture(VecBackend::<f64>::new()) {
        println!(
            "vec {cell}: worst relative error {:.2e} at {}",
            worst.error, worst.at
        );
    }
}

/// The candle backend: on its CPU device, or with the feature `cuda` and
/// `RECURRENT_CANDLE_CUDA=<ordinal>` in the environment, on that GPU (`scripts/gpu_check.sh`).
#[cfg(feature = "candle")]
fn candle_f64() -> recurrent::Candle<f64> {
    #[cfg(feature = "cuda")]
    if let Ok(ordinal) = std::env::var("RECURRENT_CANDLE_CUDA") {
        let ordinal = ordinal
            .parse()
            .expect("RECURRENT_CANDLE_CUDA is a device ordinal");
        return recurrent::Candle::cuda(ordinal).expect("the CUDA device opens");
    }
    recurrent::Candle::cpu()
}

#[cfg(feature = "candle")]
#[test]
fn every_fixture_matches_pytorch_on_the_candle_backend() {
    for (cell, worst) in check_every_fixture(candle_f64()) {
        println!(
            "candle {cell}: worst relative error {:.2e} at {}",
            worst.error, worst.at
        );
    }
}

/// Runs the token-id cases of `tests/fixtures/golden/` on `backend`, as token ids and as the
/// equivalent one-hot rows; returns the worst error of each way.
fn check_token_id_fixtures<B: Kernels<Scalar = f64>>(backend: B) -> [(&'static str, Worst); 2] {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/golden");
    let files = fixtures(&dir);
    assert_eq!(
        files.len(),
        3,
        "tests/fixtures/golden holds the three token-id cases (see its README.md)"
    );
    let mut worst = [("ids", Worst::default()), ("one-hot", Worst::default())];
    for path in &files {
        let case = path.file_stem().unwrap().to_string_lossy().to_string();
        let dict = StateDict::read(path).unwrap();
        assert!(
            dict.get("input_tokens").is_some(),
            "{case} lacks input_tokens"
        );
        for (ids, (_, w)) in [true, false].into_iter().zip(worst.iter_mut()) {
            w.keep_worse(&case, &check_case(backend.clone(), path, ids));
        }
    }
    worst
}

#[test]
fn token_id_input_matches_pytorch_on_every_backend() {
    #[allow(unused_mut)]
    let mut runs = vec![
        ("naive", check_token_id_fixtures(NaiveCpu::<f64>::new())),
        ("cpu", check_token_id_fixtures(Cpu::<f64>::new())),
        ("vec", check_token_id_fixtures(VecBackend::<f64>::new())),
    ];
    #[cfg(feature = "candle")]
    runs.push(("candle", check_token_id_fixtures(candle_f64())));
    for (backend, worst) in runs {
        for (input, worst) in worst {
            println!(
                "{backend} golden, {input} input: worst relative error {:.2e} at {}",
                worst.error, worst.at
            );
        }
    }
}
