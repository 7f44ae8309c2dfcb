//! Property tests of the non-finite checks on random models (see `common/cases.rs`): finite
//! cases pass every check; a NaN or infinity put at a random place of the dense input, the
//! initial state or a parameter gradient is named exactly (step, batch row, layer, direction,
//! parameter, entry), and an optimiser step that meets it changes nothing.

#[path = "common/cases.rs"]
mod cases;

use cases::{Case, FULL, cases};
use proptest::prelude::*;
use recurrent::{Adagrad, Adam, Backend, NaiveCpu, Optimizer, RmsProp, Sgd, State};

type F64 = NaiveCpu<f64>;

/// Cases of each property.
const CASES: u32 = 128;

/// `cases` cases, with this file's regressions (see `cases::config`).
fn config(cases: u32) -> ProptestConfig {
    cases::config(cases, "tests/proptest-regressions/properties_finite.txt")
}

/// NaN, infinity or minus infinity, as the checks print them.
fn bad_values() -> impl Strategy<Value = (f64, &'static str)> {
    prop_oneof![
        Just((f64::NAN, "NaN")),
        Just((f64::INFINITY, "inf")),
        Just((f64::NEG_INFINITY, "-inf")),
    ]
}

/// `m` with entry `index` (row-major) replaced by `value`.
fn with_entry(
    backend: &F64,
    m: &<F64 as Backend>::Matrix,
    index: usize,
    value: f64,
) -> <F64 as Backend>::Matrix {
    let (rows, cols) = backend.shape(m);
    let mut data = backend.to_vec(m);
    data[index] = value;
    backend.from_vec(rows, cols, data).expect("same size")
}

/// `layer 1` or `layer 1 (reverse)` for state `k` of `case`.
fn layer_name(case: &Case, k: usize) -> String {
    match k % case.directions() {
        0 => format!("layer {}", k / case.directions()),
        _ => format!("layer {} (reverse)", k / case.directions()),
    }
}

/// One optimiser of kind `which % 4`, with momentum buffers where it has them.
fn optimizer(which: usize) -> Box<dyn Optimizer<F64>> {
    match which % 4 {
        0 => Box::new(Sgd::new(0.1).unwrap().momentum(0.9).unwrap()),
        1 => Box::new(Adagrad::new(0.1).unwrap()),
        2 => Box::new(RmsProp::new(0.01).unwrap().centered(true).unwrap()),
        _ => Box::new(Adam::new(1e-3).unwrap()),
    }
}

/// Bits of every parameter and of the optimiser's state dict.
fn bits(rnn: &recurrent::Rnn<F64>, optimizer: &dyn Optimizer<F64>) -> Vec<u64> {
    let params = rnn.parameters().into_iter();
    let mut all: Vec<u64> = params
        .flat_map(|(_, m)| rnn.backend().to_vec(m))
        .map(f64::to_bits)
        .collect();
    let dict = optimizer.state_dict();
    for name in dict.names() {
        let floats = dict.get(name).and_then(|t| t.floats()).expect("floats");
        all.extend(floats.iter().map(|v| v.to_bits()));
    }
    all.push(optimizer.step_count());
    all
}

proptest! {
    #![proptest_config(config(CASES))]

    #[test]
    fn finite_cases_pass_every_check(case in cases(FULL)) {
        let rnn = case.model(F64::new());
        let backend = rnn.backend();
        let trace = rnn.forward(&case.input(backend), case.initial_state(backend).as_ref()).unwrap();
        prop_assert!(trace.check_finite(backend).is_ok());
        prop_assert!(rnn.check_finite().is_ok());
        let grads = rnn.backward(&trace, &case.d_logits(backend)).unwrap();
        prop_assert!(grads.check_finite().is_ok());
    }

    #[test]
    fn a_bad_input_entry_is_named_by_step_row_and_column(
        case in cases(FULL),
        at in any::<usize>(),
        (value, text) in bad_values(),
    ) {
        let case = Case { ids: false, ..case };
        let backend = F64::new();
        let rnn = case.model(backend);
        let at = at % (case.rows() * case.input);
        let (row, col) = (at / case.input, at % case.input);
        let x = with_entry(&backend, case.input(&backend).as_dense().unwrap(), at, value);
        let mut input = recurrent::Input::dense(x, case.batch);
        if let Some(lengths) = &case.lengths {
            input = input.with_lengths(lengths.clone());
        }
        let trace = rnn.forward(&input, case.initial_state(&backend).as_ref()).unwrap();
        let err = trace.check_finite(&backend).unwrap_err().to_string();
        let want = format!(
            "input at step {}, batch row {} (column {col} is {text})",
            row / case.batch,
            row % case.batch
        );
        prop_assert!(err.contains(&want), "{err:?} lacks {want:?}");
    }

    #[test]
    fn a_bad_initial_state_entry_is_named_by_layer_part_and_row(
        case in cases(FULL),
        (at, entry, in_c) in (any::<usize>(), any::<usize>(), any::<bool>()),
        (value, text) in bad_values(),
    ) {
        let backend = F64::new();
        let rnn = case.model(backend);
        let k = at % (case.layers * case.directions());
        let in_c = in_c && case.kind.has_cell_state();
        let entry = entry % (case.batch * case.hidden);
        let mut layers = case
            .initial_state(&backend)
            .unwrap_or_else(|| rnn.zero_state(case.batch))
            .into_layers();
        let part = match in_c {
            true => layers[k].c.as_mut().unwrap(),
            false => &mut layers[k].h,
        };
        *part = with_entry(&backend, part, entry, value);
        let state = State::new(layers);
        let trace = rnn.forward(&case.input(&backend), Some(&state)).unwrap();
        let err = trace.check_finite(&backend).unwrap_err().to_string();
        let want = format!(
            "initial state {} of {}, batch row {} (unit {} is {text})",
            if in_c { "c" } else { "h" },
            layer_name(&case, k),
            entry / case.hidden,
            entry % case.hidden
        );
        prop_assert!(err.contains(&want), "{err:?} lacks {want:?}");
    }

    #[test]
    fn a_bad_gradient_is_named_and_the_step_changes_nothing(
        case in cases(FULL),
        (which, at, entry) in (any::<usize>(), any::<usize>(), any::<usize>()),
        (value, text) in bad_values(),
    ) {
        let mut rnn = case.model(F64::new());
        let backend = *rnn.backend();
        let trace = rnn.forward(&case.input(&backend), case.initial_state(&backend).as_ref()).unwrap();
        let mut grads = rnn.backward(&trace, &case.d_logits(&backend)).unwrap();
        let mut optimizer = optimizer(which);
        optimizer.step(&mut rnn, &grads).unwrap();
        let names: Vec<String> = rnn.parameters().into_iter().map(|(n, _)| n).collect();
        let name = &names[at % names.len()];
        let slot = grads.params_mut().get_mut(name).unwrap();
        let (_, cols) = backend.shape(slot);
        let entry = entry % backend.to_vec(slot).len();
        *slot = with_entry(&backend, slot, entry, value);
        let before = bits(&rnn, optimizer.as_ref());
        let err = optimizer.step(&mut rnn, &grads).unwrap_err().to_string();
        let want = format!(
            "gradient of {name} (entry [{}, {}] is {text})",
            entry / cols,
            entry % cols
        );
        prop_assert!(err.contains(&want), "{err:?} lacks {want:?}");
        prop_assert!(before == bits(&rnn, optimizer.as_ref()), "the step changed something");
    }
}
