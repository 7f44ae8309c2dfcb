//! Bad input for parameters by name, state dicts, `safetensors` bytes and files, and the
//! constructors of tensors from data.
//!
//! The promise under test, as in `bad_input.rs`: input a user can get wrong (or a file someone
//! else wrote) gives an `Err` of the documented [`Error`] variant, never a panic; its message
//! names what was expected and what was given; a failed call changes nothing (parameters compare
//! bit for bit before and after).
//!
//! Parameters by name are those of the small Elman model of `bad_input.rs`; state dicts and files
//! are those of small LSTMs: 4 inputs, 3 hidden units, 4 outputs. The fixtures and assertions
//! shared with the other bad-input files are in `common/errors.rs`.

#[path = "common/errors.rs"]
mod errors;

mod common;

use common::tempdir::TempDir;

use errors::{
    BadInput, F32, F64, Snapshot, broken, build, gradients, lstm, mentions, model, params_of,
};
use recurrent::Kernels;
use recurrent::io::{self, Dtype};
use recurrent::{Error, Result, Rnn, RnnConfig, StateDict, Tensor};
use std::fs;

// ---------------------------------------------------------------------------------------------
// Fixtures

fn names<B: Kernels>(rnn: &Rnn<B>) -> Vec<String> {
    rnn.parameters().into_iter().map(|(n, _)| n).collect()
}

/// The names of the parameters whose bits differ between two snapshots.
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let pairs = before.iter().zip(after);
    pairs
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.clone())
        .collect()
}

/// `dict` without the tensors named in `drop`, then with `add` inserted (added or replaced).
fn edited(dict: &StateDict, drop: &[&str], add: Vec<(&str, Tensor)>) -> StateDict {
    let mut out = StateDict::new();
    for name in dict.names().filter(|n| !drop.contains(n)) {
        out.insert(name, dict.get(name).expect("a listed name").clone());
    }
    for (name, tensor) in add {
        out.insert(name, tensor);
    }
    out
}

fn f64_tensor(shape: Vec<usize>, data: Vec<f64>) -> Tensor {
    Tensor::float(Dtype::F64, shape, data).expect("data fits the shape")
}

/// The values of tensor `name` of `dict`.
fn values(dict: &StateDict, name: &str) -> Vec<f64> {
    let tensor = dict.get(name).expect("a known tensor");
    tensor.floats().expect("a float tensor").to_vec()
}

/// The bytes of a `safetensors` file: the 8-byte little-endian header length, the header, data.
fn safetensors(header: &str, data: &[u8]) -> Vec<u8> {
    let mut bytes = (header.len() as u64).to_le_bytes().to_vec();
    bytes.extend_from_slice(header.as_bytes());
    bytes.extend_from_slice(data);
    bytes
}

/// The header and the data of a well-formed file.
fn split(bytes: &[u8]) -> (String, Vec<u8>) {
    let n = u64::from_le_bytes(bytes[..8].try_into().expect("8 bytes")) as usize;
    let header = String::from_utf8(bytes[8..8 + n].to_vec()).expect("a UTF-8 header");
    (header, bytes[8 + n..].to_vec())
}

/// A valid file: the state dict of a one-layer LSTM, in f64.
fn valid_file() -> Vec<u8> {
    let dict = lstm(F64::new(), 1, false, 7).state_dict();
    dict.to_bytes().expect("a small dict encodes")
}

/// Every tensor's `data_offsets` in a well-formed file's header, in file order.
fn offsets(bytes: &[u8]) -> Vec<(usize, usize)> {
    let (header, _) = split(bytes);
    let key = "\"data_offsets\":[";
    let mut found: Vec<(usize, usize)> = header
        .match_indices(key)
        .map(|(at, _)| {
            let rest = &header[at + key.len()..];
            let (pair, _) = rest.split_once(']').expect("a closed pair");
            let (s, e) = pair.split_once(',').expect("two offsets");
            (s.parse().expect("a number"), e.parse().expect("a number"))
        })
        .collect();
    found.sort_unstable();
    found
}

/// `bytes` with one tensor's `data_offsets` rewritten, the length prefix kept consistent.
fn retarget(bytes: &[u8], from: (usize, usize), to: (usize, usize)) -> Vec<u8> {
    let (header, data) = split(bytes);
    let old = format!("\"data_offsets\":[{},{}]", from.0, from.1);
    let new = format!("\"data_offsets\":[{},{}]", to.0, to.1);
    assert_eq!(header.matches(&old).count(), 1, "{old} in {header}");
    safetensors(&header.replace(&old, &new), &data)
}

// ---------------------------------------------------------------------------------------------
// Parameters by name

#[test]
fn set_parameter_rejects_an_unknown_name_and_changes_nothing() {
    let mut rnn = model(F64::new(), 2);
    let (before, known) = (params_of(&rnn), names(&rnn));
    assert_eq!(
        known[..4],
        ["weight_ih_l0", "weight_hh_l0", "bias_ih_l0", "bias_hh_l0"]
    );
    for name in ["weight_ih_l2", "weight_ih", "out.weights", ""] {
        rnn.set_parameter(name, vec![0.0; 12]).unknown(name, &known);
        assert_eq!(params_of(&rnn), before, "after set_parameter({name:?})");
    }
}

#[test]
fn set_parameter_rejects_the_wrong_length_and_changes_nothing() {
    let mut rnn = model(F64::new(), 1);
    let before = params_of(&rnn);
    let mut set = |name, len| rnn.set_parameter(name, vec![0.0; len]);
    mentions(
        &set("weight_hh_l0", 8).shape("(3, 3)", "8"),
        &["weight_hh_l0"],
    );
    set("weight_ih_l0", 13).shape("(3, 4)", "13");
    set("bias_hh_l0", 0).shape("(1, 3)", "0");
    set("out.bias", 3).shape("(1, 4)", "3");
    assert_eq!(params_of(&rnn), before);
}

#[test]
fn set_parameter_rejects_nan_and_infinity_and_changes_nothing() {
    let mut rnn = model(F64::new(), 1);
    let before = params_of(&rnn);
    for bad in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let mut data = vec![0.5; 9];
        data[4] = bad;
        rnn.set_parameter("weight_hh_l0", data)
            .non_finite("weight_hh_l0");
        assert_eq!(params_of(&rnn), before, "after a value of {bad}");
    }
    let mut f32_rnn = model(F32::new(), 1);
    let before = params_of(&f32_rnn);
    let result = f32_rnn.set_parameter("out.bias", vec![0.0, f32::NAN, 0.0, 0.0]);
    result.non_finite("out.bias");
    assert_eq!(params_of(&f32_rnn), before);
}

#[test]
fn parameter_and_gradient_lookups_reject_unknown_names() {
    let rnn = model(F64::new(), 1);
    let known = names(&rnn);
    rnn.parameter("weight_hh_l1")
        .unknown("weight_hh_l1", &known);
    rnn.parameter("out.bias ").unknown("out.bias ", &known);
    let grads = gradients(&rnn);
    grads.get("weight_ih_l1").unknown("weight_ih_l1", &known);
    grads.params().get("bias").unknown("bias", &known);
    // A model without biases or an output layer has no `bias_*` and no `out.*`.
    let bare = build(RnnConfig::rnn(4, 3).bias(false)).expect("valid");
    assert_eq!(names(&bare), ["weight_ih_l0", "weight_hh_l0"]);
    bare.parameter("out.weight")
        .unknown("out.weight", &names(&bare));
    bare.parameter("bias_ih_l0")
        .unknown("bias_ih_l0", &names(&bare));
}

// ---------------------------------------------------------------------------------------------
// StateDict::from_bytes

#[test]
fn from_bytes_rejects_empty_short_and_truncated_bytes() {
    StateDict::from_bytes(&[]).format(&["safetensors"]);
    StateDict::from_bytes(&[0; 7]).format(&[]);
    StateDict::from_bytes(&[0; 8]).format(&[]);
    let file = valid_file();
    StateDict::from_bytes(&file).expect("the whole file is valid");
    let n = file.len() - split(&file).1.len() - 8;
    let (end, last) = (8 + n, file.len() - 1);
    for cut in [1, 4, 8, 9, 8 + n / 2, end - 1, end, end + 1, last] {
        broken(cut, StateDict::from_bytes(&file[..cut]));
    }
    // Bytes after the last tensor are as wrong as bytes missing.
    let mut longer = file.clone();
    longer.push(0);
    StateDict::from_bytes(&longer).format(&[]);
}

#[test]
fn from_bytes_rejects_a_header_length_past_the_end() {
    let file = valid_file();
    let len = file.len() as u64;
    for claimed in [len - 7, len, 100_000_001, u64::MAX] {
        let mut bytes = file.clone();
        bytes[..8].copy_from_slice(&claimed.to_le_bytes());
        broken(claimed, StateDict::from_bytes(&bytes));
    }
}

#[test]
fn from_bytes_rejects_headers_that_lie_about_offsets() {
    // The helpers make files the reader accepts.
    let one = r#"{"a":{"dtype":"F64","shape":[2],"data_offsets":[0,16]}}"#;
    let dict = StateDict::from_bytes(&safetensors(one, &[0; 16])).expect("a valid file");
    assert_eq!(values(&dict, "a"), [0.0, 0.0]);
    let file = valid_file();
    let offs = offsets(&file);
    let ((s0, e0), (s1, e1), (sl, el)) = (offs[0], offs[1], offs[offs.len() - 1]);
    let data_len = split(&file).1.len();
    assert_eq!((s0, e1 - s1, el), (0, e0 - s0, data_len), "{offs:?}");
    let lies = [
        ((s1, e1), (s1 - 8, e1 - 8)), // overlaps the first tensor
        ((s1, e1), (s0, e0)),         // the same bytes as the first tensor
        ((sl, el), (sl, el + 8)),     // runs past the end
        ((sl, el), (sl + 8, el + 8)), // starts and ends past the end
        ((s0, e0), (e0, s0)),         // ends before it starts
    ];
    for (from, to) in lies {
        broken(to, StateDict::from_bytes(&retarget(&file, from, to)));
    }
    // Hand-made: tensor `name` of F64 `shape` at `s..e`, in a file of `len` data bytes.
    let t = |name: &str, shape: &str, s: usize, e: usize| {
        format!(r#""{name}":{{"dtype":"F64","shape":{shape},"data_offsets":[{s},{e}]}}"#)
    };
    let huge = "[1099511627776,1099511627776]";
    let overlap = format!("{},{}", t("a", "[2]", 0, 16), t("b", "[2]", 8, 24));
    let twice = format!("{},{}", t("a", "[1]", 0, 8), t("a", "[1]", 8, 16));
    let crafted = [
        (overlap, 24),
        (t("a", "[2]", 0, 16), 8),  // past the end
        (t("a", "[3]", 0, 16), 16), // shape and offsets disagree
        (t("a", huge, 0, 8), 8),    // the count overflows
        (twice, 16),                // a name twice
    ];
    for (tensors, len) in crafted {
        let header = format!("{{{tensors}}}");
        let bytes = safetensors(&header, &vec![0; len]);
        broken(&header, StateDict::from_bytes(&bytes));
    }
}

#[test]
fn from_bytes_rejects_headers_that_are_not_json_objects() {
    let (header, data) = split(&valid_file());
    let mut not_utf8 = header.clone().into_bytes();
    not_utf8[0] = 0xff;
    let mut bytes = (not_utf8.len() as u64).to_le_bytes().to_vec();
    bytes.extend(not_utf8.iter().chain(&data));
    StateDict::from_bytes(&bytes).format(&[]);
    let headers = [
        &header[..header.len() / 2],
        "",
        "[]",
        "null",
        r#""a""#,
        r#"{"a":1}"#,
        r#"{"__metadata__":{"k":1}}"#,
        r#"{"a":{"dtype":"F128","shape":[1],"data_offsets":[0,8]}}"#,
        r#"{"a":{"shape":[1],"data_offsets":[0,8]}}"#,
        r#"{"a":{"dtype":"F64","shape":[-1],"data_offsets":[0,8]}}"#,
    ];
    for header in headers {
        StateDict::from_bytes(&safetensors(header, &[0; 8])).format(&[]);
    }
}

#[test]
fn from_bytes_rejects_unsupported_dtypes_naming_them() {
    // Tensor `w` of 2 entries of `dtype` (`bytes` in all), alone and after a valid state dict.
    let w = |dtype: &str, s: usize, bytes: usize| {
        let e = s + bytes;
        format!(r#""w":{{"dtype":"{dtype}","shape":[2],"data_offsets":[{s},{e}]}}"#)
    };
    let (header, data) = split(&valid_file());
    let open = header.trim_end().strip_suffix('}').expect("a JSON object");
    let beside = |dtype, bytes| {
        let header = format!("{open},{}}}", w(dtype, data.len(), bytes));
        let data: Vec<u8> = data.iter().copied().chain(vec![0; bytes]).collect();
        StateDict::from_bytes(&safetensors(&header, &data))
    };
    let read = beside("F64", 16).expect("an F64 tensor is read");
    assert_eq!(values(&read, "w"), [0.0, 0.0]);
    for (dtype, bytes) in [("F16", 4), ("BF16", 4), ("I32", 8), ("U8", 2), ("BOOL", 2)] {
        let alone = format!("{{{}}}", w(dtype, 0, bytes));
        let result = StateDict::from_bytes(&safetensors(&alone, &vec![0; bytes]));
        result.format(&["tensor w", dtype, "not supported"]);
        beside(dtype, bytes).format(&["tensor w", dtype, "not supported"]);
    }
}

// ---------------------------------------------------------------------------------------------
// Files: StateDict::read, io::load, io::save

#[test]
fn read_and_load_name_a_path_they_cannot_read() {
    let dir = TempDir::new("missing");
    let missing = dir.path("missing.safetensors");
    StateDict::read(&missing).io(&missing);
    io::load(F64::new(), &missing).io(&missing);
    io::load(F32::new(), dir.dir()).io(dir.dir());
}

#[test]
fn read_and_load_reject_broken_entries() {
    let dir = TempDir::new("broken");
    let good = dir.path("good.safetensors");
    io::save(&lstm(F32::new(), 2, true, 7), &good).expect("saves");
    let bytes = fs::read(&good).expect("written");
    io::load(F32::new(), &good).expect("a saved model loads");
    let n = bytes.len() - split(&bytes).1.len() - 8;
    for cut in [0, 5, 8, 8 + n / 3, 8 + n, bytes.len() / 2, bytes.len() - 4] {
        let path = dir.file(&format!("cut{cut}.safetensors"), &bytes[..cut]);
        StateDict::read(&path).format(&[]);
        io::load(F32::new(), &path).format(&[]);
        io::load(F64::new(), &path).format(&[]);
    }
    let mut lying = bytes.clone();
    lying[..8].copy_from_slice(&(bytes.len() as u64).to_le_bytes());
    let path = dir.file("lying.safetensors", &lying);
    io::load(F32::new(), &path).format(&[]);
    let after = fs::read(&good).expect("still there");
    assert_eq!(after, bytes, "reading changed the file");
}

#[test]
fn load_rejects_files_that_are_not_a_model() {
    let dir = TempDir::new("not-a-model");
    let load = |name, dict: &StateDict| {
        let path = dir.file(name, &dict.to_bytes().expect("encodes"));
        io::load(F64::new(), path)
    };
    let source = lstm(F64::new(), 1, false, 7).state_dict();
    load("empty", &StateDict::new()).state_dict(&["weight_hh_l0"], &[], &[]);
    let only_hh = edited(&source, &["weight_ih_l0"], vec![]);
    load("only_hh", &only_hh).state_dict(&["weight_ih_l0"], &[], &[]);
    // Layers are counted up to the first gap: l2 without l1 is not a layer.
    let l2 = f64_tensor(vec![1], vec![0.0]);
    let extra = edited(&source, &[], vec![("weight_ih_l2", l2)]);
    load("extra", &extra).state_dict(&[], &["weight_ih_l2"], &[]);
    let int = Tensor::int(vec![4], vec![0; 4]).expect("fits");
    load("int", &edited(&source, &[], vec![("out.bias", int)])).mismatched("out.bias");
    let wide = f64_tensor(vec![12, 0], vec![]);
    let result = load("wide", &edited(&source, &[], vec![("weight_ih_l0", wide)]));
    let fits = matches!(result, Err(Error::StateDict { .. } | Error::Config { .. }));
    assert!(fits, "an input size of 0 is no model: {result:?}");
}

/// A tensor with a zero dimension holds no bytes whatever its other dimensions, so a file of a
/// few hundred bytes can claim an input or output size of 2^60. Loading it must fail, not try to
/// allocate (sizes chosen so that the attempt panics with "capacity overflow" rather than
/// aborting the test process).
#[test]
fn load_rejects_sizes_no_model_can_have() {
    let dir = TempDir::new("huge");
    let huge = 1usize << 60;
    let source = lstm(F64::new(), 1, false, 7).state_dict();
    let mut failures = vec![];
    for (name, shape) in [("weight_ih_l0", [0, huge]), ("out.weight", [huge, 0])] {
        let tensor = f64_tensor(shape.to_vec(), vec![]);
        let dict = edited(&source, &[name], vec![(name, tensor)]);
        let path = dir.file(name, &dict.to_bytes().expect("encodes"));
        assert!(fs::metadata(&path).expect("written").len() < 4096);
        match std::panic::catch_unwind(|| io::load(F64::new(), &path)) {
            Ok(Err(Error::StateDict { .. } | Error::Config { .. })) => {}
            Ok(other) => failures.push(format!("{name} {shape:?}: {other:?}")),
            Err(_) => failures.push(format!("{name} {shape:?}: io::load panicked")),
        }
    }
    assert!(failures.is_empty(), "{failures:#?}");
}

#[test]
fn save_to_a_missing_directory_fails_and_leaves_no_temporary_file() {
    let dir = TempDir::new("save");
    let rnn = lstm(F64::new(), 1, false, 7);
    let missing = dir.path("no-such-dir").join("model.safetensors");
    io::save(&rnn, &missing).io(&missing);
    rnn.state_dict().write(&missing).io(&missing);
    // A directory where the file should go.
    let taken = dir.path("model.safetensors");
    fs::create_dir(&taken).expect("creates");
    io::save(&rnn, &taken).io(&taken);
    // No file name at all.
    let no_name = dir.path("..");
    io::save(&rnn, &no_name).io(&no_name);
    assert_eq!(dir.entries(), ["model.safetensors"], "stray files left");
    let inside = fs::read_dir(&taken).expect("a dir").count();
    assert_eq!(inside, 0, "wrote into the directory");
    let stray = fs::read_dir(std::env::temp_dir())
        .expect("readable")
        .filter(|e| {
            let name = e.as_ref().expect("an entry").file_name();
            name.to_string_lossy().starts_with(".model.safetensors.tmp")
        });
    assert_eq!(stray.count(), 0, "a temporary file in the system temp dir");
}

// ---------------------------------------------------------------------------------------------
// Rnn::load_state_dict, Rnn::from_state_dict, RnnConfig::from_state_dict

/// A bidirectional LSTM (seed 42) to load into, and the state dict of another (seed 7).
fn target_and_source() -> (Rnn<F64>, StateDict) {
    let source = lstm(F64::new(), 1, true, 7).state_dict();
    (lstm(F64::new(), 1, true, 42), source)
}

/// Loads `dict` strictly into `rnn` and by `Rnn::from_state_dict`, checks that both agree and
/// that a failed load left `rnn` unchanged, and gives the `load_state_dict` result.
fn load_both(rnn: &mut Rnn<F64>, dict: &StateDict) -> Result<()> {
    let before = params_of(rnn);
    let result = rnn.load_state_dict(dict, true);
    if result.is_err() {
        assert_eq!(changed(&before, &params_of(rnn)), [""; 0], "{result:?}");
    }
    let built = Rnn::from_state_dict(F64::new(), rnn.config().clone(), dict, true);
    assert_eq!(built.is_err(), result.is_err(), "from_state_dict disagrees");
    if let (Err(a), Err(b)) = (&result, &built) {
        assert_eq!(a, b, "from_state_dict gives another error");
    }
    result
}

#[test]
fn load_state_dict_names_missing_and_unexpected_tensors_and_changes_nothing() {
    let (mut rnn, source) = target_and_source();
    for name in ["weight_ih_l0", "bias_hh_l0_reverse", "out.bias"] {
        load_both(&mut rnn, &edited(&source, &[name], vec![])).state_dict(&[name], &[], &[]);
    }
    let extra = ("weight_ih_l1", f64_tensor(vec![12, 6], vec![0.0; 72]));
    let scalar = ("zz", f64_tensor(vec![], vec![1.0]));
    let dict = edited(&source, &[], vec![extra, scalar]);
    load_both(&mut rnn, &dict).state_dict(&[], &["weight_ih_l1", "zz"], &[]);
    // Not strict: extra tensors are ignored, the rest is loaded.
    let loose = rnn.load_state_dict(&dict, false);
    loose.expect("extra tensors are ignored");
    assert_eq!(rnn.state_dict(), source);
    Rnn::from_state_dict(F64::new(), rnn.config().clone(), &dict, false).expect("not strict");
}

#[test]
fn load_state_dict_names_mis_shaped_and_mis_typed_tensors() {
    let (mut rnn, source) = target_and_source();
    let ih = values(&source, "weight_ih_l0");
    let bias = values(&source, "bias_ih_l0_reverse");
    let shaped = |name, shape, data| edited(&source, &[], vec![(name, f64_tensor(shape, data))]);
    let transposed = shaped("weight_ih_l0", vec![4, 12], ih.clone());
    let m = load_both(&mut rnn, &transposed).mismatched("weight_ih_l0");
    mentions(&m, &["expected shape [12, 4]", "given [4, 12]"]);
    let flat = shaped("weight_ih_l0", vec![48], ih);
    load_both(&mut rnn, &flat).mismatched("weight_ih_l0");
    let column = shaped("bias_ih_l0_reverse", vec![12, 1], bias.clone());
    let m = load_both(&mut rnn, &column).mismatched("bias_ih_l0_reverse");
    mentions(&m, &["expected shape [12]", "given [12, 1]"]);
    // One direction's width where the output layer reads both.
    let narrow = shaped("out.weight", vec![4, 3], vec![0.0; 12]);
    load_both(&mut rnn, &narrow).mismatched("out.weight");
    let int = Tensor::int(vec![12, 3], vec![1; 36]).expect("fits");
    let dict = edited(&source, &[], vec![("weight_hh_l0", int)]);
    let m = load_both(&mut rnn, &dict).mismatched("weight_hh_l0");
    mentions(&m, &["F32 or F64", "I64"]);
    // A bias as PyTorch's `[n]` or as `[1, n]` both fit.
    rnn.load_state_dict(&shaped("bias_ih_l0_reverse", vec![1, 12], bias), true)
        .expect("a [1, n] bias fits");
}

#[test]
fn load_state_dict_lists_every_offender_at_once() {
    let (mut rnn, source) = target_and_source();
    let int = Tensor::int(vec![12], vec![0; 12]).expect("fits");
    let add = vec![
        ("bias_hh_l0", int),
        ("out.weight", f64_tensor(vec![6], vec![0.0; 6])),
        ("a.extra", f64_tensor(vec![1], vec![0.0])),
    ];
    let dict = edited(&source, &["weight_hh_l0_reverse", "bias_ih_l0"], add);
    load_both(&mut rnn, &dict).state_dict(
        &["bias_ih_l0", "weight_hh_l0_reverse"],
        &["a.extra"],
        &["bias_hh_l0", "out.weight"],
    );
}

#[test]
fn load_state_dict_rejects_nan_and_infinity_and_changes_nothing() {
    let (mut rnn, source) = target_and_source();
    for (name, bad) in [("weight_hh_l0", f64::NAN), ("out.bias", f64::INFINITY)] {
        let mut data = values(&source, name);
        data[1] = bad;
        let shape = source.get(name).expect("known").shape().to_vec();
        let dict = edited(&source, &[], vec![(name, f64_tensor(shape, data))]);
        load_both(&mut rnn, &dict).non_finite(name);
    }
}

/// An f64 value finite in the file can round to infinity in an f32 model; the check must come
/// before anything is written (the docs promise all or nothing).
#[test]
fn load_state_dict_into_f32_is_all_or_nothing_for_values_beyond_f32() {
    let mut rnn = lstm(F32::new(), 1, false, 42);
    let source = lstm(F32::new(), 1, false, 7).state_dict();
    let huge = f64_tensor(vec![4], vec![0.0, 1e39, 0.0, 0.0]);
    let dict = edited(&source, &[], vec![("out.bias", huge)]);
    let before = params_of(&rnn);
    let result = rnn.load_state_dict(&dict, true);
    let changed = changed(&before, &params_of(&rnn));
    assert_eq!(changed, [""; 0], "changed by a failed load: {result:?}");
    result.non_finite("out.bias");
    let config = rnn.config().clone();
    Rnn::from_state_dict(F32::new(), config, &dict, true).non_finite("out.bias");
}

#[test]
fn config_from_state_dict_rejects_missing_or_impossible_recurrent_weights() {
    let source = lstm(F64::new(), 1, false, 7).state_dict();
    let config = |dict: &StateDict| RnnConfig::from_state_dict(dict);
    config(&edited(&source, &["weight_hh_l0"], vec![])).state_dict(&["weight_hh_l0"], &[], &[]);
    config(&edited(&source, &["weight_ih_l0"], vec![])).state_dict(&["weight_ih_l0"], &[], &[]);
    let with = |name, shape: Vec<usize>| {
        let data = vec![0.5; shape.iter().product()];
        config(&edited(&source, &[], vec![(name, f64_tensor(shape, data))]))
    };
    // Rows must be 1, 3 or 4 times the columns.
    for [rows, cols] in [
        [6, 3],
        [2, 3],
        [7, 3],
        [13, 3],
        [5, 4],
        [0, 3],
        [0, 0],
        [3, 12],
    ] {
        let m = with("weight_hh_l0", vec![rows, cols]).mismatched("weight_hh_l0");
        mentions(&m, &["G = 1, 3 or 4", &format!("({rows}, {cols})")]);
    }
    let m = with("weight_hh_l0", vec![36]).mismatched("weight_hh_l0");
    mentions(&m, &["2 dimensions", "[36]"]);
    let m = with("weight_ih_l0", vec![48]).mismatched("weight_ih_l0");
    mentions(&m, &["2 dimensions", "[48]"]);
}

// ---------------------------------------------------------------------------------------------
// Tensor constructors

/// The expected count is a number: `Some(6)` in a message is an `Option` leaking through.
#[test]
fn tensor_constructors_name_the_expected_count() {
    Tensor::float(Dtype::F64, vec![2, 3], vec![0.0; 5]).shape("6", "5");
    Tensor::int(vec![4], vec![0; 3]).shape("4", "3");
    Tensor::float(Dtype::I64, vec![1], vec![0.0]).config(&["F32 or F64"]);
    let overflow = Tensor::float(Dtype::F32, vec![usize::MAX, 2], vec![]);
    assert!(matches!(overflow, Err(Error::Shape { .. })), "{overflow:?}");
}
