//! Bad input to the optimisers and schedules: every hyperparameter out of range, builders after
//! the first step, gradients or models that do not fit the optimiser, and broken state dicts.
//! Each is the documented `Err`, with a message naming the value, and changes nothing: not the
//! parameters, not the optimiser's buffers, not its step count or learning rate.

#[path = "common/errors.rs"]
mod errors;

use errors::{BadInput, F32, F64, gradients, mentions, model, params_of, sized};
use recurrent::io::Tensor;
use recurrent::optim::{CosineLr, ExponentialLr, StepLr};
use recurrent::prelude::*;
use recurrent::{Result, StateDict};

/// Values no rate, epsilon or factor may take, with how the message shows them.
const NOT_POSITIVE: [(f64, &str); 6] = [
    (0.0, "given 0"),
    (-0.0, "given -0"),
    (-1e-3, "given -0.001"),
    (f64::NAN, "given NaN"),
    (f64::INFINITY, "given inf"),
    (f64::NEG_INFINITY, "given -inf"),
];

/// Values outside `[0, 1)`.
const NOT_UNIT: [(f64, &str); 4] = [
    (1.0, "given 1"),
    (-0.1, "given -0.1"),
    (1.5, "given 1.5"),
    (f64::NAN, "given NaN"),
];

/// Values a weight decay or accumulator may not take.
const NEGATIVE: [(f64, &str); 3] = [
    (-0.01, "given -0.01"),
    (f64::NAN, "given NaN"),
    (f64::INFINITY, "given inf"),
];

fn unit<T>(r: Result<T>) -> Result<()> {
    r.map(|_| ())
}

#[test]
fn every_learning_rate_must_be_finite_and_positive() {
    for (lr, given) in NOT_POSITIVE {
        let parts = |owner| [owner, "learning rate", "finite and positive", given];
        unit(Sgd::<F64>::new(lr)).config(&parts("SGD"));
        unit(Adagrad::<F64>::new(lr)).config(&parts("Adagrad"));
        unit(Adagrad::<F64>::min_char_rnn(lr)).config(&parts("Adagrad"));
        unit(RmsProp::<F64>::new(lr)).config(&parts("RMSprop"));
        unit(Adam::<F64>::new(lr)).config(&parts("Adam"));
        unit(Adam::<F64>::adamw(lr)).config(&parts("Adam"));
        unit(StepLr::new(lr, 1, 0.5)).config(&parts("StepLR"));
        unit(ExponentialLr::new(lr, 0.5)).config(&parts("ExponentialLR"));
        unit(CosineLr::new(lr, 10)).config(&parts("CosineAnnealingLR"));
    }
}

#[test]
fn every_epsilon_and_gamma_must_be_finite_and_positive() {
    for (v, given) in NOT_POSITIVE {
        let parts = ["eps", "finite and positive", given];
        unit(Adagrad::<F64>::new(0.1).unwrap().eps(v)).config(&parts);
        unit(RmsProp::<F64>::new(0.1).unwrap().eps(v)).config(&parts);
        unit(Adam::<F64>::new(0.1).unwrap().eps(v)).config(&parts);
        unit(StepLr::new(0.1, 1, v)).config(&["gamma", given]);
        unit(ExponentialLr::new(0.1, v)).config(&["gamma", given]);
    }
    unit(StepLr::new(0.1, 0, 0.5)).config(&["step size", "at least 1", "given 0"]);
    let exp = ExponentialLr::new(0.1, 0.5).unwrap();
    unit(exp.first_decay_at(0)).config(&["first decay", "given 0"]);
    unit(CosineLr::new(0.1, 0)).config(&["T_max", "at least 1", "given 0"]);
    let cosine = CosineLr::new(0.1, 10).unwrap();
    for (v, given) in [(-1e-3, "-0.001"), (f64::NAN, "NaN"), (f64::INFINITY, "inf")] {
        unit(cosine.eta_min(v)).config(&["eta_min", "finite and >= 0", given]);
    }
    unit(cosine.eta_min(0.1)).config(&["eta_min", "below the base rate", "given 0.1"]);
}

#[test]
fn momenta_betas_and_alpha_must_be_in_zero_one() {
    for (v, given) in NOT_UNIT {
        let parts = |what| [what, "in [0, 1)", given];
        unit(Sgd::<F64>::new(0.1).unwrap().momentum(v)).config(&parts("momentum"));
        unit(RmsProp::<F64>::new(0.1).unwrap().momentum(v)).config(&parts("momentum"));
        unit(RmsProp::<F64>::new(0.1).unwrap().alpha(v)).config(&parts("alpha"));
        unit(Adam::<F64>::new(0.1).unwrap().betas(v, 0.999)).config(&parts("beta1"));
        unit(Adam::<F64>::new(0.1).unwrap().betas(0.9, v)).config(&parts("beta2"));
    }
    for (v, given) in [
        (1.5, "given 1.5"),
        (-0.5, "given -0.5"),
        (f64::NAN, "given NaN"),
    ] {
        let sgd = Sgd::<F64>::new(0.1).unwrap().momentum(0.9).unwrap();
        unit(sgd.dampening(v)).config(&["dampening", "in [0, 1]", given]);
    }
}

#[test]
fn decays_and_accumulators_must_be_finite_and_not_negative() {
    for (v, given) in NEGATIVE {
        let parts = ["weight decay", "finite and >= 0", given];
        unit(Sgd::<F64>::new(0.1).unwrap().weight_decay(v)).config(&parts);
        unit(Adagrad::<F64>::new(0.1).unwrap().weight_decay(v)).config(&parts);
        unit(RmsProp::<F64>::new(0.1).unwrap().weight_decay(v)).config(&parts);
        unit(Adam::<F64>::new(0.1).unwrap().weight_decay(v)).config(&parts);
        let adagrad = || Adagrad::<F64>::new(0.1).unwrap();
        unit(adagrad().lr_decay(v)).config(&["learning-rate decay", given]);
        unit(adagrad().initial_accumulator_value(v)).config(&["initial accumulator", given]);
    }
}

#[test]
fn nesterov_needs_momentum_and_no_dampening() {
    let sgd = || Sgd::<F64>::new(0.1).unwrap();
    unit(sgd().nesterov(true)).config(&["Nesterov", "momentum 0", "set the momentum first"]);
    let damped = sgd().momentum(0.9).unwrap().dampening(0.1).unwrap();
    unit(damped.nesterov(true)).config(&["Nesterov", "dampening 0.1"]);
    let nesterov = sgd().momentum(0.9).unwrap().nesterov(true).unwrap();
    unit(nesterov.clone().momentum(0.0)).config(&["Nesterov", "momentum 0"]);
    unit(nesterov.dampening(0.5)).config(&["Nesterov", "dampening 0.5"]);
}

/// One optimiser of every kind, with every buffer.
fn all_kinds() -> Vec<Box<dyn Optimizer<F64>>> {
    vec![
        Box::new(Sgd::new(0.1).unwrap().momentum(0.9).unwrap()),
        Box::new(Adagrad::new(0.1).unwrap()),
        Box::new(RmsProp::new(0.1).unwrap().centered(true).unwrap()),
        Box::new(Adam::new(0.1).unwrap().amsgrad(true).unwrap()),
    ]
}

#[test]
fn only_the_learning_rate_changes_after_the_first_step() {
    let mut rnn = model(F64::new(), 1);
    let grads = gradients(&rnn);
    let mut sgd = Sgd::new(0.1).unwrap();
    sgd.step(&mut rnn, &grads).unwrap();
    unit(sgd.clone().momentum(0.9)).config(&["SGD", "momentum", "before the first step"]);
    unit(sgd.clone().weight_decay(0.1)).config(&["weight decay", "before the first step"]);
    let mut adam = Adam::new(0.1).unwrap();
    adam.step(&mut rnn, &grads).unwrap();
    unit(adam.clone().amsgrad(true)).config(&["Adam", "amsgrad", "before the first step"]);
    unit(adam.clone().betas(0.5, 0.5)).config(&["betas", "before the first step"]);
    let mut rmsprop = RmsProp::new(0.1).unwrap();
    rmsprop.step(&mut rnn, &grads).unwrap();
    unit(rmsprop.clone().centered(true)).config(&["RMSprop", "centered"]);
    let mut adagrad = Adagrad::new(0.1).unwrap();
    adagrad.step(&mut rnn, &grads).unwrap();
    unit(adagrad.clone().eps_inside_sqrt(true)).config(&["Adagrad", "eps placement"]);
    adam.set_lr(0.5).unwrap();
    assert_eq!(adam.lr(), 0.5);
}

#[test]
fn set_lr_rejects_bad_rates_and_keeps_the_old_one() {
    for mut opt in all_kinds() {
        for (lr, given) in NOT_POSITIVE {
            opt.set_lr(lr).config(&["learning rate", given]);
            assert_eq!(opt.lr(), 0.1);
        }
    }
    // A schedule that decays to 0 is refused the same way.
    let mut sgd = Sgd::<F64>::new(0.1).unwrap();
    let schedule = StepLr::new(1e-300, 1, 1e-300).unwrap();
    schedule
        .apply(&mut sgd, 5)
        .config(&["learning rate", "given 0"]);
    assert_eq!(sgd.lr(), 0.1);
}

/// Everything that must not change: the model's parameters and the optimiser's state.
fn snapshot(rnn: &Rnn<F64>, opt: &dyn Optimizer<F64>) -> (errors::Snapshot, StateDict, u64) {
    (params_of(rnn), opt.state_dict(), opt.step_count())
}

#[test]
fn step_rejects_gradients_of_another_model_and_changes_nothing() {
    for mut opt in all_kinds() {
        let mut rnn = model(F64::new(), 1);
        for started in [false, true] {
            let before = snapshot(&rnn, opt.as_ref());
            let m = opt
                .step(&mut rnn, &gradients(&sized(F64::new(), 4, 5, 1)))
                .shape("(3, 4)", "(5, 4)");
            mentions(&m, &["weight_ih_l0"]);
            let m = opt
                .step(&mut rnn, &gradients(&model(F64::new(), 2)))
                .any_shape();
            mentions(&m, &["parameter names", "weight_ih_l1"]);
            assert!(snapshot(&rnn, opt.as_ref()) == before, "started {started}");
            if !started {
                let grads = gradients(&rnn);
                opt.step(&mut rnn, &grads).unwrap();
            }
        }
    }
}

#[test]
fn step_rejects_a_model_the_buffers_were_not_made_for() {
    for mut opt in all_kinds() {
        let mut rnn = model(F64::new(), 1);
        let grads = gradients(&rnn);
        opt.step(&mut rnn, &grads).unwrap();
        // Same names, other shapes; its gradients fit it, the optimiser's buffers do not.
        let mut other = sized(F64::new(), 4, 5, 1);
        let (before, other_before) = (snapshot(&rnn, opt.as_ref()), params_of(&other));
        let grads = gradients(&other);
        let m = opt.step(&mut other, &grads).shape("(3, 4)", "(5, 4)");
        mentions(&m, &["optimizer state of weight_ih_l0"]);
        // Other names.
        let mut deeper = model(F64::new(), 2);
        let grads = gradients(&deeper);
        mentions(
            &opt.step(&mut deeper, &grads).any_shape(),
            &["weight_ih_l1"],
        );
        assert!(snapshot(&rnn, opt.as_ref()) == before);
        assert_eq!(params_of(&other), other_before);
    }
}

/// Adam with AMSGrad after two steps on the standard model, and its state dict.
fn started() -> (Rnn<F64>, Adam<F64>, StateDict) {
    let mut rnn = model(F64::new(), 1);
    let mut adam = Adam::new(0.1).unwrap().amsgrad(true).unwrap();
    for _ in 0..2 {
        let grads = gradients(&rnn);
        adam.step(&mut rnn, &grads).unwrap();
    }
    let dict = adam.state_dict();
    (rnn, adam, dict)
}

/// A copy of `dict` with `change` applied to its metadata and tensors.
fn edited(
    dict: &StateDict,
    change: impl FnOnce(&mut Vec<(String, String)>, &mut Vec<(String, Tensor)>),
) -> StateDict {
    let mut meta: Vec<(String, String)> = dict.metadata().clone().into_iter().collect();
    let mut tensors: Vec<(String, Tensor)> = dict
        .names()
        .map(|n| (n.to_string(), dict.get(n).unwrap().clone()))
        .collect();
    change(&mut meta, &mut tensors);
    let mut out = StateDict::new();
    meta.into_iter().for_each(|(k, v)| out.set_metadata(k, v));
    tensors.into_iter().for_each(|(n, t)| out.insert(n, t));
    out
}

fn set_meta(key: &'static str, value: &'static str) -> impl Fn(&mut Vec<(String, String)>) {
    move |meta| match meta.iter_mut().find(|(k, _)| k == key) {
        Some(entry) => entry.1 = value.to_string(),
        None => meta.push((key.to_string(), value.to_string())),
    }
}

fn with_meta(dict: &StateDict, key: &'static str, value: &'static str) -> StateDict {
    edited(dict, |m, _| set_meta(key, value)(m))
}

fn with_tensor(dict: &StateDict, name: &str, tensor: Tensor) -> StateDict {
    edited(dict, |_, t| match t.iter_mut().find(|(n, _)| n == name) {
        Some(entry) => entry.1 = tensor,
        None => t.push((name.to_string(), tensor)),
    })
}

#[test]
fn load_state_dict_checks_everything_before_changing_anything() {
    let (rnn, mut adam, dict) = started();
    let before = snapshot(&rnn, &adam);
    let mut load = |d: &StateDict| adam.load_state_dict(&rnn, d);
    let f64s = |shape: Vec<usize>, v: f64| {
        let n = shape.iter().product();
        Tensor::float(recurrent::io::Dtype::F64, shape, vec![v; n]).unwrap()
    };

    load(&with_meta(&dict, "optimizer", "SGD")).config(&["Adam", "another optimizer", "SGD"]);
    let no_lr = edited(&dict, |m, _| m.retain(|(k, _)| k != "lr"));
    load(&no_lr).state_dict(&["metadata lr"], &[], &[]);
    load(&with_meta(&dict, "lr", "-1")).config(&["learning rate", "given -1"]);
    load(&with_meta(&dict, "beta2", "1")).config(&["beta2", "given 1"]);
    load(&with_meta(&dict, "eps", "abc")).config(&["eps", "\"abc\"", "not a number"]);
    load(&with_meta(&dict, "amsgrad", "yes")).config(&["amsgrad", "true or false"]);
    load(&with_meta(&dict, "step", "-3")).config(&["step", "not a count"]);

    let missing = edited(&dict, |_, t| t.retain(|(n, _)| n != "out.bias.exp_avg"));
    load(&missing).state_dict(&["out.bias.exp_avg"], &[], &[]);
    let extra = with_tensor(&dict, "out.bias.momentum_buffer", f64s(vec![4], 0.0));
    load(&extra).state_dict(&[], &["out.bias.momentum_buffer"], &[]);
    let bad_shape = with_tensor(&dict, "weight_hh_l0.exp_avg", f64s(vec![9], 0.0));
    load(&bad_shape).mismatched("weight_hh_l0.exp_avg");
    let ints = Tensor::int(vec![3, 3], vec![0; 9]).unwrap();
    let bad_dtype = with_tensor(&dict, "weight_hh_l0.exp_avg", ints);
    mentions(
        &load(&bad_dtype).mismatched("weight_hh_l0.exp_avg"),
        &["I64"],
    );
    let nan = with_tensor(&dict, "weight_hh_l0.exp_avg", f64s(vec![3, 3], f64::NAN));
    load(&nan).non_finite("weight_hh_l0.exp_avg");
    let negative = with_tensor(&dict, "out.bias.max_exp_avg_sq", f64s(vec![4], -1e-9));
    load(&negative).config(&["out.bias.max_exp_avg_sq", "negative"]);
    // A dict of a fresh optimiser has no buffers.
    load(&with_meta(&dict, "step", "0")).any_state_dict_with_unexpected(18);

    assert!(
        snapshot(&rnn, &adam) == before,
        "a failed load changed something"
    );
}

#[test]
fn load_state_dict_rejects_a_dict_of_another_model() {
    let (rnn, mut adam, dict) = started();
    let before = snapshot(&rnn, &adam);
    // Hidden 5 instead of 3: every buffer but out.bias's (4 outputs in both) is mis-shaped.
    let wider = sized(F64::new(), 4, 5, 1);
    let err = adam
        .load_state_dict(&wider, &dict)
        .expect_err("shapes differ");
    let recurrent::Error::StateDict { mismatched, .. } = &err else {
        panic!("expected Error::StateDict, got {err:?}");
    };
    assert_eq!(mismatched.len(), 5 * 3, "{err}");
    mentions(
        &err.to_string(),
        &["weight_ih_l0.exp_avg: expected shape [5, 4]"],
    );
    // Two layers: the second layer's buffers are missing.
    let deeper = model(F64::new(), 2);
    let m = adam
        .load_state_dict(&deeper, &dict)
        .expect_err("missing")
        .to_string();
    mentions(&m, &["missing", "weight_ih_l1.exp_avg"]);
    assert!(snapshot(&rnn, &adam) == before);
}

#[test]
fn load_state_dict_into_f32_rejects_values_beyond_f32() {
    let (_, _, dict) = started();
    let rnn = model(F32::new(), 1);
    let mut adam = Adam::<F32>::new(0.1).unwrap();
    let before = adam.state_dict();
    let huge = Tensor::float(recurrent::io::Dtype::F64, vec![4, 3], vec![1e300; 12]).unwrap();
    let dict = with_tensor(&dict, "out.weight.exp_avg", huge);
    adam.load_state_dict(&rnn, &dict)
        .non_finite("out.weight.exp_avg");
    assert_eq!(adam.state_dict(), before);
}

/// [`Error::StateDict`](recurrent::Error::StateDict) listing `count` unexpected tensors only.
trait Unexpected {
    fn any_state_dict_with_unexpected(self, count: usize);
}

impl Unexpected for Result<()> {
    #[track_caller]
    fn any_state_dict_with_unexpected(self, count: usize) {
        match self {
            Err(recurrent::Error::StateDict {
                missing,
                unexpected,
                mismatched,
            }) => {
                assert!(missing.is_empty() && mismatched.is_empty());
                assert_eq!(unexpected.len(), count, "{unexpected:?}");
            }
            other => panic!("expected Error::StateDict, got {other:?}"),
        }
    }
}
