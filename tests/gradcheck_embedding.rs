//! Gradient checks of the embedding input, untied and tied, against central finite differences
//! in f64 (see `recurrent::gradcheck`): every entry of `embedding.weight` (for a tied model the
//! one matrix that is also `out.weight`, so the check moves both uses at once and the analytic
//! gradient must be the sum of both), of every cell parameter, of the output bias and of the
//! initial state, for the summed cross-entropy over the real steps of a variable-length batch.
//!
//! Every case runs on `NaiveCpu`, `VecBackend` (`common/vec_backend.rs`, the core trait only)
//! and `Cpu`. Worst relative error must stay below `1e-6`.

mod common;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use common::{assert_passes, random_ids, random_matrix, rng};
use recurrent::Backend;
use recurrent::gradcheck::{self, Options};
use recurrent::{CellState, Cpu, CrossEntropy, Input, Kernels, NaiveCpu, Rnn, RnnConfig, State};
use vec_backend::VecBackend;

const VOCAB: usize = 6;
const HIDDEN: usize = 3;

/// A case: its name and its configuration.
type Case = (&'static str, RnnConfig);

fn cases() -> Vec<Case> {
    let tied = |config: RnnConfig, dim: usize| {
        config.embedding(VOCAB, dim).output(VOCAB).tie_weights(true)
    };
    vec![
        (
            "lstm 2 layers untied",
            RnnConfig::lstm(VOCAB, HIDDEN)
                .layers(2)
                .embedding(VOCAB, 2)
                .output(VOCAB),
        ),
        (
            "lstm 2 layers tied",
            tied(RnnConfig::lstm(VOCAB, HIDDEN).layers(2), HIDDEN),
        ),
        (
            "gru bidirectional tied",
            tied(
                RnnConfig::gru(VOCAB, HIDDEN).bidirectional(true),
                2 * HIDDEN,
            ),
        ),
        (
            "rnn tied, no output bias",
            tied(RnnConfig::rnn(VOCAB, HIDDEN).output_bias(false), HIDDEN),
        ),
    ]
}

fn check_all<B: Kernels<Scalar = f64>>(name: &str, backend: B) {
    let (steps, batch) = (4, 3);
    for (seed, (case, config)) in cases().into_iter().enumerate() {
        let seed = seed as u64;
        let dirs = config.directions();
        let has_c = config.kind().has_cell_state();
        let states = config.num_layers() * dirs;
        let rnn = Rnn::new(backend.clone(), config, &mut rng(seed)).unwrap();
        let mut r = rng(seed + 50);
        // Every id appears, some more than once, so that rows gather several steps' gradients.
        let ids = random_ids(steps * batch, VOCAB, &mut r);
        let input = Input::ids(ids, batch).with_lengths(vec![4, 2, 3]);
        let targets = random_ids(steps * batch, VOCAB, &mut r);
        let mut part = || random_matrix(&backend, batch, HIDDEN, 0.5, &mut r);
        let state = State::new(
            (0..states)
                .map(|_| CellState {
                    h: part(),
                    c: has_c.then(&mut part),
                })
                .collect(),
        );
        let report = gradcheck::check_rnn(
            &rnn,
            &input,
            Some(&state),
            &targets,
            CrossEntropy::sum(),
            Options::default(),
        )
        .unwrap();
        assert_passes(&format!("{name}: {case}"), &report);
        let entries = rnn.params().count(rnn.backend()) + states * batch * HIDDEN;
        let entries = entries + if has_c { states * batch * HIDDEN } else { 0 };
        assert_eq!(
            report.checked, entries,
            "{case}: every entry, a tied one once"
        );
    }
}

#[test]
fn embedding_gradients_match_finite_differences() {
    check_all("naive", NaiveCpu::<f64>::new());
}

#[test]
fn embedding_gradients_match_finite_differences_on_the_vec_backend() {
    check_all("vec", VecBackend::<f64>::new());
}

#[test]
fn embedding_gradients_match_finite_differences_on_the_fast_backend() {
    check_all("cpu", Cpu::<f64>::new());
}

/// The tied gradient is the sum of the two uses: the output layer's `dY^T H` and the rows the
/// embedding lookup scatters. Computed apart with an untied model of the same values, the two
/// add up to the tied model's gradient.
#[test]
fn tied_gradient_is_the_sum_of_both_uses() {
    let backend = NaiveCpu::<f64>::new();
    let config = RnnConfig::gru(VOCAB, HIDDEN)
        .embedding(VOCAB, HIDDEN)
        .output(VOCAB);
    let untied = Rnn::new(backend, config.clone(), &mut rng(7)).unwrap();
    let mut tied = Rnn::new(backend, config.tie_weights(true), &mut rng(8)).unwrap();
    for (name, m) in untied.parameters() {
        if name != "out.weight" {
            tied.set_parameter(&name, backend.to_vec(m)).unwrap();
        }
    }
    // Both uses of the untied model read the one matrix of the tied model.
    let mut untied = untied;
    let weight = backend.to_vec(tied.parameter("embedding.weight").unwrap());
    untied.set_parameter("out.weight", weight).unwrap();
    let input = Input::ids(vec![0, 1, 2, 3, 4, 5, 1, 1], 2);
    let targets = [5, 4, 3, 2, 1, 0, 2, 2];
    let grads = |rnn: &Rnn<NaiveCpu<f64>>| {
        let trace = rnn.forward(&input, None).unwrap();
        let (_, d) = CrossEntropy::sum()
            .forward(&backend, trace.logits(), &targets)
            .unwrap();
        rnn.backward(&trace, &d).unwrap()
    };
    let (g_tied, g_untied) = (grads(&tied), grads(&untied));
    let sum: Vec<f64> = backend
        .to_vec(g_untied.get("embedding.weight").unwrap())
        .iter()
        .zip(backend.to_vec(g_untied.get("out.weight").unwrap()))
        .map(|(a, b)| a + b)
        .collect();
    let got = backend.to_vec(g_tied.get("embedding.weight").unwrap());
    for (i, (g, s)) in got.iter().zip(&sum).enumerate() {
        assert!(
            (g - s).abs() <= 1e-14 * s.abs().max(1.0),
            "entry {i}: {g} vs {s}"
        );
    }
    assert_eq!(got, backend.to_vec(g_tied.get("out.weight").unwrap()));
    // Every other gradient is the same in both models.
    for (name, g) in g_tied.named() {
        if name != "embedding.weight" {
            assert_eq!(
                backend.to_vec(g),
                backend.to_vec(g_untied.get(&name).unwrap()),
                "{name}"
            );
        }
    }
}
