//! Weight exchange: state dicts round-trip through safetensors files, PyTorch files load, and
//! saving is atomic.

mod common;

use common::tempdir::TempDir;

use common::model;
use recurrent::Kernels;
use recurrent::io::{self, Dtype};
use recurrent::{Error, NaiveCpu, Nonlinearity, Rnn, RnnConfig, StateDict, Tensor};
use std::path::{Path, PathBuf};

fn fixture(name: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name)
}

fn same_parameters<B: Kernels>(a: &Rnn<B>, b: &Rnn<B>) {
    let (pa, pb) = (a.parameters(), b.parameters());
    assert_eq!(pa.len(), pb.len());
    for ((na, ma), (nb, mb)) in pa.iter().zip(&pb) {
        assert_eq!(na, nb);
        assert_eq!(a.backend().to_vec(ma), b.backend().to_vec(mb), "{na}");
    }
}

#[test]
fn every_cell_kind_round_trips_bit_for_bit() {
    let dir = TempDir::new("roundtrip");
    let configs = [
        RnnConfig::rnn(5, 4)
            .nonlinearity(Nonlinearity::Relu)
            .output(5),
        RnnConfig::lstm(5, 4)
            .layers(2)
            .bidirectional(true)
            .output(5),
        // Dropout is not in a PyTorch state dict: the metadata carries it.
        RnnConfig::gru(5, 4).layers(2).bias(false).dropout(0.3),
        RnnConfig::lstm(5, 4).output_dropout(0.25).output(5),
    ];
    for (k, config) in configs.into_iter().enumerate() {
        let rnn = model(config.clone(), 40 + k as u64);
        let path = dir.path(&format!("model{k}.safetensors"));
        io::save(&rnn, &path).unwrap();
        let loaded = io::load(NaiveCpu::<f64>::new(), &path).unwrap();
        assert_eq!(loaded.config(), &config, "the configuration is read back");
        same_parameters(&rnn, &loaded);
    }
    assert_eq!(
        dir.entries().len(),
        4,
        "no temporary files left: {:?}",
        dir.entries()
    );
}

#[test]
fn the_file_is_a_pytorch_state_dict() {
    let rnn = model(RnnConfig::lstm(3, 2).output(3), 50);
    let bytes = rnn.state_dict().to_bytes().unwrap();
    let dict = StateDict::from_bytes(&bytes).unwrap();
    let names: Vec<&str> = dict.names().collect();
    let want = [
        "bias_hh_l0",
        "bias_ih_l0",
        "out.bias",
        "out.weight",
        "weight_hh_l0",
        "weight_ih_l0",
    ];
    assert_eq!(names, want);
    assert_eq!(dict.get("weight_ih_l0").unwrap().shape(), [8, 3]);
    assert_eq!(
        dict.get("bias_ih_l0").unwrap().shape(),
        [8],
        "biases are vectors, as in PyTorch"
    );
    assert_eq!(dict.get("out.bias").unwrap().dtype(), Dtype::F64);
    assert_eq!(
        dict.metadata().get("cell").map(String::as_str),
        Some("LSTM")
    );
    assert_eq!(
        dict.metadata().get("dropout").map(String::as_str),
        Some("0.0")
    );
}

#[test]
fn a_malformed_dropout_is_an_error_not_a_default() {
    let rnn = model(RnnConfig::lstm(3, 2).layers(2).dropout(0.5), 51);
    let mut dict = rnn.state_dict();
    assert_eq!(RnnConfig::from_state_dict(&dict).unwrap(), *rnn.config());
    dict.set_metadata("dropout", "half");
    let err = RnnConfig::from_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::Format { message } if message.contains("dropout")),
        "{err:?}"
    );
    // A number outside [0, 1) reads, and the model refuses it as it refuses it from a builder.
    dict.set_metadata("dropout", "1.5");
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    let err = Rnn::from_state_dict(NaiveCpu::<f64>::new(), config, &dict, true).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err:?}");
    // The output dropout likewise; a file without it (written before it existed) has none.
    let mut dict = rnn.state_dict();
    dict.set_metadata("output_dropout", "most");
    let err = RnnConfig::from_state_dict(&dict).unwrap_err();
    assert!(
        matches!(&err, Error::Format { message } if message.contains("output_dropout")),
        "{err:?}"
    );
    let mut older = StateDict::new();
    for name in rnn.state_dict().names() {
        older.insert(
            name.to_string(),
            rnn.state_dict().get(name).unwrap().clone(),
        );
    }
    older.set_metadata("dropout", "0.5");
    let config = RnnConfig::from_state_dict(&older).unwrap();
    assert_eq!(config.output_dropout_probability(), 0.0);
}

#[test]
fn f32_models_save_f32_and_load_f64_entries() {
    let dir = TempDir::new("dtypes");
    let config = RnnConfig::gru(4, 3).output(4);
    let wide = model(config.clone(), 60);
    let path = dir.path("wide.safetensors");
    io::save(&wide, &path).unwrap();
    // An f64 file into an f32 model: every value rounded to nearest.
    let narrow = io::load(NaiveCpu::<f32>::new(), &path).unwrap();
    for ((name, a), (_, b)) in wide.parameters().into_iter().zip(narrow.parameters()) {
        let rounded: Vec<f32> = a.as_slice().iter().map(|&v| v as f32).collect();
        assert_eq!(rounded, b.as_slice(), "{name}");
    }
    // An f32 model writes F32, which loads back exactly.
    let path32 = dir.path("narrow.safetensors");
    io::save(&narrow, &path32).unwrap();
    let dict = StateDict::read(&path32).unwrap();
    assert_eq!(dict.get("weight_hh_l0").unwrap().dtype(), Dtype::F32);
    let again = io::load(NaiveCpu::<f32>::new(), &path32).unwrap();
    same_parameters(&narrow, &again);
}

#[test]
fn a_pytorch_fixture_loads_leniently_and_is_refused_strictly() {
    let dict = StateDict::read(fixture("lstm_l2_bi_b3_h0.safetensors")).unwrap();
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    assert_eq!(
        config,
        RnnConfig::lstm(3, 4)
            .layers(2)
            .bidirectional(true)
            .output(5)
    );
    let lenient = Rnn::from_state_dict(NaiveCpu::<f64>::new(), config.clone(), &dict, false);
    let lenient = lenient.unwrap();
    let w = dict.get("weight_hh_l1_reverse").unwrap().floats().unwrap();
    assert_eq!(
        lenient
            .parameter("weight_hh_l1_reverse")
            .unwrap()
            .as_slice(),
        w
    );
    // The fixture also holds inputs, outputs and gradients: strict loading names them.
    let strict = Rnn::from_state_dict(NaiveCpu::<f64>::new(), config, &dict, true);
    match strict {
        Err(Error::StateDict {
            missing,
            unexpected,
            mismatched,
        }) => {
            assert!(missing.is_empty() && mismatched.is_empty());
            assert!(unexpected.contains(&"input".to_string()), "{unexpected:?}");
            assert!(
                unexpected.contains(&"grad.out.weight".to_string()),
                "{unexpected:?}"
            );
        }
        other => panic!("expected a StateDict error, got {other:?}"),
    }
}

#[test]
fn saving_over_a_file_replaces_it_whole_and_a_failed_save_keeps_it() {
    let dir = TempDir::new("atomic");
    let path = dir.path("model.safetensors");
    let first = model(RnnConfig::rnn(3, 2).output(3), 70);
    let second = model(RnnConfig::rnn(3, 2).output(3), 71);
    io::save(&first, &path).unwrap();
    io::save(&second, &path).unwrap();
    same_parameters(&second, &io::load(NaiveCpu::<f64>::new(), &path).unwrap());
    // A save that cannot complete (the target is a directory) leaves the old file loadable.
    let blocked = dir.path("blocked.safetensors");
    std::fs::create_dir(&blocked).unwrap();
    assert!(matches!(io::save(&first, &blocked), Err(Error::Io { .. })));
    same_parameters(&second, &io::load(NaiveCpu::<f64>::new(), &path).unwrap());
    assert_eq!(
        dir.entries(),
        ["blocked.safetensors", "model.safetensors"],
        "no temporary file left"
    );
}

#[test]
fn tensors_check_their_element_count() {
    assert!(Tensor::float(Dtype::F64, vec![2, 3], vec![0.0; 6]).is_ok());
    assert!(matches!(
        Tensor::float(Dtype::F32, vec![2, 3], vec![0.0; 5]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Tensor::int(vec![usize::MAX, 2], vec![]),
        Err(Error::Shape { .. })
    ));
    assert!(matches!(
        Tensor::float(Dtype::I64, vec![1], vec![0.0]),
        Err(Error::Config { .. })
    ));
}

#[test]
fn concurrent_saves_to_one_path_never_leave_a_torn_file() {
    let dir = TempDir::new("concurrent");
    let path = dir.path("model.safetensors");
    let models: Vec<Rnn<NaiveCpu<f64>>> = (0..4)
        .map(|k| model(RnnConfig::lstm(6, 8).output(6), 80 + k))
        .collect();
    std::thread::scope(|scope| {
        for m in &models {
            let path = &path;
            scope.spawn(move || {
                for _ in 0..10 {
                    io::save(m, path).unwrap();
                }
            });
        }
    });
    // Whichever save renamed last, the file is one of the models, whole.
    let loaded = io::load(NaiveCpu::<f64>::new(), &path).unwrap();
    let first = |m: &Rnn<NaiveCpu<f64>>| m.parameters()[0].1.as_slice().to_vec();
    let winner = models
        .iter()
        .find(|m| first(m) == first(&loaded))
        .expect("one of the models");
    same_parameters(winner, &loaded);
    assert_eq!(
        dir.entries(),
        ["model.safetensors"],
        "no temporary file left"
    );
}

/// The same state dict gives the same bytes at every save (`safetensors` alone orders the
/// metadata by a `HashMap`, anew for every file), and the metadata, escapes included, reads back.
#[test]
fn saving_is_reproducible_to_the_byte() {
    let rnn = model(RnnConfig::gru(3, 4).layers(2).output(3), 51);
    let mut dict = rnn.state_dict();
    for i in 0..40 {
        dict.set_metadata(format!("key {i}"), format!("value \"{i}\"\n\\ é"));
    }
    let first = dict.to_bytes().unwrap();
    for _ in 0..5 {
        assert_eq!(dict.clone().to_bytes().unwrap(), first);
    }
    let header = u64::from_le_bytes(first[..8].try_into().unwrap());
    assert_eq!(header % 8, 0, "the tensors stay aligned");
    let back = StateDict::from_bytes(&first).unwrap();
    assert_eq!(back, dict);

    // Metadata and no tensor at all.
    let mut only = StateDict::new();
    only.set_metadata("a", "1");
    only.set_metadata("b", "{}");
    let bytes = only.to_bytes().unwrap();
    assert_eq!(StateDict::from_bytes(&bytes).unwrap(), only);
    let text = br#"{"__metadata__":{"a":"1","b":"{}"}}"#;
    assert_eq!(&bytes[8..8 + text.len()], text);
}

/// The `std::io::Error` under an [`Error::Io`], through `source()`.
fn io_source(err: &Error) -> &std::io::Error {
    std::error::Error::source(err)
        .unwrap_or_else(|| panic!("no source: {err:?}"))
        .downcast_ref::<std::io::Error>()
        .unwrap_or_else(|| panic!("the source is not an io::Error: {err:?}"))
}

#[test]
fn io_errors_keep_the_kind_and_the_operating_systems_error() {
    use std::io::ErrorKind;
    let dir = TempDir::new("io_kind");
    let missing = dir.path("missing.safetensors");
    let rnn = model(RnnConfig::rnn(3, 2).output(3), 72);
    let loaded = io::load(NaiveCpu::<f64>::new(), &missing).unwrap_err();
    let read = StateDict::read(&missing).unwrap_err();
    let checkpoint = recurrent::Checkpoint::load(NaiveCpu::<f64>::new(), &missing).unwrap_err();
    for err in [&loaded, &read, &checkpoint] {
        assert_eq!(err.io_kind(), Some(ErrorKind::NotFound), "{err:?}");
        assert_eq!(io_source(err).kind(), ErrorKind::NotFound);
        // The message is the source's, after the path.
        let expected = format!("{}: {}", missing.display(), io_source(err));
        assert_eq!(err.to_string(), expected);
    }
    // A directory where a file is expected: reading and writing both say so.
    let folder = dir.path("folder.safetensors");
    std::fs::create_dir(&folder).unwrap();
    let read = io::load(NaiveCpu::<f64>::new(), &folder).unwrap_err();
    let written = io::save(&rnn, &folder).unwrap_err();
    for err in [&read, &written] {
        let kind = err.io_kind().unwrap_or_else(|| panic!("not Io: {err:?}"));
        assert_eq!(io_source(err).kind(), kind);
        #[cfg(unix)]
        assert_eq!(kind, ErrorKind::IsADirectory, "{err}");
        #[cfg(not(unix))]
        assert_ne!(kind, ErrorKind::NotFound, "{err}");
    }
    // A path with no file name.
    let rootless = io::save(&rnn, "..").unwrap_err();
    assert_eq!(
        rootless.io_kind(),
        Some(ErrorKind::InvalidInput),
        "{rootless}"
    );
    assert_eq!(rootless.to_string(), "..: not a file path");
    // Other variants have neither.
    let other = StateDict::from_bytes(b"not safetensors").unwrap_err();
    assert_eq!(other.io_kind(), None);
    assert!(std::error::Error::source(&other).is_none());
    // Clones compare equal and share the source.
    assert_eq!(loaded.clone(), loaded);
    assert_ne!(loaded, written);
}
