//! Text cut into training windows: `Corpus` (windows worked out by hand, stream continuity, the
//! dropped remainder, too-short corpora) and `split`. (`tests/data.rs` tests `Vocab`.)

use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use recurrent::data::split;
use recurrent::{Corpus, Error, Input, NaiveCpu, Vocab, Window};

// ---------------------------------------------------------------------------------------------
// Corpus: windows for truncated BPTT

#[test]
fn windows_of_a_hand_worked_example() {
    // ids 0..20, B = 2, T = 3: K = (20 - 1) / 6 = 3 windows, stride K*T = 9.
    // Stream 0 is ids 0..=9, stream 1 is ids 9..=18; id 19 is dropped.
    let corpus = Corpus::new((0..20).collect(), 2, 3).unwrap();
    assert_eq!(corpus.len(), 3);
    assert!(!corpus.is_empty());
    assert_eq!(
        (corpus.batch(), corpus.steps(), corpus.dropped()),
        (2, 3, 1)
    );
    #[rustfmt::skip]
    let expected = [
        // inputs (t0b0, t0b1, t1b0, t1b1, t2b0, t2b1)   targets
        ([0, 9, 1, 10, 2, 11],  [1, 10, 2, 11, 3, 12]),
        ([3, 12, 4, 13, 5, 14], [4, 13, 5, 14, 6, 15]),
        ([6, 15, 7, 16, 8, 17], [7, 16, 8, 17, 9, 18]),
    ];
    let windows: Vec<Window> = corpus.windows().collect();
    assert_eq!(windows.len(), 3);
    for (k, (window, (inputs, targets))) in windows.iter().zip(expected).enumerate() {
        assert_eq!(window.inputs, inputs, "window {k}");
        assert_eq!(window.targets, targets, "window {k}");
        assert_eq!(window.index, k);
        assert_eq!((window.steps, window.batch), (3, 2));
        assert_eq!(window.reset, k == 0);
        assert_eq!(&corpus.window(k).unwrap(), window);
    }
}

#[test]
fn a_one_window_example_with_three_streams() {
    // ids 10..17 (7 ids), B = 3, T = 2: K = 6 / 6 = 1, streams 10..=12, 12..=14, 14..=16.
    let corpus = Corpus::new((10..17).collect(), 3, 2).unwrap();
    assert_eq!((corpus.len(), corpus.dropped()), (1, 0));
    let window = corpus.window(0).unwrap();
    assert_eq!(window.inputs, [10, 12, 14, 11, 13, 15]);
    assert_eq!(window.targets, [11, 13, 15, 12, 14, 16]);
    assert!(window.reset);
}

/// The ids stream `b` sees over a pass: its inputs in order, then the last target.
fn stream(corpus: &Corpus, b: usize) -> Vec<usize> {
    let batch = corpus.batch();
    let mut seen = vec![];
    let mut last = None;
    for window in corpus.windows() {
        if let Some(previous) = last {
            // Window k starts where window k - 1 stopped: its first input is the last target.
            assert_eq!(
                window.inputs[b], previous,
                "stream {b}, window {}",
                window.index
            );
        }
        for t in 0..window.steps {
            // Within a window, each target is the next step's input.
            if t + 1 < window.steps {
                assert_eq!(
                    window.targets[t * batch + b],
                    window.inputs[(t + 1) * batch + b]
                );
            }
            seen.push(window.inputs[t * batch + b]);
        }
        last = Some(window.targets[(window.steps - 1) * batch + b]);
    }
    seen.push(last.unwrap());
    seen
}

#[test]
fn each_stream_is_a_contiguous_slice_continued_across_windows() {
    let mut rng = StdRng::seed_from_u64(7);
    for (n, batch, steps) in [
        (1000, 4, 7),
        (100, 1, 10),
        (57, 5, 1),
        (64, 3, 5),
        (11, 2, 5),
    ] {
        let ids: Vec<usize> = (0..n).map(|_| rng.random_range(0..50)).collect();
        let corpus = Corpus::new(ids.clone(), batch, steps).unwrap();
        let k = (n - 1) / (batch * steps);
        assert_eq!(corpus.len(), k);
        let stride = k * steps;
        for b in 0..batch {
            assert_eq!(
                stream(&corpus, b),
                ids[b * stride..=(b + 1) * stride],
                "{n} {batch} {steps} b {b}"
            );
        }
    }
}

#[test]
fn every_transition_is_trained_exactly_once() {
    let (n, batch, steps) = (200, 3, 8);
    let corpus = Corpus::new((0..n).collect(), batch, steps).unwrap();
    let mut pairs: Vec<(usize, usize)> = corpus
        .windows()
        .flat_map(|w| w.inputs.into_iter().zip(w.targets))
        .collect();
    pairs.sort_unstable();
    let k = (n - 1) / (batch * steps);
    let expected: Vec<(usize, usize)> = (0..batch * k * steps).map(|i| (i, i + 1)).collect();
    assert_eq!(pairs, expected);
}

#[test]
fn the_remainder_that_does_not_fill_a_window_is_dropped() {
    let (batch, steps) = (3, 4);
    for n in 13..=80 {
        let corpus = Corpus::new((0..n).collect(), batch, steps).unwrap();
        let k = (n - 1) / 12;
        assert_eq!(corpus.len(), k, "n = {n}");
        assert_eq!(corpus.dropped(), n - (12 * k + 1), "n = {n}");
        assert!(corpus.dropped() < 12);
        // No window reaches a dropped id.
        let last = corpus.window(k - 1).unwrap();
        assert_eq!(last.targets.iter().max(), Some(&(12 * k)));
    }
    // Exactly one window's worth, one short of two, exactly two.
    for (n, windows, dropped) in [(13, 1, 0), (24, 1, 11), (25, 2, 0)] {
        let corpus = Corpus::new((0..n).collect(), batch, steps).unwrap();
        assert_eq!(
            (corpus.len(), corpus.dropped()),
            (windows, dropped),
            "n = {n}"
        );
    }
}

#[test]
fn too_short_or_zero_sized_corpora_are_errors() {
    let err = Corpus::new((0..6).collect(), 2, 3).unwrap_err();
    assert_eq!(
        err.to_string(),
        "invalid configuration: a corpus of 6 ids is too short for batch 2 and steps 3: one \
         window needs batch * steps + 1 = 7 ids"
    );
    assert!(matches!(err, Error::Config { .. }));
    assert!(Corpus::new((0..7).collect(), 2, 3).is_ok());
    assert!(Corpus::new(vec![], 1, 1).is_err());
    assert!(Corpus::new(vec![4], 1, 1).is_err());
    assert!(Corpus::new(vec![4, 5], 1, 1).is_ok());

    for (batch, steps) in [(0, 3), (2, 0), (0, 0)] {
        let err = Corpus::new((0..100).collect(), batch, steps).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{err:?}");
        let message = err.to_string();
        assert!(
            message.contains(&format!("batch {batch} and steps {steps}")),
            "{message}"
        );
    }
    // Sizes whose product overflows are an error too, not a panic.
    let err = Corpus::new((0..100).collect(), usize::MAX, 2).unwrap_err();
    assert!(err.to_string().contains("more than memory holds"), "{err}");
    let err = Corpus::new((0..100).collect(), usize::MAX, 1).unwrap_err();
    assert!(err.to_string().contains("more than memory holds"), "{err}");
}

#[test]
fn random_access_fill_and_the_iterator_agree() {
    let corpus = Corpus::new((0..500).collect(), 4, 6).unwrap();
    let k = corpus.len();
    assert_eq!(k, 20);
    let windows = corpus.windows();
    assert_eq!(windows.len(), k);
    let forward: Vec<Window> = windows.collect();
    let mut backward: Vec<Window> = corpus.windows().rev().collect();
    backward.reverse();
    assert_eq!(forward, backward);

    let mut reused = Window::default();
    corpus.fill(0, &mut reused).unwrap();
    let (inputs, targets) = (reused.inputs.as_ptr(), reused.targets.as_ptr());
    for (i, window) in forward.iter().enumerate() {
        assert_eq!(window, &corpus.window(i).unwrap());
        corpus.fill(i, &mut reused).unwrap();
        assert_eq!(&reused, window);
        assert_eq!(reused.inputs.as_ptr(), inputs, "fill reuses the buffers");
        assert_eq!(reused.targets.as_ptr(), targets);
    }

    let before = reused.clone();
    assert_eq!(
        corpus.fill(k, &mut reused),
        Err(Error::Index {
            what: "corpus window".to_string(),
            position: 0,
            value: k,
            bound: k,
        })
    );
    assert_eq!(reused, before, "a failed fill changes nothing");
    assert!(corpus.window(k).is_err());
    assert!(corpus.window(usize::MAX).is_err());

    let mut iter = corpus.windows();
    assert_eq!(iter.nth(k - 1).map(|w| w.index), Some(k - 1));
    assert_eq!(iter.next(), None);
    assert_eq!(iter.next(), None);
}

#[test]
fn a_window_is_a_model_input() {
    let corpus = Corpus::new((0..30).collect(), 3, 4).unwrap();
    let window = corpus.window(1).unwrap();
    let input: Input<NaiveCpu<f32>> = window.input();
    assert_eq!(input.batch(), 3);
    assert_eq!(input.as_ids(), Some(&window.inputs[..]));
    assert_eq!(input.lengths(), None);
}

#[test]
fn text_streams_decode_to_slices_of_the_text() {
    let text = "Ünïcödé 😀 text, cut into streams.\nSecond line ✓";
    let vocab = Vocab::from_text(text).unwrap();
    let corpus = Corpus::new(vocab.encode(text).unwrap(), 2, 4).unwrap();
    let chars: Vec<char> = text.chars().collect();
    let stride = corpus.len() * 4;
    for b in 0..2 {
        let decoded = vocab.decode(&stream(&corpus, b)).unwrap();
        let expected: String = chars[b * stride..=(b + 1) * stride].iter().collect();
        assert_eq!(decoded, expected);
    }
}

// ---------------------------------------------------------------------------------------------
// split

#[test]
fn split_keeps_the_end_for_validation() {
    let (train, val) = split((0..100).collect::<Vec<usize>>(), 0.05).unwrap();
    assert_eq!(train, (0..95).collect::<Vec<_>>());
    assert_eq!(val, (95..100).collect::<Vec<_>>());

    for (n, fraction, val_len) in [
        (100, 0.07, 7), // 100 * 0.07 is 7.000000000000001: rounded, not ceiled
        (100, 0.1, 10),
        (1000, 0.05, 50),
        (10, 0.05, 1), // 0.5 rounds up
        (2, 0.5, 1),
        (3, 0.6, 2),
        (7, 0.0, 0),
        (1, 0.0, 0),
    ] {
        let ids: Vec<usize> = (0..n).collect();
        match split(ids, fraction) {
            Ok((train, val)) => {
                assert_eq!(val.len(), val_len, "n = {n}, fraction = {fraction}");
                assert_eq!(train.len() + val.len(), n);
                assert_eq!([train, val].concat(), (0..n).collect::<Vec<_>>());
            }
            Err(err) => panic!("n = {n}, fraction = {fraction}: {err}"),
        }
    }
}

#[test]
fn split_refuses_bad_fractions_and_empty_parts() {
    for fraction in [
        1.0,
        1.5,
        -0.1,
        -0.0 - 1e-300,
        f64::NAN,
        f64::INFINITY,
        f64::NEG_INFINITY,
    ] {
        let err = split((0..100).collect::<Vec<usize>>(), fraction).unwrap_err();
        assert!(matches!(err, Error::Config { .. }), "{fraction}: {err:?}");
        assert!(err.to_string().contains("in [0, 1)"), "{err}");
    }
    // A fraction above 0 that leaves either part empty.
    for (n, fraction) in [
        (9, 0.05),
        (1, 0.5),
        (3, 0.9),
        (1, 0.3),
        (100, 0.004),
        (100, 0.996),
    ] {
        let err = split((0..n).collect::<Vec<usize>>(), fraction).unwrap_err();
        assert!(
            matches!(err, Error::Config { .. }),
            "{n} {fraction}: {err:?}"
        );
        let message = err.to_string();
        assert!(message.contains(&format!("of {n} items")), "{message}");
        assert!(message.contains("both need at least one"), "{message}");
    }
    assert!(matches!(
        split(Vec::<usize>::new(), 0.1),
        Err(Error::Empty { .. })
    ));
    assert!(matches!(
        split(Vec::<usize>::new(), 0.0),
        Err(Error::Empty { .. })
    ));
}
