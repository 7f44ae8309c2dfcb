//! Truncated BPTT, TBPTT(k1, k2) (`recurrent::Tbptt`), against what it must equal: the
//! hand-written window loop when `k1 = k2`, an independent by-hand computation and finite
//! differences when `k2 > k1`; and `Trace::state_at`, which carries the state between updates.
//! Everything runs on `NaiveCpu<f64>` and compares bit for bit where the arithmetic is the same.

mod common;
#[path = "common/truncated.rs"]
mod truncated;

use common::{F64, model, random_ids, rng};
use recurrent::gradcheck::{self, Options};
use recurrent::{
    Backend, CrossEntropy, Gradients, Input, Optimizer, Rnn, RnnConfig, Sgd, State, Tbptt, Trace,
};
use truncated::{BATCH, VOCAB, assert_same_grads, bits, configs, held_bits, state_bits, stream};

/// The truncated loss by hand: forward over `window` (context, then new steps) from `state`,
/// the loss of the last `new` steps alone, and their `dE/d logits` put under zero rows for the
/// context; then backward.
fn by_hand(
    rnn: &Rnn<F64>,
    state: Option<&State<F64>>,
    window: &[usize],
    targets: &[usize],
    loss: &CrossEntropy,
) -> (f64, Gradients<F64>, Trace<F64>) {
    let backend = rnn.backend();
    let trace = rnn
        .forward(&Input::ids(window.to_vec(), BATCH), state)
        .unwrap();
    let (rows, classes) = backend.shape(trace.logits());
    let context_rows = rows - targets.len();
    let new_logits = &trace.logits().as_slice()[context_rows * classes..];
    let new_logits = backend
        .from_vec(targets.len(), classes, new_logits.to_vec())
        .unwrap();
    let (value, d_new) = loss.forward(backend, &new_logits, targets).unwrap();
    let mut d_logits = vec![0.0; context_rows * classes];
    d_logits.extend_from_slice(d_new.as_slice());
    let d_logits = backend.from_vec(rows, classes, d_logits).unwrap();
    let grads = rnn.backward(&trace, &d_logits).unwrap();
    (value, grads, trace)
}

/// TBPTT(k1, k2) written out step by step, independently of `Tbptt`: the whole stream is kept,
/// each update's window is cut from it, and the state for the next window comes from a
/// forward pass over the steps before that window's start (not from `Trace::state_at`).
struct Reference {
    k1: usize,
    k2: usize,
    /// Every input id seen, time-major.
    seen: Vec<usize>,
    /// The step the next window starts at, and the state there (`None`: zeros).
    start: usize,
    state: Option<State<F64>>,
}

impl Reference {
    fn new(k1: usize, k2: usize) -> Self {
        Reference {
            k1,
            k2,
            seen: Vec::new(),
            start: 0,
            state: None,
        }
    }

    /// One update; returns the loss, the gradients and the context length.
    fn step(
        &mut self,
        rnn: &Rnn<F64>,
        ids: &[usize],
        targets: &[usize],
        loss: &CrossEntropy,
    ) -> (f64, Gradients<F64>, usize) {
        self.seen.extend_from_slice(ids);
        let t = self.seen.len() / BATCH; // steps seen, 0-based window end (exclusive)
        let s = t.saturating_sub(self.k2);
        assert_eq!(
            s, self.start,
            "the window starts where the last update said"
        );
        let window = &self.seen[s * BATCH..];
        let (value, grads, _) = by_hand(rnn, self.state.as_ref(), window, targets, loss);
        // The next window starts at max(0, t + k1 - k2): run the steps before it again.
        let next = (t + self.k1).saturating_sub(self.k2);
        if next > s {
            let prefix = Input::ids(self.seen[s * BATCH..next * BATCH].to_vec(), BATCH);
            let trace = rnn.forward(&prefix, self.state.as_ref()).unwrap();
            self.state = Some(trace.final_state());
        }
        self.start = next;
        (value, grads, t - self.k1 - s)
    }
}

#[test]
fn k1_equal_to_k2_is_the_hand_written_window_loop_bit_for_bit() {
    let steps = 3;
    for config in configs() {
        for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
            let mut rnn = model(config.clone(), 1);
            let mut by_loop = rnn.clone();
            let mut sgd = Sgd::new(0.1).unwrap();
            let mut tbptt = Tbptt::new(steps, steps, BATCH).unwrap();
            let mut state: Option<State<F64>> = None;
            for (w, (ids, targets)) in stream(4, steps, 2).iter().enumerate() {
                let what = format!("{config:?}, {loss:?}, window {w}");
                let out = tbptt.step(&rnn, ids, targets, &loss).unwrap();
                // The loop users write today.
                let trace = by_loop
                    .forward(&Input::ids(ids.clone(), BATCH), state.as_ref())
                    .unwrap();
                let (value, d_logits) = loss
                    .forward(by_loop.backend(), trace.logits(), targets)
                    .unwrap();
                let grads = by_loop.backward(&trace, &d_logits).unwrap();
                assert_eq!(out.loss.to_bits(), value.to_bits(), "{what}: loss");
                assert_same_grads(&what, &out.grads, &grads);
                assert_eq!((out.context, out.steps()), (0, steps), "{what}");
                sgd.step(&mut rnn, &out.grads).unwrap();
                sgd.step(&mut by_loop, &grads).unwrap();
                state = Some(trace.final_state());
                assert_eq!(tbptt.context_steps(), 0);
                let held = held_bits(&rnn, tbptt.state());
                assert_eq!(held, state_bits(state.as_ref().unwrap()), "{what}: state");
            }
        }
    }
}

#[test]
fn k2_above_k1_matches_the_truncated_gradient_by_hand_at_every_update() {
    for (k1, k2) in [(2, 5), (1, 3), (3, 4), (2, 6)] {
        for config in configs() {
            for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
                let what = format!("TBPTT({k1}, {k2}), {config:?}, {loss:?}");
                let mut rnn = model(config.clone(), 3);
                let mut reference_rnn = rnn.clone();
                let mut sgd = Sgd::new(0.2).unwrap();
                let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
                let mut reference = Reference::new(k1, k2);
                for (n, (ids, targets)) in stream(6, k1, 4).iter().enumerate() {
                    let out = tbptt.step(&rnn, ids, targets, &loss).unwrap();
                    let (value, grads, context) =
                        reference.step(&reference_rnn, ids, targets, &loss);
                    let what = format!("{what}, update {n}");
                    assert_eq!(out.loss.to_bits(), value.to_bits(), "{what}: loss");
                    assert_same_grads(&what, &out.grads, &grads);
                    assert_eq!(out.context, context, "{what}: context steps");
                    // The updates change the weights, so the context is recomputed with new ones.
                    sgd.step(&mut rnn, &out.grads).unwrap();
                    sgd.step(&mut reference_rnn, &grads).unwrap();
                    assert_eq!(
                        held_bits(&rnn, tbptt.state()),
                        held_bits(&rnn, reference.state.as_ref()),
                        "{what}: state carried"
                    );
                    let window = &reference.seen[reference.start * BATCH..];
                    assert_eq!(tbptt.context(), window, "{what}: context kept");
                }
            }
        }
    }
}

/// The context must matter: with it, the gradient is not the one of the new steps alone.
#[test]
fn the_context_steps_receive_gradient() {
    let (k1, k2) = (2, 5);
    let rnn = model(configs()[0].clone(), 5);
    let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
    let chunks = stream(4, k1, 6);
    for (ids, targets) in &chunks[..3] {
        tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
    }
    let state = tbptt.state().cloned();
    let (ids, targets) = &chunks[3];
    let out = tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
    assert_eq!(out.context, 3);
    // The same new steps from the state their window reached them with, but no context: k1 = k2.
    let at_new = out.trace.state_at(rnn.backend(), 2).unwrap();
    let (_, alone, _) = by_hand(&rnn, Some(&at_new), ids, targets, &CrossEntropy::sum());
    let name = "weight_hh_l0";
    let (with, without) = (out.grads.get(name).unwrap(), alone.get(name).unwrap());
    assert_ne!(bits(with), bits(without));
    // And the loss is the same: the context only adds gradient paths, not loss terms.
    let (value, _, _) = by_hand(&rnn, Some(&at_new), ids, targets, &CrossEntropy::sum());
    assert!((out.loss - value).abs() < 1e-12, "{} vs {value}", out.loss);
    assert!(state.is_some());
}

#[test]
fn k2_above_k1_gradient_matches_finite_differences_with_the_saved_state_held() {
    let (k1, k2) = (2, 5);
    for config in configs() {
        for loss in [CrossEntropy::sum(), CrossEntropy::mean()] {
            let rnn = model(config.clone(), 7);
            let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
            let chunks = stream(4, k1, 8);
            for (ids, targets) in &chunks[..3] {
                tbptt.step(&rnn, ids, targets, &loss).unwrap();
            }
            // The fourth update: 3 steps of context, a saved state that is not zero.
            let (ids, targets) = &chunks[3];
            let (state, context) = (tbptt.state().cloned(), tbptt.context().to_vec());
            assert!(state.is_some() && context.len() == 3 * BATCH);
            let out = tbptt.step(&rnn, ids, targets, &loss).unwrap();
            let mut window = context;
            window.extend_from_slice(ids);
            let mut report = None;
            for (name, p) in rnn.parameters() {
                let r = gradcheck::check(
                    &name,
                    &rnn.backend().to_vec(p),
                    &rnn.backend().to_vec(out.grads.get(&name).unwrap()),
                    |v| {
                        let mut moved = rnn.clone();
                        moved.set_parameter(&name, v.to_vec())?;
                        Ok(by_hand(&moved, state.as_ref(), &window, targets, &loss).0)
                    },
                    Options::default(),
                )
                .unwrap();
                report = Some(match report {
                    None => r,
                    Some(all) => r.merge(all),
                });
            }
            let report = report.unwrap();
            println!("{config:?} {loss:?}: {report:?}");
            let entries: usize = rnn
                .parameters()
                .iter()
                .map(|(_, p)| p.as_slice().len())
                .sum();
            assert_eq!(report.checked, entries, "every entry of every parameter");
            assert!(report.worst < 1e-6, "{config:?} {loss:?}: {report:?}");
        }
    }
}

#[test]
fn first_updates_use_the_context_there_is() {
    for (k1, k2) in [(2, 5), (1, 4), (3, 4), (2, 8)] {
        let rnn = model(configs()[1].clone(), 9);
        let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
        let mut seen: Vec<usize> = Vec::new();
        for (n, (ids, targets)) in stream(6, k1, 10).iter().enumerate() {
            let what = format!("TBPTT({k1}, {k2}), update {n}");
            let out = tbptt
                .step(&rnn, ids, targets, CrossEntropy::mean())
                .unwrap();
            let context = (n * k1).min(k2 - k1);
            assert_eq!(out.context, context, "{what}");
            assert_eq!(out.steps(), context + k1, "{what}");
            // While the window reaches back to the first step, it starts from zeros.
            let start = seen.len() / BATCH - context;
            if start == 0 {
                let (value, grads, _) = by_hand(
                    &rnn,
                    None,
                    &[seen.as_slice(), ids].concat(),
                    targets,
                    &CrossEntropy::mean(),
                );
                assert_eq!(out.loss.to_bits(), value.to_bits(), "{what}");
                assert_same_grads(&what, &out.grads, &grads);
            }
            seen.extend_from_slice(ids);
            let steps_seen = (n + 1) * k1;
            assert_eq!(tbptt.context_steps(), steps_seen.min(k2 - k1), "{what}");
            assert_eq!(
                tbptt.state().is_none(),
                steps_seen <= k2 - k1,
                "{what}: zeros until the context leaves the first step behind"
            );
        }
    }
}

#[test]
fn the_state_carried_is_the_state_after_k1_steps_of_the_window() {
    let (k1, k2) = (2, 5);
    for config in configs() {
        let rnn = model(config.clone(), 11);
        let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
        for (n, (ids, targets)) in stream(6, k1, 12).iter().enumerate() {
            let out = tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
            if out.context == k2 - k1 {
                let want = out.trace.state_at(rnn.backend(), k1 - 1).unwrap();
                let held = tbptt.state().expect("past the first step");
                assert_eq!(
                    state_bits(held),
                    state_bits(&want),
                    "{config:?}, update {n}"
                );
            }
        }
    }
}

#[test]
fn reset_starts_from_zeros_with_no_context() {
    let (k1, k2) = (2, 5);
    for config in configs() {
        let rnn = model(config.clone(), 13);
        let chunks = stream(5, k1, 14);
        let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
        for (ids, targets) in &chunks[..4] {
            tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
        }
        assert!(tbptt.state().is_some() && tbptt.context_steps() == 3);
        tbptt.reset();
        assert!(tbptt.state().is_none() && tbptt.context().is_empty());
        let (ids, targets) = &chunks[4];
        let after_reset = tbptt.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
        let fresh = Tbptt::new(k1, k2, BATCH)
            .unwrap()
            .step(&rnn, ids, targets, CrossEntropy::sum())
            .unwrap();
        assert_eq!(after_reset.context, 0);
        assert_eq!(after_reset.loss.to_bits(), fresh.loss.to_bits());
        assert_same_grads("after reset", &after_reset.grads, &fresh.grads);
        // And a fresh start is a forward pass from zeros.
        let (value, _, _) = by_hand(&rnn, None, ids, targets, &CrossEntropy::sum());
        assert_eq!(after_reset.loss.to_bits(), value.to_bits());
    }
}

#[test]
fn step_train_is_forward_train_in_the_window_loop() {
    let config = RnnConfig::lstm(VOCAB, 4)
        .layers(2)
        .dropout(0.3)
        .output_dropout(0.2)
        .output(VOCAB);
    let rnn = model(config, 15);
    let steps = 3;
    let mut tbptt = Tbptt::new(steps, steps, BATCH).unwrap();
    let mut state: Option<State<F64>> = None;
    for (w, (ids, targets)) in stream(3, steps, 16).iter().enumerate() {
        let loss = CrossEntropy::sum();
        let out = tbptt
            .step_train(&rnn, ids, targets, &loss, &mut rng(w as u64))
            .unwrap();
        let input = Input::ids(ids.clone(), BATCH);
        let trace = rnn
            .forward_train(&input, state.as_ref(), &mut rng(w as u64))
            .unwrap();
        let (value, d) = loss
            .forward(rnn.backend(), trace.logits(), targets)
            .unwrap();
        assert_eq!(out.loss.to_bits(), value.to_bits(), "window {w}");
        assert_same_grads("step_train", &out.grads, &rnn.backward(&trace, &d).unwrap());
        state = Some(trace.final_state());
    }
    // Dropout is on: inference mode gives another loss on the same data.
    let (ids, targets) = &stream(1, steps, 17)[0];
    let mut a = Tbptt::new(steps, steps, BATCH).unwrap();
    let plain = a.step(&rnn, ids, targets, CrossEntropy::sum()).unwrap();
    let mut b = Tbptt::new(steps, steps, BATCH).unwrap();
    let dropped = b
        .step_train(&rnn, ids, targets, CrossEntropy::sum(), &mut rng(0))
        .unwrap();
    assert_ne!(plain.loss, dropped.loss);
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
fn training_with_tbptt_lowers_the_loss() {
    let text = "abcabcabcabdabcabcabcabd".repeat(8);
    let ids: Vec<usize> = text.bytes().map(|b| usize::from(b - b'a')).collect();
    let corpus = recurrent::Corpus::new(ids, BATCH, 3).unwrap();
    let mut rnn = model(RnnConfig::lstm(4, 12).output(4), 30);
    let mut sgd = Sgd::new(0.5).unwrap();
    let mut tbptt = Tbptt::new(3, 9, BATCH).unwrap();
    let mut pass_loss = Vec::new();
    for _ in 0..30 {
        let mut total = 0.0;
        for window in corpus.windows() {
            if window.reset {
                tbptt.reset();
            }
            let mut out = tbptt
                .step(&rnn, &window.inputs, &window.targets, CrossEntropy::mean())
                .unwrap();
            recurrent::clip::global_norm(&mut out.grads, 5.0).unwrap();
            sgd.step(&mut rnn, &out.grads).unwrap();
            total += out.loss;
        }
        pass_loss.push(total / corpus.len() as f64);
    }
    let (first, last) = (pass_loss[0], *pass_loss.last().unwrap());
    println!("mean loss per pass: {pass_loss:?}");
    assert!(last < 0.5 * first, "first pass {first}, last {last}");
}

/// `n` updates of TBPTT(3, 8) with Adam from `tbptt` (a fresh or a resumed one), each loss's
/// bits returned.
fn train_tbptt(
    rnn: &mut Rnn<F64>,
    opt: &mut dyn Optimizer<F64>,
    tbptt: &mut Tbptt<F64>,
    chunks: &[(Vec<usize>, Vec<usize>)],
) -> Vec<u64> {
    chunks
        .iter()
        .map(|(ids, targets)| {
            let out = tbptt.step(rnn, ids, targets, CrossEntropy::mean()).unwrap();
            opt.step(rnn, &out.grads).unwrap();
            out.loss.to_bits()
        })
        .collect()
}

#[test]
fn a_run_resumed_from_a_checkpoint_with_its_context_continues_bit_for_bit() {
    use recurrent::checkpoint::{Checkpoint, Progress};
    let (k1, k2) = (3, 8);
    for config in configs() {
        let chunks = stream(9, k1, 31);
        let start = model(config.clone(), 32);
        let new_adam = || recurrent::Adam::<F64>::new(1e-2).unwrap();
        // Without a stop.
        let (mut rnn, mut opt) = (start.clone(), new_adam());
        let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
        let whole = train_tbptt(&mut rnn, &mut opt, &mut tbptt, &chunks);
        // Stopped after 4 updates, the context and state saved with the checkpoint.
        let (mut first, mut opt) = (start.clone(), new_adam());
        let mut tbptt = Tbptt::new(k1, k2, BATCH).unwrap();
        let mut losses = train_tbptt(&mut first, &mut opt, &mut tbptt, &chunks[..4]);
        assert_eq!(tbptt.context_steps(), k2 - k1);
        let context: Vec<String> = tbptt.context().iter().map(usize::to_string).collect();
        let bytes = Checkpoint::new(first, &opt, Progress::new(0))
            .with_state(tbptt.state().cloned())
            .with_metadata("tbptt_context", context.join(","))
            .to_state_dict()
            .unwrap()
            .to_bytes()
            .unwrap();
        drop((tbptt, opt));
        let loaded = Checkpoint::from_bytes(F64::new(), &bytes).unwrap();
        let mut opt = new_adam();
        loaded.restore_optimizer(&mut opt).unwrap();
        let context = loaded.metadata["tbptt_context"]
            .split(',')
            .map(|id| id.parse().unwrap())
            .collect();
        let mut tbptt = Tbptt::resume(k1, k2, BATCH, context, loaded.state.clone()).unwrap();
        let mut rnn_resumed = loaded.rnn;
        losses.extend(train_tbptt(
            &mut rnn_resumed,
            &mut opt,
            &mut tbptt,
            &chunks[4..],
        ));
        assert_eq!(losses, whole, "{config:?}: every loss");
        for (name, m) in rnn.parameters() {
            let resumed = rnn_resumed.parameter(&name).unwrap();
            assert_eq!(bits(resumed), bits(m), "{config:?}: {name}");
        }
        // Without the context the resumed run differs: the test can tell.
        let loaded = Checkpoint::from_bytes(F64::new(), &bytes).unwrap();
        let mut no_context = Tbptt::resume(k1, k2, BATCH, vec![], loaded.state).unwrap();
        let (ids, targets) = &chunks[4];
        let step = no_context
            .step(&loaded.rnn, ids, targets, CrossEntropy::mean())
            .unwrap();
        assert_ne!(step.loss.to_bits(), whole[4]);
    }
}
