//! Gradient-flow diagnostics: what `Rnn::backward_recorded` records, checked against the theory
//! (geometric decay through `W_hh = a I`), against the same quantities computed step by step
//! with the `Cell` API (whose weight gradients are the outer products `D_t^T X_t` themselves),
//! and against plain `backward` (same gradients, to the bit); the clipping record; the
//! spectral estimates of `W_hh`.

mod common;

use common::{F64, random_ids, random_matrix, rng};
use recurrent::Kernels;
use recurrent::diagnostics::{self, GradientFlow, Iteration, LayerFlow};
use recurrent::{
    Backend, Cell, CellKind, CellParams, CellState, Cpu, CrossEntropy, Error, GruCell, Input,
    LstmCell, Nonlinearity, Rnn, RnnCell, RnnConfig, Scalar, clip,
};

/// A model of shape `config` on `backend`, from `seed`.
fn model_on<B: Kernels>(backend: B, config: RnnConfig, seed: u64) -> Rnn<B> {
    Rnn::new(backend, config, &mut rng(seed)).expect("valid config")
}

/// `d_logits` that is zero except at the last step, where it is `value` everywhere: the loss
/// of a task answered at the end.
fn last_step_gradient<B: Kernels>(
    backend: &B,
    steps: usize,
    batch: usize,
    width: usize,
) -> B::Matrix {
    let data = (0..steps * batch * width)
        .map(|i| match i / (batch * width) + 1 == steps {
            true => B::Scalar::of(0.5),
            false => B::Scalar::of(0.0),
        })
        .collect();
    backend.from_vec(steps * batch, width, data).unwrap()
}

/// An Elman net with `W_hh = a I`, no biases, tiny inputs: tanh stays in its linear region
/// (`|h| < 1e-2`, so `tanh' > 1 - 1e-4`), and going back one step multiplies `dE/dh` by
/// `a * diag(tanh')`. With the loss at the last step only, the recorded norms fall by a ratio
/// within `[a (1 - 1e-4), a]` per step. The tolerance, 2e-4 relative, covers that and f32
/// rounding; a record of anything but the whole `dE/dh_t` (e.g. without the part from `t + 1`,
/// zero before the last step) misses it by far.
fn check_geometric_decay<B: Kernels>(backend: B) {
    let (steps, batch, hidden, a) = (30, 2, 4, 0.8);
    let config = RnnConfig::rnn(3, hidden).bias(false);
    let mut rnn = model_on(backend.clone(), config, 1);
    let identity = (0..hidden * hidden)
        .map(|i| {
            if i % (hidden + 1) == 0 {
                B::Scalar::of(a)
            } else {
                B::Scalar::of(0.0)
            }
        })
        .collect();
    rnn.set_parameter("weight_hh_l0", identity).unwrap();
    let x = random_matrix(&backend, steps * batch, 3, 1e-3, &mut rng(2));
    let trace = rnn.forward(&Input::dense(x, batch), None).unwrap();
    let d = last_step_gradient(&backend, steps, batch, hidden);
    let mut flow = GradientFlow::new();
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    let dh = flow.layer(0, 0).unwrap().dh();
    assert_eq!(dh.len(), steps);
    let expected_last = 0.5 * ((batch * hidden) as f64).sqrt();
    assert!((dh[steps - 1] - expected_last).abs() < 1e-6 * expected_last);
    for t in 0..steps - 1 {
        let ratio = dh[t] / dh[t + 1];
        assert!(
            (ratio - a).abs() < 2e-4 * a,
            "step {t}: ratio {ratio}, expected {a}; record {dh:?}"
        );
    }
}

#[test]
fn dh_decays_geometrically_with_ratio_a_through_a_scaled_identity() {
    check_geometric_decay(F64::new());
    check_geometric_decay(Cpu::<f32>::default());
}

#[test]
fn clip_record_shows_the_norm_before_above_and_after_at_the_threshold() {
    let rnn = model_on(F64::new(), RnnConfig::lstm(5, 6).output(5), 3);
    let ids = random_ids(8 * 2, 5, &mut rng(4));
    let trace = rnn.forward(&Input::ids(ids.clone(), 2), None).unwrap();
    let (_, d) = CrossEntropy::sum()
        .forward(rnn.backend(), trace.logits(), &ids)
        .unwrap();
    let mut flow = GradientFlow::new();
    let grads = rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    let total = clip::norm(rnn.backend(), &grads);
    let threshold = total / 10.0;
    let record = clip::global_norm_recorded(&mut grads.clone(), threshold).unwrap();
    assert!(record.clipped() && record.before > threshold);
    assert!((record.before - total).abs() <= 1e-12 * total);
    // After: measured again on the clipped gradients; equal to the threshold up to rounding.
    assert!(
        (record.after - threshold).abs() <= 1e-12 * threshold,
        "{record:?}"
    );
    flow.record_clip(record);
    assert_eq!(flow.clip(), Some(&record));
    // Below the threshold nothing changes, and the record says so.
    let unclipped = clip::global_norm_recorded(&mut grads.clone(), 2.0 * total).unwrap();
    assert!(!unclipped.clipped() && unclipped.after == unclipped.before);
    // A new backward pass forgets the old clipping record.
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    assert_eq!(flow.clip(), None);
}

/// Every gradient of a backward pass, as bits.
fn gradient_bits<B: Kernels>(backend: &B, grads: &recurrent::Gradients<B>) -> Vec<u64> {
    let mut all: Vec<B::Matrix> = grads.named().into_iter().map(|(_, m)| m.clone()).collect();
    all.extend(grads.input().cloned());
    for state in grads.initial_state().layers() {
        all.push(state.h.clone());
        all.extend(state.c.clone());
    }
    all.iter()
        .flat_map(|m| backend.to_vec(m))
        .map(|v| v.to_f64().to_bits())
        .collect()
}

/// In inference and in training mode (dropout between the layers and before the output layer).
fn check_same_bits<B: Kernels>(backend: B, kind: CellKind) {
    let config = RnnConfig::new(kind, 3, 5)
        .layers(2)
        .bidirectional(true)
        .dropout(0.3)
        .output_dropout(0.4)
        .output(4);
    let rnn = model_on(backend.clone(), config, 5);
    let (steps, batch) = (6, 3);
    let x = random_matrix(&backend, steps * batch, 3, 1.0, &mut rng(6));
    let input = Input::dense(x, batch).with_lengths(vec![6, 4, 5]);
    for train in [false, true] {
        let trace = match train {
            false => rnn.forward(&input, None),
            true => rnn.forward_train(&input, None, &mut rng(8)),
        }
        .unwrap();
        let d = random_matrix(&backend, steps * batch, 4, 1.0, &mut rng(7));
        let d_final = rnn.zero_state(batch);
        let plain = rnn.backward_with_state(&trace, &d, Some(&d_final)).unwrap();
        let mut flow = GradientFlow::new();
        let recorded = rnn
            .backward_recorded(&trace, &d, Some(&d_final), &mut flow)
            .unwrap();
        assert_eq!(
            gradient_bits(&backend, &plain),
            gradient_bits(&backend, &recorded),
            "{kind:?}, training mode {train}"
        );
        assert_eq!(
            gradient_bits(&backend, &plain),
            gradient_bits(&backend, &rnn.backward(&trace, &d).unwrap())
        );
    }
}

#[test]
fn recording_does_not_change_the_gradients() {
    for kind in [
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        check_same_bits(F64::new(), kind);
        check_same_bits(Cpu::<f32>::default(), kind);
        check_same_bits(Cpu::<f64>::default(), kind);
    }
}

/// The layer's cell, rebuilt from the model's parameters, for stepping by hand.
fn cell_of<B: Kernels>(backend: &B, kind: CellKind, p: &CellParams<B>) -> Box<dyn Cell<B>> {
    let (wi, wh) = (p.weight_ih().clone(), p.weight_hh().clone());
    let biases = p.bias_ih().cloned().zip(p.bias_hh().cloned());
    match kind {
        CellKind::Rnn(n) => Box::new(RnnCell::from_weights(backend, wi, wh, biases, n).unwrap()),
        CellKind::Lstm => Box::new(LstmCell::from_weights(backend, wi, wh, biases).unwrap()),
        CellKind::Gru => Box::new(GruCell::from_weights(backend, wi, wh, biases).unwrap()),
        other => unreachable!("no such cell in this test: {other:?}"),
    }
}

fn rows<B: Kernels>(backend: &B, m: &B::Matrix, t: usize, batch: usize) -> B::Matrix {
    let (_, cols) = backend.shape(m);
    let all = backend.to_vec(m);
    let data = all[t * batch * cols..(t + 1) * batch * cols].to_vec();
    backend.from_vec(batch, cols, data).unwrap()
}

fn norm<B: Kernels>(backend: &B, m: &B::Matrix) -> f64 {
    backend
        .to_vec(m)
        .iter()
        .map(|v| v.to_f64().powi(2))
        .sum::<f64>()
        .sqrt()
}

/// `dE/dc_t` of an LSTM from its saved state: `dc_next + dh o (1 - tanh(c)^2)` with
/// `o = h / tanh(c)`.
fn full_dc<B: Kernels>(
    backend: &B,
    state: &CellState<B>,
    dh: &B::Matrix,
    dc_next: &B::Matrix,
) -> f64 {
    let c = backend.to_vec(state.c.as_ref().unwrap());
    let (h, dh, dc_next) = (
        backend.to_vec(&state.h),
        backend.to_vec(dh),
        backend.to_vec(dc_next),
    );
    let sum: f64 = (0..c.len())
        .map(|i| {
            let tc = c[i].to_f64().tanh();
            let o = h[i].to_f64() / tc;
            let v = dc_next[i].to_f64() + dh[i].to_f64() * o * (1.0 - tc * tc);
            v * v
        })
        .sum();
    sum.sqrt()
}

/// The same record, computed step by step with the `Cell` API: at each step backward a fresh
/// gradient accumulator receives exactly that step's terms `D_t^T X_t`, `D_t^T H_{t-1}` and
/// `1^T D_t`, formed by the products themselves.
fn stepwise_record<B: Kernels>(
    rnn: &Rnn<B>,
    x: &B::Matrix,
    batch: usize,
    d: &B::Matrix,
) -> Vec<[f64; 6]> {
    let backend = rnn.backend();
    let kind = rnn.config().kind();
    let cell = cell_of(backend, kind, rnn.params().layer(0, 0).unwrap());
    let steps = backend.shape(x).0 / batch;
    let hidden = rnn.config().hidden_size();
    let mut states = vec![CellState::zeros(backend, kind, batch, hidden)];
    let mut caches = Vec::new();
    for t in 0..steps {
        let step = cell
            .step_forward(backend, &rows(backend, x, t, batch), &states[t])
            .unwrap();
        states.push(step.state.clone());
        caches.push(step);
    }
    let mut next = CellState::zeros(backend, kind, batch, hidden);
    let mut record = vec![[0.0; 6]; steps];
    for t in (0..steps).rev() {
        let mut dh = rows(backend, d, t, batch);
        backend.axpy(&mut dh, B::Scalar::of(1.0), &next.h);
        let dc = next.c.clone();
        let d_state = CellState {
            h: dh.clone(),
            c: dc.clone(),
        };
        let mut g = cell.params().zeros_like(backend);
        let x_t = rows(backend, x, t, batch);
        let (_, prev) = cell
            .step_backward(backend, &x_t, &states[t], &caches[t], &d_state, &mut g)
            .unwrap();
        let dc_norm = dc.map_or(0.0, |dc| full_dc(backend, &states[t + 1], &dh, &dc));
        record[t] = [
            norm(backend, &dh),
            dc_norm,
            norm(backend, g.weight_hh()),
            norm(backend, g.weight_ih()),
            norm(backend, g.bias_hh().unwrap()),
            norm(backend, g.bias_ih().unwrap()),
        ];
        next = prev;
    }
    record
}

fn recorded(flow: &LayerFlow, t: usize) -> [f64; 6] {
    let dc = flow.dc().map_or(0.0, |dc| dc[t]);
    let (bhh, bih) = (flow.bias_hh().unwrap()[t], flow.bias_ih().unwrap()[t]);
    [
        flow.dh()[t],
        dc,
        flow.weight_hh()[t],
        flow.weight_ih()[t],
        bhh,
        bih,
    ]
}

/// Dense input, or token ids given as ids to the model and as one-hot rows to the cell (with
/// repeated ids inside a step, where the Gram matrix of the one-hot rows is not the identity).
fn check_step_terms<B: Kernels>(backend: B, kind: CellKind, ids: bool, tolerance: f64) {
    let (steps, batch, input_size) = (7, 3, 4);
    let rnn = model_on(backend.clone(), RnnConfig::new(kind, input_size, 5), 8);
    let token_ids = random_ids(steps * batch, 2, &mut rng(9));
    let (input, x) = if ids {
        let one_hot = (0..steps * batch * input_size)
            .map(|i| {
                B::Scalar::of(f64::from(u8::from(
                    token_ids[i / input_size] == i % input_size,
                )))
            })
            .collect();
        let x = backend
            .from_vec(steps * batch, input_size, one_hot)
            .unwrap();
        (Input::ids(token_ids.clone(), batch), x)
    } else {
        let x = random_matrix(&backend, steps * batch, input_size, 1.0, &mut rng(10));
        (Input::dense(x.clone(), batch), x)
    };
    let trace = rnn.forward(&input, None).unwrap();
    let d = random_matrix(&backend, steps * batch, 5, 1.0, &mut rng(11));
    let mut flow = GradientFlow::new();
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    let layer = flow.layer(0, 0).unwrap();
    assert_eq!(layer.dc().is_some(), kind == CellKind::Lstm);
    let expected = stepwise_record(&rnn, &x, batch, &d);
    for (t, want) in expected.iter().enumerate() {
        let got = recorded(layer, t);
        for (what, (g, w)) in ["dh", "dc", "weight_hh", "weight_ih", "bias_hh", "bias_ih"]
            .iter()
            .zip(got.iter().zip(want))
        {
            assert!(
                (g - w).abs() <= tolerance * w.max(1e-3),
                "{kind:?} ids {ids}, step {t}, {what}: recorded {g}, stepwise {w}"
            );
        }
    }
}

#[test]
fn step_terms_equal_the_norms_of_the_outer_products_on_both_backends() {
    for kind in [
        CellKind::Rnn(Nonlinearity::Tanh),
        CellKind::Lstm,
        CellKind::Gru,
    ] {
        for ids in [false, true] {
            check_step_terms(F64::new(), kind, ids, 1e-10);
            check_step_terms(Cpu::<f64>::default(), kind, ids, 1e-10);
            check_step_terms(Cpu::<f32>::default(), kind, ids, 1e-3);
        }
    }
}

#[test]
fn lstm_records_dc_at_every_step_and_the_other_cells_none() {
    // Loss at the last step only: dE/dc_t is recorded at every step, positive and finite; at
    // the last step it is the part through h_T alone.
    let (steps, batch) = (12, 2);
    let backend = F64::new();
    let rnn = model_on(backend, RnnConfig::lstm(3, 4), 12);
    let x = random_matrix(&backend, steps * batch, 3, 1.0, &mut rng(13));
    let trace = rnn.forward(&Input::dense(x.clone(), batch), None).unwrap();
    let d = last_step_gradient(&backend, steps, batch, 4);
    let mut flow = GradientFlow::new();
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    let dc = flow.layer(0, 0).unwrap().dc().expect("an LSTM records dc");
    assert_eq!(dc.len(), steps);
    assert!(dc.iter().all(|v| v.is_finite() && *v > 0.0), "{dc:?}");
    // The other cells have no cell vector, and record none.
    let elman = model_on(backend, RnnConfig::rnn(3, 4), 12);
    let trace = elman.forward(&Input::dense(x, batch), None).unwrap();
    elman
        .backward_recorded(&trace, &d, None, &mut flow)
        .unwrap();
    assert_eq!(flow.layer(0, 0).unwrap().dc(), None);
}

#[test]
fn every_layer_and_direction_is_recorded_and_a_reused_record_is_resized() {
    let backend = Cpu::<f64>::default();
    let config = RnnConfig::gru(3, 4).layers(3).bidirectional(true).output(2);
    let rnn = model_on(backend.clone(), config, 14);
    let run = |steps: usize, flow: &mut GradientFlow| {
        let x = random_matrix(&backend, steps * 2, 3, 1.0, &mut rng(15));
        let trace = rnn.forward(&Input::dense(x, 2), None).unwrap();
        let d = random_matrix(&backend, steps * 2, 2, 1.0, &mut rng(16));
        rnn.backward_recorded(&trace, &d, None, flow).unwrap();
    };
    let mut reused = GradientFlow::new();
    run(9, &mut reused);
    assert_eq!(reused.layers().len(), 6);
    for layer in 0..3 {
        for dir in 0..2 {
            let flow = reused.layer(layer, dir).expect("recorded");
            assert_eq!(flow, &reused.layers()[layer * 2 + dir]);
            assert_eq!(flow.steps(), 9);
            // Step 0's W_hh term is zero: h_{-1} is the zero initial state.
            assert_eq!(flow.weight_hh()[0], 0.0);
            let all = [flow.dh(), &flow.weight_hh()[1..], flow.weight_ih()];
            let positive = |v: &f64| v.is_finite() && *v > 0.0;
            assert!(all.iter().all(|v| v.iter().all(positive)), "{flow:?}");
        }
    }
    assert!(reused.layer(3, 0).is_none() && reused.layer(0, 2).is_none());
    // Reused for a shorter sequence: sized anew, equal to a fresh record of that pass.
    run(4, &mut reused);
    let mut fresh = GradientFlow::new();
    run(4, &mut fresh);
    assert_eq!(reused, fresh);
    assert!(reused.layers().iter().all(|l| l.steps() == 4));
}

#[test]
fn steps_until_below_counts_back_from_the_last_step() {
    let backend = F64::new();
    let mut rnn = model_on(backend, RnnConfig::rnn(2, 1).bias(false), 17);
    rnn.set_parameter("weight_hh_l0", vec![0.1]).unwrap();
    let x = random_matrix(&backend, 12, 2, 1e-4, &mut rng(18));
    let trace = rnn.forward(&Input::dense(x, 1), None).unwrap();
    let d = last_step_gradient(&backend, 12, 1, 1);
    let mut flow = GradientFlow::new();
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    // Each step back multiplies by 0.1 (times tanh' just below 1): 5 steps back the norm is
    // 1e-5 of the last one, 6 steps back just under 1e-6.
    let layer = flow.layer(0, 0).unwrap();
    assert_eq!(layer.steps_until_below(2e-6), Some(6), "{:?}", layer.dh());
    assert_eq!(layer.steps_until_below(2e-5), Some(5));
    assert_eq!(layer.steps_until_below(1e-30), None);
    assert_eq!(LayerFlow::default().steps_until_below(0.5), None);
}

fn matrix(rows: usize, cols: usize, data: &[f64]) -> <F64 as Backend>::Matrix {
    F64::new().from_vec(rows, cols, data.to_vec()).unwrap()
}

#[test]
fn spectral_estimates_of_known_matrices() {
    let b = F64::new();
    let opts = Iteration::default();
    let close = |got: f64, want: f64| (got - want).abs() <= 1e-8 * want.max(1.0);
    let check = |m: &<F64 as Backend>::Matrix, sigma: f64, rho: f64| {
        let s = diagnostics::largest_singular_value(&b, m, opts).unwrap();
        let r = diagnostics::spectral_radius(&b, m, opts).unwrap();
        assert!(
            close(s, sigma) && close(r, rho),
            "sigma {s} (want {sigma}), rho {r} (want {rho})"
        );
    };
    check(
        &matrix(3, 3, &[0.8, 0.0, 0.0, 0.0, 0.8, 0.0, 0.0, 0.0, 0.8]),
        0.8,
        0.8,
    );
    check(&matrix(2, 2, &[-3.0, 0.0, 0.0, 2.0]), 3.0, 3.0);
    // A rotation by 90 degrees scaled by 1.5: eigenvalues +-1.5i, where power iteration on W
    // itself would oscillate.
    check(&matrix(2, 2, &[0.0, -1.5, 1.5, 0.0]), 1.5, 1.5);
    // Non-normal: eigenvalues 1 and 0.5, but sigma_max = 10.06...; and a nilpotent matrix.
    let sigma = {
        // W^T W = [[1, 10], [10, 100.25]]: its largest eigenvalue.
        let (tr, det) = (101.25, 100.25 - 100.0);
        ((tr + f64::sqrt(tr * tr - 4.0 * det)) / 2.0).sqrt()
    };
    check(&matrix(2, 2, &[1.0, 10.0, 0.0, 0.5]), sigma, 1.0);
    check(&matrix(2, 2, &[0.0, 2.0, 0.0, 0.0]), 2.0, 0.0);
    let zero = matrix(2, 3, &[0.0; 6]);
    assert_eq!(
        diagnostics::largest_singular_value(&b, &zero, opts).unwrap(),
        0.0
    );
}

#[test]
fn spectral_estimates_refuse_bad_arguments() {
    let b = F64::new();
    let opts = Iteration::default();
    let empty = matrix(0, 0, &[]);
    let nan = matrix(2, 2, &[1.0, f64::NAN, 0.0, 1.0]);
    let wide = matrix(2, 3, &[1.0; 6]);
    let square = matrix(2, 2, &[1.0; 4]);
    for m in [&empty, &matrix(0, 3, &[])] {
        let e = diagnostics::largest_singular_value(&b, m, opts).unwrap_err();
        assert!(matches!(e, Error::Empty { .. }), "{e}");
        assert!(matches!(
            diagnostics::spectral_radius(&b, m, opts),
            Err(Error::Empty { .. })
        ));
    }
    assert!(matches!(
        diagnostics::largest_singular_value(&b, &nan, opts),
        Err(Error::NonFinite { .. })
    ));
    assert!(matches!(
        diagnostics::spectral_radius(&b, &nan, opts),
        Err(Error::NonFinite { .. })
    ));
    let e = diagnostics::spectral_radius(&b, &wide, opts).unwrap_err();
    assert!(
        matches!(e, Error::Shape { .. }) && e.to_string().contains("2 x 3"),
        "{e}"
    );
    assert!(diagnostics::largest_singular_value(&b, &wide, opts).is_ok());
    let bad = [
        Iteration::new(0, opts.tolerance),
        Iteration::new(opts.max_iterations, 0.0),
        Iteration::new(opts.max_iterations, f64::NAN),
        Iteration::new(opts.max_iterations, -1.0),
    ];
    for options in bad {
        let e = diagnostics::largest_singular_value(&b, &square, options).unwrap_err();
        assert!(matches!(e, Error::Config { .. }), "{e}");
        assert!(matches!(
            diagnostics::spectral_radius(&b, &square, options),
            Err(Error::Config { .. })
        ));
    }
}

#[test]
fn a_bad_gradient_is_refused_and_leaves_the_record_as_it_was() {
    let backend = F64::new();
    let rnn = model_on(backend, RnnConfig::gru(3, 4).output(2), 19);
    let x = random_matrix(&backend, 5 * 2, 3, 1.0, &mut rng(20));
    let trace = rnn.forward(&Input::dense(x, 2), None).unwrap();
    let mut flow = GradientFlow::new();
    let d = random_matrix(&backend, 5 * 2, 2, 1.0, &mut rng(21));
    rnn.backward_recorded(&trace, &d, None, &mut flow).unwrap();
    let before = flow.clone();
    let wrong = random_matrix(&backend, 5 * 2, 3, 1.0, &mut rng(22));
    let e = rnn
        .backward_recorded(&trace, &wrong, None, &mut flow)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    let d_final = rnn.zero_state(3);
    let e = rnn
        .backward_recorded(&trace, &d, Some(&d_final), &mut flow)
        .unwrap_err();
    assert!(matches!(e, Error::Shape { .. }), "{e}");
    assert_eq!(flow, before);
}
