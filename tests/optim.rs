//! The optimisers against `torch.optim`, and what a checkpoint must keep.
//!
//! - Parity: every case written by `tests/fixtures/optim/generate.py` (PyTorch 2.15, f64:
//!   SGD plain, with momentum, dampening, Nesterov and weight decay; Adagrad plain and with
//!   learning-rate decay, weight decay and an initial accumulator; RMSprop plain, char-rnn's,
//!   centred, with momentum, both; Adam plain, with weight decay, AMSGrad, a small beta1; AdamW
//!   plain and with AMSGrad) runs five steps on the same given gradients, on `NaiveCpu<f64>` and
//!   `Cpu<f64>`. After every step each parameter, and after the last every state buffer, must
//!   agree with PyTorch within [`TOLERANCE`], relative; the worst error of each case is printed.
//!   The configured hyperparameters (PyTorch's defaults included) must equal PyTorch's.
//! - Schedules: `StepLr`, `ExponentialLr` and `CosineLr` give PyTorch's `StepLR` and
//!   `ExponentialLR` rates and `CosineAnnealingLR`'s closed form bit for bit over 30 epochs
//!   (the cosine's recursive `step()` within 1e-15); char-rnn's delayed decay by hand; the
//!   cosine past `t_max`.
//! - min-char-rnn's Adagrad (`eps` under the root) against values computed by hand.
//! - Checkpoints: 3 steps, `state_dict` through the file format, a fresh optimiser, 2 more steps
//!   give the same bits as 5 steps without a stop, parameters and state, in f64 and f32.
//!
//! Bad hyperparameters, mismatched gradients and broken state dicts are in
//! `bad_input_optim.rs`.

#[path = "common/fixture.rs"]
mod fixture;

use fixture::floats;
use rand::SeedableRng;
use rand::rngs::StdRng;
use recurrent::Kernels;
use recurrent::optim::{CosineLr, ExponentialLr, StepLr};
use recurrent::prelude::*;
use recurrent::{Scalar, StateDict};

/// Both sides compute the same operations with the same roundings in f64, fused multiply-adds
/// included, and most values agree to the bit (the count is printed). They differ where
/// PyTorch's square root (MKL's vector math) is an ulp away from the correctly rounded one, and
/// then by a few ulps; the worst seen is 3.8e-15.
const TOLERANCE: f64 = 1e-13;

const STEPS: usize = 5;

fn fixture(name: &str) -> StateDict {
    let path = format!(
        "{}/tests/fixtures/optim/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    StateDict::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The optimiser of each fixture, configured with recurrent's builders.
fn optimizer<B: Kernels>(case: &str) -> Result<Box<dyn Optimizer<B>>> {
    Ok(match case {
        "sgd" => Box::new(Sgd::new(0.1)?),
        "sgd_momentum" => Box::new(Sgd::new(0.1)?.momentum(0.9)?),
        "sgd_dampening" => Box::new(Sgd::new(0.05)?.momentum(0.8)?.dampening(0.3)?),
        "sgd_nesterov" => Box::new(Sgd::new(0.1)?.momentum(0.9)?.nesterov(true)?),
        "sgd_weight_decay" => Box::new(Sgd::new(0.1)?.momentum(0.5)?.weight_decay(0.01)?),
        "adagrad" => Box::new(Adagrad::new(0.1)?),
        "adagrad_lr_decay" => Box::new(
            Adagrad::new(0.1)?
                .lr_decay(0.05)?
                .weight_decay(0.01)?
                .initial_accumulator_value(0.1)?,
        ),
        "rmsprop" => Box::new(RmsProp::new(0.01)?),
        "rmsprop_char_rnn" => Box::new(RmsProp::new(2e-3)?.alpha(0.95)?),
        "rmsprop_centered" => Box::new(RmsProp::new(0.01)?.centered(true)?),
        "rmsprop_momentum" => Box::new(RmsProp::new(0.01)?.momentum(0.9)?.weight_decay(0.01)?),
        "rmsprop_centered_momentum" => Box::new(
            RmsProp::new(0.01)?
                .alpha(0.3)?
                .momentum(0.5)?
                .centered(true)?,
        ),
        "adam" => Box::new(Adam::new(0.01)?),
        "adam_weight_decay" => Box::new(Adam::new(0.01)?.weight_decay(0.1)?),
        "adam_amsgrad" => Box::new(Adam::new(0.01)?.betas(0.8, 0.99)?.amsgrad(true)?),
        "adam_low_beta1" => Box::new(Adam::new(0.02)?.betas(0.3, 0.9)?.eps(1e-6)?),
        "adamw" => Box::new(Adam::adamw(0.01)?),
        "adamw_amsgrad" => Box::new(Adam::adamw(0.01)?.weight_decay(0.1)?.amsgrad(true)?),
        _ => panic!("no optimiser for case {case}"),
    })
}

const CASES: [&str; 18] = [
    "sgd",
    "sgd_momentum",
    "sgd_dampening",
    "sgd_nesterov",
    "sgd_weight_decay",
    "adagrad",
    "adagrad_lr_decay",
    "rmsprop",
    "rmsprop_char_rnn",
    "rmsprop_centered",
    "rmsprop_momentum",
    "rmsprop_centered_momentum",
    "adam",
    "adam_weight_decay",
    "adam_amsgrad",
    "adam_low_beta1",
    "adamw",
    "adamw_amsgrad",
];

/// The fixtures' model: `RnnConfig::rnn(2, 3).output(2)` with the parameters of `inputs`.
fn model<B: Kernels>(backend: B, inputs: &StateDict) -> Rnn<B> {
    let config = RnnConfig::rnn(2, 3).output(2);
    let mut rnn = Rnn::new(backend, config, &mut StdRng::seed_from_u64(0)).unwrap();
    let names: Vec<String> = rnn.parameters().into_iter().map(|(n, _)| n).collect();
    for name in names {
        let data = floats(inputs, &format!("initial/{name}"));
        let data = data.iter().map(|&v| B::Scalar::of(v)).collect();
        rnn.set_parameter(&name, data).unwrap();
    }
    rnn
}

/// Gradients of `rnn`'s shape holding step `step`'s given gradients (from 0). A backward pass
/// makes the value; its entries are then replaced.
fn gradients<B: Kernels>(rnn: &Rnn<B>, inputs: &StateDict, step: usize) -> Gradients<B> {
    let trace = rnn.forward(&Input::ids(vec![0, 1], 1), None).unwrap();
    let loss = CrossEntropy::sum();
    let (_, d) = loss
        .forward(rnn.backend(), trace.logits(), &[1, 0])
        .unwrap();
    let mut grads = rnn.backward(&trace, &d).unwrap();
    let backend = rnn.backend().clone();
    for (name, g) in grads.params_mut().named_mut() {
        let (rows, cols) = backend.shape(g);
        let all = floats(inputs, &format!("grad/{name}"));
        let data = &all[step * rows * cols..(step + 1) * rows * cols];
        let data = data.iter().map(|&v| B::Scalar::of(v)).collect();
        *g = backend.from_vec(rows, cols, data).unwrap();
    }
    grads
}

fn values<B: Kernels>(backend: &B, m: &B::Matrix) -> Vec<f64> {
    backend.to_vec(m).into_iter().map(Scalar::to_f64).collect()
}

/// The worst relative error seen, and where; how many values were compared, how many equal.
#[derive(Default)]
struct Worst {
    error: f64,
    at: String,
    values: usize,
    equal: usize,
}

impl Worst {
    #[track_caller]
    fn compare(&mut self, what: &str, got: &[f64], want: &[f64]) {
        assert_eq!(got.len(), want.len(), "{what}: lengths differ");
        for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
            let error = if w == 0.0 {
                g.abs()
            } else {
                (g - w).abs() / w.abs()
            };
            assert!(
                error <= TOLERANCE,
                "{what}[{i}]: got {g:e}, PyTorch {w:e} (relative error {error:.2e})"
            );
            if error > self.error {
                (self.error, self.at) = (error, format!("{what}[{i}]"));
            }
            self.values += 1;
            self.equal += usize::from(g.to_bits() == w.to_bits());
        }
    }
}

/// A hyperparameter's metadata text as a comparable value (PyTorch writes `1e-08`, Rust `1e-8`).
fn hyper_value(text: &str) -> f64 {
    match text {
        "true" => 1.0,
        "false" => 0.0,
        _ => text
            .parse()
            .unwrap_or_else(|_| panic!("not a number: {text}")),
    }
}

/// Runs `case` on `backend`; returns the worst error.
fn run_case<B: Kernels>(backend: B, case: &str) -> Worst {
    let (inputs, want) = (fixture("inputs"), fixture(case));
    let mut rnn = model(backend.clone(), &inputs);
    let mut opt = optimizer::<B>(case).unwrap();
    let mut worst = Worst::default();
    for step in 0..STEPS {
        let grads = gradients(&rnn, &inputs, step);
        opt.step(&mut rnn, &grads).unwrap();
        for (name, p) in rnn.parameters() {
            let all = floats(&want, &format!("after/{name}"));
            let n = all.len() / STEPS;
            let what = format!("{case} step {} {name}", step + 1);
            worst.compare(&what, &values(&backend, p), &all[step * n..(step + 1) * n]);
        }
    }
    let state = opt.state_dict();
    let theirs: Vec<&str> = want
        .names()
        .filter_map(|n| n.strip_prefix("state/"))
        .collect();
    assert_eq!(state.names().collect::<Vec<_>>(), theirs, "{case}: buffers");
    for name in theirs {
        let got = state.get(name).unwrap();
        assert_eq!(
            got.shape(),
            want.get(&format!("state/{name}")).unwrap().shape()
        );
        let want = floats(&want, &format!("state/{name}"));
        worst.compare(&format!("{case} state {name}"), got.floats().unwrap(), want);
    }
    for (key, text) in want.metadata() {
        if ["torch", "safetensors", "torch_class", "steps"].contains(&key.as_str()) {
            continue;
        }
        let ours = state.metadata().get(key);
        let ours = ours.unwrap_or_else(|| panic!("{case}: no metadata {key}"));
        match key.as_str() {
            "optimizer" => assert_eq!(ours, text, "{case}: optimizer"),
            _ => assert_eq!(hyper_value(ours), hyper_value(text), "{case}: {key}"),
        }
    }
    assert_eq!(state.metadata()["step"], STEPS.to_string());
    worst
}

fn every_case<B: Kernels<Scalar = f64>>(backend: B, label: &str) {
    let mut overall = Worst::default();
    for case in CASES {
        let w = run_case(backend.clone(), case);
        println!(
            "{label} {case:<26} {:>3} of {} values bit-identical, worst relative error {:.2e} {}",
            w.equal, w.values, w.error, w.at
        );
        overall.values += w.values;
        overall.equal += w.equal;
        if w.error >= overall.error {
            (overall.error, overall.at) = (w.error, w.at);
        }
    }
    println!(
        "{label}: {} of {} values bit-identical; worst relative error {:.2e} at {}",
        overall.equal, overall.values, overall.error, overall.at
    );
}

#[test]
fn every_optimizer_matches_torch_on_naive_f64() {
    every_case(NaiveCpu::<f64>::new(), "naive");
}

#[test]
fn every_optimizer_matches_torch_on_cpu_f64() {
    every_case(Cpu::<f64>::new(), "cpu");
}

#[test]
fn schedules_give_torchs_rates_bit_for_bit() {
    let want = fixture("schedules");
    let step = StepLr::new(2e-3, 3, 0.5).unwrap();
    let exponential = ExponentialLr::new(2e-3, 0.97).unwrap();
    let meta = |key: &str| want.metadata()[key].parse::<f64>().unwrap();
    let cosine = CosineLr::new(meta("base_lr"), meta("cosine_t_max") as u64)
        .unwrap()
        .eta_min(meta("cosine_eta_min"))
        .unwrap();
    let cases: [(&dyn Schedule, &str); 3] = [
        (&step, "step_lr"),
        (&exponential, "exponential_lr"),
        (&cosine, "cosine_lr"),
    ];
    for (schedule, name) in cases {
        for (epoch, &lr) in floats(&want, name).iter().enumerate() {
            assert_eq!(schedule.lr_at(epoch as u64), lr, "{name}, epoch {epoch}");
        }
    }
    // PyTorch's `scheduler.step()` updates the cosine's rate recursively, about 1 ulp from its
    // closed form.
    for (epoch, &lr) in floats(&want, "cosine_lr_stepped").iter().enumerate() {
        let ours = cosine.lr_at(epoch as u64);
        assert!(
            (ours - lr).abs() <= 1e-15 * lr,
            "epoch {epoch}: {ours} against {lr}"
        );
    }
}

#[test]
fn cosine_reaches_eta_min_at_t_max_and_climbs_back() {
    let cosine = CosineLr::new(0.1, 8).unwrap().eta_min(1e-3).unwrap();
    assert_eq!(cosine.lr_at(8), 1e-3);
    assert_eq!(cosine.lr_at(16), 0.1);
    for k in 1..8 {
        // Symmetric about t_max, falling before it.
        assert!((cosine.lr_at(8 - k) - cosine.lr_at(8 + k)).abs() < 1e-15);
        assert!(cosine.lr_at(k) < cosine.lr_at(k - 1));
    }
    // Annealing to 0: the last epoch before t_max still trains; at t_max the rate is 0, which
    // an optimiser refuses.
    let to_zero = CosineLr::new(0.1, 4).unwrap();
    let mut sgd = Sgd::<NaiveCpu<f64>>::new(0.5).unwrap();
    to_zero.apply(&mut sgd, 3).unwrap();
    assert!(sgd.lr() > 0.0 && sgd.lr() < 0.1);
    assert!(to_zero.apply(&mut sgd, 4).is_err());
}

#[test]
fn char_rnn_decays_after_the_tenth_epoch() {
    // char-rnn's train.lua: after epoch i (from 1) with i >= 10, `learningRate *= 0.97`.
    let schedule = ExponentialLr::new(2e-3, 0.97)
        .unwrap()
        .first_decay_at(10)
        .unwrap();
    let mut lr = 2e-3;
    for done in 0..40u64 {
        assert_eq!(schedule.lr_at(done), lr, "after {done} epochs");
        if done + 1 >= 10 {
            lr *= 0.97;
        }
    }
    let mut rmsprop = RmsProp::<NaiveCpu<f32>>::new(2e-3)
        .unwrap()
        .alpha(0.95)
        .unwrap();
    schedule.apply(&mut rmsprop, 12).unwrap();
    assert_eq!(rmsprop.lr(), 2e-3 * 0.97 * 0.97 * 0.97);
}

/// Every entry of every parameter of `rnn` set to `value`.
fn fill<B: Kernels>(rnn: &mut Rnn<B>, value: f64) {
    let shapes: Vec<(String, usize)> = rnn
        .parameters()
        .into_iter()
        .map(|(n, m)| (n, rnn.backend().to_vec(m).len()))
        .collect();
    for (name, len) in shapes {
        let data = vec![B::Scalar::of(value); len];
        rnn.set_parameter(&name, data).unwrap();
    }
}

/// Gradients of `rnn`'s shape with every entry `value`.
fn uniform_gradients<B: Kernels>(rnn: &Rnn<B>, value: f64) -> Gradients<B> {
    let trace = rnn.forward(&Input::ids(vec![0, 1], 1), None).unwrap();
    let loss = CrossEntropy::sum();
    let (_, d) = loss
        .forward(rnn.backend(), trace.logits(), &[1, 0])
        .unwrap();
    let mut grads = rnn.backward(&trace, &d).unwrap();
    for (_, g) in grads.params_mut().named_mut() {
        rnn.backend()
            .clamp(g, B::Scalar::of(value), B::Scalar::of(value));
    }
    grads
}

#[test]
fn min_char_rnn_adagrad_puts_eps_under_the_root() {
    let backend = NaiveCpu::<f64>::new();
    let mut rnn = Rnn::new(
        backend,
        RnnConfig::rnn(2, 3).output(2),
        &mut StdRng::seed_from_u64(1),
    )
    .unwrap();
    fill(&mut rnn, 1.0);
    let mut karpathy = Adagrad::min_char_rnn(0.1).unwrap();
    let mut torch = Adagrad::new(0.1).unwrap();
    let mut twin = rnn.clone();
    // Step 1, g = 1e-4: mem = 1e-8, so p -= 0.1 * 1e-4 / sqrt(2e-8) = 0.1 / sqrt(2).
    // PyTorch's placement: p -= 0.1 * 1e-4 / (1e-4 + 1e-10) = 0.1 / 1.000001.
    let grads = uniform_gradients(&rnn, 1e-4);
    karpathy.step(&mut rnn, &grads).unwrap();
    let grads = uniform_gradients(&twin, 1e-4);
    torch.step(&mut twin, &grads).unwrap();
    let after_one = 1.0 - 0.1 / 2f64.sqrt();
    for ((name, p), (_, q)) in rnn.parameters().into_iter().zip(twin.parameters()) {
        for (&v, &w) in p.as_slice().iter().zip(q.as_slice()) {
            assert!((v - after_one).abs() <= 1e-15, "{name}: {v} != {after_one}");
            assert!((w - (1.0 - 0.1 / 1.000001)).abs() <= 1e-15, "{name}: {w}");
        }
    }
    // Step 2, g = -1e-4: mem = 2e-8, p += 0.1 * 1e-4 / sqrt(3e-8) = 0.1 / sqrt(3).
    let grads = uniform_gradients(&rnn, -1e-4);
    karpathy.step(&mut rnn, &grads).unwrap();
    let after_two = after_one + 0.1 / 3f64.sqrt();
    for (name, p) in rnn.parameters() {
        for &v in p.as_slice() {
            assert!((v - after_two).abs() <= 1e-15, "{name}: {v} != {after_two}");
        }
    }
    let state = karpathy.state_dict();
    assert_eq!(state.metadata()["eps_inside_sqrt"], "true");
    assert_eq!(state.metadata()["eps"], "1e-8");
    let sum = state.get("weight_hh_l0.sum").unwrap().floats().unwrap();
    assert!(sum.iter().all(|&s| s == 1e-4 * 1e-4 + 1e-4 * 1e-4));
}

/// `steps` updates from the fixtures' gradients (starting at step `from`).
fn train<B: Kernels>(
    rnn: &mut Rnn<B>,
    opt: &mut dyn Optimizer<B>,
    inputs: &StateDict,
    from: usize,
    steps: usize,
) {
    for step in from..from + steps {
        opt.step(rnn, &gradients(rnn, inputs, step)).unwrap();
    }
}

fn bits<B: Kernels>(rnn: &Rnn<B>) -> Vec<u64> {
    let backend = rnn.backend();
    let all = rnn
        .parameters()
        .into_iter()
        .flat_map(|(_, m)| values(backend, m));
    all.map(f64::to_bits).collect()
}

/// 3 steps, a checkpoint through the file format, a fresh optimiser configured differently,
/// 2 steps: the same bits as 5 steps in one go.
fn resume_is_bit_identical<B: Kernels>(backend: B, case: &str) {
    let inputs = fixture("inputs");
    let mut straight = model(backend.clone(), &inputs);
    let mut opt = optimizer::<B>(case).unwrap();
    train(&mut straight, opt.as_mut(), &inputs, 0, 5);

    let mut resumed = model(backend, &inputs);
    let mut first = optimizer::<B>(case).unwrap();
    train(&mut resumed, first.as_mut(), &inputs, 0, 3);
    let bytes = first.state_dict().to_bytes().unwrap();
    let dict = StateDict::from_bytes(&bytes).unwrap();
    // The checkpoint restores the hyperparameters too: start from other values of the kind.
    let mut second: Box<dyn Optimizer<B>> = match case.split('_').next().unwrap() {
        "sgd" => Box::new(Sgd::new(9.0).unwrap()),
        "adagrad" => Box::new(Adagrad::min_char_rnn(9.0).unwrap()),
        "rmsprop" => Box::new(RmsProp::new(9.0).unwrap()),
        _ => Box::new(Adam::new(9.0).unwrap().amsgrad(true).unwrap()),
    };
    second.load_state_dict(&resumed, &dict).unwrap();
    assert_eq!(second.step_count(), 3);
    assert_eq!(second.lr(), opt.lr());
    train(&mut resumed, second.as_mut(), &inputs, 3, 2);

    assert_eq!(bits(&resumed), bits(&straight), "{case}: parameters");
    assert_eq!(
        second.state_dict(),
        opt.state_dict(),
        "{case}: optimiser state"
    );
}

#[test]
fn a_resumed_run_continues_bit_for_bit_in_f64() {
    for case in CASES {
        resume_is_bit_identical(NaiveCpu::<f64>::new(), case);
    }
    resume_is_bit_identical(Cpu::<f64>::new(), "adamw_amsgrad");
}

#[test]
fn a_resumed_run_continues_bit_for_bit_in_f32() {
    for case in [
        "sgd_nesterov",
        "adagrad_lr_decay",
        "rmsprop_centered_momentum",
        "adam_amsgrad",
    ] {
        resume_is_bit_identical(NaiveCpu::<f32>::new(), case);
        resume_is_bit_identical(Cpu::<f32>::with_threads(1), case);
    }
}

#[test]
fn state_dict_names_and_shapes_follow_pytorch() {
    let inputs = fixture("inputs");
    let mut rnn = model(NaiveCpu::<f32>::new(), &inputs);
    let mut adam = Adam::new(1e-3).unwrap().amsgrad(true).unwrap();
    let fresh = adam.state_dict();
    assert_eq!(fresh.names().count(), 0, "no buffers before the first step");
    assert_eq!(fresh.metadata()["step"], "0");
    let grads = gradients(&rnn, &inputs, 0);
    adam.step(&mut rnn, &grads).unwrap();
    let dict = adam.state_dict();
    let meta = dict.metadata();
    assert_eq!(
        (meta["optimizer"].as_str(), meta["step"].as_str()),
        ("Adam", "1")
    );
    assert_eq!(
        (meta["beta1"].as_str(), meta["beta2"].as_str()),
        ("0.9", "0.999")
    );
    let m = dict.get("out.bias.max_exp_avg_sq").unwrap();
    assert_eq!(m.shape(), [2]);
    assert_eq!(m.dtype(), recurrent::io::Dtype::F32);
    assert_eq!(dict.get("weight_hh_l0.exp_avg").unwrap().shape(), [3, 3]);
    assert_eq!(dict.names().count(), 6 * 3);
}
