//! Gradient accumulation: `k` windows of `b` sequences, each forward and backward on its own,
//! their gradients summed with `Gradients::accumulate` (and scaled with `Gradients::scale`),
//! against one forward and backward of the `k * b` sequences together, in f64:
//!
//! - every parameter gradient within [`TOLERANCE`] of the big batch's, relative to the largest
//!   entry of that gradient (the worst is printed): for a summed loss, for the mean of equal
//!   windows (scaled by `1 / k`), and for a masked mean over variable lengths (summed losses
//!   scaled by `1 / N`);
//! - an Adam and an SGD step after accumulating and clipping gives the big batch's parameters,
//!   and clipping the windows before summing does not (the test can tell the two rules apart);
//! - truncated BPTT: one `Tbptt` per group of streams, accumulated, against one over all the
//!   streams, over consecutive windows with context (`k2 > k1`);
//! - gradients of another model are refused, and nothing is added.

mod common;

use common::{F64, rng};
use rand::RngExt;
use recurrent::Tbptt;
use recurrent::prelude::*;

/// The sums run in another order than the big batch's products: a few ulps apart.
const TOLERANCE: f64 = 1e-12;

const STEPS: usize = 4;
const VOCAB: usize = 5;

/// The model under test: two LSTM layers over token ids with an output layer.
fn model() -> Rnn<F64> {
    let config = RnnConfig::lstm(VOCAB, 6).layers(2).output(VOCAB);
    Rnn::new(F64::default(), config, &mut rng(3)).unwrap()
}

/// `STEPS * batch` random ids (and as many targets), time-major.
fn ids(batch: usize, seed: u64) -> Vec<usize> {
    let mut r = rng(seed);
    (0..STEPS * batch)
        .map(|_| r.random_range(0..VOCAB))
        .collect()
}

/// Sequences `first .. first + b` of a time-major batch of `big` sequences.
fn columns<T: Copy>(values: &[T], big: usize, first: usize, b: usize) -> Vec<T> {
    values
        .chunks(big)
        .flat_map(|row| row[first..first + b].iter().copied())
        .collect()
}

/// The worst difference of `got`'s parameter gradients from `want`'s, each relative to the
/// largest entry of `want`'s gradient of that parameter.
fn worst(got: &Gradients<F64>, want: &Gradients<F64>) -> f64 {
    let backend = F64::default();
    let mut worst: f64 = 0.0;
    for ((name, g), (_, w)) in got.named().into_iter().zip(want.named()) {
        let (g, w) = (backend.to_vec(g), backend.to_vec(w));
        let scale = w.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{name}: a zero gradient checks nothing");
        for (a, b) in g.iter().zip(&w) {
            worst = worst.max((a - b).abs() / scale);
        }
    }
    worst
}

/// The gradients of `loss` over a batch of `batch` sequences with `ids`, `targets` and
/// optional lengths (then the loss counts the real steps only).
fn gradients(
    rnn: &Rnn<F64>,
    ids: Vec<usize>,
    targets: &[usize],
    lengths: Option<Vec<usize>>,
    loss: CrossEntropy,
) -> Gradients<F64> {
    let batch = ids.len() / STEPS;
    let mut input = Input::ids(ids, batch);
    if let Some(lengths) = lengths {
        input = input.with_lengths(lengths);
    }
    let trace = rnn.forward(&input, None).unwrap();
    let (_, d_logits) = loss
        .forward_masked(rnn.backend(), trace.logits(), targets, trace.mask())
        .unwrap();
    rnn.backward(&trace, &d_logits).unwrap()
}

/// The accumulated gradients of `k` windows of `b` sequences of the big batch, unscaled.
fn accumulated(
    rnn: &Rnn<F64>,
    (inputs, targets, lengths): (&[usize], &[usize], Option<&[usize]>),
    (k, b): (usize, usize),
    loss: CrossEntropy,
) -> Gradients<F64> {
    let mut total: Option<Gradients<F64>> = None;
    for window in 0..k {
        let window_ids = columns(inputs, k * b, window * b, b);
        let window_targets = columns(targets, k * b, window * b, b);
        let window_lengths = lengths.map(|l| l[window * b..][..b].to_vec());
        let grads = gradients(
            rnn,
            window_ids,
            &window_targets,
            window_lengths,
            loss.clone(),
        );
        match &mut total {
            Some(total) => total.accumulate(&grads).unwrap(),
            None => total = Some(grads),
        }
    }
    total.expect("k >= 1")
}

#[test]
fn accumulated_windows_equal_the_big_batch() {
    let rnn = model();
    let (k, b) = (3, 2);
    let (inputs, targets) = (ids(k * b, 10), ids(k * b, 11));
    let data = (inputs.as_slice(), targets.as_slice(), None);

    let sum = accumulated(&rnn, data, (k, b), CrossEntropy::sum());
    let big_sum = gradients(&rnn, inputs.clone(), &targets, None, CrossEntropy::sum());
    let w = worst(&sum, &big_sum);
    println!("sum over {k} windows of {b}: worst relative difference {w:.2e}");
    assert!(w <= TOLERANCE);

    let mut mean = accumulated(&rnn, data, (k, b), CrossEntropy::mean());
    mean.scale(1.0 / k as f64).unwrap();
    let big_mean = gradients(&rnn, inputs.clone(), &targets, None, CrossEntropy::mean());
    let w = worst(&mean, &big_mean);
    println!("mean of {k} equal windows, scaled by 1/k: worst relative difference {w:.2e}");
    assert!(w <= TOLERANCE);
    // Unscaled, the sum of means is k times the mean: the scaling is what makes them agree.
    let unscaled = accumulated(&rnn, data, (k, b), CrossEntropy::mean());
    assert!(worst(&unscaled, &big_mean) > 1.0);
}

#[test]
fn a_masked_mean_over_variable_lengths_is_the_sum_scaled_by_the_count() {
    let rnn = model();
    let (k, b) = (2, 3);
    let (inputs, targets) = (ids(k * b, 20), ids(k * b, 21));
    // Windows count different numbers of steps: 4 + 1 + 3 and 2 + 4 + 4.
    let lengths = vec![4, 1, 3, 2, 4, 4];
    let counted: usize = lengths.iter().sum();
    let data = (
        inputs.as_slice(),
        targets.as_slice(),
        Some(lengths.as_slice()),
    );
    let mut grads = accumulated(&rnn, data, (k, b), CrossEntropy::sum());
    grads.scale(1.0 / counted as f64).unwrap();
    let big = gradients(&rnn, inputs, &targets, Some(lengths), CrossEntropy::mean());
    let w = worst(&grads, &big);
    println!("masked mean over {counted} steps, summed and scaled: worst {w:.2e}");
    assert!(w <= TOLERANCE);
}

/// Every parameter of `a` and `b`, the worst difference relative to the largest entry.
fn parameter_difference(a: &Rnn<F64>, b: &Rnn<F64>) -> f64 {
    let backend = F64::default();
    let mut worst: f64 = 0.0;
    for ((name, x), (_, y)) in a.parameters().into_iter().zip(b.parameters()) {
        let (x, y) = (backend.to_vec(x), backend.to_vec(y));
        let scale = y.iter().fold(0.0f64, |m, v| m.max(v.abs()));
        assert!(scale > 0.0, "{name}");
        for (p, q) in x.iter().zip(&y) {
            worst = worst.max((p - q).abs() / scale);
        }
    }
    worst
}

#[test]
fn a_step_after_accumulating_and_clipping_is_the_big_batchs_step() {
    let start = model();
    let (k, b) = (4, 2);
    let (inputs, targets) = (ids(k * b, 30), ids(k * b, 31));
    let data = (inputs.as_slice(), targets.as_slice(), None);
    let mut acc = accumulated(&start, data, (k, b), CrossEntropy::mean());
    acc.scale(0.25).unwrap();
    let mut big = gradients(&start, inputs.clone(), &targets, None, CrossEntropy::mean());
    // A max norm below the gradient's, so that clipping acts.
    let max_norm = 0.5 * clip::norm(big.backend(), &big);
    let norm_acc = clip::global_norm(&mut acc, max_norm).unwrap();
    let norm_big = clip::global_norm(&mut big, max_norm).unwrap();
    assert!((norm_acc - norm_big).abs() <= TOLERANCE * norm_big);
    for optimizer in ["adam", "sgd"] {
        let step = |grads: &Gradients<F64>| {
            let mut rnn = start.clone();
            let mut opt: Box<dyn Optimizer<F64>> = match optimizer {
                "adam" => Box::new(Adam::for_model(&rnn, 1e-2).unwrap()),
                _ => Box::new(Sgd::for_model(&rnn, 0.5).unwrap().momentum(0.9).unwrap()),
            };
            opt.step(&mut rnn, grads).unwrap();
            rnn
        };
        let (after_acc, after_big) = (step(&acc), step(&big));
        let w = parameter_difference(&after_acc, &after_big);
        println!("{optimizer} step after accumulating and clipping: worst {w:.2e}");
        assert!(w <= TOLERANCE);
        assert!(
            parameter_difference(&after_big, &start) > 1e-4,
            "the step moved"
        );
    }
    // Clipping each window before the sum is another rule: far from the big batch's.
    let mut clipped_first: Option<Gradients<F64>> = None;
    for window in 0..k {
        let window_ids = columns(&inputs, k * b, window * b, b);
        let window_targets = columns(&targets, k * b, window * b, b);
        let mut g = gradients(
            &start,
            window_ids,
            &window_targets,
            None,
            CrossEntropy::mean(),
        );
        clip::global_norm(&mut g, max_norm).unwrap();
        match &mut clipped_first {
            Some(total) => total.accumulate(&g).unwrap(),
            None => clipped_first = Some(g),
        }
    }
    let mut clipped_first = clipped_first.unwrap();
    clipped_first.scale(0.25).unwrap();
    assert!(worst(&clipped_first, &big) > 1e-3);
}

#[test]
fn truncated_bptt_accumulates_over_groups_of_streams() {
    let rnn = model();
    let (k1, k2, groups, b) = (2, 5, 2, 2);
    let streams = groups * b;
    let mut whole = Tbptt::new(k1, k2, streams).unwrap();
    let mut parts: Vec<Tbptt<F64>> = (0..groups)
        .map(|_| Tbptt::new(k1, k2, b).unwrap())
        .collect();
    let mut r = rng(40);
    let mut worst_seen: f64 = 0.0;
    for window in 0..5 {
        let chunk: Vec<usize> = (0..k1 * streams)
            .map(|_| r.random_range(0..VOCAB))
            .collect();
        let targets: Vec<usize> = (0..k1 * streams)
            .map(|_| r.random_range(0..VOCAB))
            .collect();
        let big = whole
            .step(&rnn, &chunk, &targets, CrossEntropy::sum())
            .unwrap();
        let mut total: Option<Gradients<F64>> = None;
        for (group, tbptt) in parts.iter_mut().enumerate() {
            let ids = columns(&chunk, streams, group * b, b);
            let t = columns(&targets, streams, group * b, b);
            let out = tbptt.step(&rnn, &ids, &t, CrossEntropy::sum()).unwrap();
            match &mut total {
                Some(total) => total.accumulate(&out.grads).unwrap(),
                None => total = Some(out.grads),
            }
        }
        let w = worst(&total.unwrap(), &big.grads);
        assert!(w <= TOLERANCE, "window {window}: {w:.2e}");
        worst_seen = worst_seen.max(w);
    }
    println!("Tbptt(2, 5), 2 groups of 2 streams, 5 windows: worst {worst_seen:.2e}");
}

#[test]
fn gradients_of_another_model_are_refused() {
    let rnn = model();
    let grads = gradients(&rnn, ids(2, 50), &ids(2, 51), None, CrossEntropy::sum());
    let other = Rnn::new(
        F64::default(),
        RnnConfig::lstm(VOCAB, 6).output(VOCAB),
        &mut rng(4),
    )
    .unwrap();
    let other_grads = gradients(&other, ids(2, 50), &ids(2, 51), None, CrossEntropy::sum());
    let mut sum = grads.clone();
    let message = sum.accumulate(&other_grads).unwrap_err().to_string();
    assert!(
        message.starts_with(
            "Gradients::accumulate: the parameters of the gradients added: expected shape \
             [\"weight_ih_l0\", \"weight_hh_l0\", \"bias_ih_l0\", \"bias_hh_l0\", \"weight_ih_l1\""
        ),
        "{message}"
    );
    let wider = Rnn::new(
        F64::default(),
        RnnConfig::lstm(VOCAB, 7).layers(2).output(VOCAB),
        &mut rng(4),
    )
    .unwrap();
    let wider_grads = gradients(&wider, ids(2, 50), &ids(2, 51), None, CrossEntropy::sum());
    let message = sum.accumulate(&wider_grads).unwrap_err().to_string();
    assert_eq!(
        message,
        "Gradients::accumulate: the gradient of weight_ih_l0: expected shape (24, 5), given (28, 5)"
    );
    assert_eq!(worst(&sum, &grads), 0.0, "nothing was added");
    let message = sum.scale(f64::NAN).unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid configuration: Gradients::scale: the factor must be finite, given NaN"
    );
    assert_eq!(worst(&sum, &grads), 0.0, "nothing was scaled");
}
