//! Bad checkpoints: truncated and corrupt files, files that are not checkpoints, unknown
//! format versions, missing keys, mis-shaped or mis-typed tensors, non-finite values, malformed
//! metadata, and a checkpoint of another model or optimiser. Every one is an `Err` naming what
//! is wrong, never a panic; a failed load returns nothing half-made, a failed restore leaves
//! the optimiser as it was, and a failed save leaves the file on disk as it was.
//!
//! The round trips, resuming and determinism are in `tests/checkpoint.rs`.

mod common;

use common::tempdir::TempDir;

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::io::{self, Dtype};
use recurrent::prelude::*;
use recurrent::{CellState, Error, StateDict, Tensor, Vocab};
use std::fs;
use std::panic::{AssertUnwindSafe, catch_unwind};

type F64 = NaiveCpu<f64>;

const TEXT: &str = "abcab cabd\n";

/// A model of two LSTM layers of `hidden` units over [`TEXT`]'s characters.
fn model(hidden: usize) -> Rnn<F64> {
    let v = Vocab::from_text(TEXT).unwrap().len();
    let config = RnnConfig::lstm(v, hidden).layers(2).dropout(0.1).output(v);
    Rnn::new(F64::new(), config, &mut StdRng::seed_from_u64(1)).unwrap()
}

/// Two Adam updates of `rnn` on [`TEXT`] (batch 2, 3 steps); returns the final state.
fn train(rnn: &mut Rnn<F64>, adam: &mut Adam<F64>) -> State<F64> {
    let vocab = Vocab::from_text(TEXT).unwrap();
    let ids = vocab.encode(TEXT).unwrap();
    let mut state = None;
    for _ in 0..2 {
        let trace = rnn
            .forward(&Input::ids(ids[..6].to_vec(), 2), state.as_ref())
            .unwrap();
        let (_, d) = CrossEntropy::sum()
            .forward(rnn.backend(), trace.logits(), &ids[1..7])
            .unwrap();
        let grads = rnn.backward(&trace, &d).unwrap();
        adam.step(rnn, &grads).unwrap();
        state = Some(trace.final_state());
    }
    state.unwrap()
}

/// A checkpoint of every part: model (hidden 4), Adam with buffers, vocabulary, state,
/// progress with a validation loss, metadata.
fn checkpoint() -> Checkpoint<F64> {
    let (mut rnn, mut adam) = (model(4), Adam::new(0.01).unwrap());
    let state = train(&mut rnn, &mut adam);
    let mut progress = Progress::new(3);
    progress.step = 2;
    progress.record_val_loss(2.5);
    Checkpoint::new(rnn, &adam, progress)
        .with_vocab(Vocab::from_text(TEXT).unwrap())
        .with_state(state)
        .with_metadata("run", "test")
}

fn good() -> StateDict {
    checkpoint().to_state_dict().unwrap()
}

fn load(dict: &StateDict) -> Result<Checkpoint<F64>> {
    Checkpoint::from_state_dict(F64::new(), dict)
}

/// `dict` without the tensor or the metadata entry called `key`.
fn without(dict: &StateDict, key: &str) -> StateDict {
    let mut out = StateDict::new();
    for name in dict.names().filter(|n| *n != key) {
        out.insert(name, dict.get(name).unwrap().clone());
    }
    for (k, v) in dict.metadata().iter().filter(|(k, _)| *k != key) {
        out.set_metadata(k.clone(), v.clone());
    }
    assert_ne!(&out, dict, "{key} is in the dict");
    out
}

/// `dict` with the tensor `name` replaced (or added).
fn with_tensor(dict: &StateDict, name: &str, tensor: Tensor) -> StateDict {
    let mut out = dict.clone();
    out.insert(name, tensor);
    out
}

/// `dict` with the metadata entry `key` set to `value`.
fn with_meta(dict: &StateDict, key: &str, value: &str) -> StateDict {
    let mut out = dict.clone();
    out.set_metadata(key, value);
    out
}

/// A float tensor of `shape`, filled with `value`.
fn filled(shape: &[usize], value: f64) -> Tensor {
    let count = shape.iter().product();
    Tensor::float(Dtype::F64, shape.to_vec(), vec![value; count]).unwrap()
}

#[track_caller]
fn assert_format(result: Result<Checkpoint<F64>>, needle: &str) {
    match result {
        Err(Error::Format { message }) => {
            assert!(
                message.contains(needle),
                "{message:?} should mention {needle:?}"
            )
        }
        other => panic!("expected a format error mentioning {needle:?}, got {other:?}"),
    }
}

/// A [`Error::StateDict`] whose missing, unexpected and mismatched lists start with the given
/// strings (mismatched entries begin with the tensor's name).
#[track_caller]
fn assert_state_dict<T: std::fmt::Debug>(
    result: Result<T>,
    missing: &[&str],
    unexpected: &[&str],
    mismatched: &[&str],
) {
    let Err(Error::StateDict {
        missing: m,
        unexpected: u,
        mismatched: x,
    }) = result
    else {
        panic!("expected a state dict error, got {result:?}");
    };
    assert_eq!(m, missing, "missing");
    assert_eq!(u, unexpected, "unexpected");
    assert_eq!(x.len(), mismatched.len(), "mismatched: {x:?}");
    for (entry, name) in x.iter().zip(mismatched) {
        assert!(
            entry.starts_with(&format!("{name}: ")),
            "{entry:?} names {name}"
        );
    }
}

// ---------------------------------------------------------------------------------------------
// Files

#[test]
fn truncated_and_corrupt_files_are_format_errors() {
    let dir = TempDir::new("corrupt");
    let path = dir.path("c.safetensors");
    checkpoint().save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let file = dir.path("bad.safetensors");
    let cuts = [
        0,
        1,
        7,
        8,
        9,
        8 + header / 2,
        8 + header,
        bytes.len() / 2,
        bytes.len() - 1,
    ];
    for cut in cuts {
        fs::write(&file, &bytes[..cut]).unwrap();
        let result = Checkpoint::load(F64::new(), &file);
        assert!(
            matches!(result, Err(Error::Format { .. })),
            "cut at {cut}: {result:?}"
        );
    }
    // Wrong magic: a header length that lies, a header that is not a JSON object, a zip file.
    let mut lies = bytes.clone();
    lies[..8].copy_from_slice(&u64::MAX.to_le_bytes());
    let mut longer = bytes.clone();
    longer[..8].copy_from_slice(&(header as u64 + 1).to_le_bytes());
    let mut array = bytes.clone();
    array[8] = b'[';
    let zip = b"PK\x03\x04\x14\x00\x00\x00\x08\x00 not a checkpoint".to_vec();
    for (case, content) in [
        ("length", lies),
        ("longer", longer),
        ("array", array),
        ("zip", zip),
    ] {
        fs::write(&file, content).unwrap();
        let result = Checkpoint::load(F64::new(), &file);
        assert!(
            matches!(result, Err(Error::Format { .. })),
            "{case}: {result:?}"
        );
    }
    let missing = Checkpoint::load(F64::new(), dir.path("none.safetensors"));
    assert!(matches!(missing, Err(Error::Io { .. })), "{missing:?}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "loading never writes");
}

#[test]
fn no_byte_of_the_header_makes_loading_panic() {
    let bytes = good().to_bytes().unwrap();
    let header = u64::from_le_bytes(bytes[..8].try_into().unwrap()) as usize;
    let mut accepted = 0;
    for position in (0..8 + header).step_by(3) {
        for replacement in [b'"', b'9', b'x', b'}', 0xff] {
            let mut mutated = bytes.clone();
            mutated[position] = replacement;
            let read = catch_unwind(AssertUnwindSafe(|| {
                StateDict::from_bytes(&mutated).and_then(|dict| load(&dict))
            }));
            let result = read.unwrap_or_else(|_| panic!("byte {position} = {replacement}"));
            accepted += usize::from(result.is_ok());
        }
    }
    // Some mutations are harmless (a digit of a value, a letter of user metadata).
    println!("{accepted} mutated headers still loaded");
}

#[test]
fn a_file_of_plain_weights_is_not_a_checkpoint() {
    let dir = TempDir::new("plain");
    let path = dir.path("weights.safetensors");
    io::save(&model(4), &path).unwrap();
    assert_format(Checkpoint::load(F64::new(), &path), "not a checkpoint");
    assert_format(Checkpoint::load(F64::new(), &path), "io::load");
}

#[test]
fn unknown_format_versions_are_refused() {
    let dict = good();
    assert_format(
        load(&with_meta(&dict, "recurrent.checkpoint", "2")),
        "newer",
    );
    for version in ["0", "1.0", "", "one", "-1", " 1"] {
        let bad = with_meta(&dict, "recurrent.checkpoint", version);
        assert_format(load(&bad), "is not a format version");
    }
    assert_format(
        load(&without(&dict, "recurrent.checkpoint")),
        "not a checkpoint",
    );
}

// ---------------------------------------------------------------------------------------------
// Missing, mis-shaped, stray

#[test]
fn every_missing_key_is_named() {
    let dict = good();
    for tensor in ["weight_hh_l1", "out.bias", "bias_ih_l0"] {
        assert_state_dict(load(&without(&dict, tensor)), &[tensor], &[], &[]);
    }
    assert_state_dict(load(&without(&dict, "state.c")), &["state.c"], &[], &[]);
    assert_state_dict(
        load(&without(&dict, "state.h")),
        &["state.h"],
        &[],
        &["state.c"],
    );
    for key in [
        "recurrent.seed",
        "recurrent.step",
        "recurrent.epoch",
        "recurrent.window",
        "optim.optimizer",
        "optim.step",
        "cell",
        "dropout",
        "recurrent.input_size",
        "recurrent.num_layers",
        "recurrent.output_size",
        "recurrent.output_bias",
    ] {
        let missing = format!("metadata {key}");
        assert_state_dict(load(&without(&dict, key)), &[&missing], &[], &[]);
    }
    // Optional parts: without them the checkpoint loads, without them.
    let bare = without(
        &without(&without(&dict, "state.h"), "state.c"),
        "recurrent.vocab",
    );
    let bare = load(&without(&bare, "recurrent.best_val_loss")).unwrap();
    assert!(bare.state.is_none() && bare.vocab.is_none());
    assert_eq!(bare.progress.best_val_loss, None);
}

#[test]
fn a_missing_optimizer_buffer_is_refused_by_the_optimizer_which_stays_as_it_was() {
    // The checkpoint cannot know which buffers an optimiser has: it loads, and the optimiser
    // refuses the state.
    let loaded = load(&without(&good(), "optim.weight_hh_l0.exp_avg")).unwrap();
    let mut rnn = loaded.rnn.clone();
    let mut adam = Adam::new(0.5).unwrap();
    train(&mut rnn, &mut adam);
    let before = adam.state_dict();
    let result = loaded.restore_optimizer(&mut adam);
    assert_state_dict(result, &["weight_hh_l0.exp_avg"], &[], &[]);
    assert_eq!(adam.state_dict(), before);
}

#[test]
fn mis_shaped_mis_typed_and_stray_tensors_are_named() {
    let dict = good();
    let ints = Tensor::int(vec![2, 2, 4], vec![0; 16]).unwrap();
    let cases: [(&str, Tensor, &[&str], &[&str]); 8] = [
        ("out.weight", filled(&[8, 5], 0.1), &[], &["out.weight"]),
        ("bias_hh_l1", filled(&[15], 0.1), &[], &["bias_hh_l1"]),
        (
            "optim.out.weight.exp_avg",
            filled(&[8], 0.0),
            &[],
            &["optim.out.weight.exp_avg"],
        ),
        ("state.h", filled(&[2, 2, 5], 0.0), &[], &["state.h"]),
        ("state.c", filled(&[2, 3, 4], 0.0), &[], &["state.c"]),
        (
            "state.h",
            filled(&[2, 8], 0.0),
            &[],
            &["state.h", "state.c"],
        ),
        ("state.c", ints.clone(), &[], &["state.c"]),
        ("optim.bias_ih_l0.sum", ints, &[], &["optim.bias_ih_l0.sum"]),
    ];
    for (name, tensor, unexpected, mismatched) in cases {
        let result = load(&with_tensor(&dict, name, tensor));
        assert_state_dict(result, &[], unexpected, mismatched);
    }
    for stray in ["extra", "weight_ih_l2_reverse"] {
        assert_state_dict(
            load(&with_tensor(&dict, stray, filled(&[1], 0.0))),
            &[],
            &[stray],
            &[],
        );
    }
    for stray in ["state.x", "optim.nothing.exp_avg", "optim.weight_hh_l0"] {
        let bad = with_tensor(&dict, stray, filled(&[4], 0.0));
        assert_state_dict(load(&bad), &[], &[stray], &[]);
    }
    // weight_hh_l0 gives the hidden size: a wrong one does not form an LSTM.
    let bad = with_tensor(&dict, "weight_hh_l0", filled(&[16, 5], 0.1));
    assert_state_dict(load(&bad), &[], &[], &["weight_hh_l0"]);
}

#[test]
fn non_finite_values_are_refused_wherever_they_are() {
    let dict = good();
    for (name, shape) in [
        ("weight_ih_l0", vec![16, 6]),
        ("optim.out.bias.exp_avg_sq", vec![6]),
        ("state.h", vec![2, 2, 4]),
    ] {
        for value in [f64::NAN, f64::INFINITY] {
            let result = load(&with_tensor(&dict, name, filled(&shape, value)));
            assert!(
                matches!(result, Err(Error::NonFinite { .. })),
                "{name}: {result:?}"
            );
        }
    }
}

#[test]
fn malformed_metadata_is_refused_by_key() {
    let dict = good();
    for (key, value) in [
        ("recurrent.step", "-1"),
        ("recurrent.epoch", "1.5"),
        ("recurrent.window", ""),
        ("recurrent.seed", "0x10"),
        ("recurrent.best_val_loss", "low"),
        ("optim.step", "two"),
        ("dropout", "a tenth"),
        ("output_dropout", "a tenth"),
        ("cell", "Transformer"),
        ("recurrent.hidden_size", "-4"),
        ("recurrent.bias", "yes"),
        ("recurrent.output_size", "None"),
    ] {
        assert_format(load(&with_meta(&dict, key, value)), key);
    }
    assert_format(
        load(&with_meta(&dict, "recurrent.vocab", "abc")),
        "vocabulary",
    );
    for key in ["dropout", "output_dropout"] {
        let result = load(&with_meta(&dict, key, "1.5"));
        assert!(
            matches!(result, Err(Error::Config { .. })),
            "{key}: {result:?}"
        );
    }
    // Written before output dropout existed: none.
    let older = load(&without(
        &with_meta(&dict, "output_dropout", "0.4"),
        "output_dropout",
    ));
    assert_eq!(
        older.unwrap().rnn.config().output_dropout_probability(),
        0.0
    );
    let given = load(&with_meta(&dict, "output_dropout", "0.4")).unwrap();
    assert_eq!(given.rnn.config().output_dropout_probability(), 0.4);
    // A configuration the tensors do not have: every difference is named.
    let result = load(&with_meta(&dict, "recurrent.num_layers", "3"));
    let missing = ["weight_ih_l2", "weight_hh_l2", "bias_ih_l2", "bias_hh_l2"];
    assert_state_dict(result, &missing, &[], &[]);
    let result = load(&with_meta(&dict, "recurrent.output_bias", "false"));
    assert_state_dict(result, &[], &["out.bias"], &[]);
    let result = load(&with_meta(&dict, "recurrent.hidden_size", "5"));
    assert!(matches!(result, Err(Error::StateDict { .. })), "{result:?}");
}

// ---------------------------------------------------------------------------------------------
// Another model, another optimiser; saves that would not load

#[test]
fn a_checkpoint_of_another_model_shape_changes_no_optimizer() {
    let loaded = load(&good()).unwrap(); // hidden 4
    let (mut other, mut adam) = (model(6), Adam::new(0.5).unwrap());
    train(&mut other, &mut adam);
    let before = adam.state_dict();
    let result = adam.load_state_dict(&other, &loaded.optimizer);
    assert!(result.is_err(), "hidden 4 buffers into a hidden 6 model");
    assert_eq!(adam.state_dict(), before);
    // Another kind of optimiser, for the right model.
    let mut rmsprop = RmsProp::new(0.5).unwrap();
    let mut rnn = loaded.rnn.clone();
    let trace = rnn.forward(&Input::ids(vec![0, 1], 1), None).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &[1, 2])
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    rmsprop.step(&mut rnn, &grads).unwrap();
    let before = rmsprop.state_dict();
    let result = loaded.restore_optimizer(&mut rmsprop);
    assert!(matches!(result, Err(Error::Config { .. })), "{result:?}");
    assert_eq!(rmsprop.state_dict(), before);
}

#[test]
fn a_save_that_would_not_load_is_refused_and_keeps_the_file() {
    let dir = TempDir::new("refused-save");
    let path = dir.path("c.safetensors");
    let good = checkpoint();
    good.save(&path).unwrap();
    let bytes = fs::read(&path).unwrap();
    let assert_kept = |result: Result<()>, case: &str| {
        assert!(result.is_err(), "{case}");
        assert_eq!(
            fs::read(&path).unwrap(),
            bytes,
            "{case}: the file is untouched"
        );
        assert_eq!(
            dir.entries(),
            ["c.safetensors"],
            "{case}: no temporary file"
        );
    };

    // The optimiser state of a hidden-4 model with a hidden-6 model.
    let mut other = good.clone();
    other.rnn = model(6);
    assert_kept(other.save(&path), "optimizer of another model");

    // A state of another size, and one with a NaN (a diverged run).
    let backend = F64::new();
    let mut other = good.clone();
    other.state = Some(model(6).zero_state(2));
    assert_kept(other.save(&path), "state of another size");
    let mut other = good.clone();
    let nan = |rows, cols| {
        backend
            .from_vec(rows, cols, vec![f64::NAN; rows * cols])
            .unwrap()
    };
    let layers = (0..2)
        .map(|_| CellState {
            h: nan(2, 4),
            c: Some(backend.zeros(2, 4)),
        })
        .collect();
    other.state = Some(State::new(layers));
    assert_kept(other.save(&path), "NaN state");
    let mut other = good.clone();
    other.state = Some(State::new(vec![]));
    assert_kept(other.save(&path), "no layers");

    // An optimiser state without its step.
    let mut other = good.clone();
    other.optimizer = without(&other.optimizer, "step");
    assert_kept(other.save(&path), "optimizer without step");

    // The good checkpoint still loads.
    let loaded = Checkpoint::load(F64::new(), &path).unwrap();
    assert_eq!(loaded.metadata["run"], "test");
}
