//! Bad input for the gated and bidirectional models: dropout, sequence lengths, LSTM and
//! bidirectional states, the masked loss, and gated cells from weights.
//!
//! The promise under test, as in `bad_input.rs`: input a user can get wrong gives an `Err` of the
//! documented [`Error`] variant, never a panic; its message names what was expected and what was
//! given.
//!
//! Models are small LSTMs: 4 inputs (token ids below 4), 3 hidden units, 4 outputs; sequences of
//! `T = 2` steps with batch `B = 2`, so logits are `4 x 4` and a state's `h` and `c` are `2 x 3`.
//! The fixtures and assertions shared with the other bad-input files are in `common/errors.rs`.

#[path = "common/errors.rs"]
mod errors;

use errors::{BadInput, F32, F64, IDS, ids, lstm, matrix, mentions, rng};
use recurrent::Kernels;
use recurrent::{
    Backend, Cell, CellState, CrossEntropy, GruCell, Input, LstmCell, Nonlinearity, Result, Rnn,
    RnnCell, RnnConfig, Scalar, State, Trace,
};

// ---------------------------------------------------------------------------------------------
// Fixtures

/// A state of zeros: `h` of shape `(rows, cols)`, and `c` of the given shape, if any.
fn state(b: &F64, (rows, cols): (usize, usize), c: Option<(usize, usize)>) -> CellState<F64> {
    CellState {
        h: b.zeros(rows, cols),
        c: c.map(|(r, k)| b.zeros(r, k)),
    }
}

/// The zero state of `rnn` for batch 2, with entry `index` (layer * directions + direction)
/// replaced by `bad`.
fn state_with(rnn: &Rnn<F64>, index: usize, bad: CellState<F64>) -> State<F64> {
    let mut layers = rnn.zero_state(2).into_layers();
    layers[index] = bad;
    State::new(layers)
}

/// `forward` and `forward_train` on the same input: both must reject it the same way.
fn both(rnn: &Rnn<F64>, input: &Input<F64>) -> [Result<Trace<F64>>; 2] {
    let train = rnn.forward_train(input, None, &mut rng());
    [rnn.forward(input, None), train]
}

// ---------------------------------------------------------------------------------------------
// Rnn::new: dropout

#[test]
fn new_rejects_dropout_outside_zero_to_one() {
    let bad = [
        (-0.1, "given -0.1"),
        (-0.0001, "given -0.0001"),
        (1.0, "given 1"),
        (1.5, "given 1.5"),
        (f64::NAN, "given NaN"),
        (f64::INFINITY, "given inf"),
        (f64::NEG_INFINITY, "given -inf"),
    ];
    for (p, given) in bad {
        let config = RnnConfig::lstm(4, 3).layers(2).dropout(p).output(4);
        let result = Rnn::new(F64::new(), config, &mut rng());
        result.config(&["dropout", "[0, 1)", given]);
        // One layer has nowhere to apply it, but the value is still wrong.
        let config = RnnConfig::gru(4, 3).dropout(p);
        Rnn::new(F32::new(), config, &mut rng()).config(&["dropout", given]);
        let config = RnnConfig::lstm(4, 3).output_dropout(p).output(4);
        Rnn::new(F64::new(), config, &mut rng()).config(&["output dropout", "[0, 1)", given]);
    }
    for p in [0.0, 0.5, 0.999] {
        let config = RnnConfig::rnn(4, 3).layers(2).dropout(p);
        Rnn::new(F64::new(), config, &mut rng()).expect("dropout in [0, 1)");
    }
}

// ---------------------------------------------------------------------------------------------
// Input::with_lengths, through forward and forward_train

#[test]
fn lengths_must_be_one_per_sequence_in_one_to_t() {
    let configs = [
        RnnConfig::lstm(4, 3).output(4),
        RnnConfig::lstm(4, 3).layers(2).dropout(0.5),
        RnnConfig::lstm(4, 3).layers(2).bidirectional(true),
        RnnConfig::gru(4, 3).bidirectional(true).output(4),
    ];
    for config in configs {
        let rnn = Rnn::new(F64::new(), config, &mut rng()).expect("valid");
        let with = |lengths: Vec<usize>| ids().with_lengths(lengths);
        for r in both(&rnn, &with(vec![2])) {
            let m = r.shape("2", "1");
            mentions(&m, &["sequence lengths", "one per batch entry"]);
        }
        for r in both(&rnn, &with(vec![2, 2, 1])) {
            r.shape("2", "3");
        }
        for r in both(&rnn, &with(vec![])) {
            r.shape("2", "0");
        }
        for r in both(&rnn, &with(vec![2, 0])) {
            mentions(&r.shape("1..=2 steps", "0 steps"), &["sequence 1"]);
        }
        for r in both(&rnn, &with(vec![3, 1])) {
            mentions(&r.shape("1..=2 steps", "3 steps"), &["sequence 0"]);
        }
        // The first offender is named.
        for r in both(&rnn, &with(vec![0, usize::MAX])) {
            mentions(&r.shape("1..=2 steps", "0 steps"), &["sequence 0"]);
        }
        let dense = Input::dense(matrix(rnn.backend(), 6, 4), 3).with_lengths(vec![1, 2, 4]);
        for r in both(&rnn, &dense) {
            mentions(&r.shape("1..=2 steps", "4 steps"), &["sequence 2"]);
        }
    }
}

/// `forward` documents `Error::Empty` for an empty sequence or batch; lengths checked first must
/// not turn that into a range like "1..=0 steps".
#[test]
fn lengths_do_not_hide_an_empty_sequence() {
    let rnn = lstm(F64::new(), 1, true, 42);
    for r in both(&rnn, &Input::ids(vec![], 2).with_lengths(vec![1, 1])) {
        r.empty("input sequence");
    }
}

/// As above, for a batch of 0.
#[test]
fn lengths_do_not_hide_an_empty_batch() {
    let rnn = lstm(F64::new(), 1, true, 42);
    for r in both(&rnn, &Input::ids(IDS.to_vec(), 0).with_lengths(vec![2])) {
        r.empty("batch");
    }
}

// ---------------------------------------------------------------------------------------------
// Initial states: LSTM cell vectors, bidirectional counts, the layer and direction named

#[test]
fn lstm_state_needs_a_cell_vector_of_the_right_shape() {
    let rnn = lstm(F64::new(), 1, false, 42);
    let b = rnn.backend();
    let run = |s: CellState<F64>| rnn.forward(&ids(), Some(&State::new(vec![s])));
    run(state(b, (2, 3), None)).config(&["initial state", "needs a cell state c"]);
    let m = run(state(b, (2, 3), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
    mentions(&m, &["initial state c"]);
    run(state(b, (2, 3), Some((1, 3)))).shape("(2, 3)", "(1, 3)");
    // h is checked first.
    run(state(b, (2, 5), None)).shape("(2, 3)", "(2, 5)");
    let no_c = state_with(&rnn, 0, state(b, (2, 3), None));
    let train = rnn.forward_train(&ids(), Some(&no_c), &mut rng());
    train.config(&["needs a cell state c"]);
}

#[test]
fn bidirectional_state_count_is_layers_times_directions() {
    let one = lstm(F64::new(), 1, true, 42);
    let two = lstm(F64::new(), 2, true, 42);
    let uni = lstm(F64::new(), 1, false, 42);
    let run = |rnn: &Rnn<F64>, state: State<F64>| rnn.forward(&ids(), Some(&state));
    let m = run(&one, uni.zero_state(2)).shape("2", "1");
    mentions(&m, &["initial state (layers x directions)"]);
    run(&two, one.zero_state(2)).shape("4", "2");
    let mut five = two.zero_state(2).into_layers();
    five.push(five[0].clone());
    run(&two, State::new(five)).shape("4", "5");
    let train = two.forward_train(&ids(), Some(&State::new(vec![])), &mut rng());
    train.shape("4", "0");
}

#[test]
fn bad_reverse_and_upper_layer_states_are_rejected() {
    let one = lstm(F64::new(), 1, true, 42);
    let b = one.backend();
    let run = |rnn: &Rnn<F64>, index, s| rnn.forward(&ids(), Some(&state_with(rnn, index, s)));
    run(&one, 1, state(b, (2, 5), Some((2, 5)))).shape("(2, 3)", "(2, 5)");
    run(&one, 1, state(b, (2, 3), Some((3, 3)))).shape("(2, 3)", "(3, 3)");
    run(&one, 1, state(b, (2, 3), None)).config(&["needs a cell state c"]);
    let two = lstm(F64::new(), 2, true, 42);
    for index in [2, 3] {
        let m = run(&two, index, state(b, (2, 4), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
        mentions(&m, &["layer 1"]);
        let m = run(&two, index, state(b, (2, 3), Some((2, 1)))).shape("(2, 3)", "(2, 1)");
        mentions(&m, &["layer 1", "initial state c"]);
        run(&two, index, state(b, (2, 3), None)).config(&["layer 1", "cell state c"]);
    }
    let config = RnnConfig::gru(4, 3).bidirectional(true);
    let gru = Rnn::new(F64::new(), config, &mut rng()).expect("valid");
    run(&gru, 1, state(b, (2, 3), Some((2, 3)))).config(&["c was given"]);
}

/// With two directions a user passes two states per layer; as a layer is named, so must the
/// direction be, or a bad forward and a bad reverse state read the same.
#[test]
fn a_bad_reverse_state_is_named_as_such() {
    let rnn = lstm(F64::new(), 2, true, 42);
    let b = rnn.backend();
    let run = |index| {
        let s = state_with(&rnn, index, state(b, (2, 5), Some((2, 5))));
        rnn.forward(&ids(), Some(&s)).shape("(2, 3)", "(2, 5)")
    };
    for (forward, reverse) in [(0, 1), (2, 3)] {
        let (f, r) = (run(forward), run(reverse));
        assert_ne!(f, r, "states {forward} and {reverse} give the same message");
        assert!(r.contains("reverse") || r.contains("direction"), "{r}");
    }
}

// ---------------------------------------------------------------------------------------------
// CrossEntropy::forward_masked

fn masked_errors<B: Kernels>(backend: &B, loss: CrossEntropy) {
    let logits = matrix(backend, 4, 4);
    let run = |targets: &[usize], mask: &[bool]| {
        loss.forward_masked(backend, &logits, targets, Some(mask))
    };
    let (targets, keep) = ([1, 2, 0, 1], [true, false, true, true]);
    let m = run(&targets, &keep[..3]).shape("4", "3");
    mentions(&m, &["mask (one per logits row)"]);
    run(&targets, &[true; 5]).shape("4", "5");
    run(&targets, &[]).shape("4", "0");
    run(&targets, &[false; 4]).empty("mask selection");
    run(&targets[..3], &keep).shape("4", "3");
    mentions(&run(&[1, 2, 0, 7], &keep).index(3, 7, 4), &["targets"]);
    // The first kept offender, by its row in the full batch.
    run(&[1, 9, 4, 5], &keep).index(2, 4, 4);
    let none = backend.zeros(0, 4);
    let result = loss.forward_masked(backend, &none, &[], Some(&[]));
    result.empty("logits");
    // A masked-out row's target is not read: any value gives the same loss and gradient.
    let bits = |(l, g): (B::Scalar, B::Matrix)| {
        let grad = backend.to_vec(&g).into_iter().map(|v| v.to_f64().to_bits());
        (l.to_f64().to_bits(), grad.collect::<Vec<_>>())
    };
    let reference = bits(run(&targets, &keep).expect("valid"));
    for ignored in [4, 99, usize::MAX] {
        let result = run(&[1, ignored, 0, 1], &keep).expect("row 1 is masked out");
        assert_eq!(bits(result), reference, "target {ignored}, masked out");
    }
}

#[test]
fn forward_masked_rejects_bad_masks_and_targets() {
    for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
        masked_errors(&F64::new(), loss.clone());
        masked_errors(&F32::new(), loss);
    }
}

// ---------------------------------------------------------------------------------------------
// Cells from weights, and LSTM steps

#[test]
fn lstm_and_gru_from_weights_reject_shapes_that_do_not_fit() {
    let b = F64::new();
    let lstm = |ih: (usize, usize), hh: (usize, usize), biases: Option<[(usize, usize); 2]>| {
        let biases = biases.map(|[i, h]| (b.zeros(i.0, i.1), b.zeros(h.0, h.1)));
        LstmCell::from_weights(&b, b.zeros(ih.0, ih.1), b.zeros(hh.0, hh.1), biases)
    };
    // weight_ih's rows are 4 gates of H; they fix H = 3 for the rest.
    let m = lstm((6, 4), (6, 3), None).any_shape_given("(6, 4)");
    mentions(&m, &["weight_ih", "4 * H", "LSTM"]);
    lstm((9, 4), (9, 3), None).any_shape_given("(9, 4)");
    let m = lstm((12, 4), (12, 4), None).shape("(12, 3)", "(12, 4)");
    mentions(&m, &["weight_hh"]);
    lstm((12, 4), (3, 3), None).shape("(12, 3)", "(3, 3)");
    let m = lstm((12, 4), (12, 3), Some([(12, 1), (1, 12)])).shape("(1, 12)", "(12, 1)");
    mentions(&m, &["bias_ih"]);
    let m = lstm((12, 4), (12, 3), Some([(1, 12), (1, 3)])).shape("(1, 12)", "(1, 3)");
    mentions(&m, &["bias_hh"]);
    lstm((0, 4), (0, 0), None).config(&["hidden size", "0"]);
    let f32 = F32::new();
    let gru = |ih: (usize, usize), hh: (usize, usize), bias: (usize, usize)| {
        let biases = Some((f32.zeros(bias.0, bias.1), f32.zeros(1, 9)));
        GruCell::from_weights(&f32, f32.zeros(ih.0, ih.1), f32.zeros(hh.0, hh.1), biases)
    };
    let m = gru((7, 4), (7, 3), (1, 9)).any_shape_given("(7, 4)");
    mentions(&m, &["weight_ih", "3 * H", "GRU"]);
    gru((10, 4), (10, 3), (1, 10)).any_shape_given("(10, 4)");
    gru((9, 4), (9, 2), (1, 9)).shape("(9, 3)", "(9, 2)");
    gru((9, 4), (9, 3), (1, 12)).shape("(1, 9)", "(1, 12)");
    gru((9, 4), (9, 3), (1, 9)).expect("fits");
}

/// The expected gate shape is a description, not a value: it should read like every other
/// `expected` field, without the quotes `Debug` puts around a string.
#[test]
fn from_weights_names_the_gate_shape_without_quotes() {
    let b = F64::new();
    let cell = LstmCell::from_weights(&b, b.zeros(6, 4), b.zeros(6, 3), None);
    cell.shape("(4 * H, 4) for the LSTM cell", "(6, 4)");
}

#[test]
fn lstm_step_forward_needs_a_cell_vector() {
    let b = F64::new();
    let cell = LstmCell::new(&b, 4, 3, &mut rng()).expect("valid");
    let x = matrix(&b, 2, 4);
    let run = |prev: CellState<F64>| cell.step_forward(&b, &x, &prev);
    run(state(&b, (2, 3), None)).config(&["previous state", "needs a cell state c"]);
    let m = run(state(&b, (2, 3), Some((2, 4)))).shape("(2, 3)", "(2, 4)");
    mentions(&m, &["previous state c"]);
    run(state(&b, (2, 3), Some((2, 3)))).expect("a full state");
    let gru = GruCell::new(&b, 4, 3, &mut rng()).expect("valid");
    let result = gru.step_forward(&b, &x, &state(&b, (2, 3), Some((2, 3))));
    result.config(&["c was given"]);
}

// ---------------------------------------------------------------------------------------------
// Traces and step caches from other models

/// A trace whose logits come from another output layer (or none) is refused before any product.
#[test]
fn backward_refuses_a_trace_whose_output_layer_differs() {
    let input = Input::ids(vec![0, 1, 2], 1);
    let model = |config: RnnConfig| Rnn::new(F64::new(), config, &mut rng()).expect("valid");
    let rnn = model(RnnConfig::rnn(4, 3).output(5));
    for other in [RnnConfig::rnn(4, 3).output(7), RnnConfig::rnn(4, 3)] {
        let trace = model(other).forward(&input, None).expect("valid input");
        let (rows, width) = trace.logits().shape();
        let d_logits = F64::new().zeros(rows, width);
        let m = rnn
            .backward(&trace, &d_logits)
            .shape("(3, 5)", &format!("({rows}, {width})"));
        mentions(&m, &["logits"]);
    }
}

/// A step cache from another kind of cell holds none of what this cell's backward reads.
#[test]
fn step_backward_refuses_a_cache_from_another_kind_of_cell() {
    let b = F64::new();
    let x = matrix(&b, 2, 4);
    let prev = CellState {
        h: b.zeros(2, 3),
        c: None,
    };
    let elman = RnnCell::new(&b, 4, 3, Nonlinearity::Tanh, &mut rng()).expect("valid");
    let gru = GruCell::new(&b, 4, 3, &mut rng()).expect("valid");
    let step = elman.step_forward(&b, &x, &prev).expect("valid step");
    let mut grads = gru.params().zeros_like(&b);
    let result = gru.step_backward(&b, &x, &prev, &step, &step.state, &mut grads);
    result.config(&["RNN", "GRU"]);
}
