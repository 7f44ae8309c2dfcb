//! The fuzz targets' seeds and findings (see `fuzz/` and SECURITY.md).
//!
//! Every input a fuzz target found to crash, hang or allocate too much is kept here as bytes,
//! with the `Err` it must give now. The committed seeds are checked to stay what they were
//! made to be (a model file that loads, a checkpoint that loads, ...), so that a format change
//! cannot quietly turn them into files the fuzzer rejects at the first byte. Regenerate them
//! with `cargo test --test fuzz_regressions -- --ignored` after such a change.

mod common;

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::checkpoint::{Checkpoint, Progress};
use recurrent::prelude::*;
use recurrent::{Vocab, io};
use std::fs;
use std::path::{Path, PathBuf};

type F64 = NaiveCpu<f64>;

/// `tests/fixtures/fuzz_seeds/{target}`.
fn seeds(target: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/fuzz_seeds")
        .join(target)
}

/// The files of `tests/fixtures/fuzz_seeds/{target}`, by name.
fn seed_files(target: &str) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<_> = fs::read_dir(seeds(target))
        .expect("the seed directory exists")
        .map(|e| {
            let path = e.expect("an entry").path();
            let name = path.file_name().unwrap().to_string_lossy().into_owned();
            (name, fs::read(&path).expect("a readable seed"))
        })
        .collect();
    files.sort();
    files
}

const TEXT: &str = "First Citizen:\nBefore we proceed any further, hear me speak.\n\u{e9}\u{1f600}";

/// A checkpoint of a trained model: every part saved when `full`, the minimum otherwise.
fn checkpoint<O: Optimizer<F64>>(config: RnnConfig, mut optimizer: O, full: bool) -> Vec<u8> {
    let vocab = Vocab::from_text(TEXT).unwrap();
    let ids = vocab.encode(TEXT).unwrap();
    let mut rnn = Rnn::new(F64::new(), config, &mut StdRng::seed_from_u64(5)).unwrap();
    let trace = rnn
        .forward(&Input::ids(ids[..6].to_vec(), 2), None)
        .unwrap();
    let (_, d) = CrossEntropy::mean()
        .forward(rnn.backend(), trace.logits(), &ids[1..7])
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    optimizer.step(&mut rnn, &grads).unwrap();
    let mut progress = Progress::new(11);
    progress.advance(3);
    let mut checkpoint = Checkpoint::new(rnn, &optimizer, progress);
    if full {
        progress.record_val_loss(1.25);
        checkpoint.progress = progress;
        checkpoint = checkpoint
            .with_vocab(vocab.with_unknown(' ').unwrap())
            .with_state(trace.final_state())
            .with_metadata("command", "train --steps 8");
    }
    checkpoint.to_state_dict().unwrap().to_bytes().unwrap()
}

/// What the seeds of the `checkpoint`, `vocab` and `corpus` targets are made from; the
/// `weights` seeds are model tensors of `tests/fixtures` (the test inputs taken out) and two
/// optimiser fixtures.
fn generated_seeds() -> Vec<(&'static str, &'static str, Vec<u8>)> {
    let v = Vocab::from_text(TEXT).unwrap().len();
    let small = |c: RnnConfig| c.output(v);
    vec![
        (
            "checkpoint",
            "lstm_adam_full.safetensors",
            checkpoint(
                small(RnnConfig::lstm(v, 3).layers(2)),
                Adam::new(0.01).unwrap(),
                true,
            ),
        ),
        (
            "checkpoint",
            "gru_bi_sgd.safetensors",
            checkpoint(
                small(RnnConfig::gru(v, 2).bidirectional(true)),
                Sgd::new(0.1).unwrap(),
                false,
            ),
        ),
        (
            "checkpoint",
            "rnn_adagrad_full.safetensors",
            checkpoint(
                small(RnnConfig::rnn(v, 2)),
                Adagrad::new(0.1).unwrap(),
                true,
            ),
        ),
        (
            "checkpoint",
            "lstm_no_bias_rmsprop.safetensors",
            checkpoint(
                small(RnnConfig::lstm(v, 2).bias(false)),
                RmsProp::new(0.01).unwrap(),
                false,
            ),
        ),
        (
            "vocab",
            "metadata",
            Vocab::from_text(TEXT).unwrap().to_metadata().into_bytes(),
        ),
        (
            "vocab",
            "metadata_unknown",
            Vocab::from_chars("\n\"\0ab".chars())
                .unwrap()
                .with_unknown('a')
                .unwrap()
                .to_metadata()
                .into_bytes(),
        ),
        ("vocab", "text", TEXT.as_bytes().to_vec()),
        ("vocab", "not_utf8", b"ab\xff\xfe\xc3(\xe2\x82 cd".to_vec()),
        (
            "corpus",
            "b2_t5_val10",
            [&[2u8, 5, 26][..], TEXT.as_bytes()].concat(),
        ),
        (
            "corpus",
            "b1_t1",
            [&[1u8, 1, 0][..], TEXT.as_bytes()].concat(),
        ),
        ("corpus", "huge", [&[255u8, 254, 255][..], b"abc"].concat()),
    ]
}

/// Writes the generated seeds (run it after a format change).
#[test]
#[ignore = "writes tests/fixtures/fuzz_seeds; run by hand"]
fn write_fuzz_seeds() {
    for (target, name, bytes) in generated_seeds() {
        fs::create_dir_all(seeds(target)).unwrap();
        fs::write(seeds(target).join(name), bytes).unwrap();
    }
}

#[test]
fn generated_seeds_are_committed_as_generated() {
    for (target, name, bytes) in generated_seeds() {
        let committed = fs::read(seeds(target).join(name)).expect("a committed seed");
        // A checkpoint's metadata is written in a hash map's order, and its numbers come from
        // `tanh` and `exp`, which may round differently elsewhere: its length is what is stable.
        match name.ends_with(".safetensors") {
            true => assert_eq!(
                committed.len(),
                bytes.len(),
                "tests/fixtures/fuzz_seeds/{target}/{name}"
            ),
            false => assert_eq!(
                committed, bytes,
                "tests/fixtures/fuzz_seeds/{target}/{name}"
            ),
        }
    }
}

#[test]
fn weights_seeds_load_as_models_except_the_foreign_ones() {
    for (name, bytes) in seed_files("weights") {
        let loaded = io::from_bytes(F64::new(), &bytes);
        let foreign = ["adam", "sgd", "with_test_data"]
            .iter()
            .any(|p| name.starts_with(p));
        assert_eq!(loaded.is_err(), foreign, "{name}: {loaded:?}");
    }
}

#[test]
fn checkpoint_seeds_load() {
    for (name, bytes) in seed_files("checkpoint") {
        let loaded = Checkpoint::from_bytes(F64::new(), &bytes);
        assert!(loaded.is_ok(), "{name}: {:?}", loaded.err());
    }
}

/// The checkpoint seed `gru_bi_sgd` with metadata `key` set to `value`.
fn edited_checkpoint(edits: &[(&str, &str)]) -> recurrent::StateDict {
    let bytes = fs::read(seeds("checkpoint").join("gru_bi_sgd.safetensors")).unwrap();
    let mut dict = recurrent::StateDict::from_bytes(&bytes).unwrap();
    for (key, value) in edits {
        dict.set_metadata(*key, *value);
    }
    dict
}

/// Found by reading `read_config` and confirmed on the `checkpoint` fuzz binary (libFuzzer:
/// out-of-memory, 2184 MB against a 2048 MB limit): a checkpoint claiming 10^8 layers made
/// `RnnConfig::parameter_shapes` list 4 * 10^8 names before any tensor was compared.
#[test]
fn a_checkpoint_claiming_more_layers_than_tensors_is_refused_before_allocating() {
    for layers in ["100000000", "18446744073709551615", "11"] {
        let dict = edited_checkpoint(&[("recurrent.num_layers", layers)]);
        match Checkpoint::from_state_dict(F64::new(), &dict) {
            Err(recurrent::Error::Format { message }) => {
                assert!(message.contains("recurrent.num_layers"), "{message}")
            }
            other => panic!("{layers}: expected Error::Format, given {other:?}"),
        }
    }
}

/// Found the same way (a panic, `attempt to multiply with overflow`, in a debug build): a
/// bidirectional model of more than `usize::MAX / 2` hidden units overflowed the width of
/// `out.weight`.
#[test]
fn a_hidden_size_whose_double_overflows_is_an_error() {
    let huge = (usize::MAX / 2 + 1).to_string();
    let edits = [
        ("recurrent.hidden_size", huge.as_str()),
        ("cell", "RNN"),
        ("nonlinearity", "tanh"),
    ];
    let result = Checkpoint::from_state_dict(F64::new(), &edited_checkpoint(&edits));
    assert!(
        matches!(result, Err(recurrent::Error::Config { .. })),
        "{result:?}"
    );
    let config = RnnConfig::rnn(3, usize::MAX / 2 + 1)
        .bidirectional(true)
        .output(3);
    assert!(config.parameter_shapes().is_err());
}
