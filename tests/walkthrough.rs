//! The walkthrough's worked example: the numbers it publishes, and that the net learns "hello".
//!
//! The model and training loop are the ones `examples/hello.rs` prints, included here so that
//! the test checks exactly what the example shows.

#[allow(dead_code)]
#[path = "../examples/hello.rs"]
mod hello;

use approx::assert_abs_diff_eq;
use hello::{VOCAB, hell, predictions, train, walkthrough_model};
use recurrent::{Backend, CrossEntropy, softmax};

/// The walkthrough's weights are a transcription of the article's images (`W_XH`, `W_HY`,
/// `W_HH` and `BIAS` in `examples/hello.rs`), with a second reading of one row that differs
/// near 1e-4.
const TRANSCRIPTION: f64 = 1e-4;

#[test]
fn first_hidden_state_matches_the_published_one() {
    let rnn = walkthrough_model().unwrap();
    let (input, _) = hell();
    let trace = rnn.forward(&input, None).unwrap();
    let h1 = trace.hidden().row(0);
    for (got, want) in h1.iter().zip([0.693168, 0.899554, 0.802118]) {
        assert_abs_diff_eq!(*got, want, epsilon = TRANSCRIPTION);
    }
}

#[test]
fn before_training_the_letter_after_he_is_h() {
    let rnn = walkthrough_model().unwrap();
    let (input, _) = hell();
    let predicted: Vec<char> = predictions(&rnn, &input).unwrap().chars().collect();
    assert_eq!(predicted[1], 'h', "after \"he\"");
    // The probabilities the example prints are a distribution over h, e, l, o.
    let trace = rnn.forward(&input, None).unwrap();
    let p = softmax(rnn.backend(), trace.logits());
    for t in 0..4 {
        assert_abs_diff_eq!(p.row(t).iter().sum::<f64>(), 1.0, epsilon = 1e-12);
    }
}

#[test]
fn the_loss_is_the_sum_of_the_four_steps() {
    let rnn = walkthrough_model().unwrap();
    let (input, targets) = hell();
    let trace = rnn.forward(&input, None).unwrap();
    let (loss, _) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &targets)
        .unwrap();
    let p = softmax(rnn.backend(), trace.logits());
    let by_hand: f64 = targets
        .iter()
        .enumerate()
        .map(|(t, &target)| -p.get(t, target).ln())
        .sum();
    assert_abs_diff_eq!(loss, by_hand, epsilon = 1e-12);
    // Uniform guessing over 4 letters would cost 4 ln 4; the untrained net is near that.
    assert!(
        loss > 4.0 * 4f64.ln() * 0.8 && loss < 4.0 * 4f64.ln() * 1.5,
        "{loss}"
    );
}

#[test]
fn trained_it_predicts_o_after_hell() {
    let mut rnn = walkthrough_model().unwrap();
    let (input, targets) = hell();
    let before = rnn.forward(&input, None).unwrap();
    let (loss_before, _) = CrossEntropy::sum()
        .forward(rnn.backend(), before.logits(), &targets)
        .unwrap();
    let steps = train(&mut rnn, 0.1, 10_000).unwrap();
    assert!(steps < 10_000, "did not learn within the budget");
    let predicted = predictions(&rnn, &input).unwrap();
    assert!(predicted.ends_with('o'), "predicted {predicted:?}");
    let after = rnn.forward(&input, None).unwrap();
    let (loss_after, _) = CrossEntropy::sum()
        .forward(rnn.backend(), after.logits(), &targets)
        .unwrap();
    assert!(loss_after < loss_before, "{loss_after} >= {loss_before}");
    assert_eq!(VOCAB.len(), rnn.backend().shape(after.logits()).1);
}
