//! Gradient checks of the losses and the many-to-one head: every analytic gradient against the
//! fourth-order central difference of `recurrent::gradcheck`, in f64. Worst relative error must
//! stay below 1e-6, as in `tests/gradcheck.rs`.
//!
//! The losses run on `NaiveCpu` and on `VecBackend` (the core trait only, column-major storage);
//! the points keep every difference at least `0.05` from the kinks of L1 (0) and Huber
//! (`+-delta`), far beyond the `2 eps` the difference quotient needs.

mod common;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use common::{F64, assert_passes, random_ids, random_matrix, rng};
use rand::RngExt;
use recurrent::gradcheck::{self, Options, Report};
use recurrent::{
    Backend, BceWithLogits, CrossEntropy, Huber, Input, Kernels, L1, Mse, Reduction, Rnn, RnnConfig,
};
use vec_backend::VecBackend;

/// `(loss, gradient)` of a loss at `x` (`rows x cols`, row-major).
type LossFn<'a> = dyn Fn(&[f64]) -> recurrent::Result<(f64, Vec<f64>)> + 'a;

/// Checks the gradient a loss gives at `x` against finite differences of its value.
fn check_loss(what: &str, x: &[f64], loss: &LossFn) {
    let (_, analytic) = loss(x).unwrap();
    let report = gradcheck::check(what, x, &analytic, |v| Ok(loss(v)?.0), Options::default());
    assert_passes(what, &report.unwrap());
}

const ROWS: usize = 5;
const COLS: usize = 3;
/// Every row but row 2 counts.
const MASK: [bool; ROWS] = [true, true, false, true, true];

/// A prediction and a target whose differences stay `0.05` away from 0 and `+-delta`.
fn regression_point(seed: u64, delta: f64) -> (Vec<f64>, Vec<f64>) {
    let mut r = rng(seed);
    let x: Vec<f64> = (0..ROWS * COLS)
        .map(|_| r.random_range(-2.0..2.0))
        .collect();
    let y = x
        .iter()
        .map(|&x| {
            let mut d: f64 = r.random_range(-3.0..3.0);
            if d.abs() < 0.05 || (d.abs() - delta).abs() < 0.05 {
                d += 0.1;
            }
            x - d
        })
        .collect();
    (x, y)
}

fn element_wise<B: Kernels<Scalar = f64>>(backend: &B, label: &str) {
    let delta = 0.7;
    let (x, y) = regression_point(1, delta);
    let m = |v: &[f64]| backend.from_vec(ROWS, COLS, v.to_vec()).unwrap();
    let target = m(&y);
    for mask in [None, Some(&MASK[..])] {
        for reduction in [Reduction::Sum, Reduction::Mean] {
            let name = format!("{label} {reduction:?} masked={}", mask.is_some());
            let huber = Huber::with_reduction(reduction).delta(delta).unwrap();
            for family in ["mse", "l1", "huber"] {
                let f = |v: &[f64]| {
                    let p = m(v);
                    let (l, g) = match family {
                        "mse" => Mse::with_reduction(reduction)
                            .forward_masked(backend, &p, &target, mask)?,
                        "l1" => L1::with_reduction(reduction)
                            .forward_masked(backend, &p, &target, mask)?,
                        _ => huber.forward_masked(backend, &p, &target, mask)?,
                    };
                    Ok((l, backend.to_vec(&g)))
                };
                check_loss(&format!("{family} {name}"), &x, &f);
            }
        }
    }
}

fn binary<B: Kernels<Scalar = f64>>(backend: &B, label: &str) {
    let mut r = rng(2);
    let x: Vec<f64> = (0..ROWS * COLS)
        .map(|_| r.random_range(-4.0..4.0))
        .collect();
    let mut y: Vec<f64> = (0..ROWS * COLS)
        .map(|_| r.random_range(0.0..=1.0))
        .collect();
    y[0] = 0.0;
    y[1] = 1.0;
    let m = |v: &[f64]| backend.from_vec(ROWS, COLS, v.to_vec()).unwrap();
    let target = m(&y);
    let plain = BceWithLogits::mean();
    let weighted = BceWithLogits::sum()
        .pos_weight(vec![0.5, 2.0, 3.0])
        .unwrap();
    for (name, loss, mask) in [
        ("mean", &plain, None),
        ("pos_weight masked sum", &weighted, Some(&MASK[..])),
    ] {
        let f = |v: &[f64]| {
            let (l, g) = loss.forward_masked(backend, &m(v), &target, mask)?;
            Ok((l, backend.to_vec(&g)))
        };
        check_loss(&format!("{label} bce {name}"), &x, &f);
    }
}

fn cross_entropy<B: Kernels<Scalar = f64>>(backend: &B, label: &str) {
    let classes = 4;
    let mut r = rng(3);
    let x = backend.to_vec(&random_matrix(backend, ROWS, classes, 2.0, &mut r));
    let targets = [1, 2, 0, 3, 2];
    let weights = vec![0.5, 2.0, 1.0, 3.0];
    let losses = [
        ("plain sum", CrossEntropy::sum()),
        ("ignore mean", CrossEntropy::mean().ignore_index(2)),
        (
            "smooth mean",
            CrossEntropy::mean().label_smoothing(0.3).unwrap(),
        ),
        (
            "weights mean",
            CrossEntropy::mean().weights(weights.clone()).unwrap(),
        ),
        (
            "all sum",
            CrossEntropy::sum()
                .ignore_index(0)
                .label_smoothing(0.2)
                .unwrap()
                .weights(weights.clone())
                .unwrap(),
        ),
        (
            "all mean",
            CrossEntropy::mean()
                .ignore_index(0)
                .label_smoothing(0.2)
                .unwrap()
                .weights(weights)
                .unwrap(),
        ),
    ];
    for (name, loss) in &losses {
        for mask in [None, Some(&MASK[..])] {
            let f = |v: &[f64]| {
                let logits = backend.from_vec(ROWS, classes, v.to_vec())?;
                let (l, g) = loss.forward_masked(backend, &logits, &targets, mask)?;
                Ok((l, backend.to_vec(&g)))
            };
            let what = format!("{label} cross-entropy {name} masked={}", mask.is_some());
            check_loss(&what, &x, &f);
        }
    }
}

#[test]
fn every_loss_gradient_matches_finite_differences() {
    let naive = F64::new();
    element_wise(&naive, "naive");
    binary(&naive, "naive");
    cross_entropy(&naive, "naive");
    let vec = VecBackend::<f64>::new();
    element_wise(&vec, "vec");
    binary(&vec, "vec");
    cross_entropy(&vec, "vec");
}

// ---------------------------------------------------------------------------------------------
// The many-to-one head

/// Every parameter's and the input's gradient from `backward_last`, for the mean cross-entropy
/// of `last_logits`, against finite differences.
fn check_head<B: Kernels<Scalar = f64>>(backend: B, config: RnnConfig, lengths: Vec<usize>) {
    let (steps, batch) = (4, lengths.len());
    let mut r = rng(11);
    let rnn = Rnn::new(backend.clone(), config.clone(), &mut r).unwrap();
    let x = random_matrix(&backend, steps * batch, config.input_size(), 1.0, &mut r);
    let classes = config.output_size().unwrap();
    let targets = random_ids(batch, classes, &mut r);
    let input = |x: B::Matrix| Input::dense(x, batch).with_lengths(lengths.clone());
    // With dropout, training mode from one seed: the same masks at every evaluation.
    let train = config.dropout_probability() > 0.0 || config.output_dropout_probability() > 0.0;
    let run = |model: &Rnn<B>, x: &B::Matrix| match train {
        true => model.forward_train(&input(x.clone()), None, &mut rng(99)),
        false => model.forward(&input(x.clone()), None),
    };
    let loss_of = |model: &Rnn<B>, x: &B::Matrix| -> recurrent::Result<f64> {
        let logits = model.last_logits(&run(model, x)?)?;
        Ok(CrossEntropy::mean().forward(&backend, &logits, &targets)?.0)
    };
    let trace = run(&rnn, &x).unwrap();
    let logits = rnn.last_logits(&trace).unwrap();
    let (_, d) = CrossEntropy::mean()
        .forward(&backend, &logits, &targets)
        .unwrap();
    let grads = rnn.backward_last(&trace, &d).unwrap();
    let mut report = gradcheck::check(
        "input",
        &backend.to_vec(&x),
        &backend.to_vec(grads.input().unwrap()),
        |v| {
            let (rows, cols) = backend.shape(&x);
            loss_of(&rnn, &backend.from_vec(rows, cols, v.to_vec())?)
        },
        Options::default(),
    )
    .unwrap();
    for (name, p) in rnn.parameters() {
        let analytic = backend.to_vec(grads.get(&name).unwrap());
        let r = gradcheck::check(
            &name,
            &backend.to_vec(p),
            &analytic,
            |v| {
                let mut model = rnn.clone();
                model.set_parameter(&name, v.to_vec())?;
                loss_of(&model, &x)
            },
            Options::default(),
        );
        report = report.merge(r.unwrap());
    }
    let what = format!(
        "head {:?} layers={} directions={} lengths={lengths:?}",
        config.kind(),
        config.num_layers(),
        config.directions()
    );
    assert_passes(&what, &report);
}

#[test]
fn many_to_one_head_gradients_match_finite_differences() {
    let lengths = vec![4, 2, 1];
    let lstm = RnnConfig::lstm(3, 4)
        .layers(2)
        .bidirectional(true)
        .output(5);
    check_head(F64::new(), lstm.clone(), lengths.clone());
    check_head(VecBackend::<f64>::new(), lstm, lengths.clone());
    check_head(F64::new(), RnnConfig::gru(3, 4).output(3), lengths.clone());
    let rnn = RnnConfig::rnn(3, 4).bidirectional(true).output(2);
    check_head(F64::new(), rnn, vec![4, 4, 4]);
    // Dropout between the layers and before the output layer: the head reads the dropped
    // features, and backward_last goes back through both masks.
    let dropped = RnnConfig::gru(3, 4).layers(2).bidirectional(true);
    let dropped = dropped.dropout(0.3).output_dropout(0.4).output(3);
    check_head(F64::new(), dropped, lengths);
}

/// Without an output layer the head gives the features themselves (`B x D*H`): a regression on
/// them with `Mse`, every parameter's gradient against finite differences.
#[test]
fn head_without_an_output_layer_regresses_on_the_features() {
    let backend = F64::new();
    let mut r = rng(12);
    let config = RnnConfig::lstm(3, 4).bidirectional(true);
    let rnn = Rnn::new(backend, config, &mut r).unwrap();
    let x = random_matrix(&backend, 3 * 2, 3, 1.0, &mut r);
    let input = Input::dense(x, 2).with_lengths(vec![3, 1]);
    let target = random_matrix(&backend, 2, 8, 1.0, &mut r);
    let loss_of = |model: &Rnn<F64>| -> recurrent::Result<(f64, _)> {
        let trace = model.forward(&input, None)?;
        let features = model.last_logits(&trace)?;
        assert_eq!(
            backend.to_vec(&features),
            backend.to_vec(&trace.last_hidden(&backend))
        );
        let (loss, d) = Mse::mean().forward(&backend, &features, &target)?;
        Ok((loss, (trace, d)))
    };
    let (_, (trace, d)) = loss_of(&rnn).unwrap();
    let grads = rnn.backward_last(&trace, &d).unwrap();
    let mut report: Option<Report> = None;
    for (name, p) in rnn.parameters() {
        let r = gradcheck::check(
            &name,
            &backend.to_vec(p),
            &backend.to_vec(grads.get(&name).unwrap()),
            |v| {
                let mut model = rnn.clone();
                model.set_parameter(&name, v.to_vec())?;
                Ok(loss_of(&model)?.0)
            },
            Options::default(),
        );
        let r = r.unwrap();
        report = Some(match report {
            Some(before) => before.merge(r),
            None => r,
        });
    }
    assert_passes("head without an output layer, Mse", &report.unwrap());
}
