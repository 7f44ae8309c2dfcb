//! The regularisers of `forward_train` beyond per-entry dropout: variational (locked) dropout,
//! input dropout, embedding dropout and weight dropout on `W_hh`. Each is checked for what it
//! promises: the mask is the same at every step (locked) or for every occurrence of a token
//! (embedding), dropped entries contribute no gradient, survivors are scaled by exactly
//! `1/(1-p)`, the same seed gives the same bits, inference mode applies nothing, and the
//! gradients with the masks fixed (the same seed on every evaluation) match central finite
//! differences in f64. Bad probabilities are `Err`s.

mod common;

use common::{assert_passes, random_ids, random_matrix, rng};
use recurrent::Backend;
use recurrent::gradcheck::{self, Options, Report};
use recurrent::{CrossEntropy, Error, Gradients, Input, NaiveCpu, Rnn, RnnConfig, Trace};

type B = NaiveCpu<f64>;
const VOCAB: usize = 6;

fn train(rnn: &Rnn<B>, input: &Input<B>, seed: u64) -> Trace<B> {
    rnn.forward_train(input, None, &mut rng(seed)).unwrap()
}

fn grads(rnn: &Rnn<B>, trace: &Trace<B>, targets: &[usize]) -> Gradients<B> {
    let (_, d) = CrossEntropy::sum()
        .forward_masked(&B::new(), trace.logits(), targets, trace.mask())
        .unwrap();
    rnn.backward(trace, &d).unwrap()
}

/// A dense input of `steps` steps and batch `batch`, `width` wide.
fn dense(steps: usize, batch: usize, width: usize, seed: u64) -> Input<B> {
    let x = random_matrix(&B::new(), steps * batch, width, 1.0, &mut rng(seed));
    Input::dense(x, batch)
}

/// Whether entry `(r, j)` of a `T*B x W` matrix stored row-major is zero.
fn zeros(m: &[f64], width: usize) -> Vec<Vec<bool>> {
    m.chunks(width)
        .map(|row| row.iter().map(|v| *v == 0.0).collect())
        .collect()
}

#[test]
fn locked_output_dropout_keeps_one_mask_per_sequence_and_unit_and_scales_exactly() {
    let (steps, batch, hidden) = (6, 3, 8);
    let input = dense(steps, batch, 2, 1);
    for locked in [true, false] {
        let config = RnnConfig::lstm(2, hidden)
            .output_dropout(0.5)
            .locked_dropout(locked);
        let rnn = Rnn::new(B::new(), config, &mut rng(0)).unwrap();
        let trace = train(&rnn, &input, 9);
        let (out, h) = (
            B::new().to_vec(trace.logits()),
            B::new().to_vec(trace.hidden()),
        );
        for (o, h) in out.iter().zip(&h) {
            assert!(
                *o == 0.0 || *o == h * 2.0,
                "{o} is neither 0 nor {h} / (1 - 0.5)"
            );
        }
        let dropped = zeros(&out, hidden);
        let kept = dropped.iter().flatten().filter(|d| !**d).count();
        assert!(kept > 20 && kept < 124, "{kept} of 144 kept");
        let same_every_step = (0..steps * batch).all(|r| dropped[r] == dropped[r % batch]);
        assert_eq!(same_every_step, locked, "locked {locked}");
    }
}

#[test]
fn locked_input_dropout_zeroes_the_gradient_of_dropped_inputs() {
    let (steps, batch, width) = (5, 2, 6);
    let config = RnnConfig::gru(width, 4)
        .input_dropout(0.3)
        .locked_dropout(true)
        .output(VOCAB);
    let rnn = Rnn::new(B::new(), config, &mut rng(2)).unwrap();
    let input = dense(steps, batch, width, 3);
    let trace = train(&rnn, &input, 4);
    let read = B::new().to_vec(trace.first_rows().expect("the dropped input"));
    let x = B::new().to_vec(input.as_dense().unwrap());
    let keep = 1.0 / (1.0 - 0.3);
    for (r, v) in read.iter().zip(&x) {
        assert!(
            *r == 0.0 || *r == v * keep,
            "{r} is neither 0 nor {v} / 0.7"
        );
    }
    let dropped = zeros(&read, width);
    assert!((0..steps * batch).all(|r| dropped[r] == dropped[r % batch]));
    let g = grads(&rnn, &trace, &random_ids(steps * batch, VOCAB, &mut rng(5)));
    let dx = zeros(&B::new().to_vec(g.input().unwrap()), width);
    assert_eq!(dx, dropped, "exactly the dropped inputs have zero gradient");
}

#[test]
fn embedding_dropout_drops_whole_tokens_at_every_occurrence() {
    let config = RnnConfig::lstm(VOCAB, 4)
        .embedding(VOCAB, 3)
        .embedding_dropout(0.5)
        .output(VOCAB);
    let rnn = Rnn::new(B::new(), config, &mut rng(3)).unwrap();
    let ids = vec![0, 1, 2, 3, 4, 5, 0, 1, 2, 3, 4, 5, 5, 4, 3, 2, 1, 0];
    let input = Input::ids(ids.clone(), 3);
    let trace = train(&rnn, &input, 11);
    let rows = B::new().to_vec(trace.first_rows().unwrap());
    let table = B::new().to_vec(rnn.parameter("embedding.weight").unwrap());
    let mut dropped = [None; VOCAB];
    for (row, &id) in rows.chunks(3).zip(&ids) {
        let whole = row.iter().all(|v| *v == 0.0);
        let scaled: Vec<f64> = table[id * 3..][..3].iter().map(|v| v * 2.0).collect();
        assert!(whole || row == scaled, "token {id}: {row:?}");
        assert_eq!(
            *dropped[id].get_or_insert(whole),
            whole,
            "token {id} at every occurrence"
        );
    }
    let count = dropped.iter().filter(|d| **d == Some(true)).count();
    assert!(
        count > 0 && count < VOCAB,
        "{count} of {VOCAB} tokens dropped"
    );
    let g = grads(&rnn, &trace, &ids);
    let d_table = B::new().to_vec(g.get("embedding.weight").unwrap());
    for (id, d) in dropped.iter().enumerate() {
        let zero = d_table[id * 3..][..3].iter().all(|v| *v == 0.0);
        assert_eq!(
            zero,
            d.unwrap(),
            "token {id}: zero gradient exactly when dropped"
        );
    }
}

#[test]
fn weight_dropout_masks_w_hh_and_its_gradient_alike() {
    let config = RnnConfig::rnn(3, 5).weight_dropout(0.4).output(VOCAB);
    let rnn = Rnn::new(B::new(), config.clone(), &mut rng(6)).unwrap();
    let input = dense(4, 2, 3, 7);
    let targets = random_ids(8, VOCAB, &mut rng(8));
    let trace = train(&rnn, &input, 12);
    let g = B::new().to_vec(grads(&rnn, &trace, &targets).get("weight_hh_l0").unwrap());
    let dropped = g.iter().filter(|v| **v == 0.0).count();
    assert!(
        dropped > 0 && dropped < 25,
        "{dropped} of 25 gradient entries dropped"
    );
    // The same pass with W_hh replaced by the masked, scaled weight and no weight dropout: the
    // same outputs, and its gradient times the mask is the raw weight's.
    let w = B::new().to_vec(rnn.parameter("weight_hh_l0").unwrap());
    let mut plain = Rnn::new(B::new(), config.weight_dropout(0.0), &mut rng(6)).unwrap();
    let mask: Vec<f64> = g
        .iter()
        .map(|v| if *v == 0.0 { 0.0 } else { 1.0 / 0.6 })
        .collect();
    let masked: Vec<f64> = w.iter().zip(&mask).map(|(w, m)| w * m).collect();
    plain.set_parameter("weight_hh_l0", masked).unwrap();
    let plain_trace = train(&plain, &input, 12);
    assert_eq!(
        B::new().to_vec(plain_trace.logits()),
        B::new().to_vec(trace.logits())
    );
    let plain_g = grads(&plain, &plain_trace, &targets);
    let through: Vec<f64> = B::new()
        .to_vec(plain_g.get("weight_hh_l0").unwrap())
        .iter()
        .zip(&mask)
        .map(|(g, m)| g * m)
        .collect();
    assert_eq!(through, g);
}

/// Every regulariser at once.
fn everything(config: RnnConfig) -> RnnConfig {
    config
        .embedding_dropout(0.2)
        .input_dropout(0.3)
        .weight_dropout(0.25)
        .dropout(0.35)
        .output_dropout(0.15)
}

#[test]
fn the_same_seed_gives_the_same_bits_and_inference_applies_nothing() {
    let base = RnnConfig::lstm(VOCAB, 4)
        .layers(2)
        .embedding(VOCAB, 4)
        .output(VOCAB);
    let config = everything(base.clone())
        .locked_dropout(true)
        .tie_weights(true);
    let rnn = Rnn::new(B::new(), config, &mut rng(1)).unwrap();
    let input = Input::ids(vec![0, 1, 2, 3, 4, 5, 1, 1], 2);
    let logits = |seed| B::new().to_vec(train(&rnn, &input, seed).logits());
    assert_eq!(logits(5), logits(5));
    assert_ne!(logits(5), logits(6));
    let targets = [1, 2, 3, 4, 5, 0, 0, 0];
    let g = |seed| {
        let trace = train(&rnn, &input, seed);
        let g = grads(&rnn, &trace, &targets);
        g.named()
            .into_iter()
            .map(|(_, m)| B::new().to_vec(m))
            .collect::<Vec<_>>()
    };
    assert_eq!(g(5), g(5));
    // Inference: the model without any dropout, the same parameters, the same bits.
    let plain = Rnn::new(B::new(), base.tie_weights(true), &mut rng(1)).unwrap();
    let eval = rnn.forward(&input, None).unwrap();
    let want = plain.forward(&input, None).unwrap();
    assert_eq!(
        B::new().to_vec(eval.logits()),
        B::new().to_vec(want.logits())
    );
    assert!(
        eval.first_rows()
            .is_some_and(|r| B::new().to_vec(r) == B::new().to_vec(want.first_rows().unwrap()))
    );
}

/// Every parameter's gradient (and the dense input's) against finite differences of the loss
/// of `forward_train` with the same seed, so with the same masks.
fn check_fixed_masks(rnn: &Rnn<B>, input: &Input<B>, targets: &[usize], seed: u64) -> Report {
    let loss_of = |model: &Rnn<B>, input: &Input<B>| -> recurrent::Result<f64> {
        let trace = model.forward_train(input, None, &mut rng(seed))?;
        let loss = CrossEntropy::sum();
        Ok(loss
            .forward_masked(&B::new(), trace.logits(), targets, trace.mask())?
            .0)
    };
    let trace = train(rnn, input, seed);
    let g = grads(rnn, &trace, targets);
    let mut report: Option<Report> = None;
    let mut merge = |r: Report| {
        report = Some(match report.take() {
            Some(sum) => sum.merge(r),
            None => r,
        })
    };
    for (name, p) in rnn.parameters() {
        let analytic = B::new().to_vec(g.get(&name).unwrap());
        let r = gradcheck::check(
            &name,
            &B::new().to_vec(p),
            &analytic,
            |v| {
                let mut model = rnn.clone();
                model.set_parameter(&name, v.to_vec())?;
                loss_of(&model, input)
            },
            Options::default(),
        );
        merge(r.unwrap());
    }
    if let (Some(x), Some(dx)) = (input.as_dense(), g.input()) {
        let (rows, cols) = B::new().shape(x);
        let r = gradcheck::check(
            "input",
            &B::new().to_vec(x),
            &B::new().to_vec(dx),
            |v| {
                let moved = Input::dense(B::new().from_vec(rows, cols, v.to_vec())?, input.batch());
                loss_of(rnn, &moved.with_lengths(input.lengths().unwrap().to_vec()))
            },
            Options::default(),
        );
        merge(r.unwrap());
    }
    report.expect("a parameter at least")
}

#[test]
fn gradients_with_the_masks_fixed_match_finite_differences() {
    let ids = |seed| Input::ids(random_ids(12, VOCAB, &mut rng(seed)), 3);
    let cases: Vec<(&str, RnnConfig, Input<B>)> = vec![
        (
            "lstm, 2 layers, embedding, every regulariser, locked",
            everything(
                RnnConfig::lstm(VOCAB, 3)
                    .layers(2)
                    .embedding(VOCAB, 2)
                    .output(VOCAB),
            )
            .locked_dropout(true),
            ids(1).with_lengths(vec![4, 2, 3]),
        ),
        (
            "gru, bidirectional, tied, every regulariser, per entry",
            everything(
                RnnConfig::gru(VOCAB, 3)
                    .bidirectional(true)
                    .embedding(VOCAB, 6),
            )
            .output(VOCAB)
            .tie_weights(true),
            ids(2).with_lengths(vec![4, 4, 1]),
        ),
        (
            "elman, 2 layers, dense input, locked input and weight dropout",
            RnnConfig::rnn(4, 3)
                .layers(2)
                .input_dropout(0.3)
                .weight_dropout(0.3)
                .dropout(0.2)
                .locked_dropout(true)
                .output(VOCAB),
            dense(4, 3, 4, 3).with_lengths(vec![4, 3, 2]),
        ),
    ];
    for (seed, (name, config, input)) in cases.into_iter().enumerate() {
        let rnn = Rnn::new(B::new(), config, &mut rng(seed as u64)).unwrap();
        let targets = random_ids(12, VOCAB, &mut rng(40 + seed as u64));
        let report = check_fixed_masks(&rnn, &input, &targets, 70 + seed as u64);
        assert_passes(name, &report);
    }
}

#[test]
fn bad_probabilities_are_errors_naming_the_option() {
    let base = || RnnConfig::lstm(VOCAB, 4).embedding(VOCAB, 4).output(VOCAB);
    type Set = fn(RnnConfig, f64) -> RnnConfig;
    let options: [(&str, Set); 3] = [
        ("embedding dropout", RnnConfig::embedding_dropout),
        ("input dropout", RnnConfig::input_dropout),
        ("weight dropout", RnnConfig::weight_dropout),
    ];
    for (what, set) in options {
        for p in [-0.1, 1.0, 1.5, f64::NAN, f64::INFINITY] {
            let err = Rnn::new(B::new(), set(base(), p), &mut rng(0)).unwrap_err();
            let text = err.to_string();
            assert!(matches!(err, Error::Config { .. }), "{err:?}");
            assert!(text.contains(what) && text.contains("[0, 1)"), "{text}");
        }
        assert!(Rnn::new(B::new(), set(base(), 0.999), &mut rng(0)).is_ok());
    }
    let err = Rnn::new(
        B::new(),
        RnnConfig::lstm(3, 4).embedding_dropout(0.1),
        &mut rng(0),
    );
    assert!(err.unwrap_err().to_string().contains("needs an embedding"));
    // Input dropout on ids without an embedding: nothing to drop, in training mode only.
    let rnn = Rnn::new(
        B::new(),
        RnnConfig::gru(VOCAB, 4).input_dropout(0.2),
        &mut rng(0),
    )
    .unwrap();
    let input = Input::ids(vec![0, 1, 2, 3], 2);
    assert!(rnn.forward(&input, None).is_ok());
    let err = rnn.forward_train(&input, None, &mut rng(1)).unwrap_err();
    assert!(
        err.to_string()
            .contains("input dropout 0.2 needs dense input or an embedding")
    );
}

#[test]
fn the_regularisers_are_saved_and_restored_with_the_model() {
    use recurrent::optim::Optimizer;
    use recurrent::{Checkpoint, Progress, Sgd};
    let config = everything(RnnConfig::gru(VOCAB, 4).layers(2).embedding(VOCAB, 4))
        .output(VOCAB)
        .locked_dropout(true);
    let rnn = Rnn::new(B::new(), config.clone(), &mut rng(0)).unwrap();
    let dict = rnn.state_dict();
    assert_eq!(RnnConfig::from_state_dict(&dict).unwrap(), config);
    let sgd = Sgd::for_model(&rnn, 0.1).unwrap();
    assert_eq!(sgd.step_count(), 0);
    let saved = Checkpoint::new(rnn, &sgd, Progress::new(1))
        .to_state_dict()
        .unwrap();
    let back = Checkpoint::from_state_dict(B::new(), &saved).unwrap();
    assert_eq!(back.rnn.config(), &config);
    // A model without them writes none of their keys.
    let plain = Rnn::new(B::new(), RnnConfig::gru(3, 4), &mut rng(0)).unwrap();
    let meta = plain.state_dict();
    let keys = [
        "embedding_dropout",
        "input_dropout",
        "weight_dropout",
        "locked_dropout",
    ];
    assert!(keys.iter().all(|k| !meta.metadata().contains_key(*k)));
    let mut bad = dict.clone();
    bad.set_metadata("locked_dropout", "maybe");
    let err = RnnConfig::from_state_dict(&bad).unwrap_err();
    assert!(matches!(err, Error::Format { .. }), "{err:?}");
    let mut bad = dict;
    bad.set_metadata("weight_dropout", "half");
    let err = RnnConfig::from_state_dict(&bad).unwrap_err();
    assert!(err.to_string().contains("weight_dropout"), "{err}");
}
