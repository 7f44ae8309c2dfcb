//! BPTT drives a cell through the [`Cell`] trait: a cell the user holds, or a layer's
//! [`LayerCell`], runs the same equations as the cell's own per-step methods.

use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::bptt::{self, LayerInput};
use recurrent::cell::LayerCell;
use recurrent::{
    Backend, Cell, CellKind, CellState, Error, GruCell, LstmCell, NaiveCpu, Nonlinearity, RnnCell,
};

type F64 = NaiveCpu<f64>;

const INPUT: usize = 3;
const HIDDEN: usize = 4;

fn cell(backend: &F64, kind: CellKind, rng: &mut StdRng) -> Box<dyn Cell<F64>> {
    match kind {
        CellKind::Rnn(nl) => Box::new(RnnCell::new(backend, INPUT, HIDDEN, nl, rng).unwrap()),
        CellKind::Lstm => Box::new(LstmCell::new(backend, INPUT, HIDDEN, rng).unwrap()),
        _ => Box::new(GruCell::new(backend, INPUT, HIDDEN, rng).unwrap()),
    }
}

/// The bit patterns of a matrix's entries.
fn bits(backend: &F64, m: &<F64 as Backend>::Matrix) -> Vec<u64> {
    backend.to_vec(m).iter().map(|v| v.to_bits()).collect()
}

#[test]
fn bptt_over_a_cell_gives_the_bits_of_its_steps() {
    let backend = F64::new();
    let mut rng = StdRng::seed_from_u64(11);
    let (steps, batch) = (5, 2);
    let data: Vec<f64> = (0..steps * batch * INPUT)
        .map(|i| ((i * 37 % 23) as f64 - 11.0) / 8.0)
        .collect();
    let x = backend.from_vec(steps * batch, INPUT, data).unwrap();
    let kinds = [
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Rnn(Nonlinearity::Relu),
        CellKind::Lstm,
        CellKind::Gru,
    ];
    for kind in kinds {
        let cell = cell(&backend, kind, &mut rng);
        let input = LayerInput::Dense(&x);
        let trace = bptt::forward(&backend, cell.as_ref(), input, batch, None, None).unwrap();
        let layer = LayerCell::new(&backend, kind, cell.params()).unwrap();
        let again = bptt::forward(&backend, &layer, input, batch, None, None).unwrap();
        let bits = |m: &_| bits(&backend, m);
        assert_eq!(
            bits(trace.output()),
            bits(again.output()),
            "{kind:?}: LayerCell"
        );
        let mut state = CellState::zeros(&backend, kind, batch, HIDDEN);
        for t in 0..steps {
            let mut x_t = backend.zeros(batch, INPUT);
            backend.copy_rows(&mut x_t, 0, &x, t * batch, batch);
            state = cell.step_forward(&backend, &x_t, &state).unwrap().state;
            let at_t = trace.state_at(&backend, t).unwrap();
            assert_eq!(bits(&state.h), bits(&at_t.h), "{kind:?}: h at step {t}");
            if let (Some(c), Some(c_t)) = (&state.c, &at_t.c) {
                assert_eq!(bits(c), bits(c_t), "{kind:?}: c at step {t}");
            }
        }
    }
}

#[test]
fn a_layer_cell_refuses_parameters_of_another_kind() {
    let backend = F64::new();
    let mut rng = StdRng::seed_from_u64(12);
    let lstm = LstmCell::new(&backend, INPUT, HIDDEN, &mut rng).unwrap();
    let err = LayerCell::new(&backend, CellKind::Gru, lstm.params()).unwrap_err();
    assert!(matches!(err, Error::Shape { .. }), "{err}");
    assert!(err.to_string().contains("GRU"), "{err}");
}
