//! Bad input for the model-level APIs: dropout, sequence lengths, LSTM and bidirectional states,
//! the masked loss, `safetensors` bytes and files, state dicts, cells from weights, and saving.
//!
//! The promise under test, as in `bad_input.rs`: input a user can get wrong (or a file someone
//! else wrote) gives an `Err` of the documented [`Error`] variant, never a panic; its message
//! names what was expected and what was given; a failed call changes nothing (parameters compare
//! bit for bit before and after).
//!
//! Models are small LSTMs: 4 inputs (token ids below 4), 3 hidden units, 4 outputs; sequences of
//! `T = 2` steps with batch `B = 2`, so logits are `4 x 4` and a state's `h` and `c` are `2 x 3`.
//! Self-contained on purpose (the few helpers are copied from `bad_input.rs`).

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::io::{self, Dtype};
use recurrent::{
    Backend, Cell, CellState, CrossEntropy, Error, GruCell, Input, LstmCell, NaiveCpu, Result, Rnn,
    RnnConfig, Scalar, State, StateDict, Tensor, Trace,
};
use std::fmt::Debug;
use std::fs;
use std::path::{Path, PathBuf};

type F64 = NaiveCpu<f64>;
type F32 = NaiveCpu<f32>;

/// Token ids of a `T = 2`, `B = 2` sequence.
const IDS: [usize; 4] = [0, 1, 2, 3];

// ---------------------------------------------------------------------------------------------
// Fixtures

fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

/// An LSTM (input 4, hidden 3, output 4) of `layers` layers, one or two directions, from `seed`.
fn lstm<B: Backend>(backend: B, layers: usize, bidirectional: bool, seed: u64) -> Rnn<B> {
    let config = RnnConfig::lstm(4, 3).layers(layers);
    let config = config.bidirectional(bidirectional).output(4);
    let mut rng = StdRng::seed_from_u64(seed);
    Rnn::new(backend, config, &mut rng).expect("a valid config")
}

fn ids() -> Input<F64> {
    Input::ids(IDS.to_vec(), 2)
}

/// A `rows x cols` matrix of small distinct values, row-major.
fn matrix<B: Backend>(backend: &B, rows: usize, cols: usize) -> B::Matrix {
    let data = (0..rows * cols)
        .map(|i| <B::Scalar as Scalar>::of(((i * 7) % 11) as f64 / 10.0 - 0.5))
        .collect();
    backend.from_vec(rows, cols, data).expect("rows * cols")
}

/// A state of zeros: `h` of shape `(rows, cols)`, and `c` of the given shape, if any.
fn state(b: &F64, (rows, cols): (usize, usize), c: Option<(usize, usize)>) -> CellState<F64> {
    CellState {
        h: b.zeros(rows, cols),
        c: c.map(|(r, k)| b.zeros(r, k)),
    }
}

/// The zero state of `rnn` for batch 2, with entry `index` (layer * directions + direction)
/// replaced by `bad`.
fn state_with(rnn: &Rnn<F64>, index: usize, bad: CellState<F64>) -> State<F64> {
    let mut layers = rnn.zero_state(2).into_layers();
    layers[index] = bad;
    State::new(layers)
}

/// `forward` and `forward_train` on the same input: both must reject it the same way.
fn both(rnn: &Rnn<F64>, input: &Input<F64>) -> [Result<Trace<F64>>; 2] {
    let train = rnn.forward_train(input, None, &mut rng());
    [rnn.forward(input, None), train]
}

type Snapshot = Vec<(String, Vec<u64>)>;

/// The names of the parameters whose bits differ between two snapshots.
fn changed(before: &Snapshot, after: &Snapshot) -> Vec<String> {
    let pairs = before.iter().zip(after);
    pairs
        .filter(|(b, a)| b != a)
        .map(|(b, _)| b.0.clone())
        .collect()
}

/// Names and exact bit patterns (so NaN compares equal to itself) of every parameter.
fn params_of<B: Backend>(rnn: &Rnn<B>) -> Snapshot {
    let backend = rnn.backend();
    let to_bits = |m: &B::Matrix| -> Vec<u64> {
        let values = backend.to_vec(m).into_iter();
        values.map(|v| Scalar::to_f64(v).to_bits()).collect()
    };
    let named = rnn.parameters().into_iter();
    named.map(|(name, m)| (name, to_bits(m))).collect()
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

/// A directory of its own under the system temp dir, removed when dropped.
struct TempDir(PathBuf);

impl TempDir {
    fn new(test: &str) -> Self {
        let name = format!("recurrent-bad-input-models-{}-{test}", std::process::id());
        let dir = std::env::temp_dir().join(name);
        let _ = fs::remove_dir_all(&dir);
        fs::create_dir_all(&dir).expect("the temp dir is writable");
        TempDir(dir)
    }

    /// Writes `bytes` to `name` in the directory, returning its path.
    fn file(&self, name: &str, bytes: &[u8]) -> PathBuf {
        let path = self.0.join(name);
        fs::write(&path, bytes).expect("the temp dir is writable");
        path
    }

    /// The names of the directory's entries, sorted.
    fn entries(&self) -> Vec<String> {
        let read = fs::read_dir(&self.0).expect("the temp dir exists");
        let mut names: Vec<String> = read
            .map(|e| {
                e.expect("an entry")
                    .file_name()
                    .to_string_lossy()
                    .into_owned()
            })
            .collect();
        names.sort();
        names
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = fs::remove_dir_all(&self.0);
    }
}

// ---------------------------------------------------------------------------------------------
// Assertions: the variant, its fields, and a message naming the expected and the given. Each
// returns the message for further checks.

#[track_caller]
fn mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
}

fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// What a bad input must give, checked on a `Result`.
trait BadInput {
    /// [`Error::Shape`] with exactly these `expected` and `given` fields.
    fn shape(self, expected: &str, given: &str) -> String;
    /// [`Error::Shape`] with exactly this `given` field, `expected` not pinned.
    fn any_shape_given(self, given: &str) -> String;
    /// [`Error::Index`] with these fields.
    fn index(self, position: usize, value: usize, bound: usize) -> String;
    /// [`Error::Empty`] whose `what` contains `what`.
    fn empty(self, what: &str) -> String;
    /// [`Error::Config`] whose message contains every part.
    fn config(self, parts: &[&str]) -> String;
    /// [`Error::NonFinite`] whose message contains `what`.
    fn non_finite(self, what: &str) -> String;
    /// [`Error::Format`] whose message contains every part.
    fn format(self, parts: &[&str]) -> String;
    /// [`Error::Io`] naming exactly `path`.
    fn io(self, path: &Path) -> String;
    /// [`Error::StateDict`] listing exactly these names (each mismatch starts with its name).
    fn state_dict(self, missing: &[&str], unexpected: &[&str], mismatched: &[&str]) -> String;
    /// [`Error::StateDict`] with one mismatched tensor and nothing else.
    #[track_caller]
    fn mismatched(self, name: &str) -> String
    where
        Self: Sized,
    {
        self.state_dict(&[], &[], &[name])
    }
}

/// Checks that reading a broken file gave [`Error::Format`], saying which `case` did not.
#[track_caller]
fn broken<T: Debug>(case: impl Debug, result: Result<T>) {
    let is_format = matches!(result, Err(Error::Format { .. }));
    assert!(is_format, "{case:?}: {result:?}");
}

impl<T: Debug> BadInput for Result<T> {
    #[track_caller]
    fn shape(self, expected: &str, given: &str) -> String {
        let err = self.expect_err("bad input must give an Err");
        let fields = match &err {
            Error::Shape {
                expected: e,
                given: g,
                ..
            } => (e.as_str(), g.as_str()),
            _ => panic!("expected Error::Shape, got {err:?}"),
        };
        assert_eq!(fields, (expected, given), "fields of: {err}");
        mentions(&err.to_string(), &[expected, given]);
        err.to_string()
    }

    #[track_caller]
    fn any_shape_given(self, given: &str) -> String {
        let err = self.expect_err("bad input must give an Err");
        match &err {
            Error::Shape { given: g, .. } => assert_eq!(g, given, "given of: {err}"),
            _ => panic!("expected Error::Shape, got {err:?}"),
        }
        mentions(&err.to_string(), &[given]);
        err.to_string()
    }

    #[track_caller]
    fn index(self, position: usize, value: usize, bound: usize) -> String {
        let err = self.expect_err("bad input must give an Err");
        let fields = match &err {
            Error::Index {
                position: p,
                value: v,
                bound: b,
                ..
            } => (*p, *v, *b),
            _ => panic!("expected Error::Index, got {err:?}"),
        };
        assert_eq!(fields, (position, value, bound), "fields of: {err}");
        let parts = [("entry", position), ("is", value), ("below", bound)]
            .map(|(word, n)| format!("{word} {n}"));
        mentions(&err.to_string(), &parts.each_ref().map(String::as_str));
        err.to_string()
    }

    #[track_caller]
    fn empty(self, what: &str) -> String {
        let err = self.expect_err("bad input must give an Err");
        match &err {
            Error::Empty { what: w } => assert!(w.contains(what), "{w:?} is not {what:?}"),
            _ => panic!("expected Error::Empty, got {err:?}"),
        }
        mentions(&err.to_string(), &[what, "at least one"]);
        err.to_string()
    }

    #[track_caller]
    fn config(self, parts: &[&str]) -> String {
        let err = self.expect_err("bad input must give an Err");
        assert!(matches!(err, Error::Config { .. }), "not Config: {err:?}");
        mentions(&err.to_string(), parts);
        err.to_string()
    }

    #[track_caller]
    fn non_finite(self, what: &str) -> String {
        let err = self.expect_err("bad input must give an Err");
        assert!(
            matches!(err, Error::NonFinite { .. }),
            "not NonFinite: {err:?}"
        );
        mentions(&err.to_string(), &[what, "NaN or infinite"]);
        err.to_string()
    }

    #[track_caller]
    fn format(self, parts: &[&str]) -> String {
        let err = self.expect_err("a broken file must give an Err");
        assert!(matches!(err, Error::Format { .. }), "not Format: {err:?}");
        mentions(&err.to_string(), parts);
        err.to_string()
    }

    #[track_caller]
    fn io(self, path: &Path) -> String {
        let err = self.expect_err("a bad path must give an Err");
        let shown = path.display().to_string();
        match &err {
            Error::Io { path: p, message } => {
                assert_eq!(p, &shown, "path of: {err}");
                assert!(!message.is_empty(), "no reason given: {err:?}");
            }
            _ => panic!("expected Error::Io, got {err:?}"),
        }
        mentions(&err.to_string(), &[&shown]);
        err.to_string()
    }

    #[track_caller]
    fn state_dict(self, missing: &[&str], unexpected: &[&str], mismatched: &[&str]) -> String {
        let err = self.expect_err("a state dict that does not fit must give an Err");
        let Error::StateDict {
            missing: m,
            unexpected: u,
            mismatched: x,
        } = &err
        else {
            panic!("expected Error::StateDict, got {err:?}");
        };
        assert_eq!((m, u), (&strings(missing), &strings(unexpected)), "{err}");
        let named: Vec<&str> = x
            .iter()
            .map(|s| s.split(':').next().unwrap_or(""))
            .collect();
        assert_eq!(named, mismatched, "mismatched of: {err}");
        let message = err.to_string();
        mentions(&message, missing);
        mentions(&message, unexpected);
        mentions(&message, mismatched);
        message
    }
}

// ---------------------------------------------------------------------------------------------
// Rnn::new: dropout

#[test]
fn new_rejects_dropout_outside_zero_to_one() {
    let bad = [
        (-0.1, "given -0.1"),
        (-0.0001, "given -0.0001"),
        (1.0, "given 1"),
        (1.5, "given 1.5"),
        (f64::NAN, "given NaN"),
        (f64::INFINITY, "given inf"),
        (f64::NEG_INFINITY, "given -inf"),
    ];
    for (p, given) in bad {
        let config = RnnConfig::lstm(4, 3).layers(2).dropout(p).output(4);
        let result = Rnn::new(F64::new(), config, &mut rng());
        result.config(&["dropout", "[0, 1)", given]);
        // One layer has nowhere to apply it, but the value is still wrong.
        let config = RnnConfig::gru(4, 3).dropout(p);
        Rnn::new(F32::new(), config, &mut rng()).config(&["dropout", given]);
    }
    for p in [0.0, 0.5, 0.999] {
        let config = RnnConfig::rnn(4, 3).layers(2).dropout(p);
        Rnn::new(F64::new(), config, &mut rng()).expect("dropout in [0, 1)");
    }
}

// ---------------------------------------------------------------------------------------------
// Input::with_lengths, through forward and forward_train

#[test]
fn lengths_must_be_one_per_sequence_in_one_to_t() {
    let configs = [
        RnnConfig::lstm(4, 3).output(4),
        RnnConfig::lstm(4, 3).layers(2).dropout(0.5),
        RnnConfig::lstm(4, 3).layers(2).bidirectional(true),
        RnnConfig::gru(4, 3).bidirectional(true).output(4),
    ];
    for config in configs {
        let rnn = Rnn::new(F64::new(), config, &mut rng()).expect("valid");
        let with = |lengths: Vec<usize>| ids().with_lengths(lengths);
        for r in both(&rnn, &with(vec![2])) {
            let m = r.shape("2", "1");
            mentions(&m, &["sequence lengths", "one per batch entry"]);
        }
        for r in both(&rnn, &with(vec![2, 2, 1])) {
            r.shape("2", "3");
        }
        for r in both(&rnn, &with(vec![])) {
            r.shape("2", "0");
        }
        for r in both(&rnn, &with(vec![2, 0])) {
            mentions(&r.shape("1..=2 steps", "0 steps"), &["sequence 1"]);
        }
        for r in both(&rnn, &with(vec![3, 1])) {
            mentions(&r.shape("1..=2 steps", "3 steps"), &["sequence 0"]);
        }
        // The first offender is named.
        for r in both(&rnn, &with(vec![0, usize::MAX])) {
            mentions(&r.shape("1..=2 steps", "0 steps"), &["sequence 0"]);
        }
        let dense = Input::dense(matrix(rnn.backend(), 6, 4), 3).with_lengths(vec![1, 2, 4]);
        for r in both(&rnn, &dense) {
            mentions(&r.shape("1..=2 steps", "4 steps"), &["sequence 2"]);
        }
    }
}

/// `forward` documents `Error::Empty` for an empty sequence or batch; lengths checked first must
/// not turn that into a range like "1..=0 steps".
#[test]
fn lengths_do_not_hide_an_empty_sequence() {
    let rnn = lstm(F64::new(), 1, true, 42);
    for r in both(&rnn, &Input::ids(vec![], 2).with_lengths(vec![1, 1])) {
        r.empty("input sequence");
    }
}

/// As above, for a batch of 0.
#[test]
fn lengths_do_not_hide_an_empty_batch() {
    let rnn = lstm(F64::new(), 1, true, 42);
    for r in both(&rnn, &Input::ids(IDS.to_vec(), 0).with_lengths(vec![2])) {
        r.empty("batch");
    }
}

// ---------------------------------------------------------------------------------------------
// Initial states: LSTM cell vectors, bidirectional counts, the layer and direction named

#[test]
fn lstm_state_needs_a_cell_vector_of_the_right_shape() {
    let rnn = lstm(F64::new(), 1, false, 42);
    let b = rnn.backend();
    let run = |s: CellState<F64>| rnn.forward(&ids(), Some(&State::new(vec![s])));
    run(state(b, (2, 3), None)).config(&["initial state", "needs a cell state c"]);
    let m = run(state(b, (2, 3), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
    mentions(&m, &["initial state c"]);
    run(state(b, (2, 3), Some((1, 3)))).shape("(2, 3)", "(1, 3)");
    // h is checked first.
    run(state(b, (2, 5), None)).shape("(2, 3)", "(2, 5)");
    let no_c = state_with(&rnn, 0, state(b, (2, 3), None));
    let train = rnn.forward_train(&ids(), Some(&no_c), &mut rng());
    train.config(&["needs a cell state c"]);
}

#[test]
fn bidirectional_state_count_is_layers_times_directions() {
    let one = lstm(F64::new(), 1, true, 42);
    let two = lstm(F64::new(), 2, true, 42);
    let uni = lstm(F64::new(), 1, false, 42);
    let run = |rnn: &Rnn<F64>, state: State<F64>| rnn.forward(&ids(), Some(&state));
    let m = run(&one, uni.zero_state(2)).shape("2", "1");
    mentions(&m, &["initial state (layers x directions)"]);
    run(&two, one.zero_state(2)).shape("4", "2");
    let mut five = two.zero_state(2).into_layers();
    five.push(five[0].clone());
    run(&two, State::new(five)).shape("4", "5");
    let train = two.forward_train(&ids(), Some(&State::new(vec![])), &mut rng());
    train.shape("4", "0");
}

#[test]
fn bad_reverse_and_upper_layer_states_are_rejected() {
    let one = lstm(F64::new(), 1, true, 42);
    let b = one.backend();
    let run = |rnn: &Rnn<F64>, index, s| rnn.forward(&ids(), Some(&state_with(rnn, index, s)));
    run(&one, 1, state(b, (2, 5), Some((2, 5)))).shape("(2, 3)", "(2, 5)");
    run(&one, 1, state(b, (2, 3), Some((3, 3)))).shape("(2, 3)", "(3, 3)");
    run(&one, 1, state(b, (2, 3), None)).config(&["needs a cell state c"]);
    let two = lstm(F64::new(), 2, true, 42);
    for index in [2, 3] {
        let m = run(&two, index, state(b, (2, 4), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
        mentions(&m, &["layer 1"]);
        let m = run(&two, index, state(b, (2, 3), Some((2, 1)))).shape("(2, 3)", "(2, 1)");
        mentions(&m, &["layer 1", "initial state c"]);
        run(&two, index, state(b, (2, 3), None)).config(&["layer 1", "cell state c"]);
    }
    let config = RnnConfig::gru(4, 3).bidirectional(true);
    let gru = Rnn::new(F64::new(), config, &mut rng()).expect("valid");
    run(&gru, 1, state(b, (2, 3), Some((2, 3)))).config(&["c was given"]);
}

/// With two directions a user passes two states per layer; as a layer is named, so must the
/// direction be, or a bad forward and a bad reverse state read the same.
#[test]
fn a_bad_reverse_state_is_named_as_such() {
    let rnn = lstm(F64::new(), 2, true, 42);
    let b = rnn.backend();
    let run = |index| {
        let s = state_with(&rnn, index, state(b, (2, 5), Some((2, 5))));
        rnn.forward(&ids(), Some(&s)).shape("(2, 3)", "(2, 5)")
    };
    for (forward, reverse) in [(0, 1), (2, 3)] {
        let (f, r) = (run(forward), run(reverse));
        assert_ne!(f, r, "states {forward} and {reverse} give the same message");
        assert!(r.contains("reverse") || r.contains("direction"), "{r}");
    }
}

// ---------------------------------------------------------------------------------------------
// CrossEntropy::forward_masked

fn masked_errors<B: Backend>(backend: &B, loss: CrossEntropy) {
    let logits = matrix(backend, 4, 4);
    let run = |targets: &[usize], mask: &[bool]| {
        loss.forward_masked(backend, &logits, targets, Some(mask))
    };
    let (targets, keep) = ([1, 2, 0, 1], [true, false, true, true]);
    let m = run(&targets, &keep[..3]).shape("4", "3");
    mentions(&m, &["mask (one per logits row)"]);
    run(&targets, &[true; 5]).shape("4", "5");
    run(&targets, &[]).shape("4", "0");
    run(&targets, &[false; 4]).empty("mask selection");
    run(&targets[..3], &keep).shape("4", "3");
    mentions(&run(&[1, 2, 0, 7], &keep).index(3, 7, 4), &["targets"]);
    // The first kept offender, by its row in the full batch.
    run(&[1, 9, 4, 5], &keep).index(2, 4, 4);
    let none = backend.zeros(0, 4);
    let result = loss.forward_masked(backend, &none, &[], Some(&[]));
    result.empty("logits");
    // A masked-out row's target is not read: any value gives the same loss and gradient.
    let bits = |(l, g): (B::Scalar, B::Matrix)| {
        let grad = backend.to_vec(&g).into_iter().map(|v| v.to_f64().to_bits());
        (l.to_f64().to_bits(), grad.collect::<Vec<_>>())
    };
    let reference = bits(run(&targets, &keep).expect("valid"));
    for ignored in [4, 99, usize::MAX] {
        let result = run(&[1, ignored, 0, 1], &keep).expect("row 1 is masked out");
        assert_eq!(bits(result), reference, "target {ignored}, masked out");
    }
}

#[test]
fn forward_masked_rejects_bad_masks_and_targets() {
    for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
        masked_errors(&F64::new(), loss);
        masked_errors(&F32::new(), loss);
    }
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
    let missing = dir.0.join("missing.safetensors");
    StateDict::read(&missing).io(&missing);
    io::load(F64::new(), &missing).io(&missing);
    io::load(F32::new(), &dir.0).io(&dir.0);
}

#[test]
fn read_and_load_reject_broken_files() {
    let dir = TempDir::new("broken");
    let good = dir.0.join("good.safetensors");
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
    let missing = dir.0.join("no-such-dir").join("model.safetensors");
    io::save(&rnn, &missing).io(&missing);
    rnn.state_dict().write(&missing).io(&missing);
    // A directory where the file should go.
    let taken = dir.0.join("model.safetensors");
    fs::create_dir(&taken).expect("creates");
    io::save(&rnn, &taken).io(&taken);
    // No file name at all.
    let no_name = dir.0.join("..");
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
// Cells from weights, and LSTM steps

#[test]
fn lstm_and_gru_from_weights_reject_shapes_that_do_not_fit() {
    let b = F64::new();
    let lstm = |ih: (usize, usize), hh: (usize, usize), biases: Option<[(usize, usize); 2]>| {
        let biases = biases.map(|[i, h]| (b.zeros(i.0, i.1), b.zeros(h.0, h.1)));
        LstmCell::from_weights(&b, b.zeros(ih.0, ih.1), b.zeros(hh.0, hh.1), biases)
    };
    // weight_ih's rows are 4 gates of H; they fix H = 3 for the rest.
    let m = lstm((6, 4), (6, 3), None).any_shape_given("(6, 4)");
    mentions(&m, &["weight_ih", "4 * H", "LSTM"]);
    lstm((9, 4), (9, 3), None).any_shape_given("(9, 4)");
    let m = lstm((12, 4), (12, 4), None).shape("(12, 3)", "(12, 4)");
    mentions(&m, &["weight_hh"]);
    lstm((12, 4), (3, 3), None).shape("(12, 3)", "(3, 3)");
    let m = lstm((12, 4), (12, 3), Some([(12, 1), (1, 12)])).shape("(1, 12)", "(12, 1)");
    mentions(&m, &["bias_ih"]);
    let m = lstm((12, 4), (12, 3), Some([(1, 12), (1, 3)])).shape("(1, 12)", "(1, 3)");
    mentions(&m, &["bias_hh"]);
    lstm((0, 4), (0, 0), None).config(&["hidden size", "0"]);
    let f32 = F32::new();
    let gru = |ih: (usize, usize), hh: (usize, usize), bias: (usize, usize)| {
        let biases = Some((f32.zeros(bias.0, bias.1), f32.zeros(1, 9)));
        GruCell::from_weights(&f32, f32.zeros(ih.0, ih.1), f32.zeros(hh.0, hh.1), biases)
    };
    let m = gru((7, 4), (7, 3), (1, 9)).any_shape_given("(7, 4)");
    mentions(&m, &["weight_ih", "3 * H", "GRU"]);
    gru((10, 4), (10, 3), (1, 10)).any_shape_given("(10, 4)");
    gru((9, 4), (9, 2), (1, 9)).shape("(9, 3)", "(9, 2)");
    gru((9, 4), (9, 3), (1, 12)).shape("(1, 9)", "(1, 12)");
    gru((9, 4), (9, 3), (1, 9)).expect("fits");
}

/// The expected gate shape is a description, not a value: it should read like every other
/// `expected` field, without the quotes `Debug` puts around a string.
#[test]
fn from_weights_names_the_gate_shape_without_quotes() {
    let b = F64::new();
    let cell = LstmCell::from_weights(&b, b.zeros(6, 4), b.zeros(6, 3), None);
    cell.shape("(4 * H, 4) for the LSTM cell", "(6, 4)");
}

#[test]
fn lstm_step_forward_needs_a_cell_vector() {
    let b = F64::new();
    let cell = LstmCell::new(&b, 4, 3, &mut rng()).expect("valid");
    let x = matrix(&b, 2, 4);
    let run = |prev: CellState<F64>| cell.step_forward(&b, &x, &prev);
    run(state(&b, (2, 3), None)).config(&["previous state", "needs a cell state c"]);
    let m = run(state(&b, (2, 3), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
    mentions(&m, &["previous state c"]);
    run(state(&b, (2, 3), Some((2, 3)))).expect("a full state");
    let gru = GruCell::new(&b, 4, 3, &mut rng()).expect("valid");
    let result = gru.step_forward(&b, &x, &state(&b, (2, 3), Some((2, 3))));
    result.config(&["c was given"]);
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
