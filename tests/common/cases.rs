//! Random models and inputs for the property tests (`properties*.rs`): `proptest` strategies
//! that draw a model's shape and an input's shape, and a seed from which the weights, the input
//! values, the initial state and the upstream gradient are made, the same on every backend of
//! one scalar type.
//!
//! Included by path (`#[path = "common/cases.rs"] mod cases;`); each test binary uses a subset.

#![allow(dead_code)]

use proptest::prelude::*;
use proptest::test_runner::{FileFailurePersistence, RngSeed};
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::Kernels;
use recurrent::{CellKind, CellState, Input, Nonlinearity, Rnn, RnnConfig, Scalar, State};

/// Upper bounds of the sizes a strategy draws (each from 1).
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    pub layers: usize,
    pub input: usize,
    pub hidden: usize,
    pub steps: usize,
    pub batch: usize,
    pub output: usize,
}

/// The sizes of the issue: up to 3 layers, input 5, hidden 6, 6 steps, batch 4.
pub const FULL: Limits = Limits {
    layers: 3,
    input: 5,
    hidden: 6,
    steps: 6,
    batch: 4,
    output: 5,
};

/// One random model, input and everything numeric from `seed`.
#[derive(Debug, Clone)]
pub struct Case {
    pub kind: CellKind,
    pub layers: usize,
    pub bidirectional: bool,
    pub bias: bool,
    /// The output layer's size and whether it has a bias; `None` for no output layer.
    pub output: Option<(usize, bool)>,
    pub input: usize,
    pub hidden: usize,
    pub steps: usize,
    pub batch: usize,
    /// Token ids rather than dense rows.
    pub ids: bool,
    /// Per-sequence lengths, each in `1..=steps`.
    pub lengths: Option<Vec<usize>>,
    /// A random initial state rather than zeros.
    pub state: bool,
    /// Every weight is multiplied by this, from 0.5 (mostly linear) to 1.5 (saturating gates).
    pub scale: f64,
    pub seed: u64,
}

/// Every cell kind: the Elman RNN with tanh and with ReLU, the LSTM and the GRU.
pub fn kinds() -> impl Strategy<Value = CellKind> {
    prop_oneof![
        Just(CellKind::Rnn(Nonlinearity::Tanh)),
        Just(CellKind::Rnn(Nonlinearity::Relu)),
        Just(CellKind::Lstm),
        Just(CellKind::Gru),
    ]
}

/// A model shape and an input shape within `limits`, lengths drawn for about half the cases.
pub fn cases(limits: Limits) -> impl Strategy<Value = Case> {
    let shape = (
        kinds(),
        1..=limits.layers,
        any::<bool>(),
        any::<bool>(),
        prop::option::of((1..=limits.output, any::<bool>())),
        1..=limits.input,
        1..=limits.hidden,
    );
    let data = (
        1..=limits.steps,
        1..=limits.batch,
        any::<bool>(),
        any::<bool>(),
        any::<bool>(),
        5u32..=15,
        any::<u64>(),
    );
    (shape, data).prop_flat_map(|(shape, data)| {
        let (steps, batch, with_lengths) = (data.0, data.1, data.3);
        let lengths = prop::collection::vec(1..=steps, batch);
        let lengths = match with_lengths {
            true => lengths.prop_map(Some).boxed(),
            false => Just(None).boxed(),
        };
        lengths.prop_map(move |lengths| {
            let (kind, layers, bidirectional, bias, output, input, hidden) = shape;
            let (steps, batch, ids, _, state, tenths, seed) = data;
            Case {
                kind,
                layers,
                bidirectional,
                bias,
                output,
                input,
                hidden,
                steps,
                batch,
                ids,
                lengths,
                state,
                scale: f64::from(tenths) / 10.0,
                seed,
            }
        })
    })
}

impl Case {
    /// The model's configuration.
    pub fn config(&self) -> RnnConfig {
        let config = RnnConfig::new(self.kind, self.input, self.hidden)
            .layers(self.layers)
            .bidirectional(self.bidirectional)
            .bias(self.bias);
        match self.output {
            Some((size, bias)) => config.output(size).output_bias(bias),
            None => config,
        }
    }

    /// The directions, 1 or 2.
    pub fn directions(&self) -> usize {
        if self.bidirectional { 2 } else { 1 }
    }

    /// The width of the model's output: the output layer's, or the top layer's.
    pub fn classes(&self) -> usize {
        self.output
            .map_or(self.directions() * self.hidden, |(size, _)| size)
    }

    /// The rows of a sequence, `T*B`.
    pub fn rows(&self) -> usize {
        self.steps * self.batch
    }

    /// A generator for the numbers of this case; `stream` tells apart what it draws.
    fn rng(&self, stream: u64) -> StdRng {
        StdRng::seed_from_u64(self.seed ^ stream.wrapping_mul(0x9E37_79B9_7F4A_7C15))
    }

    /// The model on `backend`: PyTorch's initialisation from the seed, times `scale`. Two
    /// backends of one scalar type get the same weights.
    pub fn model<B: Kernels>(&self, backend: B) -> Rnn<B> {
        let mut rnn = Rnn::new(backend, self.config(), &mut self.rng(0)).expect("a valid config");
        let scale = B::Scalar::of(self.scale);
        let scaled: Vec<(String, Vec<B::Scalar>)> = rnn
            .parameters()
            .into_iter()
            .map(|(name, m)| {
                let values = rnn.backend().to_vec(m).into_iter().map(|v| v * scale);
                (name, values.collect())
            })
            .collect();
        for (name, values) in scaled {
            rnn.set_parameter(&name, values).expect("finite values");
        }
        rnn
    }

    /// `count` values uniform in `[-bound, bound]` from stream `stream`.
    pub fn values<T: Scalar>(&self, stream: u64, count: usize, bound: f64) -> Vec<T> {
        let mut rng = self.rng(stream);
        (0..count)
            .map(|_| T::of(rng.random_range(-bound..=bound)))
            .collect()
    }

    /// A `rows x cols` matrix from stream `stream`.
    pub fn matrix<B: Kernels>(
        &self,
        backend: &B,
        stream: u64,
        rows: usize,
        cols: usize,
    ) -> B::Matrix {
        let values = self.values(stream, rows * cols, 1.0);
        backend
            .from_vec(rows, cols, values)
            .expect("rows * cols values")
    }

    /// Token ids below the input size, from stream 1.
    pub fn id_values(&self) -> Vec<usize> {
        let mut rng = self.rng(1);
        (0..self.rows())
            .map(|_| rng.random_range(0..self.input))
            .collect()
    }

    /// The input: ids or dense rows, with the lengths.
    pub fn input<B: Kernels>(&self, backend: &B) -> Input<B> {
        let input = match self.ids {
            true => Input::ids(self.id_values(), self.batch),
            false => Input::dense(self.matrix(backend, 1, self.rows(), self.input), self.batch),
        };
        match &self.lengths {
            Some(lengths) => input.with_lengths(lengths.clone()),
            None => input,
        }
    }

    /// The initial state: random when `state`, otherwise `None` (zeros).
    pub fn initial_state<B: Kernels>(&self, backend: &B) -> Option<State<B>> {
        if !self.state {
            return None;
        }
        let count = self.layers * self.directions();
        let layers = (0..count as u64)
            .map(|k| CellState {
                h: self.matrix(backend, 100 + k, self.batch, self.hidden),
                c: self
                    .kind
                    .has_cell_state()
                    .then(|| self.matrix(backend, 200 + k, self.batch, self.hidden)),
            })
            .collect();
        Some(State::new(layers))
    }

    /// An upstream gradient `dE/d logits`, `T*B x classes`, from stream 2.
    pub fn d_logits<B: Kernels>(&self, backend: &B) -> B::Matrix {
        self.matrix(backend, 2, self.rows(), self.classes())
    }

    /// Targets below the class count, from stream 3.
    pub fn targets(&self) -> Vec<usize> {
        let mut rng = self.rng(3);
        (0..self.rows())
            .map(|_| rng.random_range(0..self.classes()))
            .collect()
    }
}

/// `cases` cases, the same on every run (so that CI is repeatable) unless PROPTEST_RNG_SEED is
/// set; a failure's seed is saved in `file` (under `tests/proptest-regressions/`).
pub fn config(cases: u32, file: &'static str) -> ProptestConfig {
    ProptestConfig {
        cases,
        failure_persistence: Some(Box::new(FileFailurePersistence::Direct(file))),
        rng_seed: match std::env::var("PROPTEST_RNG_SEED") {
            Ok(_) => ProptestConfig::default().rng_seed,
            Err(_) => RngSeed::Fixed(7),
        },
        ..ProptestConfig::default()
    }
}
