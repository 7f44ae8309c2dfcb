//! Bad input: every error path of the public API that builds, runs and trains an Elman model.
//!
//! The promise under test: input a user can get wrong gives an `Err` (never a panic) of the
//! documented [`Error`] variant, whose message names what was expected and what was given, and a
//! failed call changes nothing (parameters and gradients compare bit for bit before and after).
//!
//! Models are small: 4 inputs (token ids below 4), 3 hidden units, 4 outputs; sequences of
//! `T = 2` steps with batch `B = 2`, so logits are `4 x 4` and a state's `h` is `2 x 3`.
//!
//! Here: model construction, forward and backward, the loss, clipping, the optimiser, cell steps,
//! matrices from data and gradient checking. LSTM, GRU and bidirectional models, lengths and the
//! masked loss are in `bad_input_models.rs`; parameters by name, state dicts, files and tensors
//! in `bad_input_files.rs`. The fixtures and assertions the three share are in
//! `common/errors.rs`, included by path (not `common/mod.rs`), so each file reads with that one.

#[path = "common/errors.rs"]
mod errors;

use errors::{
    BadInput, F32, F64, IDS, Snapshot, TARGETS, bits, build, gradients, ids, matrix, mentions,
    model, params_of, rng, sized,
};
use recurrent::Kernels;
use recurrent::gradcheck::{self, Options};
use recurrent::{
    Backend, Cell, CellKind, CellParams, CellState, CrossEntropy, DenseMatrix, Error, Gradients,
    Input, Nonlinearity, Optimizer, Rnn, RnnCell, RnnConfig, Sgd, State, clip,
};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// One layer's state whose `h` is `rows x cols`, with a zero `c` if asked.
fn state<B: Kernels>(backend: &B, rows: usize, cols: usize, with_c: bool) -> CellState<B> {
    CellState {
        h: backend.zeros(rows, cols),
        c: with_c.then(|| backend.zeros(rows, cols)),
    }
}

/// A one-layer model state whose `h` is `rows x cols`.
fn state1(backend: &F64, rows: usize, cols: usize, with_c: bool) -> State<F64> {
    State::new(vec![state(backend, rows, cols, with_c)])
}

/// A two-layer model state: layer 0 fits (`2 x 3`), layer 1's `h` is `rows x cols`.
fn state2(backend: &F64, rows: usize, cols: usize, with_c: bool) -> State<F64> {
    State::new(vec![
        state(backend, 2, 3, false),
        state(backend, rows, cols, with_c),
    ])
}

fn grads_of<B: Kernels>(grads: &Gradients<B>) -> Snapshot {
    bits(grads.backend(), grads.named())
}

/// Sets entry 0 of the gradient `name` to `value`.
fn poison(grads: &mut Gradients<F64>, name: &str, value: f64) {
    let mut named = grads.params_mut().named_mut();
    let found = named.iter_mut().find(|(n, _)| n == name);
    found.expect("a known name").1.as_mut_slice()[0] = value;
}

// ---------------------------------------------------------------------------------------------
// Rnn::new and the cell constructors

#[test]
fn new_rejects_zero_sizes_and_layers() {
    build(RnnConfig::rnn(0, 3).output(4)).config(&["input size", "at least 1"]);
    build(RnnConfig::rnn(4, 0).output(4)).config(&["hidden size", "at least 1"]);
    build(RnnConfig::rnn(4, 3).layers(0).output(4)).config(&["layer", "at least 1"]);
    build(RnnConfig::rnn(4, 3).output(0)).config(&["output size", "at least 1"]);
    build(RnnConfig::rnn(4, 0).layers(0).output(0)).config(&[]);
    let f32_model = Rnn::new(F32::new(), RnnConfig::rnn(4, 0), &mut rng());
    f32_model.config(&["hidden size"]);
}

/// The promise is that a message names the given value as well as the expected one; the zero
/// sizes above are only described ("must be at least 1"), the 0 never quoted.
#[test]
fn config_errors_name_the_given_zero() {
    build(RnnConfig::rnn(0, 3)).config(&["input size", "0"]);
    build(RnnConfig::rnn(4, 0)).config(&["hidden size", "0"]);
    build(RnnConfig::rnn(4, 3).layers(0)).config(&["layer", "0"]);
    build(RnnConfig::rnn(4, 3).output(0)).config(&["output size", "0"]);
}

#[test]
fn cell_constructors_reject_zero_hidden() {
    let b = F64::new();
    let (tanh, relu) = (Nonlinearity::Tanh, Nonlinearity::Relu);
    RnnCell::new(&b, 4, 0, relu, &mut rng()).config(&["hidden size"]);
    let init = CellParams::init(&b, CellKind::Rnn(tanh), 4, 0, true, &mut rng());
    init.config(&["hidden size"]);
    let zero = RnnCell::from_weights(&b, b.zeros(0, 4), b.zeros(0, 0), None, tanh);
    zero.config(&["hidden size"]);
}

#[test]
fn from_weights_rejects_shapes_that_do_not_fit() {
    let b = F64::new();
    let cell =
        |w_hh, biases| RnnCell::from_weights(&b, b.zeros(3, 4), w_hh, biases, Nonlinearity::Tanh);
    // weight_ih (3, 4) fixes H = 3, so weight_hh must be (3, 3) and each bias (1, 3).
    let m = cell(b.zeros(3, 4), None).shape("(3, 3)", "(3, 4)");
    mentions(&m, &["weight_hh"]);
    cell(b.zeros(4, 4), None).shape("(3, 3)", "(4, 4)");
    let bad_ih = Some((b.zeros(1, 4), b.zeros(1, 3)));
    let m = cell(b.zeros(3, 3), bad_ih).shape("(1, 3)", "(1, 4)");
    mentions(&m, &["bias_ih"]);
    let bad_hh = Some((b.zeros(1, 3), b.zeros(3, 1)));
    let m = cell(b.zeros(3, 3), bad_hh).shape("(1, 3)", "(3, 1)");
    mentions(&m, &["bias_hh"]);
}

// ---------------------------------------------------------------------------------------------
// Rnn::forward: the input

#[test]
fn forward_rejects_an_empty_sequence() {
    let rnn = model(F64::new(), 1);
    let run = |x: Input<F64>| rnn.forward(&x, None);
    run(Input::ids(vec![], 1)).empty("input sequence");
    run(Input::ids(vec![], 2)).empty("input sequence");
    run(Input::dense(rnn.backend().zeros(0, 4), 2)).empty("input sequence");
}

#[test]
fn forward_rejects_batch_zero() {
    let rnn = model(F64::new(), 1);
    let run = |x: Input<F64>| rnn.forward(&x, None);
    run(Input::ids(IDS.to_vec(), 0)).empty("batch");
    run(Input::dense(matrix(rnn.backend(), 4, 4), 0)).empty("batch");
    run(Input::ids(vec![], 0)).empty("batch");
}

#[test]
fn forward_rejects_rows_not_a_multiple_of_the_batch() {
    let rnn = model(F64::new(), 1);
    let run = |x: Input<F64>| rnn.forward(&x, None);
    let multiple_of_2 = "a multiple of 2 rows";
    run(Input::ids(vec![0, 1, 2, 3, 0], 2)).shape(multiple_of_2, "5 rows");
    run(Input::ids(vec![3], 2)).shape(multiple_of_2, "1 rows");
    run(Input::dense(matrix(rnn.backend(), 3, 4), 2)).shape(multiple_of_2, "3 rows");
    let m = run(Input::ids(vec![0; 7], 3)).shape("a multiple of 3 rows", "7 rows");
    mentions(&m, &["input rows", "batch 3"]);
}

#[test]
fn forward_rejects_dense_input_of_the_wrong_width() {
    let rnn = model(F64::new(), 2);
    let run = |x| rnn.forward(&Input::dense(x, 2), None);
    run(matrix(rnn.backend(), 4, 5)).shape("(4, 4)", "(4, 5)");
    // Layer 1 takes H = 3 columns; the model's input is still I = 4.
    run(matrix(rnn.backend(), 4, 3)).shape("(4, 4)", "(4, 3)");
    let f32_rnn = model(F32::new(), 1);
    let x = Input::dense(matrix(f32_rnn.backend(), 6, 1), 3);
    f32_rnn.forward(&x, None).shape("(6, 4)", "(6, 1)");
}

#[test]
fn forward_rejects_a_token_id_not_below_the_input_size() {
    let rnn = model(F64::new(), 2);
    let run = |ids: Vec<usize>, batch| rnn.forward(&Input::ids(ids, batch), None);
    let m = run(vec![0, 1, 4, 2], 2).index(2, 4, 4);
    mentions(&m, &["input token ids"]);
    // The first offender is named, not a later one.
    run(vec![0, 9, 5, 1], 2).index(1, 9, 4);
    run(vec![usize::MAX, 0], 1).index(0, usize::MAX, 4);
    let f32_rnn = model(F32::new(), 1);
    let x = Input::ids(vec![3, 3, 3, 4], 4);
    f32_rnn.forward(&x, None).index(3, 4, 4);
}

// ---------------------------------------------------------------------------------------------
// Rnn::forward: the initial state

#[test]
fn forward_rejects_a_state_with_the_wrong_layer_count() {
    let one = model(F64::new(), 1);
    let two = model(F64::new(), 2);
    let m = one
        .forward(&ids(), Some(&two.zero_state(2)))
        .shape("1", "2");
    mentions(&m, &["initial state (layers x directions)"]);
    one.forward(&ids(), Some(&State::new(vec![])))
        .shape("1", "0");
    two.forward(&ids(), Some(&one.zero_state(2)))
        .shape("2", "1");
}

#[test]
fn forward_rejects_a_state_of_the_wrong_shape() {
    let rnn = model(F64::new(), 1);
    let b = rnn.backend();
    let run = |s: State<F64>| rnn.forward(&ids(), Some(&s));
    // Batch 3 for an input of batch 2.
    let m = run(state1(b, 3, 3, false)).shape("(2, 3)", "(3, 3)");
    mentions(&m, &["initial state h"]);
    // Hidden 5 for a model of hidden 3.
    run(state1(b, 2, 5, false)).shape("(2, 3)", "(2, 5)");
    // A state carried from a window of another batch size.
    run(rnn.zero_state(1)).shape("(2, 3)", "(1, 3)");
}

#[test]
fn forward_rejects_a_cell_vector_for_an_elman_cell() {
    let rnn = model(F64::new(), 1);
    let s = state1(rnn.backend(), 2, 3, true);
    let result = rnn.forward(&ids(), Some(&s));
    result.config(&["initial state", "no cell state", "c was given"]);
}

#[test]
fn forward_names_the_layer_of_a_bad_state_in_a_stack() {
    let rnn = model(F64::new(), 2);
    let b = rnn.backend();
    let run = |s: State<F64>| rnn.forward(&ids(), Some(&s));
    let m = run(state2(b, 2, 5, false)).shape("(2, 3)", "(2, 5)");
    mentions(&m, &["layer 1"]);
    let m = run(state2(b, 1, 3, false)).shape("(2, 3)", "(1, 3)");
    mentions(&m, &["layer 1"]);
    // Layer 0's errors carry no prefix.
    let s = State::new(vec![state(b, 2, 5, false), state(b, 2, 3, false)]);
    let m = run(s).shape("(2, 3)", "(2, 5)");
    assert!(!m.contains("layer 1"), "{m}");
}

/// A cell vector in layer 1 of a stack: the message must say which layer, as a shape error does.
#[test]
fn forward_names_the_layer_of_a_stray_cell_vector() {
    let rnn = model(F64::new(), 2);
    let s = state2(rnn.backend(), 2, 3, true);
    rnn.forward(&ids(), Some(&s))
        .config(&["layer 1", "c was given"]);
}

// ---------------------------------------------------------------------------------------------
// Rnn::backward

#[test]
fn backward_rejects_a_logits_gradient_of_the_wrong_shape() {
    let rnn = model(F64::new(), 2);
    let b = rnn.backend();
    let trace = rnn.forward(&ids(), None).expect("valid input");
    let m = rnn
        .backward(&trace, &b.zeros(4, 3))
        .shape("(4, 4)", "(4, 3)");
    mentions(&m, &["logits gradient"]);
    rnn.backward(&trace, &b.zeros(3, 4))
        .shape("(4, 4)", "(3, 4)");
    rnn.backward(&trace, &b.zeros(0, 0))
        .shape("(4, 4)", "(0, 0)");
    let f32_rnn = model(F32::new(), 1);
    let trace = f32_rnn.forward(&Input::ids(IDS.to_vec(), 4), None);
    let trace = trace.expect("valid input");
    let d_logits = f32_rnn.backend().zeros(4, 1);
    f32_rnn
        .backward(&trace, &d_logits)
        .shape("(4, 4)", "(4, 1)");
}

#[test]
fn backward_with_state_rejects_a_final_state_gradient_that_does_not_fit() {
    let rnn = model(F64::new(), 1);
    let b = rnn.backend();
    let trace = rnn.forward(&ids(), None).expect("valid input");
    let d_logits = matrix(b, 4, 4);
    let run = |d: State<F64>| rnn.backward_with_state(&trace, &d_logits, Some(&d));
    let m = run(model(F64::new(), 2).zero_state(2)).shape("1", "2");
    mentions(&m, &["final state gradient (layers x directions)"]);
    run(State::new(vec![])).shape("1", "0");
    let m = run(state1(b, 2, 5, false)).shape("(2, 3)", "(2, 5)");
    mentions(&m, &["final state gradient h"]);
    run(state1(b, 1, 3, false)).shape("(2, 3)", "(1, 3)");
    run(state1(b, 2, 3, true)).config(&["final state gradient", "c was given"]);
}

#[test]
fn backward_with_state_names_the_layer_in_a_stack() {
    let rnn = model(F64::new(), 2);
    let b = rnn.backend();
    let trace = rnn.forward(&ids(), None).expect("valid input");
    let d = state2(b, 2, 4, false);
    let result = rnn.backward_with_state(&trace, &matrix(b, 4, 4), Some(&d));
    mentions(&result.shape("(2, 3)", "(2, 4)"), &["layer 1"]);
}

#[test]
fn backward_rejects_a_trace_from_a_deeper_model() {
    let rnn = model(F64::new(), 1);
    let trace = model(F64::new(), 2).forward(&ids(), None).expect("valid");
    let m = rnn
        .backward(&trace, &matrix(rnn.backend(), 4, 4))
        .shape("1", "2");
    mentions(&m, &["trace layers"]);
}

// The next three: documented as "[`Error::Shape`] if ... the trace was made by a model of another
// shape", for a trace whose logits have the right shape.

#[test]
fn backward_rejects_a_trace_from_a_model_of_another_hidden_size() {
    let rnn = model(F64::new(), 1);
    let trace = sized(F64::new(), 4, 5, 1)
        .forward(&ids(), None)
        .expect("valid");
    rnn.backward(&trace, &matrix(rnn.backend(), 4, 4))
        .any_shape();
}

#[test]
fn backward_rejects_a_dense_trace_from_a_model_of_another_input_size() {
    let rnn = model(F64::new(), 1);
    let b = rnn.backend();
    let x = Input::dense(matrix(b, 4, 6), 2);
    let trace = sized(F64::new(), 6, 3, 1).forward(&x, None).expect("valid");
    rnn.backward(&trace, &matrix(b, 4, 4)).any_shape();
}

#[test]
fn backward_rejects_an_id_trace_from_a_model_of_a_larger_vocabulary() {
    let rnn = model(F64::new(), 1);
    let x = Input::ids(vec![5, 4, 1, 0], 2);
    let trace = sized(F64::new(), 6, 3, 1).forward(&x, None).expect("valid");
    let result = rnn.backward(&trace, &matrix(rnn.backend(), 4, 4));
    let err = result.expect_err("ids 5 and 4 are not below this model's 4");
    assert!(
        matches!(err, Error::Shape { .. } | Error::Index { .. }),
        "{err:?}"
    );
}

// ---------------------------------------------------------------------------------------------
// CrossEntropy::forward

fn loss_errors<B: Kernels>(backend: &B, loss: CrossEntropy) {
    let logits = matrix(backend, 4, 4);
    let run = |targets: &[usize]| loss.forward(backend, &logits, targets);
    let m = run(&[0, 1, 2]).shape("4", "3");
    mentions(&m, &["targets (one per logits row)"]);
    run(&[0, 1, 2, 3, 0]).shape("4", "5");
    run(&[]).shape("4", "0");
    mentions(&run(&[0, 1, 4, 2]).index(2, 4, 4), &["targets"]);
    run(&[3, 3, 3, 7]).index(3, 7, 4);
    let none = backend.zeros(0, 4);
    loss.forward(backend, &none, &[]).empty("logits");
    loss.forward(backend, &none, &[0]).empty("logits");
}

#[test]
fn cross_entropy_sum_rejects_bad_targets() {
    loss_errors(&F64::new(), CrossEntropy::sum());
    loss_errors(&F32::new(), CrossEntropy::sum());
}

#[test]
fn cross_entropy_mean_rejects_bad_targets() {
    loss_errors(&F64::new(), CrossEntropy::mean());
    loss_errors(&F32::new(), CrossEntropy::mean());
}

// ---------------------------------------------------------------------------------------------
// Clipping

/// Thresholds that are not finite and positive, with how the message prints them.
const BAD_THRESHOLDS: [(f64, &str); 6] = [
    (0.0, "given 0"),
    (-0.0, "given -0"),
    (-1.0, "given -1"),
    (f64::NAN, "given NaN"),
    (f64::INFINITY, "given inf"),
    (f64::NEG_INFINITY, "given -inf"),
];

#[test]
fn clip_by_value_rejects_bad_thresholds_and_changes_nothing() {
    let mut grads = gradients(&model(F64::new(), 1));
    let before = grads_of(&grads);
    for (threshold, given) in BAD_THRESHOLDS {
        clip::by_value(&mut grads, threshold).config(&["clip threshold", given]);
        assert_eq!(grads_of(&grads), before, "after threshold {threshold}");
    }
    let mut grads = gradients(&model(F32::new(), 1));
    let before = grads_of(&grads);
    clip::by_value(&mut grads, f32::NAN).config(&["given NaN"]);
    clip::by_value(&mut grads, -2.5f32).config(&["given -2.5"]);
    assert_eq!(grads_of(&grads), before);
}

#[test]
fn clip_global_norm_rejects_bad_thresholds_and_changes_nothing() {
    let mut grads = gradients(&model(F64::new(), 1));
    let before = grads_of(&grads);
    for (threshold, given) in BAD_THRESHOLDS {
        clip::global_norm(&mut grads, threshold).config(&["max norm", given]);
        assert_eq!(grads_of(&grads), before, "after max norm {threshold}");
    }
    let mut grads = gradients(&model(F32::new(), 1));
    let before = grads_of(&grads);
    clip::global_norm(&mut grads, f32::INFINITY).config(&["given inf"]);
    clip::global_norm(&mut grads, 0.0f32).config(&["given 0"]);
    assert_eq!(grads_of(&grads), before);
}

#[test]
fn clip_global_norm_rejects_non_finite_gradients_and_changes_nothing() {
    let rnn = model(F64::new(), 2);
    let poisons = [
        ("weight_hh_l0", f64::NAN),
        ("out.bias", f64::INFINITY),
        ("bias_ih_l1", f64::NEG_INFINITY),
    ];
    for (name, bad) in poisons {
        let mut grads = gradients(&rnn);
        poison(&mut grads, name, bad);
        let before = grads_of(&grads);
        // A tiny max norm: a finite norm would be scaled, so any write would show.
        clip::global_norm(&mut grads, 1e-3).non_finite("gradient norm");
        assert_eq!(grads_of(&grads), before, "after {bad} in {name}");
    }
}

// ---------------------------------------------------------------------------------------------
// Sgd

#[test]
fn sgd_rejects_bad_learning_rates() {
    for (lr, given) in BAD_THRESHOLDS.into_iter().chain([(-0.1, "given -0.1")]) {
        Sgd::<F64>::new(lr).config(&["learning rate", given]);
    }
}

#[test]
fn sgd_step_rejects_gradients_of_another_model_and_changes_nothing() {
    let mut sgd = Sgd::new(0.1).expect("valid lr");
    let mut rnn = model(F64::new(), 1);
    let before = params_of(&rnn);
    let mut step = |grads: Gradients<F64>| sgd.step(&mut rnn, &grads);
    // Hidden 5: the same names, weight_ih_l0 is (5, 4) where the model's is (3, 4).
    let m = step(gradients(&sized(F64::new(), 4, 5, 1))).shape("(3, 4)", "(5, 4)");
    mentions(&m, &["weight_ih_l0"]);
    // Input 6: only weight_ih_l0 differs.
    let m = step(gradients(&sized(F64::new(), 6, 3, 1))).shape("(3, 4)", "(3, 6)");
    mentions(&m, &["weight_ih_l0"]);
    // Other names: a deeper model, a model without an output layer.
    let m = step(gradients(&model(F64::new(), 2))).any_shape();
    mentions(&m, &["parameter names", "weight_ih_l1"]);
    let bare = build(RnnConfig::rnn(4, 3)).expect("valid");
    mentions(&step(gradients(&bare)).any_shape(), &["out.weight"]);
    assert_eq!(params_of(&rnn), before);
}

// ---------------------------------------------------------------------------------------------
// Cell::step_forward and Cell::step_backward

/// A cell (I = 4, H = 3), a good input `x` (`2 x 4`), state `prev` and state gradient `d`
/// (`2 x 3`), all on `b`.
type Step = (
    F64,
    RnnCell<F64>,
    DenseMatrix<f64>,
    CellState<F64>,
    CellState<F64>,
);

fn step() -> Step {
    let b = F64::new();
    let cell = RnnCell::new(&b, 4, 3, Nonlinearity::Tanh, &mut rng()).expect("valid");
    let (x, prev) = (matrix(&b, 2, 4), state(&b, 2, 3, false));
    let d = CellState {
        h: matrix(&b, 2, 3),
        c: None,
    };
    (b, cell, x, prev, d)
}

#[test]
fn step_forward_rejects_wrong_shapes() {
    let (b, cell, x, prev, _) = step();
    let run = |x: &DenseMatrix<f64>, prev: CellState<F64>| cell.step_forward(&b, x, &prev);
    let m = run(&matrix(&b, 2, 5), prev).shape("(2, 4)", "(2, 5)");
    mentions(&m, &["cell input x"]);
    let m = run(&x, state(&b, 2, 5, false)).shape("(2, 3)", "(2, 5)");
    mentions(&m, &["previous state h"]);
    run(&x, state(&b, 3, 3, false)).shape("(2, 3)", "(3, 3)");
    run(&x, state(&b, 2, 3, true)).config(&["previous state", "c was given"]);
}

#[test]
fn step_backward_rejects_wrong_shapes_and_adds_nothing() {
    let (b, cell, x, prev, d) = step();
    let cache = cell.step_forward(&b, &x, &prev).expect("valid step");
    let mut grads = cell.params().zeros_like(&b);
    let before = bits(&b, grads.named("l0"));
    let mut run = |x: &DenseMatrix<f64>, prev: &CellState<F64>, d: &CellState<F64>| {
        cell.step_backward(&b, x, prev, &cache, d, &mut grads)
    };
    run(&matrix(&b, 2, 5), &prev, &d).shape("(2, 4)", "(2, 5)");
    run(&matrix(&b, 3, 4), &prev, &d).shape("(2, 4)", "(3, 4)");
    run(&x, &state(&b, 2, 5, false), &d).shape("(2, 3)", "(2, 5)");
    run(&x, &state(&b, 1, 3, false), &d).shape("(2, 3)", "(1, 3)");
    run(&x, &state(&b, 2, 3, true), &d).config(&["previous state", "c was given"]);
    let m = run(&x, &prev, &state(&b, 2, 5, false)).shape("(2, 3)", "(2, 5)");
    mentions(&m, &["state gradient h"]);
    run(&x, &prev, &state(&b, 4, 3, false)).shape("(2, 3)", "(4, 3)");
    run(&x, &prev, &state(&b, 2, 3, true)).config(&["state gradient", "c was given"]);
    assert_eq!(bits(&b, grads.named("l0")), before);
}

#[test]
fn step_backward_rejects_gradients_of_another_shape_and_adds_nothing() {
    let (b, cell, x, prev, d) = step();
    let cache = cell.step_forward(&b, &x, &prev).expect("valid step");
    let run = |grads: &mut CellParams<F64>| {
        let before = bits(&b, grads.named("l0"));
        let result = cell.step_backward(&b, &x, &prev, &cache, &d, grads);
        assert_eq!(bits(&b, grads.named("l0")), before);
        result
    };
    let wide = RnnCell::new(&b, 4, 5, Nonlinearity::Tanh, &mut rng()).expect("valid");
    let m = run(&mut wide.params().zeros_like(&b)).shape("(3, 4)", "(5, 4)");
    mentions(&m, &["gradient weight_ih"]);
    // No biases: two gradient matrices where the cell has four.
    let unbiased =
        RnnCell::from_weights(&b, b.zeros(3, 4), b.zeros(3, 3), None, Nonlinearity::Tanh);
    let m = run(&mut unbiased.expect("valid").params().zeros_like(&b)).shape("4", "2");
    mentions(&m, &["count"]);
}

/// A step cache whose state is not `B x H` (from another cell) must be rejected, not reach a kernel.
#[test]
fn step_backward_rejects_a_step_cache_of_another_width() {
    let (b, cell, x, prev, d) = step();
    let wide = RnnCell::new(&b, 4, 5, Nonlinearity::Tanh, &mut rng()).expect("valid");
    let cache = wide
        .step_forward(&b, &x, &state(&b, 2, 5, false))
        .expect("valid step of the wider cell");
    let mut grads = cell.params().zeros_like(&b);
    let before = bits(&b, grads.named("l0"));
    cell.step_backward(&b, &x, &prev, &cache, &d, &mut grads)
        .any_shape();
    assert_eq!(bits(&b, grads.named("l0")), before);
}

// ---------------------------------------------------------------------------------------------
// Matrices from data

#[test]
fn from_vec_rejects_the_wrong_length() {
    let m = DenseMatrix::from_vec(2, 3, vec![0.0f64; 5]).shape("6", "5");
    mentions(&m, &["2 x 3"]);
    DenseMatrix::from_vec(2, 3, vec![0.0f32; 7]).shape("6", "7");
    DenseMatrix::<f64>::from_vec(0, 3, vec![1.0]).shape("0", "1");
    mentions(
        &F32::new().from_vec(3, 2, vec![0.0; 4]).shape("6", "4"),
        &["3 x 2"],
    );
    F64::new().from_vec(1, 4, vec![]).shape("4", "0");
}

// ---------------------------------------------------------------------------------------------
// Gradient checking

#[test]
fn gradcheck_rejects_mismatched_lengths_before_calling_f() {
    let mut calls = 0;
    let f = |_: &[f64]| {
        calls += 1;
        Ok(0.0)
    };
    let result = gradcheck::check("w", &[1.0, 2.0, 3.0], &[0.1, 0.2], f, Options::default());
    mentions(&result.shape("3", "2"), &["analytic gradient of w"]);
    assert_eq!(calls, 0, "f was called on mismatched input");
    let result = gradcheck::check("v", &[], &[0.5], |_| Ok(0.0), Options::default());
    result.shape("0", "1");
}

#[test]
fn gradcheck_rnn_passes_on_the_models_errors() {
    let rnn = model(F64::new(), 1);
    let run = |input: &Input<F64>, targets: &[usize]| {
        let loss = CrossEntropy::sum();
        gradcheck::check_rnn(&rnn, input, None, targets, loss, Options::default())
    };
    run(&ids(), &[0, 1, 2]).shape("4", "3");
    run(&ids(), &[0, 1, 2, 9]).index(3, 9, 4);
    run(&Input::ids(vec![0, 4], 1), &[0, 0]).index(1, 4, 4);
    run(&Input::ids(IDS.to_vec(), 0), &TARGETS).empty("batch");
}

// ---------------------------------------------------------------------------------------------
// The error type itself

#[test]
fn errors_are_std_errors_that_cross_threads() {
    fn boxed(e: Error) -> Box<dyn std::error::Error + Send + Sync + 'static> {
        Box::new(e)
    }
    let rnn = model(F64::new(), 1);
    let err = rnn
        .forward(&Input::ids(vec![7], 1), None)
        .expect_err("id 7 of 4");
    let message = err.to_string();
    assert_eq!(boxed(err).to_string(), message);
}
