//! Bad input to the losses and the many-to-one head: every error path gives an `Err` of the
//! documented [`Error`] variant whose message names what was expected, never a panic.
//!
//! Targets of the wrong shape or out of range, NaN and infinite targets, BCE targets outside
//! `[0, 1]`, `label_smoothing` outside `[0, 1]`, `delta` that is not finite and positive,
//! class weights and `pos_weight` of the wrong length or value, masks of the wrong length or
//! selecting nothing, a mean over no counted target; `last_logits` and `backward_last` with a
//! trace of another model or a gradient of the wrong shape. On f64 and f32.

#[path = "common/errors.rs"]
mod errors;

use errors::{BadInput, F32, F64, IDS, TARGETS, lstm, matrix, mentions, model};
use recurrent::{
    Backend, BceWithLogits, CrossEntropy, Error, Huber, Input, Kernels, L1, Mse, Reduction, Scalar,
};

/// `rows x cols` of one value.
fn filled<B: Kernels>(backend: &B, rows: usize, cols: usize, v: f64) -> B::Matrix {
    let data = vec![B::Scalar::of(v); rows * cols];
    backend.from_vec(rows, cols, data).unwrap()
}

/// A `4 x 3` target of `0.5` (valid for every loss) but for one entry.
fn target_with<B: Kernels>(backend: &B, at: usize, v: f64) -> B::Matrix {
    let mut data = backend.to_vec(&filled(backend, 4, 3, 0.5));
    data[at] = B::Scalar::of(v);
    backend.from_vec(4, 3, data).unwrap()
}

fn element_wise_errors<B: Kernels>(backend: &B, reduction: Reduction) {
    let x = matrix(backend, 4, 3);
    let huber = Huber::with_reduction(reduction);
    type Run<'a, B> = dyn Fn(
            &<B as recurrent::Backend>::Matrix,
            Option<&[bool]>,
        ) -> recurrent::Result<(
            <B as recurrent::Backend>::Scalar,
            <B as recurrent::Backend>::Matrix,
        )> + 'a;
    let mse = |y: &B::Matrix, m: Option<&[bool]>| {
        Mse::with_reduction(reduction).forward_masked(backend, &x, y, m)
    };
    let l1 = |y: &B::Matrix, m: Option<&[bool]>| {
        L1::with_reduction(reduction).forward_masked(backend, &x, y, m)
    };
    let hub = |y: &B::Matrix, m: Option<&[bool]>| huber.forward_masked(backend, &x, y, m);
    let bce = |y: &B::Matrix, m: Option<&[bool]>| {
        BceWithLogits::with_reduction(reduction).forward_masked(backend, &x, y, m)
    };
    let runs: [&Run<B>; 4] = [&mse, &l1, &hub, &bce];
    for run in runs {
        let m = run(&matrix(backend, 4, 2), None).shape("(4, 3)", "(4, 2)");
        mentions(&m, &["targets (the shape of the predictions)"]);
        run(&matrix(backend, 3, 3), None).shape("(4, 3)", "(3, 3)");
        let m = run(&target_with(backend, 7, f64::NAN), None).non_finite("targets");
        mentions(&m, &["row 2, column 1", "finite values expected"]);
        run(&target_with(backend, 0, f64::INFINITY), None).non_finite("row 0, column 0");
        // A NaN target in a row the mask leaves out is not read.
        let masked = [true, true, false, true];
        assert!(run(&target_with(backend, 7, f64::NAN), Some(&masked)).is_ok());
        let y = filled(backend, 4, 3, 0.5);
        run(&y, Some(&[true, false])).shape("4", "2");
        run(&y, Some(&[false; 4])).empty("mask selection");
        let none = backend.zeros(0, 3);
        let empty = match reduction {
            Reduction::Sum => Mse::sum().forward(backend, &none, &none),
            Reduction::Mean => L1::mean().forward(backend, &none, &none),
        };
        empty.empty("predictions");
    }
    let m = bce(&target_with(backend, 4, 1.5), None).config(&["row 1, column 1", "[0, 1]"]);
    mentions(&m, &["given 1.5"]);
    bce(&target_with(backend, 11, -0.25), None).config(&["row 3, column 2", "given -0.25"]);
}

#[test]
fn element_wise_losses_reject_bad_targets_and_masks() {
    for reduction in [Reduction::Sum, Reduction::Mean] {
        element_wise_errors(&F64::new(), reduction);
        element_wise_errors(&F32::new(), reduction);
    }
}

#[test]
fn huber_delta_must_be_finite_and_positive() {
    for delta in [0.0, -1.0, f64::NAN, f64::INFINITY, -0.0] {
        let m = Huber::mean()
            .delta(delta)
            .config(&["Huber delta", "finite positive"]);
        mentions(&m, &[&format!("given {delta}")]);
    }
    assert_eq!(Huber::mean().delta(2.0).unwrap().threshold(), 2.0);
}

#[test]
fn pos_weight_must_fit_the_columns() {
    BceWithLogits::mean()
        .pos_weight(vec![])
        .config(&["pos_weight", "given none"]);
    for bad in [-1.0, f64::NAN, f64::INFINITY] {
        let m = BceWithLogits::sum()
            .pos_weight(vec![1.0, bad])
            .config(&["pos_weight[1]"]);
        mentions(&m, &["finite non-negative", &format!("given {bad}")]);
    }
    let backend = F64::new();
    let x = matrix(&backend, 4, 3);
    let loss = BceWithLogits::mean().pos_weight(vec![1.0, 2.0]).unwrap();
    let y = filled(&backend, 4, 3, 0.5);
    let m = loss.forward(&backend, &x, &y).shape("3", "2");
    mentions(&m, &["pos_weight (one per column)"]);
}

fn cross_entropy_errors<B: Kernels>(backend: &B) {
    let logits = matrix(backend, 4, 4);
    let weighted = CrossEntropy::mean().weights(vec![1.0, 2.0, 0.0]).unwrap();
    let m = weighted.forward(backend, &logits, &TARGETS).shape("4", "3");
    mentions(&m, &["class weights (one per class)"]);
    let options = [
        CrossEntropy::sum().ignore_index(3),
        CrossEntropy::mean().label_smoothing(0.1).unwrap(),
        CrossEntropy::mean().weights(vec![1.0; 4]).unwrap(),
    ];
    for loss in [&CrossEntropy::mean(), &CrossEntropy::sum()]
        .into_iter()
        .chain(&options)
    {
        // The value alone, as forward's: the same errors, the same loss.
        loss.value(backend, &logits, &[0, 1]).shape("4", "2");
        loss.value(backend, &logits, &[0, 9, 1, 2]).index(1, 9, 4);
        loss.value(backend, &backend.zeros(0, 4), &[])
            .empty("logits");
        let (want, _) = loss.forward(backend, &logits, &TARGETS).unwrap();
        let got = loss.value(backend, &logits, &TARGETS).unwrap();
        assert!((got - want).to_f64().abs() <= 1e-6 * want.to_f64().abs().max(1.0));
    }
    for loss in &options {
        loss.forward(backend, &logits, &[0, 1]).shape("4", "2");
        let m = loss.forward(backend, &logits, &[0, 9, 1, 2]).index(1, 9, 4);
        mentions(&m, &["targets"]);
        let mask = Some(&[true, false, true][..]);
        loss.forward_masked(backend, &logits, &TARGETS, mask)
            .shape("4", "3");
        let none = Some(&[false; 4][..]);
        loss.forward_masked(backend, &logits, &TARGETS, none)
            .empty("mask selection");
        // An out-of-range target in a masked row is not read.
        let masked = Some(&[true, false, true, true][..]);
        assert!(
            loss.forward_masked(backend, &logits, &[0, 9, 1, 2], masked)
                .is_ok()
        );
        loss.forward(backend, &backend.zeros(0, 4), &[])
            .empty("logits");
    }
    // The ignored index may be any number: it is not a class.
    let ignore = CrossEntropy::mean().ignore_index(99);
    assert!(ignore.forward(backend, &logits, &[0, 99, 1, 2]).is_ok());
    // A mean over nothing: every target ignored, or of weight 0 (PyTorch gives NaN).
    let m = ignore
        .forward(backend, &logits, &[99; 4])
        .empty("targets counted by the mean");
    mentions(&m, &["not ignored"]);
    let zero = CrossEntropy::mean()
        .weights(vec![0.0, 1.0, 1.0, 1.0])
        .unwrap();
    zero.forward(backend, &logits, &[0, 0, 0, 0])
        .empty("targets counted by the mean");
    // The sum over nothing is 0, with a zero gradient, as PyTorch.
    let (loss, grad) = CrossEntropy::sum()
        .ignore_index(99)
        .forward(backend, &logits, &[99; 4])
        .unwrap();
    assert_eq!(loss.to_f64(), 0.0);
    assert!(
        backend
            .to_vec(&grad)
            .iter()
            .all(|&g| g == B::Scalar::of(0.0))
    );
}

#[test]
fn cross_entropy_options_reject_bad_targets() {
    cross_entropy_errors(&F64::new());
    cross_entropy_errors(&F32::new());
}

#[test]
fn label_smoothing_and_class_weights_are_checked_when_set() {
    for e in [-0.1, 1.5, f64::NAN, f64::INFINITY] {
        let m = CrossEntropy::mean()
            .label_smoothing(e)
            .config(&["label_smoothing"]);
        mentions(&m, &["expected a value in [0, 1]", &format!("given {e}")]);
    }
    for e in [0.0, 1.0] {
        assert_eq!(
            CrossEntropy::sum().label_smoothing(e).unwrap().smoothing(),
            e
        );
    }
    CrossEntropy::mean()
        .weights(vec![])
        .config(&["class weights", "given none"]);
    for bad in [-0.5, f64::NAN, f64::NEG_INFINITY] {
        let m = CrossEntropy::mean()
            .weights(vec![1.0, 1.0, bad])
            .config(&["class weights[2]"]);
        mentions(&m, &["finite non-negative", &format!("given {bad}")]);
    }
}

#[test]
fn the_head_rejects_a_foreign_trace_and_a_misshapen_gradient() {
    let backend = F64::new();
    let rnn = model(backend, 1);
    let trace = rnn.forward(&Input::ids(IDS.to_vec(), 2), None).unwrap();
    assert_eq!(backend.shape(&rnn.last_logits(&trace).unwrap()), (2, 4));
    let m = rnn
        .backward_last(&trace, &matrix(&backend, 4, 4))
        .shape("(2, 4)", "(4, 4)");
    mentions(&m, &["many-to-one logits gradient"]);
    rnn.backward_last(&trace, &matrix(&backend, 2, 3))
        .shape("(2, 4)", "(2, 3)");
    let other = lstm(backend, 2, true, 1);
    let foreign = other.forward(&Input::ids(IDS.to_vec(), 2), None).unwrap();
    assert!(matches!(
        rnn.last_logits(&foreign),
        Err(Error::Shape { .. })
    ));
    let d = matrix(&backend, 2, 4);
    assert!(matches!(
        rnn.backward_last(&foreign, &d),
        Err(Error::Shape { .. })
    ));
}
