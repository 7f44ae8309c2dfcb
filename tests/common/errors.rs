//! What the bad-input tests (`bad_input.rs`, `bad_input_models.rs`, `bad_input_files.rs`) share:
//! small models and data, bit-exact snapshots of parameters, and the assertions that a `Result`
//! is the documented [`Error`] variant with the expected fields and message.
//!
//! Included by path (`#[path = "common/errors.rs"] mod errors;`), apart from `common/mod.rs`, so
//! that each bad-input file still reads with one extra file and no other test helpers. Each test
//! binary uses a subset, hence `dead_code` is allowed.

#![allow(dead_code)]

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::Kernels;
use recurrent::{CrossEntropy, Error, Gradients, Input, NaiveCpu, Result, Rnn, RnnConfig, Scalar};
use std::fmt::Debug;
use std::path::Path;

pub type F64 = NaiveCpu<f64>;
pub type F32 = NaiveCpu<f32>;

/// Token ids of a `T = 2`, `B = 2` sequence, and next-token targets that fit 3 or 4 classes.
pub const IDS: [usize; 4] = [0, 1, 2, 3];
pub const TARGETS: [usize; 4] = [1, 2, 0, 1];

// ---------------------------------------------------------------------------------------------
// Fixtures

pub fn rng() -> StdRng {
    StdRng::seed_from_u64(42)
}

/// `input -> hidden` Elman layers (`layers` of them) with an output layer of 4.
pub fn sized<B: Kernels>(backend: B, input: usize, hidden: usize, layers: usize) -> Rnn<B> {
    let config = RnnConfig::rnn(input, hidden).layers(layers).output(4);
    Rnn::new(backend, config, &mut rng()).expect("a valid config")
}

/// The standard small Elman model: input 4, hidden 3, output 4.
pub fn model<B: Kernels>(backend: B, layers: usize) -> Rnn<B> {
    sized(backend, 4, 3, layers)
}

/// A model of `config` on f64.
pub fn build(config: RnnConfig) -> Result<Rnn<F64>> {
    Rnn::new(F64::new(), config, &mut rng())
}

/// An LSTM (input 4, hidden 3, output 4) of `layers` layers, one or two directions, from `seed`.
pub fn lstm<B: Kernels>(backend: B, layers: usize, bidirectional: bool, seed: u64) -> Rnn<B> {
    let config = RnnConfig::lstm(4, 3).layers(layers);
    let config = config.bidirectional(bidirectional).output(4);
    let mut rng = StdRng::seed_from_u64(seed);
    Rnn::new(backend, config, &mut rng).expect("a valid config")
}

/// A `rows x cols` matrix of small distinct values, row-major.
pub fn matrix<B: Kernels>(backend: &B, rows: usize, cols: usize) -> B::Matrix {
    let data = (0..rows * cols)
        .map(|i| <B::Scalar as Scalar>::of(((i * 7) % 11) as f64 / 10.0 - 0.5))
        .collect();
    backend
        .from_vec(rows, cols, data)
        .expect("length is rows * cols")
}

pub fn ids() -> Input<F64> {
    Input::ids(IDS.to_vec(), 2)
}

/// The gradients of one forward and backward pass on [`IDS`] and [`TARGETS`].
pub fn gradients<B: Kernels>(rnn: &Rnn<B>) -> Gradients<B> {
    let trace = rnn
        .forward(&Input::ids(IDS.to_vec(), 2), None)
        .expect("valid input");
    let (_, d_logits) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &TARGETS)
        .expect("valid targets");
    rnn.backward(&trace, &d_logits).expect("valid gradient")
}

pub type Snapshot = Vec<(String, Vec<u64>)>;

/// Names and exact bit patterns (so NaN compares equal to itself) of named matrices.
pub fn bits<B: Kernels>(backend: &B, named: Vec<(String, &B::Matrix)>) -> Snapshot {
    let to_bits = |m: &B::Matrix| -> Vec<u64> {
        let values = backend.to_vec(m).into_iter();
        values.map(|v| Scalar::to_f64(v).to_bits()).collect()
    };
    named
        .into_iter()
        .map(|(name, m)| (name, to_bits(m)))
        .collect()
}

/// [`bits`] of every parameter of `rnn`.
pub fn params_of<B: Kernels>(rnn: &Rnn<B>) -> Snapshot {
    bits(rnn.backend(), rnn.parameters())
}

// ---------------------------------------------------------------------------------------------
// Assertions: the variant, its fields, and a message naming the expected and the given. Each
// returns the message for further checks.

#[track_caller]
pub fn mentions(message: &str, parts: &[&str]) {
    for part in parts {
        assert!(message.contains(part), "message lacks {part:?}: {message}");
    }
}

pub fn strings(names: &[&str]) -> Vec<String> {
    names.iter().map(|n| n.to_string()).collect()
}

/// Checks that reading a broken file gave [`Error::Format`], saying which `case` did not.
#[track_caller]
pub fn broken<T: Debug>(case: impl Debug, result: Result<T>) {
    let is_format = matches!(result, Err(Error::Format { .. }));
    assert!(is_format, "{case:?}: {result:?}");
}

/// What a bad input must give, checked on a `Result`.
pub trait BadInput {
    /// [`Error::Shape`] with exactly these `expected` and `given` fields.
    fn shape(self, expected: &str, given: &str) -> String;
    /// [`Error::Shape`], fields not pinned.
    fn any_shape(self) -> String;
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
    /// [`Error::UnknownParameter`] for `name`, listing exactly `known`.
    fn unknown(self, name: &str, known: &[String]) -> String;
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
    fn any_shape(self) -> String {
        let err = self.expect_err("bad input must give an Err");
        assert!(
            matches!(err, Error::Shape { .. }),
            "expected Error::Shape, got {err:?}"
        );
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
        assert!(
            matches!(err, Error::Config { .. }),
            "expected Error::Config, got {err:?}"
        );
        mentions(&err.to_string(), parts);
        err.to_string()
    }

    #[track_caller]
    fn non_finite(self, what: &str) -> String {
        let err = self.expect_err("bad input must give an Err");
        assert!(
            matches!(err, Error::NonFinite { .. }),
            "expected NonFinite, got {err:?}"
        );
        mentions(&err.to_string(), &[what, "NaN or infinite"]);
        err.to_string()
    }

    #[track_caller]
    fn unknown(self, name: &str, known: &[String]) -> String {
        let err = self.expect_err("bad input must give an Err");
        let fields = match &err {
            Error::UnknownParameter { name: n, known: k } => (n.as_str(), k.as_slice()),
            _ => panic!("expected Error::UnknownParameter, got {err:?}"),
        };
        assert_eq!(fields, (name, known), "fields of: {err}");
        let message = err.to_string();
        mentions(&message, &[name]);
        mentions(
            &message,
            &known.iter().map(String::as_str).collect::<Vec<_>>(),
        );
        message
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
            Error::Io {
                path: p, message, ..
            } => {
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
