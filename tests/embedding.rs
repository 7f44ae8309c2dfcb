//! The embedding input and tied weights: saving and loading under PyTorch's names, optimisers
//! and clipping seeing a tied weight once, checkpoints, streaming, and every bad input as an
//! `Err` naming what was expected. (PyTorch parity: `tests/embedding_parity.rs`; gradients
//! against finite differences: `tests/gradcheck_embedding.rs`.)

mod common;

use common::rng;
use recurrent::Backend;
use recurrent::optim::Optimizer;
use recurrent::{
    Adam, Checkpoint, CrossEntropy, Error, Gradients, Input, NaiveCpu, Progress, Rnn, RnnConfig,
    Sgd, StateDict, clip,
};

type B = NaiveCpu<f64>;
const VOCAB: usize = 7;

/// A tied two-layer LSTM over 7 tokens, 5 units.
fn tied() -> Rnn<B> {
    let config = RnnConfig::lstm(VOCAB, 5)
        .layers(2)
        .embedding(VOCAB, 5)
        .output(VOCAB)
        .tie_weights(true);
    Rnn::new(B::new(), config, &mut rng(1)).unwrap()
}

fn untied() -> Rnn<B> {
    let config = RnnConfig::gru(VOCAB, 4).embedding(VOCAB, 3).output(VOCAB);
    Rnn::new(B::new(), config, &mut rng(2)).unwrap()
}

fn ids() -> Input<B> {
    Input::ids(vec![0, 6, 3, 3, 1, 2, 5, 4], 2)
}

fn gradients(rnn: &Rnn<B>) -> Gradients<B> {
    let trace = rnn.forward(&ids(), None).unwrap();
    let targets = [1, 2, 3, 4, 5, 6, 0, 1];
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &targets)
        .unwrap();
    rnn.backward(&trace, &d).unwrap()
}

fn values(rnn: &Rnn<B>, name: &str) -> Vec<f64> {
    rnn.backend().to_vec(rnn.parameter(name).unwrap())
}

#[test]
fn a_tied_model_keeps_one_matrix_under_two_names() {
    let rnn = tied();
    let names: Vec<String> = rnn.parameters().into_iter().map(|(n, _)| n).collect();
    assert_eq!(names[0], "embedding.weight");
    assert!(!names.contains(&"out.weight".to_string()), "{names:?}");
    assert_eq!(values(&rnn, "out.weight"), values(&rnn, "embedding.weight"));
    let shapes = rnn.config().parameter_shapes().unwrap();
    let listed: Vec<&str> = shapes.iter().map(|(n, _)| n.as_str()).collect();
    assert_eq!(listed.first(), Some(&"embedding.weight"));
    assert!(listed.contains(&"out.weight"));
    // Counted once: 7*5 shared, two LSTM layers of 4*5*(5+5) + 2*4*5, and the bias.
    assert_eq!(rnn.params().count(rnn.backend()), 35 + 2 * (200 + 40) + 7);
    // Writing either name writes the one matrix.
    let mut rnn = rnn;
    rnn.set_parameter("out.weight", vec![0.25; 35]).unwrap();
    assert_eq!(values(&rnn, "embedding.weight"), vec![0.25; 35]);
}

#[test]
fn the_state_dict_holds_both_names_and_loads_back_tied() {
    let rnn = tied();
    let dict = rnn.state_dict();
    let weight = |name: &str| dict.get(name).unwrap().floats().unwrap().to_vec();
    assert_eq!(weight("embedding.weight"), weight("out.weight"));
    assert_eq!(dict.get("out.weight").unwrap().shape(), [VOCAB, 5]);
    assert_eq!(
        dict.metadata().get("tie_weights").map(String::as_str),
        Some("true")
    );
    let bytes = dict.to_bytes().unwrap();
    let loaded = recurrent::io::from_bytes(B::new(), &bytes).unwrap();
    assert_eq!(loaded.config(), rnn.config());
    for (name, m) in rnn.parameters() {
        assert_eq!(rnn.backend().to_vec(m), values(&loaded, &name), "{name}");
    }
    // An untied model's dict says so, and loads untied.
    let untied = untied();
    let dict = untied.state_dict();
    assert_eq!(
        dict.metadata().get("tie_weights").map(String::as_str),
        Some("false")
    );
    let loaded = recurrent::io::from_bytes(B::new(), &dict.to_bytes().unwrap()).unwrap();
    assert_eq!(loaded.config(), untied.config());
    assert_eq!(loaded.config().embedding_dim(), Some(3));
}

#[test]
fn a_tied_model_refuses_a_file_whose_two_weights_differ() {
    let mut rnn = tied();
    let before = values(&rnn, "embedding.weight");
    let mut dict: StateDict = rnn.state_dict();
    let mut out = dict.get("out.weight").unwrap().floats().unwrap().to_vec();
    out[12] += 1.0;
    let shape = dict.get("out.weight").unwrap().shape().to_vec();
    let dtype = dict.get("out.weight").unwrap().dtype();
    dict.insert(
        "out.weight",
        recurrent::Tensor::float(dtype, shape, out).unwrap(),
    );
    let err = rnn.load_state_dict(&dict, true).unwrap_err();
    let text = err.to_string();
    assert!(matches!(err, Error::StateDict { .. }), "{err:?}");
    assert!(
        text.contains("out.weight") && text.contains("embedding.weight"),
        "{text}"
    );
    assert!(text.contains("entry 12"), "{text}");
    assert_eq!(
        values(&rnn, "embedding.weight"),
        before,
        "unchanged on error"
    );
    let config = rnn.config().clone();
    assert!(Rnn::from_state_dict(B::new(), config, &dict, true).is_err());
    // The file says tie_weights = true: io::load refuses it as well.
    assert_eq!(
        dict.metadata().get("tie_weights").map(String::as_str),
        Some("true")
    );
    let err = recurrent::io::from_bytes(B::new(), &dict.to_bytes().unwrap()).unwrap_err();
    assert!(err.to_string().contains("entry 12"), "{err}");
}

#[test]
fn an_optimiser_updates_the_tied_weight_once_with_the_summed_gradient() {
    let mut rnn = tied();
    let grads = gradients(&rnn);
    let before = values(&rnn, "embedding.weight");
    let g = grads
        .backend()
        .to_vec(grads.get("embedding.weight").unwrap());
    assert_eq!(g, grads.backend().to_vec(grads.get("out.weight").unwrap()));
    let mut sgd = Sgd::for_model(&rnn, 0.5).unwrap();
    sgd.step(&mut rnn, &grads).unwrap();
    let after = values(&rnn, "embedding.weight");
    for ((a, b), g) in after.iter().zip(&before).zip(&g) {
        assert_eq!(*a, b - 0.5 * g, "one step of the summed gradient");
    }
    assert_eq!(values(&rnn, "out.weight"), after);
    // Adam keeps one set of buffers, under embedding.weight.
    let mut adam = Adam::for_model(&rnn, 1e-3).unwrap();
    adam.step(&mut rnn, &grads).unwrap();
    let state = adam.state_dict();
    assert!(state.get("embedding.weight.exp_avg").is_some());
    assert!(
        state.names().all(|n| !n.starts_with("out.weight")),
        "no buffer of out.weight"
    );
    let mut restored = Adam::for_model(&rnn, 1e-3).unwrap();
    restored.load_state_dict(&rnn, &state).unwrap();
}

#[test]
fn clipping_counts_the_tied_weight_once() {
    let rnn = tied();
    let mut grads = gradients(&rnn);
    let backend = *grads.backend();
    let squares = |name: &str, g: &Gradients<B>| -> f64 {
        backend
            .to_vec(g.get(name).unwrap())
            .iter()
            .map(|v| v * v)
            .sum()
    };
    let once: f64 = grads.named().iter().map(|(n, _)| squares(n, &grads)).sum();
    let norm = clip::norm(&backend, &grads);
    assert!(
        (norm - once.sqrt()).abs() <= 1e-12 * norm,
        "{norm} vs {}",
        once.sqrt()
    );
    let twice = (once + squares("out.weight", &grads)).sqrt();
    assert!((norm - twice).abs() > 1e-6 * norm, "not counted twice");
    clip::global_norm(&mut grads, 0.5 * norm).unwrap();
    assert!((clip::norm(&backend, &grads) - 0.5 * norm).abs() <= 1e-12 * norm);
}

#[test]
fn a_checkpoint_restores_the_embedding_and_the_tying() {
    for rnn in [tied(), untied()] {
        let mut rnn = rnn;
        let grads = gradients(&rnn);
        let mut adam = Adam::for_model(&rnn, 1e-2).unwrap();
        adam.step(&mut rnn, &grads).unwrap();
        let saved = Checkpoint::new(rnn.clone(), &adam, Progress::new(3));
        let dict = saved.to_state_dict().unwrap();
        let back = Checkpoint::from_state_dict(B::new(), &dict).unwrap();
        assert_eq!(back.rnn.config(), rnn.config());
        for (name, m) in rnn.parameters() {
            assert_eq!(rnn.backend().to_vec(m), values(&back.rnn, &name), "{name}");
        }
        let mut again = Adam::for_model(&rnn, 1e-2).unwrap();
        back.restore_optimizer(&mut again).unwrap();
        assert_eq!(again.step_count(), 1);
    }
}

#[test]
fn a_stream_of_ids_gives_the_forward_pass_logits() {
    for rnn in [tied(), untied()] {
        let trace = rnn.forward(&ids(), None).unwrap();
        let all = rnn.backend().to_vec(trace.logits());
        let mut stream = rnn.stream(2).unwrap();
        let ids = ids().as_ids().unwrap().to_vec();
        for (t, step) in ids.chunks(2).enumerate() {
            let logits = rnn.backend().to_vec(rnn.step(&mut stream, step).unwrap());
            assert_eq!(logits, all[t * 2 * VOCAB..][..2 * VOCAB], "step {t}");
        }
        let x = rnn
            .backend()
            .zeros(2, rnn.config().embedding_dim().unwrap());
        let err = rnn.step_dense(&mut stream, &x).unwrap_err();
        assert!(err.to_string().contains("token ids"), "{err}");
        let err = rnn.step(&mut stream, &[0, VOCAB]).unwrap_err();
        assert!(
            matches!(
                err,
                Error::Index {
                    value: 7,
                    bound: 7,
                    ..
                }
            ),
            "{err:?}"
        );
    }
}

#[test]
fn bad_configurations_are_errors_naming_what_was_expected() {
    let backend = B::new();
    let make = |config: RnnConfig| Rnn::new(backend, config, &mut rng(0)).unwrap_err();
    let lstm = || RnnConfig::lstm(VOCAB, 4).embedding(VOCAB, 4).output(VOCAB);
    let cases: Vec<(RnnConfig, Vec<&str>)> = vec![
        (
            RnnConfig::lstm(VOCAB, 4)
                .embedding(VOCAB, 6)
                .output(VOCAB)
                .tie_weights(true),
            vec!["embedding width 6", "width D*H = 1 * 4 = 4"],
        ),
        (
            lstm().bidirectional(true).tie_weights(true),
            vec!["embedding width 4", "D*H = 2 * 4 = 8"],
        ),
        (
            RnnConfig::lstm(VOCAB, 4).embedding(VOCAB, 0),
            vec!["embedding width", "at least 1"],
        ),
        (
            RnnConfig::lstm(VOCAB, 4).output(VOCAB).tie_weights(true),
            vec!["tie_weights needs an embedding"],
        ),
        (
            RnnConfig::lstm(VOCAB, 4)
                .embedding(VOCAB, 4)
                .tie_weights(true),
            vec!["needs an output layer", ".output(7)"],
        ),
        (
            RnnConfig::lstm(VOCAB, 4)
                .embedding(VOCAB, 4)
                .output(5)
                .tie_weights(true),
            vec!["output size 5", "vocabulary 7"],
        ),
        (
            RnnConfig::lstm(0, 4).embedding(0, 4),
            vec!["input size must be at least 1"],
        ),
    ];
    for (config, words) in cases {
        let err = make(config);
        let text = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        for word in words {
            assert!(text.contains(word), "{text:?} lacks {word:?}");
        }
    }
    assert!(Rnn::new(backend, lstm().tie_weights(true), &mut rng(0)).is_ok());
}

#[test]
fn bad_input_to_an_embedding_model_is_an_error() {
    for rnn in [tied(), untied()] {
        let err = rnn
            .forward(&Input::ids(vec![0, 1, 7, 2], 2), None)
            .unwrap_err();
        assert!(
            matches!(
                err,
                Error::Index {
                    position: 2,
                    value: 7,
                    bound: 7,
                    ..
                }
            ),
            "{err:?}"
        );
        let dim = rnn.config().embedding_dim().unwrap();
        let x = rnn.backend().from_vec(4, dim, vec![0.0; 4 * dim]).unwrap();
        let err = rnn.forward(&Input::dense(x, 2), None).unwrap_err();
        let text = err.to_string();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        assert!(
            text.contains("token ids") && text.contains(&format!("width {dim}")),
            "{text}"
        );
        let mut r = rng(4);
        let x = rnn.backend().zeros(4, dim);
        assert!(
            rnn.forward_train(&Input::dense(x, 2), None, &mut r)
                .is_err()
        );
    }
}
