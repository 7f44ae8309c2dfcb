//! Properties of the whole model: id input is the one-hot product, state carries across
//! windows, the two reductions agree, f32 follows f64, and parameters are PyTorch-shaped.

mod common;

use approx::assert_relative_eq;
use common::{F64, model, random_ids, random_matrix, rng};
use recurrent::{Backend, CrossEntropy, Input, NaiveCpu, Rnn, RnnConfig};

fn one_hot(backend: &F64, ids: &[usize], vocab: usize) -> <F64 as Backend>::Matrix {
    let mut data = vec![0.0; ids.len() * vocab];
    for (r, &id) in ids.iter().enumerate() {
        data[r * vocab + id] = 1.0;
    }
    backend.from_vec(ids.len(), vocab, data).unwrap()
}

#[test]
fn token_ids_give_what_the_one_hot_product_gives() {
    let (vocab, batch) = (6, 2);
    let rnn = model(RnnConfig::rnn(vocab, 5).layers(2).output(vocab), 3);
    let backend = F64::new();
    let mut r = rng(4);
    let ids = random_ids(7 * batch, vocab, &mut r);
    let targets = random_ids(7 * batch, vocab, &mut r);
    let by_ids = Input::ids(ids.clone(), batch);
    let by_rows = Input::dense(one_hot(&backend, &ids, vocab), batch);
    let mut results = Vec::new();
    for input in [&by_ids, &by_rows] {
        let trace = rnn.forward(input, None).unwrap();
        let (loss, d) = CrossEntropy::sum()
            .forward(&backend, trace.logits(), &targets)
            .unwrap();
        let grads = rnn.backward(&trace, &d).unwrap();
        results.push((loss, trace.logits().clone(), grads));
    }
    let ((l1, y1, g1), (l2, y2, g2)) = (&results[0], &results[1]);
    assert_relative_eq!(l1, l2, max_relative = 1e-14);
    assert_relative_eq!(y1.as_slice(), y2.as_slice(), max_relative = 1e-13);
    for ((name, a), (_, b)) in g1.named().into_iter().zip(g2.named()) {
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert_relative_eq!(x, y, epsilon = 1e-14, max_relative = 1e-12);
        }
        assert_eq!(a.shape(), b.shape(), "{name}");
    }
    assert!(g1.input().is_none(), "ids have no input gradient");
    assert_eq!(g2.input().unwrap().shape(), (7 * batch, vocab));
}

#[test]
fn state_carried_across_windows_continues_the_sequence() {
    let (vocab, batch, steps) = (5, 3, 8);
    let rnn = model(RnnConfig::rnn(vocab, 4).layers(2).output(vocab), 5);
    let ids = random_ids(steps * batch, vocab, &mut rng(6));
    let whole = rnn.forward(&Input::ids(ids.clone(), batch), None).unwrap();
    let half = steps / 2 * batch;
    let first = rnn
        .forward(&Input::ids(ids[..half].to_vec(), batch), None)
        .unwrap();
    let state = first.final_state();
    let second = rnn
        .forward(&Input::ids(ids[half..].to_vec(), batch), Some(&state))
        .unwrap();
    let mut joined = first.logits().as_slice().to_vec();
    joined.extend_from_slice(second.logits().as_slice());
    assert_eq!(joined, whole.logits().as_slice(), "bit for bit");
    let (a, b) = (second.final_state(), whole.final_state());
    for (x, y) in a.layers().iter().zip(b.layers()) {
        assert_eq!(x.h, y.h);
    }
}

#[test]
fn mean_reduction_is_the_sum_divided_by_the_positions() {
    let (vocab, batch, steps) = (5, 2, 3);
    let rnn = model(RnnConfig::rnn(vocab, 4).output(vocab), 7);
    let mut r = rng(8);
    let input = Input::ids(random_ids(steps * batch, vocab, &mut r), batch);
    let targets = random_ids(steps * batch, vocab, &mut r);
    let trace = rnn.forward(&input, None).unwrap();
    let backend = rnn.backend();
    let (sum, d_sum) = CrossEntropy::sum()
        .forward(backend, trace.logits(), &targets)
        .unwrap();
    let (mean, d_mean) = CrossEntropy::mean()
        .forward(backend, trace.logits(), &targets)
        .unwrap();
    let n = (steps * batch) as f64;
    assert_relative_eq!(mean, sum / n, max_relative = 1e-15);
    let g_sum = rnn.backward(&trace, &d_sum).unwrap();
    let g_mean = rnn.backward(&trace, &d_mean).unwrap();
    for ((_, a), (_, b)) in g_sum.named().into_iter().zip(g_mean.named()) {
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert_relative_eq!(x / n, *y, epsilon = 1e-16, max_relative = 1e-12);
        }
    }
}

#[test]
fn f32_follows_f64_on_the_same_weights() {
    let (vocab, batch, steps) = (5, 2, 6);
    let wide = model(RnnConfig::rnn(vocab, 4).layers(2).output(vocab), 9);
    let mut narrow = Rnn::new(NaiveCpu::<f32>::new(), wide.config().clone(), &mut rng(9)).unwrap();
    for (name, m) in wide.parameters() {
        let data = m.as_slice().iter().map(|&v| v as f32).collect();
        narrow.set_parameter(&name, data).unwrap();
    }
    let mut r = rng(10);
    let ids = random_ids(steps * batch, vocab, &mut r);
    let targets = random_ids(steps * batch, vocab, &mut r);
    let run64 = wide.forward(&Input::ids(ids.clone(), batch), None).unwrap();
    let run32 = narrow.forward(&Input::ids(ids, batch), None).unwrap();
    let (l64, d64) = CrossEntropy::sum()
        .forward(wide.backend(), run64.logits(), &targets)
        .unwrap();
    let (l32, d32) = CrossEntropy::sum()
        .forward(narrow.backend(), run32.logits(), &targets)
        .unwrap();
    assert_relative_eq!(l32 as f64, l64, max_relative = 1e-5);
    let g64 = wide.backward(&run64, &d64).unwrap();
    let g32 = narrow.backward(&run32, &d32).unwrap();
    for ((name, a), (_, b)) in g64.named().into_iter().zip(g32.named()) {
        for (x, y) in a.as_slice().iter().zip(b.as_slice()) {
            assert!((x - *y as f64).abs() < 1e-5, "{name}: {x} vs {y}");
        }
    }
}

#[test]
fn parameters_have_pytorch_names_shapes_and_init_range() {
    let (input, hidden, vocab) = (7, 16, 9);
    let rnn = model(RnnConfig::rnn(input, hidden).layers(2).output(vocab), 11);
    let backend = rnn.backend();
    let got: Vec<(String, (usize, usize))> = rnn
        .parameters()
        .into_iter()
        .map(|(n, m)| (n, backend.shape(m)))
        .collect();
    let want = [
        ("weight_ih_l0", (hidden, input)),
        ("weight_hh_l0", (hidden, hidden)),
        ("bias_ih_l0", (1, hidden)),
        ("bias_hh_l0", (1, hidden)),
        ("weight_ih_l1", (hidden, hidden)),
        ("weight_hh_l1", (hidden, hidden)),
        ("bias_ih_l1", (1, hidden)),
        ("bias_hh_l1", (1, hidden)),
        ("out.weight", (vocab, hidden)),
        ("out.bias", (1, vocab)),
    ];
    let want: Vec<(String, (usize, usize))> =
        want.iter().map(|(n, s)| (n.to_string(), *s)).collect();
    assert_eq!(got, want);
    assert_eq!(
        rnn.config().parameter_shapes().unwrap(),
        want,
        "known before allocation"
    );
    let bound = 1.0 / (hidden as f64).sqrt();
    let all: Vec<f64> = rnn
        .parameters()
        .iter()
        .flat_map(|(_, m)| m.as_slice().to_vec())
        .collect();
    assert!(all.iter().all(|v| v.abs() <= bound));
    // Uniform on [-k, k] has mean 0 and variance k^2 / 3: a loose check of the distribution.
    let n = all.len() as f64;
    let mean = all.iter().sum::<f64>() / n;
    let var = all.iter().map(|v| v * v).sum::<f64>() / n;
    assert!(mean.abs() < 0.05 * bound, "mean {mean}");
    assert_relative_eq!(var, bound * bound / 3.0, max_relative = 0.1);
    // Same seed, same model; another seed, another model.
    let again = model(RnnConfig::rnn(input, hidden).layers(2).output(vocab), 11);
    let other = model(RnnConfig::rnn(input, hidden).layers(2).output(vocab), 12);
    let first = |m: &Rnn<F64>| m.parameters()[0].1.as_slice().to_vec();
    assert_eq!(first(&rnn), first(&again));
    assert_ne!(first(&rnn), first(&other));
}

#[test]
fn without_an_output_layer_the_output_is_the_top_hidden_state() {
    let rnn = model(RnnConfig::rnn(3, 4).layers(2), 13);
    let backend = F64::new();
    let x = random_matrix(&backend, 6, 3, 1.0, &mut rng(14));
    let trace = rnn.forward(&Input::dense(x, 2), None).unwrap();
    assert_eq!(trace.logits(), trace.hidden());
    assert_eq!(trace.logits().shape(), (6, 4));
    assert_eq!((trace.steps(), trace.batch()), (3, 2));
}

/// `grads`' entries `names` against finite differences of `loss_of` around `rnn`'s weights.
fn assert_gradients_check(
    rnn: &Rnn<F64>,
    grads: &recurrent::Gradients<F64>,
    names: &[&str],
    loss_of: impl Fn(&Rnn<F64>) -> recurrent::Result<f64>,
) {
    for &name in names {
        let point = rnn.backend().to_vec(rnn.parameter(name).unwrap());
        let analytic = rnn.backend().to_vec(grads.get(name).unwrap());
        let report = recurrent::gradcheck::check(
            name,
            &point,
            &analytic,
            |v| {
                let mut moved = rnn.clone();
                moved.set_parameter(name, v.to_vec())?;
                loss_of(&moved)
            },
            recurrent::gradcheck::Options::default(),
        )
        .unwrap();
        assert!(report.worst < 1e-6, "{report:?}");
    }
}

#[test]
fn dropout_is_seeded_and_off_at_inference() {
    let (vocab, batch, steps) = (5, 4, 6);
    let config = RnnConfig::lstm(vocab, 16)
        .layers(3)
        .dropout(0.5)
        .output(vocab);
    let rnn = model(config, 15);
    let input = Input::ids(random_ids(steps * batch, vocab, &mut rng(16)), batch);
    let plain = rnn.forward(&input, None).unwrap();
    let a = rnn.forward_train(&input, None, &mut rng(1)).unwrap();
    let b = rnn.forward_train(&input, None, &mut rng(1)).unwrap();
    let c = rnn.forward_train(&input, None, &mut rng(2)).unwrap();
    assert_eq!(a.logits(), b.logits(), "the same seed gives the same masks");
    assert_ne!(a.logits(), c.logits());
    assert_ne!(a.logits(), plain.logits());
    assert_eq!(rnn.forward(&input, None).unwrap().logits(), plain.logits());
    // Without dropout in the configuration, training mode is inference mode.
    let no_dropout = model(RnnConfig::lstm(vocab, 16).layers(3).output(vocab), 15);
    let trained = no_dropout.forward_train(&input, None, &mut rng(3)).unwrap();
    assert_eq!(
        trained.logits(),
        no_dropout.forward(&input, None).unwrap().logits()
    );
}

#[test]
fn dropout_gradients_match_finite_differences_under_the_same_mask() {
    let (vocab, batch, steps) = (4, 2, 3);
    let config = RnnConfig::gru(vocab, 5)
        .layers(2)
        .bidirectional(true)
        .dropout(0.3)
        .output(vocab);
    let rnn = model(config, 17);
    let mut r = rng(18);
    let input = Input::ids(random_ids(steps * batch, vocab, &mut r), batch);
    let targets = random_ids(steps * batch, vocab, &mut r);
    // Re-seeding before every forward pass draws the same masks, so the loss is a smooth
    // function of the weights that finite differences can follow.
    let loss_of = |m: &Rnn<F64>| -> recurrent::Result<f64> {
        let trace = m.forward_train(&input, None, &mut rng(5))?;
        Ok(CrossEntropy::sum()
            .forward(m.backend(), trace.logits(), &targets)?
            .0)
    };
    let trace = rnn.forward_train(&input, None, &mut rng(5)).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &targets)
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    assert_gradients_check(
        &rnn,
        &grads,
        &["weight_ih_l0", "weight_hh_l0_reverse", "bias_ih_l1"],
        loss_of,
    );
}

#[test]
fn output_dropout_drops_before_the_output_layer_and_its_gradients_check() {
    let (vocab, batch, steps) = (4, 3, 4);
    let config = RnnConfig::lstm(vocab, 6)
        .layers(2)
        .dropout(0.2)
        .output_dropout(0.5)
        .output(vocab);
    let rnn = model(config, 21);
    let mut r = rng(22);
    let input = Input::ids(random_ids(steps * batch, vocab, &mut r), batch);
    let targets = random_ids(steps * batch, vocab, &mut r);
    let trace = rnn.forward_train(&input, None, &mut rng(6)).unwrap();
    let backend = rnn.backend();
    // Output dropout alone leaves the states as inference has them; the logits differ.
    let only_output = model(
        RnnConfig::lstm(vocab, 6)
            .layers(2)
            .output_dropout(0.5)
            .output(vocab),
        21,
    );
    let t = only_output
        .forward_train(&input, None, &mut rng(6))
        .unwrap();
    let p = only_output.forward(&input, None).unwrap();
    assert_eq!(t.hidden(), p.hidden(), "the states are not dropped");
    assert_ne!(t.logits(), p.logits(), "what the output layer reads is");
    // Under the same mask, the loss is smooth in the weights: finite differences follow it.
    let loss_of = |m: &Rnn<F64>| -> recurrent::Result<f64> {
        let trace = m.forward_train(&input, None, &mut rng(6))?;
        Ok(CrossEntropy::sum()
            .forward(m.backend(), trace.logits(), &targets)?
            .0)
    };
    let (_, d) = CrossEntropy::sum()
        .forward(backend, trace.logits(), &targets)
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    assert_gradients_check(
        &rnn,
        &grads,
        &["out.weight", "weight_hh_l1", "weight_ih_l0"],
        loss_of,
    );
}

#[test]
fn output_dropout_without_an_output_layer_drops_the_output_and_its_gradients_check() {
    let (input_size, batch, steps) = (3, 2, 4);
    let config = RnnConfig::gru(input_size, 4)
        .bidirectional(true)
        .output_dropout(0.5);
    let rnn = model(config, 23);
    let backend = rnn.backend();
    let mut r = rng(24);
    let x = common::random_matrix(backend, steps * batch, input_size, 1.0, &mut r);
    let input = Input::dense(x, batch);
    let weights = common::random_matrix(backend, steps * batch, 8, 1.0, &mut r);
    let trace = rnn.forward_train(&input, None, &mut rng(7)).unwrap();
    let (logits, hidden) = (
        backend.to_vec(trace.logits()),
        backend.to_vec(trace.hidden()),
    );
    // Each output is dropped (0) or kept and scaled by 2, both directions alike.
    let dropped = logits.iter().filter(|v| **v == 0.0).count();
    assert!(
        dropped > 0 && dropped < logits.len(),
        "{dropped} of {}",
        logits.len()
    );
    for (l, h) in logits.iter().zip(&hidden) {
        assert!(*l == 0.0 || *l == 2.0 * h, "{l} from {h}");
    }
    // The loss sum(weights * output) under the same mask, against finite differences.
    let loss_of = |m: &Rnn<F64>| -> recurrent::Result<f64> {
        let trace = m.forward_train(&input, None, &mut rng(7))?;
        let out = m.backend().to_vec(trace.logits());
        Ok(out
            .iter()
            .zip(backend.to_vec(&weights))
            .map(|(a, b)| a * b)
            .sum())
    };
    let grads = rnn.backward(&trace, &weights).unwrap();
    assert_gradients_check(
        &rnn,
        &grads,
        &["weight_hh_l0", "weight_ih_l0_reverse", "bias_hh_l0_reverse"],
        loss_of,
    );
}

#[test]
fn parameter_shapes_are_known_before_allocation_for_every_layout() {
    let configs = [
        RnnConfig::lstm(7, 3)
            .layers(3)
            .bidirectional(true)
            .output(4),
        RnnConfig::gru(2, 5)
            .bias(false)
            .output(6)
            .output_bias(false),
        RnnConfig::rnn(1, 1),
    ];
    for (seed, config) in configs.into_iter().enumerate() {
        let rnn = model(config.clone(), seed as u64);
        let allocated: Vec<(String, (usize, usize))> = rnn
            .parameters()
            .into_iter()
            .map(|(n, m)| (n, rnn.backend().shape(m)))
            .collect();
        assert_eq!(config.parameter_shapes().unwrap(), allocated, "{config:?}");
    }
}
