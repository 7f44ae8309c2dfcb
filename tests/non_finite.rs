//! Non-finite numbers: a NaN or infinity in an input, a weight's product, the initial state, a
//! gradient or an update is found where it first appears, reported as `Error::NonFinite` naming
//! the place, and a training step that meets one leaves the model and the optimiser bit for bit
//! as they were.

#[path = "common/errors.rs"]
mod errors;

use errors::{BadInput, Snapshot, gradients, lstm, params_of};
use recurrent::Kernels;
use recurrent::prelude::*;
use recurrent::{CellState, NaiveCpu, Scalar, Tbptt};

type F32 = NaiveCpu<f32>;
type F64 = NaiveCpu<f64>;

/// Replaces entry `index` (row-major) of `m` with `value`.
fn set_entry<B: Kernels>(backend: &B, m: &mut B::Matrix, index: usize, value: f64) {
    let (rows, cols) = backend.shape(m);
    let mut data = backend.to_vec(m);
    data[index] = B::Scalar::of(value);
    *m = backend.from_vec(rows, cols, data).expect("same size");
}

/// One optimiser of each kind, with the options that give it the most buffers.
fn optimizers<B: Kernels>() -> Vec<Box<dyn Optimizer<B>>> {
    vec![
        Box::new(Sgd::new(0.1).unwrap().momentum(0.9).unwrap()),
        Box::new(Adagrad::new(0.1).unwrap().lr_decay(0.01).unwrap()),
        Box::new(
            RmsProp::new(0.01)
                .unwrap()
                .momentum(0.5)
                .unwrap()
                .centered(true)
                .unwrap(),
        ),
        Box::new(Adam::new(1e-3).unwrap().amsgrad(true).unwrap()),
    ]
}

/// The optimiser's metadata, and every tensor's name and bits.
type DictBits = (Vec<(String, String)>, Vec<(String, Vec<u64>)>);

/// The model's parameters and the optimiser's whole state, bit for bit.
fn snapshot<B: Kernels>(rnn: &Rnn<B>, optimizer: &dyn Optimizer<B>) -> (Snapshot, DictBits, u64) {
    let dict = optimizer.state_dict();
    let meta = dict.metadata().clone().into_iter().collect();
    let tensors = dict
        .names()
        .map(|n| {
            let floats = dict.get(n).and_then(|t| t.floats()).expect("float buffers");
            (n.to_string(), floats.iter().map(|v| v.to_bits()).collect())
        })
        .collect();
    (params_of(rnn), (meta, tensors), optimizer.step_count())
}

/// A step from `grads` must fail with `NonFinite` mentioning `what`, and change nothing.
#[track_caller]
fn refused<B: Kernels>(
    rnn: &mut Rnn<B>,
    optimizer: &mut dyn Optimizer<B>,
    grads: &Gradients<B>,
    what: &str,
) -> String {
    let before = snapshot(rnn, optimizer);
    let message = optimizer.step(rnn, grads).non_finite(what);
    assert!(before == snapshot(rnn, optimizer), "changed by: {message}");
    message
}

#[test]
fn a_nan_or_infinite_gradient_is_refused_naming_the_parameter_and_entry() {
    for mut optimizer in optimizers::<F64>() {
        let mut rnn = lstm(F64::new(), 2, true, 7);
        // A first step, so that the buffers exist and must stay as they are.
        let grads = gradients(&rnn);
        optimizer.step(&mut rnn, &grads).unwrap();
        for (name, index, value, text) in [
            ("weight_hh_l1_reverse", 5, f64::NAN, "entry [1, 2] is NaN"),
            ("out.bias", 3, f64::INFINITY, "entry [0, 3] is inf"),
            ("weight_ih_l0", 0, f64::NEG_INFINITY, "entry [0, 0] is -inf"),
        ] {
            let mut grads = gradients(&rnn);
            let backend = *rnn.backend();
            let slot = grads.params_mut().get_mut(name).unwrap();
            set_entry(&backend, slot, index, value);
            let what = format!("gradient of {name} ({text})");
            refused(&mut rnn, optimizer.as_mut(), &grads, &what);
        }
        // The model still trains afterwards, and a step that is applied shows in the snapshot.
        let (grads, before) = (gradients(&rnn), snapshot(&rnn, optimizer.as_ref()));
        optimizer.step(&mut rnn, &grads).unwrap();
        let after = snapshot(&rnn, optimizer.as_ref());
        assert!(before.0 != after.0 && before.1 != after.1 && before.2 + 1 == after.2);
        assert_eq!(optimizer.step_count(), 2);
    }
}

#[test]
fn an_update_that_overflows_is_not_applied() {
    // In f32, a learning rate of 1e39 rounds to infinity: every update overflows.
    for mut optimizer in optimizers::<F32>() {
        let mut rnn = lstm(F32::new(), 1, false, 3);
        let grads = gradients(&rnn);
        optimizer.step(&mut rnn, &grads).unwrap();
        optimizer.set_lr(1e39).unwrap();
        let grads = gradients(&rnn);
        let message = refused(&mut rnn, optimizer.as_mut(), &grads, "weight_ih_l0 after");
        errors::mentions(
            &message,
            &["update 2", "update was not applied", "learning rate"],
        );
    }
}

#[test]
fn a_buffer_that_overflows_is_not_kept() {
    // Adam's exp_avg_sq holds g^2 / 1000: for g = 1e30 that is beyond f32, though g and the
    // new parameter (moved by lr * m / sqrt(v), about lr) are finite.
    let mut rnn = lstm(F32::new(), 1, false, 3);
    let mut adam = Adam::<F32>::new(1e-3).unwrap();
    let mut grads = gradients(&rnn);
    for g in grads.params_mut().matrices_mut() {
        F32::new().scale(g, 0.0);
    }
    let backend = *rnn.backend();
    set_entry(
        &backend,
        grads.params_mut().get_mut("weight_hh_l0").unwrap(),
        4,
        1e30,
    );
    let message = refused(
        &mut rnn,
        &mut adam,
        &grads,
        "weight_hh_l0 after Adam update 1",
    );
    errors::mentions(&message, &["exp_avg_sq", "entry [1, 1] is inf"]);
    assert_eq!(adam.step_count(), 0);
    assert!(
        adam.state_dict().names().next().is_none(),
        "no buffers made"
    );
}

#[test]
fn a_nan_in_the_input_is_named_by_step_and_row_and_blocks_the_update() {
    let backend = F64::new();
    let config = RnnConfig::gru(3, 4).layers(2).bidirectional(true).output(3);
    let mut rnn = Rnn::new(backend, config, &mut errors::rng()).unwrap();
    // T = 4 steps of batch 2: row 2 * 2 + 1 is step 2, batch row 1.
    let mut x = errors::matrix(&backend, 8, 3);
    set_entry(&backend, &mut x, (2 * 2 + 1) * 3, f64::NAN);
    let trace = rnn.forward(&Input::dense(x, 2), None).unwrap();
    trace
        .check_finite(&backend)
        .non_finite("input at step 2, batch row 1 (column 0 is NaN)");
    let targets = [0, 1, 2, 0, 1, 2, 0, 1];
    let (loss, d_logits) = CrossEntropy::sum()
        .forward(&backend, trace.logits(), &targets)
        .unwrap();
    assert!(loss.is_nan());
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    grads.check_finite().non_finite("gradient of weight_ih_l0");
    let mut sgd = Sgd::new(0.1).unwrap();
    refused(
        &mut rnn,
        &mut sgd,
        &grads,
        "gradient of weight_ih_l0 (entry",
    );
}

#[test]
fn a_nan_in_the_initial_state_is_named_by_layer_direction_and_part() {
    let rnn = lstm(F64::new(), 2, true, 5);
    let backend = *rnn.backend();
    let mut layers = rnn.zero_state(2).into_layers();
    // Index 3 = layer 1, reverse; c is (2, 3): entry 5 is batch row 1, unit 2.
    let c = layers[3].c.as_mut().unwrap();
    set_entry(&backend, c, 5, f64::NAN);
    let state = State::new(layers);
    state
        .check_finite(&backend, 2)
        .non_finite("state c of layer 1 (reverse), batch row 1 (unit 2 is NaN)");
    let trace = rnn.forward(&errors::ids(), Some(&state)).unwrap();
    trace
        .check_finite(&backend)
        .non_finite("initial state c of layer 1 (reverse), batch row 1 (unit 2 is NaN)");
    // Its gradients carry the NaN; a step with them is refused and changes nothing.
    let (_, d_logits) = CrossEntropy::sum()
        .forward(&backend, trace.logits(), &errors::TARGETS)
        .unwrap();
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    let (mut rnn, mut adam) = (rnn, Adam::new(1e-3).unwrap());
    let first = gradients(&rnn);
    adam.step(&mut rnn, &first).unwrap();
    // Backward carried the NaN down to layer 0: the first parameter in state_dict order.
    refused(
        &mut rnn,
        &mut adam,
        &grads,
        "gradient of weight_ih_l0 (entry",
    );
}

/// A ReLU Elman model (hidden 2, output 3) on ids of 2 whose layer 1 multiplies its state by
/// `growth` every step: positive everywhere, so its `h` grows by `growth` a step and, in f32,
/// overflows at the step where `growth^t` passes `3.4e38`.
fn exploding(growth: f64) -> Rnn<F32> {
    let config = RnnConfig::rnn(2, 2)
        .nonlinearity(recurrent::Nonlinearity::Relu)
        .layers(2)
        .output(3);
    let mut rnn = Rnn::new(F32::new(), config, &mut errors::rng()).unwrap();
    for (name, m) in rnn
        .parameters()
        .into_iter()
        .map(|(n, m)| (n, rnn.backend().shape(m)))
        .collect::<Vec<_>>()
    {
        let mut values = vec![0.5f32; m.0 * m.1];
        if name == "weight_hh_l1" {
            values = vec![growth as f32, 0.0, 0.0, growth as f32];
        }
        rnn.set_parameter(&name, values).unwrap();
    }
    rnn
}

#[test]
fn an_overflow_inside_the_network_is_named_by_layer_and_step() {
    // h of layer 1 grows by 1e15 a step: about 1e30 at step 2, beyond f32 at step 3.
    let rnn = exploding(1e15);
    rnn.check_finite().unwrap();
    let backend = *rnn.backend();
    let trace = rnn
        .forward(&Input::ids(vec![0, 1, 0, 1, 0], 1), None)
        .unwrap();
    trace
        .check_finite(&backend)
        .non_finite("layer 1 hidden state h at step 3, batch row 0 (unit 0 is inf)");
}

#[test]
fn truncated_bptt_reports_where_an_overflow_starts_and_keeps_its_state() {
    let rnn = exploding(1e15);
    let mut tbptt = Tbptt::new(2, 4, 1).unwrap();
    let loss = CrossEntropy::sum();
    // Two steps a window: the first two updates stay finite (h about 1e15 after step 1).
    tbptt.step(&rnn, &[0, 1], &[1, 2], &loss).unwrap();
    let (context, state) = (tbptt.context().to_vec(), tbptt.state().is_some());
    // The window is the 2 context steps and 2 new ones: step 3 overflows.
    tbptt
        .step(&rnn, &[0, 1], &[1, 2], &loss)
        .non_finite("layer 1 hidden state h at step 3, batch row 0 (unit 0 is inf)");
    assert_eq!(
        (tbptt.context(), tbptt.state().is_some()),
        (&context[..], state)
    );
}

#[test]
fn a_cell_vector_that_turns_nan_is_named_before_the_hidden_state() {
    // W_ih row 0 (the input gate of unit 0) is [1e30, -1e30]; at step 2 the input is
    // [1e10, 1e10], so in f32 the product is inf - inf = NaN there and only there.
    let backend = F32::new();
    let mut rnn = Rnn::new(backend, RnnConfig::lstm(2, 2), &mut errors::rng()).unwrap();
    let (rows, cols) = backend.shape(rnn.parameter("weight_ih_l0").unwrap());
    let mut w = vec![0.1f32; rows * cols];
    w[..2].copy_from_slice(&[1e30, -1e30]);
    rnn.set_parameter("weight_ih_l0", w).unwrap();
    let x = [0.5, 0.5, 0.5, 0.5, 1e10, 1e10, 0.5, 0.5];
    let x = backend.from_vec(4, 2, x.to_vec()).unwrap();
    let trace = rnn.forward(&Input::dense(x, 1), None).unwrap();
    trace
        .check_finite(&backend)
        .non_finite("layer 0 cell state c at step 2, batch row 0 (unit 0 is NaN)");
}

#[test]
fn finite_things_pass_every_check() {
    let rnn = lstm(F64::new(), 2, true, 1);
    let backend = *rnn.backend();
    let trace = rnn.forward(&errors::ids(), None).unwrap();
    trace.check_finite(&backend).unwrap();
    rnn.check_finite().unwrap();
    let grads = gradients(&rnn);
    grads.check_finite().unwrap();
    trace.final_state().check_finite(&backend, 2).unwrap();
    // Entries whose squares overflow are still finite.
    let big = CellState {
        h: backend.from_vec(1, 2, vec![1e200, -1e300]).unwrap(),
        c: None,
    };
    State::new(vec![big]).check_finite(&backend, 1).unwrap();
}
