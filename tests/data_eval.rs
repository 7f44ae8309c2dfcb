//! Evaluation windows (`data::eval_windows`): every target scored exactly once, the last
//! window short, the state carried so that the pass equals one forward over the sequence; and
//! `split`'s rounding.

use recurrent::data::{eval_windows, split};
use recurrent::prelude::*;
use recurrent::{Error, Window};

/// Every window of a pass over `ids` with `steps` steps, checked against the layout.
fn checked_pass(ids: &[usize], steps: usize) -> Vec<Window> {
    let windows = eval_windows(ids, steps).unwrap();
    let n = ids.len() - 1;
    assert_eq!(windows.targets(), n);
    assert_eq!(
        windows.len(),
        n.div_ceil(steps),
        "N = {}, T = {steps}",
        ids.len()
    );
    let all: Vec<Window> = windows.clone().collect();
    // Backwards gives the same windows in reverse.
    let mut reversed: Vec<Window> = windows.rev().collect();
    reversed.reverse();
    assert_eq!(all, reversed);
    all
}

#[test]
fn every_target_position_is_scored_exactly_once() {
    // Distinct ids, so that a window's ids say which positions it covers.
    for n in 2..40 {
        let ids: Vec<usize> = (100..100 + n).collect();
        for steps in 1..n + 3 {
            let windows = checked_pass(&ids, steps);
            let mut scored = vec![0usize; n];
            for (k, w) in windows.iter().enumerate() {
                assert_eq!((w.index, w.batch, w.reset), (k, 1, k == 0));
                assert_eq!((w.inputs.len(), w.targets.len()), (w.steps, w.steps));
                let start = w.inputs[0] - 100;
                assert_eq!(
                    start,
                    k * steps,
                    "window {k} starts where {} ended",
                    k.max(1) - 1
                );
                for (t, (&x, &y)) in w.inputs.iter().zip(&w.targets).enumerate() {
                    assert_eq!((x, y), (ids[start + t], ids[start + t + 1]));
                    scored[start + t + 1] += 1;
                }
            }
            assert_eq!(scored[0], 0, "the first id is never a target");
            assert!(
                scored[1..].iter().all(|&c| c == 1),
                "N {n}, T {steps}: {scored:?}"
            );
            // Only the last window may be short, and it is never empty.
            let (last, full) = windows.split_last().unwrap();
            assert!(full.iter().all(|w| w.steps == steps));
            let rest = (n - 2) % steps + 1; // n - 1 targets
            assert_eq!(last.steps, rest, "N {n}, T {steps}");
        }
    }
}

#[test]
fn the_last_window_is_short_when_the_targets_do_not_divide() {
    let ids: Vec<usize> = (0..11).collect(); // 10 targets
    let steps: Vec<usize> = checked_pass(&ids, 4).iter().map(|w| w.steps).collect();
    assert_eq!(steps, [4, 4, 2]);
    let last = eval_windows(&ids, 4).unwrap().next_back().unwrap();
    assert_eq!((last.inputs, last.targets), (vec![8, 9], vec![9, 10]));
    // A divisor: no short window. More steps than targets: one window of them all.
    assert_eq!(checked_pass(&ids, 5).len(), 2);
    let one = checked_pass(&ids, 64);
    assert_eq!((one.len(), one[0].steps), (1, 10));
}

#[test]
fn empty_or_too_short_sequences_and_zero_steps_are_errors() {
    let empty = eval_windows(&[], 4).unwrap_err();
    assert!(matches!(empty, Error::Empty { .. }), "{empty:?}");
    assert_eq!(
        empty.to_string(),
        "sequence to evaluate is empty: at least one entry is needed"
    );
    let single = eval_windows(&[3], 4).unwrap_err();
    assert!(matches!(single, Error::Config { .. }), "{single:?}");
    assert!(single.to_string().contains("at least 2 ids"), "{single}");
    let zero = eval_windows(&[1, 2, 3], 0).unwrap_err();
    assert!(matches!(zero, Error::Config { .. }), "{zero:?}");
    assert!(zero.to_string().contains("at least 1, given 0"), "{zero}");
}

/// The pass with the state carried is one forward over the whole sequence: the summed loss
/// agrees to rounding (f64), for every cell and a window length that leaves a short window.
#[test]
fn a_pass_scores_what_one_forward_over_the_sequence_scores() {
    let ids: Vec<usize> = (0..47).map(|i| (i * 7 + i / 3) % 5).collect();
    let configs = [
        RnnConfig::rnn(5, 6).output(5),
        RnnConfig::lstm(5, 6).layers(2).output(5),
        RnnConfig::gru(5, 6).output(5),
    ];
    let mut worst = 0.0f64;
    for (i, config) in configs.into_iter().enumerate() {
        let rnn = Rnn::new(
            NaiveCpu::<f64>::new(),
            config,
            &mut StdRng::seed_from_u64(i as u64),
        )
        .unwrap();
        let loss = CrossEntropy::sum();
        let whole = rnn
            .forward(&Input::ids(ids[..46].to_vec(), 1), None)
            .unwrap();
        let (expected, _) = loss
            .forward(rnn.backend(), whole.logits(), &ids[1..])
            .unwrap();
        for steps in [1, 5, 7, 45, 46] {
            let (mut total, mut state) = (0.0, None);
            for window in eval_windows(&ids, steps).unwrap() {
                if window.reset {
                    state = None;
                }
                let trace = rnn.forward(&window.input(), state.as_ref()).unwrap();
                let (sum, _) = loss
                    .forward(rnn.backend(), trace.logits(), &window.targets)
                    .unwrap();
                total += sum;
                state = Some(trace.final_state());
            }
            let error = (total - expected).abs() / expected.abs().max(1.0);
            assert!(error < 1e-13, "T {steps}: {total} vs {expected}");
            worst = worst.max(error);
        }
    }
    eprintln!("worst relative difference from one forward pass: {worst:.1e}");
}

#[test]
fn split_rounds_half_away_from_zero_in_f64() {
    // (N, fraction, validation items)
    let cases = [
        (100, 0.05, 5),
        (5, 0.5, 3),    // 2.5: the validation part gets the odd item
        (3, 0.5, 2),    // 1.5
        (7, 0.3, 2),    // 2.1
        (9, 0.25, 2),   // 2.25
        (25, 0.58, 14), // 14.499999999999998 in f64, not 14.5
        (50, 0.07, 4),  // 3.5000000000000004
        (10, 0.0, 0),
    ];
    for (n, fraction, val) in cases {
        let (train, validation) = split((0..n).collect::<Vec<usize>>(), fraction).unwrap();
        assert_eq!(validation.len(), val, "N {n}, fraction {fraction}");
        assert_eq!(
            train,
            (0..n - val).collect::<Vec<_>>(),
            "the training part is the start"
        );
        assert_eq!(validation, (n - val..n).collect::<Vec<_>>());
    }
    // A part that would be empty is an error, not a silent empty split.
    let err = split(vec![1, 2], 0.1).unwrap_err();
    assert!(err.to_string().contains("both need at least one"), "{err}");
    assert!(split(vec![1, 2, 3], 0.9).is_err()); // 2.7 rounds to 3: no training item
}
