//! What the TBPTT tests (`truncated.rs`, `bad_input_truncated.rs`) share: a small vocabulary
//! and batch, the three cells, random id streams, and bit-exact views of states and gradients.
//!
//! Included by path (`#[path = "common/truncated.rs"] mod truncated;`) beside `common/mod.rs`;
//! each test binary uses a subset, hence `dead_code` is allowed.

#![allow(dead_code)]

use super::common::{F64, random_ids, rng};
use recurrent::{Backend, Gradients, Rnn, RnnConfig, State};

pub type Matrix = <F64 as Backend>::Matrix;

pub const VOCAB: usize = 5;
pub const BATCH: usize = 2;

/// The three cells, two layers, logits over the vocabulary.
pub fn configs() -> [RnnConfig; 3] {
    [
        RnnConfig::rnn(VOCAB, 4).layers(2).output(VOCAB),
        RnnConfig::lstm(VOCAB, 4).layers(2).output(VOCAB),
        RnnConfig::gru(VOCAB, 4).layers(2).output(VOCAB),
    ]
}

pub fn bits(m: &Matrix) -> Vec<u64> {
    m.as_slice().iter().map(|v| v.to_bits()).collect()
}

/// Every matrix of a state, as bits: `h` and `c` of every layer.
pub fn state_bits(state: &State<F64>) -> Vec<Vec<u64>> {
    let mut all = Vec::new();
    for layer in state.layers() {
        all.push(bits(&layer.h));
        all.extend(layer.c.as_ref().map(bits));
    }
    all
}

/// A state held as `None` means zeros.
pub fn held_bits(rnn: &Rnn<F64>, state: Option<&State<F64>>) -> Vec<Vec<u64>> {
    state_bits(&state.cloned().unwrap_or_else(|| rnn.zero_state(BATCH)))
}

pub fn assert_same_grads(what: &str, a: &Gradients<F64>, b: &Gradients<F64>) {
    for ((name, x), (other, y)) in a.named().into_iter().zip(b.named()) {
        assert_eq!(name, other);
        assert_eq!(bits(x), bits(y), "{what}: gradient of {name}");
    }
}

/// `chunks` chunks of `k1` steps of `BATCH` streams: input ids and targets, time-major.
pub fn stream(chunks: usize, k1: usize, seed: u64) -> Vec<(Vec<usize>, Vec<usize>)> {
    let mut r = rng(seed);
    (0..chunks)
        .map(|_| {
            let ids = random_ids(k1 * BATCH, VOCAB, &mut r);
            (ids, random_ids(k1 * BATCH, VOCAB, &mut r))
        })
        .collect()
}
