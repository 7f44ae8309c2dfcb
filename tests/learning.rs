//! Learning: the loss falls on a small text, and the same seed gives the same losses.

mod common;

use common::{F64, rng};
use recurrent::prelude::*;

const TEXT: &str = "hello world, hello rust. ";

/// Trains a 2-layer Elman RNN on `TEXT` (batch 2: the text and its rotation by one word) with
/// SGD and global-norm clipping; returns the loss of every step.
fn train(seed: u64, steps: usize) -> Vec<f64> {
    let vocab: Vec<char> = {
        let mut v: Vec<char> = TEXT.chars().collect();
        v.sort_unstable();
        v.dedup();
        v
    };
    let id = |c: char| vocab.iter().position(|&v| v == c).unwrap();
    let text: Vec<usize> = TEXT.chars().map(id).collect();
    let rotated: Vec<usize> = text[6..].iter().chain(&text[..6]).copied().collect();
    let t = text.len() - 1;
    let (mut ids, mut targets) = (Vec::new(), Vec::new());
    for step in 0..t {
        for stream in [&text, &rotated] {
            ids.push(stream[step]);
            targets.push(stream[step + 1]);
        }
    }
    let input = Input::ids(ids, 2);
    let config = RnnConfig::rnn(vocab.len(), 32)
        .layers(2)
        .output(vocab.len());
    let mut rnn = Rnn::new(F64::new(), config, &mut rng(seed)).unwrap();
    let mut sgd = Sgd::new(0.02).unwrap();
    (0..steps)
        .map(|_| {
            let trace = rnn.forward(&input, None).unwrap();
            let (loss, d) = CrossEntropy::sum()
                .forward(rnn.backend(), trace.logits(), &targets)
                .unwrap();
            let mut grads = rnn.backward(&trace, &d).unwrap();
            clip::global_norm(&mut grads, 5.0).unwrap();
            sgd.step(&mut rnn, &grads).unwrap();
            loss
        })
        .collect()
}

#[test]
fn the_loss_falls_on_a_small_text() {
    let losses = train(1, 300);
    let (first, last) = (losses[0], *losses.last().unwrap());
    println!("loss {first:.3} -> {last:.3}");
    assert!(last < 0.1 * first, "loss {first} -> {last}");
}

#[test]
fn the_same_seed_gives_the_same_losses() {
    let a = train(2, 20);
    let b = train(2, 20);
    let c = train(3, 20);
    assert_eq!(a, b, "bit for bit");
    assert_ne!(a, c);
}
