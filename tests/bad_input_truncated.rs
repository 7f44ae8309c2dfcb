//! TBPTT's bad input: an invalid `k1`, `k2` or batch, every bad step (wrong ids, targets,
//! model), a context that cannot be resumed, `Trace::state_at` past the end. Each is an `Err`
//! that leaves the `Tbptt` as it was.

mod common;
#[path = "common/truncated.rs"]
mod truncated;

use common::{F64, model, random_ids, rng};
use recurrent::{CrossEntropy, Error, Input, Rnn, RnnConfig, Tbptt};
use truncated::{BATCH, VOCAB, assert_same_grads, configs, held_bits, stream};

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

// ---------------------------------------------------------------------------------------------
// Errors: each is an `Err`, and leaves the `Tbptt` as it was

#[test]
fn invalid_k1_k2_or_batch_is_a_config_error_naming_the_values() {
    for (k1, k2, batch, names) in [
        (0, 3, 2, "k1 = 0"),
        (4, 3, 2, "k1 = 4 and k2 = 3"),
        (0, 0, 2, "k2 = 0"),
        (1, 1, 0, "batch 0"),
        (1, usize::MAX, 2, "batch 2"),
    ] {
        match Tbptt::<F64>::new(k1, k2, batch) {
            Err(Error::Config { message }) => assert!(message.contains(names), "{message}"),
            other => panic!("({k1}, {k2}, {batch}): expected a config error, got {other:?}"),
        }
    }
    assert!(Tbptt::<F64>::new(1, 1, 1).is_ok());
}

/// What a `Tbptt` holds, to compare before and after a failed step.
fn snapshot(rnn: &Rnn<F64>, tbptt: &Tbptt<F64>) -> (Vec<usize>, Vec<Vec<u64>>, bool) {
    (
        tbptt.context().to_vec(),
        held_bits(rnn, tbptt.state()),
        tbptt.state().is_some(),
    )
}

#[test]
fn every_bad_step_is_an_error_that_changes_nothing() {
    let (k1, k2) = (2, 5);
    let rnn = model(configs()[0].clone(), 25);
    let chunks = stream(5, k1, 26);
    let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
    for (ids, targets) in &chunks[..3] {
        tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
    }
    let (ids, targets) = &chunks[3];
    let mut bad_id = ids.clone();
    bad_id[3] = VOCAB;
    let mut bad_target = targets.clone();
    bad_target[1] = VOCAB + 2;
    let bidirectional = model(
        RnnConfig::lstm(VOCAB, 4)
            .layers(2)
            .bidirectional(true)
            .output(VOCAB),
        27,
    );
    let other_size = model(RnnConfig::rnn(VOCAB, 6).layers(2).output(VOCAB), 28);
    let other_kind = model(configs()[2].clone(), 28); // GRU: same state shapes as the RNN's
    let three_streams = random_ids(k1 * 3, VOCAB, &mut rng(29));
    let short = &ids[..ids.len() - 1];
    type Case<'a> = (&'a str, &'a Rnn<F64>, &'a [usize], &'a [usize]);
    let cases: [Case<'_>; 8] = [
        ("too few ids", &rnn, short, targets),
        ("too few targets", &rnn, ids, &targets[1..]),
        (
            "a chunk of another batch",
            &rnn,
            &three_streams,
            &three_streams,
        ),
        ("an id out of vocabulary", &rnn, &bad_id, targets),
        ("a target out of range", &rnn, ids, &bad_target),
        ("a bidirectional model", &bidirectional, ids, targets),
        ("a model of another size", &other_size, ids, targets),
        ("a model of another cell", &other_kind, ids, targets),
    ];
    let before = snapshot(&rnn, &tbptt);
    let untouched = tbptt.clone();
    for (what, model, ids, targets) in cases {
        let err = tbptt.step(model, ids, targets, CrossEntropy::sum());
        let err = err.err().unwrap_or_else(|| panic!("{what}: no error"));
        println!("{what}: {err}");
        match (what, &err) {
            (
                "too few ids" | "too few targets" | "a chunk of another batch",
                Error::Shape { .. },
            ) => {}
            (
                "an id out of vocabulary",
                Error::Index {
                    position,
                    value,
                    bound,
                    ..
                },
            ) => {
                assert_eq!((*position, *value, *bound), (3, VOCAB, VOCAB));
            }
            (
                "a target out of range",
                Error::Index {
                    position, value, ..
                },
            ) => {
                assert_eq!((*position, *value), (1, VOCAB + 2));
            }
            (_, Error::Config { .. }) if what.starts_with("a ") && what.contains("model") => {}
            _ => panic!("{what}: unexpected error {err:?}"),
        }
        assert_eq!(snapshot(&rnn, &tbptt), before, "{what}: the Tbptt changed");
        // Also with a failed train step.
        let err = tbptt.step_train(model, ids, targets, CrossEntropy::sum(), &mut rng(0));
        assert!(err.is_err(), "{what}");
        assert_eq!(snapshot(&rnn, &tbptt), before, "{what}: the Tbptt changed");
    }
    // The next good step is the one it would have been without the errors.
    let out = tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
    let want = untouched
        .clone()
        .step(&rnn, ids, targets, CrossEntropy::sum())
        .unwrap();
    assert_eq!(out.loss.to_bits(), want.loss.to_bits());
    assert_same_grads("after the errors", &out.grads, &want.grads);
    // After a reset, another model may take over.
    tbptt.reset();
    assert!(
        tbptt
            .step(&other_size, ids, targets, CrossEntropy::sum())
            .is_ok()
    );
}

#[test]
fn resume_refuses_a_context_that_is_not_whole_steps_or_too_long() {
    let (k1, k2) = (2, 5);
    for (len, want, part) in [
        (3, "\"a multiple of 2\"", "whole steps"),
        (7, "\"a multiple of 2\"", "whole steps"),
        (8, "\"at most 6\"", "k2 - k1 = 3"),
    ] {
        match Tbptt::<F64>::resume(k1, k2, BATCH, vec![0; len], None) {
            Err(Error::Shape {
                what,
                expected,
                given,
            }) => {
                assert!(what.contains("context") && what.contains(part), "{what}");
                assert_eq!((expected.as_str(), given), (want, len.to_string()));
            }
            other => panic!("context of {len}: expected a shape error, got {other:?}"),
        }
    }
    assert!(matches!(
        Tbptt::<F64>::resume(0, 5, BATCH, vec![], None),
        Err(Error::Config { .. })
    ));
    for len in [0, 2, 6] {
        let resumed = Tbptt::<F64>::resume(k1, k2, BATCH, vec![1; len], None).unwrap();
        assert_eq!(resumed.context_steps(), len / BATCH);
    }
}
