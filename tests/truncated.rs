//! `Trace::state_at`, the state after any step of a forward pass, which truncated BPTT with
//! `k2 > k1` carries between updates. Everything runs on `NaiveCpu<f64>`, bit for bit.

mod common;

use common::{F64, model, random_ids, rng};
use recurrent::{Backend, Error, Input, RnnConfig, State};

type Matrix = <F64 as Backend>::Matrix;

const VOCAB: usize = 5;
const BATCH: usize = 2;

/// The three cells, two layers, logits over the vocabulary.
fn configs() -> [RnnConfig; 3] {
    [
        RnnConfig::rnn(VOCAB, 4).layers(2).output(VOCAB),
        RnnConfig::lstm(VOCAB, 4).layers(2).output(VOCAB),
        RnnConfig::gru(VOCAB, 4).layers(2).output(VOCAB),
    ]
}

fn bits(m: &Matrix) -> Vec<u64> {
    m.as_slice().iter().map(|v| v.to_bits()).collect()
}

/// Every matrix of a state, as bits: `h` and `c` of every layer.
fn state_bits(state: &State<F64>) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    for layer in state.layers() {
        all.push(bits(&layer.h));
        all.extend(layer.c.as_ref().map(bits));
    }
    all
}

// ---------------------------------------------------------------------------------------------
// Trace::state_at

#[test]
fn state_at_the_last_step_is_the_final_state_and_earlier_steps_are_prefixes() {
    let steps = 5;
    for config in configs() {
        let rnn = model(config.clone(), 18);
        let mut r = rng(19);
        let ids = random_ids(steps * BATCH, VOCAB, &mut r);
        let initial = model(config.clone(), 20).forward(&Input::ids(ids.clone(), BATCH), None);
        let initial = initial.unwrap().final_state(); // some state that is not zero
        let trace = rnn
            .forward(&Input::ids(ids.clone(), BATCH), Some(&initial))
            .unwrap();
        let backend = rnn.backend();
        assert_eq!(
            state_bits(&trace.state_at(backend, steps - 1).unwrap()),
            state_bits(&trace.final_state())
        );
        for t in 0..steps {
            let prefix = Input::ids(ids[..(t + 1) * BATCH].to_vec(), BATCH);
            let want = rnn.forward(&prefix, Some(&initial)).unwrap().final_state();
            let got = trace.state_at(backend, t).unwrap();
            assert_eq!(state_bits(&got), state_bits(&want), "{config:?}, step {t}");
        }
    }
}

#[test]
fn state_at_keeps_an_ended_sequence_at_its_last_step() {
    let (steps, batch) = (5, 3);
    let lengths = vec![5, 2, 4];
    for config in configs() {
        let rnn = model(config.clone(), 21);
        let ids = random_ids(steps * batch, VOCAB, &mut rng(22));
        let input = Input::ids(ids.clone(), batch).with_lengths(lengths.clone());
        let trace = rnn.forward(&input, None).unwrap();
        for t in 0..steps {
            let cut: Vec<usize> = lengths.iter().map(|&l| l.min(t + 1)).collect();
            let prefix = Input::ids(ids[..(t + 1) * batch].to_vec(), batch).with_lengths(cut);
            let want = rnn.forward(&prefix, None).unwrap().final_state();
            let got = trace.state_at(rnn.backend(), t).unwrap();
            assert_eq!(state_bits(&got), state_bits(&want), "{config:?}, step {t}");
        }
        let last = trace.state_at(rnn.backend(), steps - 1).unwrap();
        assert_eq!(state_bits(&last), state_bits(&trace.final_state()));
    }
}

#[test]
fn state_at_refuses_a_step_past_the_end_and_a_bidirectional_model() {
    let rnn = model(configs()[2].clone(), 23);
    let trace = rnn
        .forward(&Input::ids(vec![0, 1, 2, 3, 4, 0], BATCH), None)
        .unwrap();
    match trace.state_at(rnn.backend(), 3) {
        Err(Error::Index { value, bound, .. }) => assert_eq!((value, bound), (3, 3)),
        other => panic!("expected an index error, got {other:?}"),
    }
    let bi = model(
        RnnConfig::gru(VOCAB, 4).bidirectional(true).output(VOCAB),
        24,
    );
    let trace = bi
        .forward(&Input::ids(vec![0, 1, 2, 3], BATCH), None)
        .unwrap();
    assert!(matches!(
        trace.state_at(bi.backend(), 0),
        Err(Error::Config { .. })
    ));
}
