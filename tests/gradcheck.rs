//! Gradient checks: every analytic gradient against central finite differences, in f64, before
//! any clipping. Worst relative error must stay below 1e-6 (see `recurrent::gradcheck` for the
//! definition and its guarded denominator).
//!
//! The checks are generic over the backend. Every case runs on the reference backend, `NaiveCpu`,
//! and again on `VecBackend` (`common/vec_backend.rs`), which implements only the core `Backend`
//! trait and so runs the crate's generic cell and loss code on a storage of its own, and with the
//! feature `candle` on `Candle` (its CPU device), the same generic code on candle's tensors; a
//! smaller set runs on `Cpu`.

mod common;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use common::{F64, TOLERANCE, assert_passes, random_ids, random_matrix, rng};
use recurrent::gradcheck::{self, Options, Report};
use recurrent::{
    Cell, CellKind, CellState, CrossEntropy, GruCell, Input, Kernels, LstmCell, Nonlinearity, Rnn,
    RnnCell, RnnConfig, State,
};
use vec_backend::VecBackend;

/// A cell of `kind` from its four parameters, in PyTorch's order.
fn rebuild<B: Kernels<Scalar = f64>>(
    backend: &B,
    kind: CellKind,
    params: Vec<B::Matrix>,
) -> Box<dyn Cell<B>> {
    let [wi, wh, bi, bh]: [B::Matrix; 4] = params.try_into().expect("four parameters");
    let biases = Some((bi, bh));
    match kind {
        CellKind::Rnn(n) => Box::new(RnnCell::from_weights(backend, wi, wh, biases, n).unwrap()),
        CellKind::Lstm => Box::new(LstmCell::from_weights(backend, wi, wh, biases).unwrap()),
        CellKind::Gru => Box::new(GruCell::from_weights(backend, wi, wh, biases).unwrap()),
        other => unreachable!("no such cell in this test: {other:?}"),
    }
}

/// Where a step is taken: input rows and previous state, flattened, and the weights `w` of the
/// scalar `E = sum(w_h * h_t) + sum(w_c * c_t)`, so that every entry of the new state matters.
struct StepPoint {
    batch: usize,
    x: Vec<f64>,
    h: Vec<f64>,
    c: Option<Vec<f64>>,
    w_h: Vec<f64>,
    w_c: Option<Vec<f64>>,
}

impl StepPoint {
    fn state<B: Kernels<Scalar = f64>>(
        &self,
        backend: &B,
        h: &[f64],
        c: Option<&[f64]>,
    ) -> CellState<B> {
        let hidden = h.len() / self.batch;
        let m = |v: &[f64]| backend.from_vec(self.batch, hidden, v.to_vec()).unwrap();
        CellState {
            h: m(h),
            c: c.map(m),
        }
    }

    fn x<B: Kernels<Scalar = f64>>(&self, backend: &B, x: &[f64]) -> B::Matrix {
        backend
            .from_vec(self.batch, x.len() / self.batch, x.to_vec())
            .unwrap()
    }

    fn loss<B: Kernels<Scalar = f64>>(
        &self,
        backend: &B,
        cell: &dyn Cell<B>,
        x: &[f64],
        h: &[f64],
        c: Option<&[f64]>,
    ) -> f64 {
        let step = cell
            .step_forward(backend, &self.x(backend, x), &self.state(backend, h, c))
            .unwrap();
        let dot = |m: &B::Matrix, w: &[f64]| -> f64 {
            backend.to_vec(m).iter().zip(w).map(|(a, b)| a * b).sum()
        };
        let from_c = match (&step.state.c, &self.w_c) {
            (Some(c), Some(w)) => dot(c, w),
            _ => 0.0,
        };
        dot(&step.state.h, &self.w_h) + from_c
    }
}

fn check_cell_step<B: Kernels<Scalar = f64>>(backend: &B, cell: &dyn Cell<B>, seed: u64) -> Report {
    let mut r = rng(seed);
    let (input, hidden) = cell.params().sizes(backend);
    let batch = 2;
    let has_c = cell.kind().has_cell_state();
    let mut draw = |cols: usize| backend.to_vec(&random_matrix(backend, batch, cols, 1.0, &mut r));
    let point = StepPoint {
        batch,
        x: draw(input),
        h: draw(hidden),
        c: has_c.then(|| draw(hidden)),
        w_h: draw(hidden),
        w_c: has_c.then(|| draw(hidden)),
    };
    let c = point.c.as_deref();
    let prev = point.state(backend, &point.h, c);
    let x = point.x(backend, &point.x);
    let step = cell.step_forward(backend, &x, &prev).unwrap();
    let mut grads = cell.params().zeros_like(backend);
    let d_state = point.state(backend, &point.w_h, point.w_c.as_deref());
    let (dx, d_prev) = cell
        .step_backward(backend, &x, &prev, &step, &d_state, &mut grads)
        .unwrap();
    let opts = Options::default();
    let mut report = gradcheck::check(
        "x",
        &point.x,
        &backend.to_vec(&dx),
        |v| Ok(point.loss(backend, cell, v, &point.h, c)),
        opts,
    )
    .unwrap();
    report = report.merge(
        gradcheck::check(
            "h_prev",
            &point.h,
            &backend.to_vec(&d_prev.h),
            |v| Ok(point.loss(backend, cell, &point.x, v, c)),
            opts,
        )
        .unwrap(),
    );
    if let (Some(c), Some(dc)) = (&point.c, &d_prev.c) {
        report = report.merge(
            gradcheck::check(
                "c_prev",
                c,
                &backend.to_vec(dc),
                |v| Ok(point.loss(backend, cell, &point.x, &point.h, Some(v))),
                opts,
            )
            .unwrap(),
        );
    }
    let named = cell.params().named("l0");
    for (k, ((name, p), (_, g))) in named.iter().zip(grads.named("l0")).enumerate() {
        let (rows, cols) = backend.shape(p);
        report = report.merge(
            gradcheck::check(
                name,
                &backend.to_vec(p),
                &backend.to_vec(g),
                |v| {
                    let mut params: Vec<B::Matrix> =
                        named.iter().map(|(_, m)| (*m).clone()).collect();
                    params[k] = backend.from_vec(rows, cols, v.to_vec())?;
                    Ok(point.loss(
                        backend,
                        rebuild(backend, cell.kind(), params).as_ref(),
                        &point.x,
                        &point.h,
                        c,
                    ))
                },
                opts,
            )
            .unwrap(),
        );
    }
    report
}

fn check_every_cell_step<B: Kernels<Scalar = f64>>(backend: B) {
    let (input, hidden) = (4, 3);
    let mut r = rng(1);
    let cells: Vec<Box<dyn Cell<B>>> = vec![
        Box::new(RnnCell::new(&backend, input, hidden, Nonlinearity::Tanh, &mut r).unwrap()),
        Box::new(RnnCell::new(&backend, input, hidden, Nonlinearity::Relu, &mut r).unwrap()),
        Box::new(LstmCell::new(&backend, input, hidden, &mut r).unwrap()),
        Box::new(GruCell::new(&backend, input, hidden, &mut r).unwrap()),
    ];
    for (seed, cell) in cells.iter().enumerate() {
        let report = check_cell_step(&backend, cell.as_ref(), seed as u64 + 2);
        assert_passes(&format!("{:?} cell step", cell.kind()), &report);
    }
}

#[test]
fn every_cell_step_gradient_matches_finite_differences() {
    check_every_cell_step(F64::new());
}

#[test]
fn every_cell_step_gradient_matches_finite_differences_on_the_vec_backend() {
    check_every_cell_step(VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn every_cell_step_gradient_matches_finite_differences_on_the_candle_backend() {
    check_every_cell_step(recurrent::Candle::<f64>::cpu());
}

fn check_cross_entropy<B: Kernels<Scalar = f64>>(backend: B) {
    let mut r = rng(2);
    let (rows, classes) = (5, 7);
    let logits = random_matrix(&backend, rows, classes, 3.0, &mut r);
    let targets = random_ids(rows, classes, &mut r);
    for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
        let (_, grad) = loss.forward(&backend, &logits, &targets).unwrap();
        let report = gradcheck::check(
            "logits",
            &backend.to_vec(&logits),
            &backend.to_vec(&grad),
            |v| {
                let moved = backend.from_vec(rows, classes, v.to_vec())?;
                Ok(loss.forward(&backend, &moved, &targets)?.0)
            },
            Options::default(),
        )
        .unwrap();
        assert_passes(&format!("cross-entropy {:?}", loss.reduction()), &report);
    }
}

#[test]
fn cross_entropy_gradient_matches_finite_differences() {
    check_cross_entropy(F64::new());
}

#[test]
fn cross_entropy_gradient_matches_finite_differences_on_the_vec_backend() {
    check_cross_entropy(VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn cross_entropy_gradient_matches_finite_differences_on_the_candle_backend() {
    check_cross_entropy(recurrent::Candle::<f64>::cpu());
}

/// One whole-model case: shape, input kind and whether an initial state is given.
struct Case {
    /// ReLU has a kink at 0: a pre-activation within `2 eps` of it spoils the difference
    /// quotient, so ReLU cases step by `eps = 1e-4` (rounding then limits accuracy instead).
    eps: f64,
    layers: usize,
    bidirectional: bool,
    batch: usize,
    /// Per-sequence lengths (batch 3 only), or all `T`.
    lengths: Option<Vec<usize>>,
    ids: bool,
    initial_state: bool,
    config: MakeConfig,
}

/// Builds a model's configuration from `(vocabulary, hidden)`.
type MakeConfig = fn(usize, usize) -> RnnConfig;

fn check_model<B: Kernels<Scalar = f64>>(backend: &B, case: &Case, seed: u64) -> Report {
    let (vocab, hidden, steps) = (5, 4, 4);
    let config = (case.config)(vocab, hidden)
        .layers(case.layers)
        .bidirectional(case.bidirectional)
        .output(vocab);
    let has_c = config.kind().has_cell_state();
    let states = case.layers * config.directions();
    let rnn = Rnn::new(backend.clone(), config, &mut rng(seed)).expect("valid config");
    let mut r = rng(seed + 100);
    let rows = steps * case.batch;
    let mut input = if case.ids {
        Input::ids(random_ids(rows, vocab, &mut r), case.batch)
    } else {
        Input::dense(random_matrix(backend, rows, vocab, 1.0, &mut r), case.batch)
    };
    if let Some(lengths) = &case.lengths {
        input = input.with_lengths(lengths.clone());
    }
    let targets = random_ids(rows, vocab, &mut r);
    let state = case.initial_state.then(|| {
        let mut part = || random_matrix(backend, case.batch, hidden, 0.5, &mut r);
        State::new(
            (0..states)
                .map(|_| CellState {
                    h: part(),
                    c: has_c.then(&mut part),
                })
                .collect(),
        )
    });
    let options = Options::new(case.eps, Options::default().floor);
    gradcheck::check_rnn(
        &rnn,
        &input,
        state.as_ref(),
        &targets,
        CrossEntropy::sum(),
        options,
    )
    .unwrap()
}

fn check_elman_models<B: Kernels<Scalar = f64>>(backend: &B) {
    let smooth = Options::default().eps;
    let configs: [(&str, f64, MakeConfig); 3] = [
        ("tanh", smooth, RnnConfig::rnn),
        ("relu", 1e-4, |i, h| {
            RnnConfig::rnn(i, h).nonlinearity(Nonlinearity::Relu)
        }),
        ("no biases", smooth, |i, h| {
            RnnConfig::rnn(i, h).bias(false).output_bias(false)
        }),
    ];
    let mut seed = 10;
    for (label, eps, config) in configs {
        for layers in [1, 2] {
            for batch in [1, 3] {
                for ids in [false, true] {
                    for initial_state in [false, true] {
                        seed += 1;
                        let case = Case {
                            eps,
                            layers,
                            bidirectional: false,
                            batch,
                            lengths: None,
                            ids,
                            initial_state,
                            config,
                        };
                        let report = check_model(backend, &case, seed);
                        let what = format!(
                            "{label}, {layers} layer(s), batch {batch}, ids {ids}, h0 {initial_state}"
                        );
                        assert_passes(&what, &report);
                    }
                }
            }
        }
    }
}

#[test]
fn elman_model_gradients_match_finite_differences() {
    check_elman_models(&F64::new());
}

#[test]
fn elman_model_gradients_match_finite_differences_on_the_vec_backend() {
    check_elman_models(&VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn elman_model_gradients_match_finite_differences_on_the_candle_backend() {
    check_elman_models(&recurrent::Candle::<f64>::cpu());
}

fn check_gated_and_bidirectional_models<B: Kernels<Scalar = f64>>(backend: &B) {
    let configs: [(&str, MakeConfig); 3] = [
        ("rnn", RnnConfig::rnn),
        ("lstm", RnnConfig::lstm),
        ("gru", RnnConfig::gru),
    ];
    let mut seed = 200;
    for (label, config) in configs {
        for layers in [1, 2] {
            for bidirectional in [false, true] {
                for (batch, lengths) in [(1, None), (3, None), (3, Some(vec![4, 2, 1]))] {
                    for ids in [false, true] {
                        seed += 1;
                        let case = Case {
                            eps: Options::default().eps,
                            layers,
                            bidirectional,
                            batch,
                            lengths: lengths.clone(),
                            ids,
                            initial_state: true,
                            config,
                        };
                        let report = check_model(backend, &case, seed);
                        let what = format!(
                            "{label}, {layers} layer(s), bidirectional {bidirectional}, batch {batch}, lengths {lengths:?}, ids {ids}"
                        );
                        assert_passes(&what, &report);
                    }
                }
            }
        }
    }
}

#[test]
fn gated_and_bidirectional_model_gradients_match_finite_differences() {
    check_gated_and_bidirectional_models(&F64::new());
}

#[test]
fn gated_and_bidirectional_model_gradients_match_finite_differences_on_the_vec_backend() {
    check_gated_and_bidirectional_models(&VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn gated_and_bidirectional_model_gradients_match_finite_differences_on_the_candle_backend() {
    check_gated_and_bidirectional_models(&recurrent::Candle::<f64>::cpu());
}

#[test]
fn gradcheck_catches_a_wrong_gradient() {
    // The check must be able to fail: a gradient off by 1e-4 in one entry is reported.
    let point = [0.3, -0.7, 1.1];
    let f = |v: &[f64]| Ok(v[0] * v[0] + (v[1] * v[2]).sin());
    let mut analytic = [0.6, (-0.77f64).cos() * 1.1, (-0.77f64).cos() * -0.7];
    let good = gradcheck::check("f", &point, &analytic, f, Options::default()).unwrap();
    assert!(good.worst < TOLERANCE, "{good:?}");
    analytic[1] += 1e-4;
    let bad = gradcheck::check("f", &point, &analytic, f, Options::default()).unwrap();
    assert!(bad.worst > TOLERANCE, "{bad:?}");
    assert_eq!(bad.worst_at, "f[1]");
}

#[test]
fn the_fast_backend_gradients_match_finite_differences() {
    let backend = recurrent::Cpu::<f64>::new();
    let configs: [MakeConfig; 3] = [RnnConfig::rnn, RnnConfig::lstm, RnnConfig::gru];
    for (seed, config) in configs.into_iter().enumerate() {
        let config = config(5, 4).layers(2).bidirectional(true).output(5);
        let rnn =
            recurrent::Rnn::new(backend.clone(), config, &mut rng(300 + seed as u64)).unwrap();
        let mut r = rng(400 + seed as u64);
        let input = Input::dense(random_matrix(&backend, 12, 5, 1.0, &mut r), 3)
            .with_lengths(vec![4, 2, 3]);
        let targets = random_ids(12, 5, &mut r);
        let report = gradcheck::check_rnn(
            &rnn,
            &input,
            None,
            &targets,
            CrossEntropy::sum(),
            Options::default(),
        )
        .unwrap();
        assert_passes(&format!("Cpu<f64> {:?}", rnn.config().kind()), &report);
    }
}

#[test]
fn gradcheck_reports_a_nan_gradient_as_the_worst() {
    let f = |v: &[f64]| Ok(v[0] + v[1]);
    let report =
        gradcheck::check("p", &[1.0, 2.0], &[1.0, f64::NAN], f, Options::default()).unwrap();
    assert!(report.worst.is_nan(), "{report:?}");
    assert_eq!(report.worst_at, "p[1]");
    // And a NaN survives merging with a clean report, in either order.
    let clean = gradcheck::check("q", &[1.0], &[1.0], |v| Ok(v[0]), Options::default()).unwrap();
    assert!(clean.clone().merge(report.clone()).worst.is_nan());
    assert!(report.merge(clean).worst.is_nan());
}

#[test]
fn gradcheck_refuses_a_step_or_floor_that_cannot_measure() {
    let f = |v: &[f64]| Ok(v[0]);
    for (eps, floor) in [
        (0.0, 1e-3),
        (-1e-3, 1e-3),
        (f64::NAN, 1e-3),
        (1e-3, 0.0),
        (1e-3, f64::INFINITY),
    ] {
        let options = Options::new(eps, floor);
        let result = gradcheck::check("p", &[1.0], &[1.0], f, options);
        assert!(
            matches!(result, Err(recurrent::Error::Config { .. })),
            "{options:?}: {result:?}"
        );
    }
}
