//! `Rnn::step` on a `Stream` against whole-sequence `forward`, weight changes between steps,
//! every error path, and sampling / generation.

mod common;

use common::{random_ids, random_matrix, rng};
use rand::SeedableRng;
use recurrent::Kernels;
use recurrent::prelude::*;
use recurrent::sample::{Sampler, generate};
use recurrent::{Error, Scalar, Vocab};

type F64 = NaiveCpu<f64>;

fn configs() -> Vec<RnnConfig> {
    vec![
        RnnConfig::rnn(5, 4).output(5),
        RnnConfig::rnn(5, 4).layers(2),
        RnnConfig::lstm(5, 4).layers(2).output(5),
        RnnConfig::gru(5, 4).layers(2).output(5),
    ]
}

/// Row `t` block (`B` rows) of `m`, as a flat vector.
fn step_rows<B: Kernels>(backend: &B, m: &B::Matrix, t: usize, batch: usize) -> Vec<B::Scalar> {
    let all = backend.to_vec(m);
    let width = all.len() / backend.shape(m).0;
    all[t * batch * width..(t + 1) * batch * width].to_vec()
}

/// Step by step equals `forward` over the whole sequence, for ids and dense input, from zero and
/// from a given state. On `NaiveCpu` the sums run in the same order: bit for bit.
fn steps_equal_forward<B: Kernels>(backend: B, tolerance: f64) {
    let (steps, batch) = (6, 3);
    for config in configs() {
        let rnn = Rnn::new(backend.clone(), config.clone(), &mut rng(1)).unwrap();
        let mut r = rng(2);
        let ids = random_ids(steps * batch, 5, &mut r);
        let x = random_matrix(&backend, steps * batch, 5, 1.0, &mut r);
        let start = rnn
            .forward(&Input::ids(ids[..batch].to_vec(), batch), None)
            .unwrap();
        let start = start.final_state();
        for initial in [None, Some(&start)] {
            let by_ids = rnn
                .forward(&Input::ids(ids.clone(), batch), initial)
                .unwrap();
            let dense = rnn
                .forward(&Input::dense(x.clone(), batch), initial)
                .unwrap();
            let mut a = match initial {
                None => rnn.stream(batch).unwrap(),
                Some(state) => rnn.stream_from(state).unwrap(),
            };
            let mut b = a.clone();
            for t in 0..steps {
                let got = rnn.step(&mut a, &ids[t * batch..(t + 1) * batch]).unwrap();
                let want = step_rows(&backend, by_ids.logits(), t, batch);
                assert_close(&backend.to_vec(got), &want, tolerance, &config, t);
                let rows = step_rows(&backend, &x, t, batch);
                let x_t = backend.from_vec(batch, 5, rows).unwrap();
                let got = rnn.step_dense(&mut b, &x_t).unwrap();
                let want = step_rows(&backend, dense.logits(), t, batch);
                assert_close(&backend.to_vec(got), &want, tolerance, &config, t);
            }
            let (s, f) = (a.state(), by_ids.final_state());
            for (got, want) in s.layers().iter().zip(f.layers()) {
                let (got, want) = (backend.to_vec(&got.h), backend.to_vec(&want.h));
                assert_close(&got, &want, tolerance, &config, steps);
            }
        }
    }
}

fn assert_close<T: Scalar>(got: &[T], want: &[T], tolerance: f64, config: &RnnConfig, t: usize) {
    assert_eq!(got.len(), want.len());
    for (g, w) in got.iter().zip(want) {
        let (g, w) = (g.to_f64().unwrap(), w.to_f64().unwrap());
        assert!(
            (g - w).abs() <= tolerance * (1.0 + w.abs()),
            "{config:?} step {t}: {g} against {w}"
        );
    }
}

#[test]
fn steps_equal_forward_on_naive_bit_for_bit() {
    steps_equal_forward(F64::new(), 0.0);
}

#[test]
fn steps_equal_forward_on_cpu() {
    steps_equal_forward(Cpu::<f64>::new(), 1e-13);
    steps_equal_forward(Cpu::<f32>::with_threads(1), 1e-5);
}

/// A weight change between steps reaches the next step: the stream prepares the weights again
/// (with the old ones, the logits would differ by far more than rounding).
#[test]
fn a_stream_follows_weight_changes() {
    let backend = Cpu::<f64>::with_threads(1);
    let config = RnnConfig::lstm(5, 4).layers(2).output(5);
    let mut rnn = Rnn::new(backend.clone(), config, &mut rng(1)).unwrap();
    let mut stream = rnn.stream(2).unwrap();
    rnn.step(&mut stream, &[1, 2]).unwrap();
    let check =
        |rnn: &Rnn<Cpu<f64>>, old: &Rnn<Cpu<f64>>, got: Vec<f64>, ids: Vec<usize>, before| {
            let fresh = rnn
                .forward(&Input::ids(ids.clone(), 2), Some(&before))
                .unwrap();
            let stale = old.forward(&Input::ids(ids, 2), Some(&before)).unwrap();
            let (fresh, stale) = (
                backend.to_vec(fresh.logits()),
                backend.to_vec(stale.logits()),
            );
            let config = rnn.config().clone();
            assert_close(&got, &fresh, 1e-13, &config, 0);
            let apart = got
                .iter()
                .zip(&stale)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f64::max);
            assert!(apart > 1e-6, "the step used the old weights");
        };
    // Changed by set_parameter...
    let (old, before) = (rnn.clone(), stream.state());
    rnn.set_parameter("weight_hh_l1", vec![0.25; 16 * 4])
        .unwrap();
    let got = backend.to_vec(rnn.step(&mut stream, &[3, 4]).unwrap());
    check(&rnn, &old, got, vec![3, 4], before);
    // ... and by an optimiser step.
    let (old, before) = (rnn.clone(), stream.state());
    let trace = rnn.forward(&Input::ids(vec![0, 1], 2), None).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &[2, 3])
        .unwrap();
    let grads = rnn.backward(&trace, &d).unwrap();
    Sgd::new(0.5).unwrap().step(&mut rnn, &grads).unwrap();
    let got = backend.to_vec(rnn.step(&mut stream, &[0, 0]).unwrap());
    check(&rnn, &old, got, vec![0, 0], before);
}

#[test]
fn reset_returns_to_the_zero_state() {
    let rnn = Rnn::new(F64::new(), RnnConfig::gru(5, 4).output(5), &mut rng(1)).unwrap();
    let mut stream = rnn.stream(1).unwrap();
    let first = rnn.backend().to_vec(rnn.step(&mut stream, &[2]).unwrap());
    rnn.step(&mut stream, &[3]).unwrap();
    stream.reset(rnn.backend());
    assert_eq!(
        rnn.backend().to_vec(rnn.step(&mut stream, &[2]).unwrap()),
        first
    );
}

fn assert_unchanged(rnn: &Rnn<F64>, stream: &Stream<F64>, before: &State<F64>) {
    for (a, b) in stream.state().layers().iter().zip(before.layers()) {
        assert_eq!(rnn.backend().to_vec(&a.h), rnn.backend().to_vec(&b.h));
    }
}

#[test]
fn bad_steps_are_errors_and_leave_the_stream_unchanged() {
    let config = RnnConfig::lstm(5, 4).layers(2).output(5);
    let rnn = Rnn::new(F64::new(), config, &mut rng(1)).unwrap();
    let mut stream = rnn.stream(2).unwrap();
    rnn.step(&mut stream, &[1, 2]).unwrap();
    let before = stream.state();

    let err = rnn.step(&mut stream, &[1]).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    let err = rnn.step(&mut stream, &[1, 5]).unwrap_err();
    assert!(matches!(err, Error::Index { value: 5, .. }), "{err}");
    let x = F64::new().zeros(2, 4);
    let err = rnn.step_dense(&mut stream, &x).unwrap_err();
    assert!(err.to_string().contains("(2, 5)"), "{err}");
    assert_unchanged(&rnn, &stream, &before);

    // A stream of another model's shape.
    let other = Rnn::new(F64::new(), RnnConfig::lstm(5, 3).output(5), &mut rng(1)).unwrap();
    let mut foreign = other.stream(2).unwrap();
    let err = rnn.step(&mut foreign, &[1, 2]).unwrap_err();
    assert!(err.to_string().contains("another shape"), "{err}");
    let err = rnn.stream_from(&other.zero_state(2)).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");

    assert!(matches!(rnn.stream(0), Err(Error::Empty { .. })));
    let bi = RnnConfig::gru(5, 4).bidirectional(true).output(5);
    let bi = Rnn::new(F64::new(), bi, &mut rng(1)).unwrap();
    let err = bi.stream(1).unwrap_err();
    assert!(err.to_string().contains("bidirectional"), "{err}");
}

#[test]
fn greedy_takes_the_largest_logit_and_the_lowest_id_among_equals() {
    let mut greedy = Sampler::greedy();
    let mut r = rng(0);
    assert_eq!(greedy.sample(&[0.1, 3.0, -1.0, 3.0], &mut r).unwrap(), 1);
    assert_eq!(greedy.sample(&[-5.0f32], &mut r).unwrap(), 0);
    // Top-1 is greedy at any temperature.
    let mut top1 = Sampler::new(10.0).unwrap().top_k(1).unwrap();
    assert_eq!(top1.sample(&[0.0, 2.0, 1.0, 2.0], &mut r).unwrap(), 1);
}

/// Frequencies of 60 000 seeded draws against `softmax(logits / T)`, within 0.01.
#[test]
fn draws_follow_the_tempered_softmax() {
    let logits = [0.0, 2f64.ln(), 3f64.ln(), f64::ln(0.5)];
    for (temperature, top_k) in [(1.0, None), (0.5, None), (2.0, None), (1.0, Some(2))] {
        let mut sampler = Sampler::new(temperature).unwrap();
        if let Some(k) = top_k {
            sampler = sampler.top_k(k).unwrap();
        }
        let kept = top_k.unwrap_or(4);
        let mut order: Vec<usize> = (0..4).collect();
        order.sort_by(|&a, &b| logits[b].total_cmp(&logits[a]));
        let mut weights = [0.0; 4];
        for &id in &order[..kept] {
            weights[id] = (logits[id] / temperature).exp();
        }
        let total: f64 = weights.iter().sum();
        let mut counts = [0usize; 4];
        let mut r = rand::rngs::StdRng::seed_from_u64(7);
        let draws = 60_000;
        for _ in 0..draws {
            counts[sampler.sample(&logits, &mut r).unwrap()] += 1;
        }
        for id in 0..4 {
            let (got, want) = (counts[id] as f64 / draws as f64, weights[id] / total);
            assert!(
                (got - want).abs() < 0.01,
                "T={temperature} k={top_k:?} id {id}: {got} against {want}"
            );
        }
    }
}

#[test]
fn bad_sampling_settings_and_logits_are_errors() {
    for t in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert!(matches!(Sampler::new(t), Err(Error::Config { .. })), "{t}");
    }
    assert!(matches!(
        Sampler::greedy().top_k(0),
        Err(Error::Config { .. })
    ));
    let mut s = Sampler::new(1.0).unwrap();
    let mut r = rng(0);
    assert!(matches!(
        s.sample::<f64, _>(&[], &mut r),
        Err(Error::Empty { .. })
    ));
    let err = s.sample(&[0.0, f64::NAN], &mut r).unwrap_err();
    assert!(matches!(err, Error::NonFinite { .. }), "{err}");
}

/// A small LSTM learns "abcd" repeated, then writes it on from a prime, greedily; the same
/// seed gives the same sampled text; bad calls are errors.
#[test]
fn generate_continues_what_a_model_learned() {
    let vocab = Vocab::from_text("abcd").unwrap();
    let text: String = "abcd".repeat(8);
    let ids = vocab.encode(&text).unwrap();
    let config = RnnConfig::lstm(4, 16).output(4);
    let mut rnn = Rnn::new(Cpu::<f64>::with_threads(1), config, &mut rng(3)).unwrap();
    let input = Input::ids(ids[..ids.len() - 1].to_vec(), 1);
    let mut sgd = Sgd::new(0.1).unwrap();
    for _ in 0..200 {
        let trace = rnn.forward(&input, None).unwrap();
        let (_, d) = CrossEntropy::mean()
            .forward(rnn.backend(), trace.logits(), &ids[1..])
            .unwrap();
        let grads = rnn.backward(&trace, &d).unwrap();
        sgd.step(&mut rnn, &grads).unwrap();
    }
    let mut r = rng(0);
    let written = generate(&rnn, &vocab, "abc", 9, &mut Sampler::greedy(), &mut r).unwrap();
    // The prime, then the 9 characters the model wrote after it.
    assert_eq!(written, "abcdabcdabcd");
    assert_eq!(&written["abc".len()..], "dabcdabcd");

    let mut sampler = Sampler::new(1.0).unwrap();
    let one = generate(&rnn, &vocab, "", 20, &mut sampler, &mut rng(5)).unwrap();
    let two = generate(&rnn, &vocab, "", 20, &mut sampler, &mut rng(5)).unwrap();
    assert_eq!((one.chars().count(), &one), (20, &two));

    let err = generate(&rnn, &vocab, "abx", 3, &mut sampler, &mut r).unwrap_err();
    assert!(matches!(err, Error::UnknownChar { .. }), "{err}");
    let wider = Vocab::from_text("abcde").unwrap();
    let err = generate(&rnn, &wider, "a", 3, &mut sampler, &mut r).unwrap_err();
    assert!(matches!(err, Error::Config { .. }), "{err}");
}
