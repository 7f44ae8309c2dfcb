//! `State::from_pytorch` / `to_pytorch`: PyTorch's `(L*D, B, H)` `h_0`, `c_0`, `h_n`, `c_n`
//! against the parity fixtures PyTorch wrote (`tests/fixtures/generate.py`), round trips, and
//! every error.

use recurrent::{Backend, Kernels};
use recurrent::{CellState, Cpu, Error, Input, NaiveCpu, Rnn, RnnConfig, State, StateDict};
use std::path::Path;

fn fixture(name: &str) -> StateDict {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures")
        .join(name);
    StateDict::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// A fixture tensor's shape as `[L*D, B, H]` and its values.
fn tensor(dict: &StateDict, name: &str) -> Option<([usize; 3], Vec<f64>)> {
    let t = dict.get(name)?;
    let shape: [usize; 3] = t.shape().try_into().expect("a 3-dimensional state");
    Some((shape, t.floats().expect("floats").to_vec()))
}

/// Runs a fixture with its `h0` (and `c0`) converted by `from_pytorch`, and compares the final
/// state converted by `to_pytorch` with PyTorch's `h_n` (and `c_n`).
fn check_case<B: Kernels<Scalar = f64>>(backend: B, name: &str) {
    let dict = fixture(name);
    let config = RnnConfig::from_state_dict(&dict).unwrap();
    let rnn = Rnn::from_state_dict(backend.clone(), config.clone(), &dict, false).unwrap();
    let (shape, h0) = tensor(&dict, "h0").expect("the fixture has h0");
    let c0 = tensor(&dict, "c0").map(|(s, c)| {
        assert_eq!(s, shape);
        c
    });
    let lstm = c0.is_some();
    assert_eq!(
        shape[0],
        config.num_layers() * config.directions(),
        "{name}"
    );
    let h0_state = State::from_pytorch(&backend, shape, h0.clone(), c0.clone()).unwrap();

    // The conversion back gives PyTorch's values, bit for bit.
    let (h, c) = h0_state.to_pytorch(&backend).unwrap();
    assert_eq!((h, c), (h0, c0), "{name}: h0 round trip");
    assert_eq!(h0_state.pytorch_shape(&backend).unwrap(), shape);

    let input_shape = dict.get("input").unwrap().shape().to_vec();
    let (steps, batch, width) = (input_shape[0], input_shape[1], input_shape[2]);
    let x = dict.get("input").unwrap().floats().unwrap().to_vec();
    let input = Input::dense(backend.from_vec(steps * batch, width, x).unwrap(), batch);
    let h_n = rnn.forward(&input, Some(&h0_state)).unwrap().final_state();
    assert_eq!(h_n.pytorch_shape(&backend).unwrap(), shape, "{name}");
    let (h, c) = h_n.to_pytorch(&backend).unwrap();
    let (_, want_h) = tensor(&dict, "h_n").unwrap();
    close(name, "h_n", &h, &want_h);
    match (c, tensor(&dict, "c_n")) {
        (Some(c), Some((_, want_c))) => close(name, "c_n", &c, &want_c),
        (None, None) => assert!(!lstm),
        (c, want) => panic!("{name}: c_n {:?} against PyTorch's {:?}", c.is_some(), want),
    }
}

fn close(case: &str, what: &str, got: &[f64], want: &[f64]) {
    assert_eq!(got.len(), want.len(), "{case} {what}");
    for (i, (g, w)) in got.iter().zip(want).enumerate() {
        let error = (g - w).abs() / w.abs().max(1.0);
        assert!(
            error <= 1e-10,
            "{case} {what}[{i}]: {g} against PyTorch's {w}"
        );
    }
}

const CASES: [&str; 6] = [
    "rnn_l2_bi_b3_h0.safetensors",
    "lstm_l2_bi_b3_h0.safetensors",
    "gru_l2_bi_b3_h0.safetensors",
    "lstm_l2_bi_b1_h0.safetensors",
    "lstm_l1_bi_b3_h0.safetensors",
    "gru_l2_uni_b3_h0.safetensors",
];

#[test]
fn pytorch_states_convert_both_ways_on_naive_cpu() {
    for case in CASES {
        check_case(NaiveCpu::<f64>::default(), case);
    }
}

#[test]
fn pytorch_states_convert_both_ways_on_cpu() {
    for case in CASES {
        check_case(Cpu::<f64>::with_threads(1), case);
    }
}

#[test]
fn from_pytorch_takes_block_k_for_layer_and_direction_k() {
    let b = NaiveCpu::<f32>::default();
    let h: Vec<f32> = (0..24u8).map(f32::from).collect();
    let state = State::from_pytorch(&b, [4, 2, 3], h, None).unwrap();
    assert_eq!(state.layers().len(), 4);
    for (k, layer) in state.layers().iter().enumerate() {
        let first = (k * 6) as f32;
        let want: Vec<f32> = (0..6).map(|i| first + i as f32).collect();
        assert_eq!(b.shape(&layer.h), (2, 3));
        assert_eq!(b.to_vec(&layer.h), want);
        assert!(layer.c.is_none());
    }
    // State -> PyTorch -> State keeps every bit.
    let (h, c) = state.to_pytorch(&b).unwrap();
    let again = State::from_pytorch(&b, [4, 2, 3], h.clone(), c).unwrap();
    assert_eq!(again.to_pytorch(&b).unwrap(), (h, None));
}

#[test]
fn from_pytorch_refuses_wrong_lengths_and_empty_shapes() {
    let b = NaiveCpu::<f64>::default();
    let err = State::from_pytorch(&b, [2, 3, 4], vec![0.0; 23], None).unwrap_err();
    assert_eq!(
        err.to_string(),
        "PyTorch h_0 of shape (L*D, B, H) = [2, 3, 4]: expected shape 2*3*4 values, given 23 values"
    );
    let err = State::from_pytorch(&b, [2, 3, 4], vec![0.0; 24], Some(vec![0.0; 25])).unwrap_err();
    assert!(
        matches!(&err, Error::Shape { what, .. } if what.contains("c_0")),
        "{err}"
    );
    for shape in [[0, 3, 4], [2, 0, 4], [2, 3, 0]] {
        let err = State::from_pytorch(&b, shape, vec![], None).unwrap_err();
        assert!(matches!(err, Error::Empty { .. }), "{shape:?}: {err}");
        assert!(err.to_string().contains(&format!("{shape:?}")), "{err}");
    }
    // A product that overflows is a shape error, not a panic.
    let err = State::from_pytorch(&b, [usize::MAX, 2, 2], vec![0.0; 4], None).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
}

#[test]
fn to_pytorch_refuses_layers_of_different_shapes() {
    let b = NaiveCpu::<f64>::default();
    let empty = State::<NaiveCpu<f64>>::new(vec![]);
    assert!(matches!(empty.to_pytorch(&b), Err(Error::Empty { .. })));

    let layer = |rows, cols, c: bool| CellState {
        h: b.zeros(rows, cols),
        c: c.then(|| b.zeros(rows, cols)),
    };
    let err = State::new(vec![layer(2, 3, false), layer(2, 4, false)])
        .to_pytorch(&b)
        .unwrap_err();
    assert_eq!(
        err.to_string(),
        "state of layer and direction 1: h, as layer 0's: expected shape (2, 3), given (2, 4)"
    );
    let mut odd = layer(2, 3, true);
    odd.c = Some(b.zeros(3, 3));
    let err = State::new(vec![layer(2, 3, true), odd])
        .pytorch_shape(&b)
        .unwrap_err();
    assert!(
        matches!(&err, Error::Shape { what, .. } if what.contains(": c")),
        "{err}"
    );
    for (first, second) in [(true, false), (false, true)] {
        let state = State::new(vec![layer(2, 3, first), layer(2, 3, second)]);
        let err = state.to_pytorch(&b).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err}");
        assert!(err.to_string().contains("layer and direction 1"), "{err}");
    }
}

#[test]
fn a_converted_state_of_the_wrong_size_is_refused_by_the_model() {
    use recurrent::rand::{SeedableRng, rngs::StdRng};
    let mut rng = StdRng::seed_from_u64(0);
    let b = NaiveCpu::<f64>::default();
    let config = RnnConfig::lstm(2, 5).layers(2).bidirectional(true);
    let rnn = Rnn::new(b, config, &mut rng).unwrap();
    let input = Input::dense(b.from_vec(3, 2, vec![0.1; 6]).unwrap(), 1);
    // L*D = 2 where the model has 4 layer states.
    let state = State::from_pytorch(&b, [2, 1, 5], vec![0.0; 10], Some(vec![0.0; 10])).unwrap();
    let err = rnn.forward(&input, Some(&state)).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(
        err.to_string().contains("expected shape 4, given 2"),
        "{err}"
    );
    // An LSTM state without c_0.
    let state = State::from_pytorch(&b, [4, 1, 5], vec![0.0; 20], None).unwrap();
    let err = rnn.forward(&input, Some(&state)).unwrap_err();
    assert!(err.to_string().contains("needs a cell state c"), "{err}");
}
