//! Backend conformance for the optimiser kernel, `Backend::update`: the checks every [`Backend`]
//! must pass, generic over `B` like `backend_conformance.rs`, whose test-side helpers
//! (`common/conformance.rs`) they share.
//!
//! Every [`UpdateRule`] in [`rules`] (each optimiser's variants: SGD plain, with momentum on its
//! first and a later step, dampened, Nesterov, with weight decay; Adagrad with `eps` outside and
//! inside the root and a decayed rate; RMSprop plain, centred, with momentum, both, and with a
//! small `alpha` that takes `lerp`'s other branch; Adam plain, with weight decay, decoupled,
//! AMSGrad and a small `beta1`) runs on every shape in [`SHAPES`], empty ones included. Two kinds
//! of evidence:
//!
//! - Against the definition. The parameter and every state buffer are compared with the rule's
//!   formulas (the [`UpdateRule`] docs), written out below in plain `f64` with `mul_add` where
//!   they say `fma`. Inputs are multiples of `1/256`, exact in f32 and f64; sums of squares are
//!   not negative, and a centred RMSprop's `v - ga^2` stays well above 0, so that no result
//!   rests on a cancellation. The tolerance is [`tolerance`], 32 epsilons of the scalar type
//!   relative to `max(1, |expected|)`: each result goes through a square root and a division.
//!   SGD's first momentum step starts its buffer as NaN: it must be overwritten, not read.
//! - Against `NaiveCpu`. The same update on the reference backend of the same scalar type gives
//!   the same bits: a faster backend may not reorder the arithmetic.
//!
//! A shape misuse (gradient, buffer count, buffer shape) panics with the kernel's name.
//!
//! The backends are those of `every_backend!` in `common/conformance.rs`:
//! `cargo test --test backend_conformance_update module_name::`.

#[path = "common/conformance.rs"]
#[macro_use]
mod conformance;

use conformance::{Host, Lcg, assert_close, assert_exact, download, expect_panic, tolerance};
use recurrent::{NaiveCpu, UpdateKernels, UpdateRule};

/// The last is large enough for `Cpu` to split an update with state buffers across threads.
const SHAPES: [(usize, usize); 8] = [
    (0, 0),
    (0, 3),
    (3, 0),
    (1, 1),
    (3, 5),
    (17, 17),
    (33, 65),
    (257, 260),
];

/// One rule of every variant and flag.
fn rules() -> Vec<UpdateRule> {
    let sgd = |momentum, dampening, nesterov, weight_decay, step| UpdateRule::Sgd {
        lr: 0.1,
        momentum,
        dampening,
        nesterov,
        weight_decay,
        step,
    };
    let adagrad = |lr_decay, eps, eps_inside_sqrt, weight_decay, step| UpdateRule::Adagrad {
        lr: 0.1,
        lr_decay,
        eps,
        eps_inside_sqrt,
        weight_decay,
        step,
    };
    let rmsprop = |alpha, momentum, centered, weight_decay| UpdateRule::RmsProp {
        lr: 0.01,
        alpha,
        eps: 1e-8,
        momentum,
        centered,
        weight_decay,
    };
    let adam = |beta1, weight_decay, decoupled_weight_decay, amsgrad, step| UpdateRule::Adam {
        lr: 1e-3,
        beta1,
        beta2: 0.999,
        eps: 1e-8,
        weight_decay,
        decoupled_weight_decay,
        amsgrad,
        step,
    };
    vec![
        sgd(0.0, 0.0, false, 0.0, 1),
        sgd(0.0, 0.0, false, 0.01, 4),
        sgd(0.9, 0.0, false, 0.0, 1),
        sgd(0.9, 0.0, false, 0.0, 2),
        sgd(0.8, 0.3, false, 0.01, 5),
        sgd(0.9, 0.0, true, 0.0, 1),
        sgd(0.9, 0.0, true, 0.01, 3),
        adagrad(0.0, 1e-10, false, 0.0, 1),
        adagrad(0.05, 1e-10, false, 0.01, 3),
        adagrad(0.0, 1e-8, true, 0.0, 2),
        rmsprop(0.99, 0.0, false, 0.0),
        rmsprop(0.95, 0.0, true, 0.01),
        rmsprop(0.99, 0.9, false, 0.0),
        rmsprop(0.3, 0.5, true, 0.0),
        adam(0.9, 0.0, false, false, 1),
        adam(0.9, 0.1, false, false, 7),
        adam(0.9, 0.1, true, true, 2),
        adam(0.3, 0.0, false, true, 3),
    ]
}

/// PyTorch's `lerp` as the rules define it.
fn lerp(s: f64, e: f64, w: f64) -> f64 {
    if w.abs() < 0.5 {
        w.mul_add(e - s, s)
    } else {
        (w - 1.0).mul_add(e - s, e)
    }
}

/// The rule's formulas for one element: `p` and `state` are updated in place.
fn reference(rule: &UpdateRule, p: &mut f64, g: f64, state: &mut [f64]) {
    let decay = |wd: f64, p: f64, g: f64| if wd != 0.0 { wd.mul_add(p, g) } else { g };
    match *rule {
        UpdateRule::Sgd {
            lr,
            momentum,
            dampening,
            nesterov,
            weight_decay,
            step,
        } => {
            let mut g = decay(weight_decay, *p, g);
            if momentum != 0.0 {
                let buf = &mut state[0];
                *buf = match step {
                    1 => g,
                    _ => (1.0 - dampening).mul_add(g, *buf * momentum),
                };
                g = if nesterov {
                    momentum.mul_add(*buf, g)
                } else {
                    *buf
                };
            }
            *p = (-lr).mul_add(g, *p);
        }
        UpdateRule::Adagrad {
            lr,
            lr_decay,
            eps,
            eps_inside_sqrt,
            weight_decay,
            step,
        } => {
            let clr = lr / (1.0 + (step as f64 - 1.0) * lr_decay);
            let g = decay(weight_decay, *p, g);
            let sum = &mut state[0];
            *sum = g.mul_add(g, *sum);
            let std = match eps_inside_sqrt {
                true => (*sum + eps).sqrt(),
                false => sum.sqrt() + eps,
            };
            *p += -clr * g / std;
        }
        UpdateRule::RmsProp {
            lr,
            alpha,
            eps,
            momentum,
            centered,
            weight_decay,
        } => {
            let g = decay(weight_decay, *p, g);
            state[0] = ((1.0 - alpha) * g).mul_add(g, state[0] * alpha);
            let avg = if centered {
                state[1] = lerp(state[1], g, 1.0 - alpha);
                (-state[1]).mul_add(state[1], state[0]).sqrt()
            } else {
                state[0].sqrt()
            } + eps;
            if momentum > 0.0 {
                let buf = &mut state[state.len() - 1];
                *buf = *buf * momentum + g / avg;
                *p = (-lr).mul_add(*buf, *p);
            } else {
                *p += -lr * g / avg;
            }
        }
        UpdateRule::Adam {
            lr,
            beta1,
            beta2,
            eps,
            weight_decay,
            decoupled_weight_decay,
            amsgrad,
            step,
        } => {
            let mut g = g;
            if weight_decay != 0.0 && decoupled_weight_decay {
                *p *= 1.0 - lr * weight_decay;
            } else {
                g = decay(weight_decay, *p, g);
            }
            state[0] = lerp(state[0], g, 1.0 - beta1);
            state[1] = ((1.0 - beta2) * g).mul_add(g, state[1] * beta2);
            let (t, v) = (step as f64, state[1]);
            let (bc1, bc2) = (1.0 - beta1.powf(t), 1.0 - beta2.powf(t));
            let second = match amsgrad {
                true => {
                    state[2] = state[2].max(v);
                    state[2]
                }
                false => v,
            };
            let denom = second.sqrt() / bc2.sqrt() + eps;
            *p += -(lr / bc1) * state[0] / denom;
        }
        _ => panic!("no definition for {rule:?}"),
    }
}

/// A starting value for each of the rule's buffers, `rows x cols`.
fn initial_state(rule: &UpdateRule, rng: &mut Lcg, rows: usize, cols: usize) -> Vec<Host> {
    let first_sgd_step = matches!(rule, UpdateRule::Sgd { step: 1, .. });
    rule.state_names()
        .iter()
        .map(|&name| match name {
            "momentum_buffer" if first_sgd_step => Host::filled(rows, cols, f64::NAN),
            "momentum_buffer" | "exp_avg" => Host::dyadic(rng, rows, cols, 4),
            "grad_avg" => Host::from_fn(rows, cols, |_, _| rng.dyadic(1) / 2.0),
            "square_avg" => Host::from_fn(rows, cols, |_, _| rng.dyadic(4).abs() + 1.0),
            _ => Host::from_fn(rows, cols, |_, _| rng.dyadic(4).abs()),
        })
        .collect()
}

/// One update of fresh inputs on `backend`; returns the inputs and the results, parameter first.
fn run<B: UpdateKernels>(
    backend: &B,
    rule: &UpdateRule,
    (rows, cols): (usize, usize),
    seed: u64,
) -> (Host, Host, Vec<Host>, Vec<Host>) {
    let mut rng = Lcg::new(seed);
    let p = Host::dyadic(&mut rng, rows, cols, 4);
    let g = Host::dyadic(&mut rng, rows, cols, 4);
    let state = initial_state(rule, &mut rng, rows, cols);
    let mut p_dev = p.upload(backend);
    let mut s_dev: Vec<B::Matrix> = state.iter().map(|s| s.upload(backend)).collect();
    backend.update(rule, &mut p_dev, &g.upload(backend), &mut s_dev);
    let mut out = vec![download(backend, &p_dev)];
    out.extend(s_dev.iter().map(|m| download(backend, m)));
    (p, g, state, out)
}

fn check_update_every_rule<B: UpdateKernels>(backend: &B) {
    for (r, rule) in rules().iter().enumerate() {
        for (s, shape) in SHAPES.into_iter().enumerate() {
            let (mut p, g, mut state, got) = run(backend, rule, shape, (100 * r + s) as u64);
            for i in 0..p.data.len() {
                let mut element: Vec<f64> = state.iter().map(|b| b.data[i]).collect();
                reference(rule, &mut p.data[i], g.data[i], &mut element);
                for (b, v) in state.iter_mut().zip(element) {
                    b.data[i] = v;
                }
            }
            let names = std::iter::once("param").chain(rule.state_names().iter().copied());
            for ((name, got), want) in names.zip(&got).zip(std::iter::once(&p).chain(&state)) {
                let context = format_args!("update {rule:?} {shape:?}: {name}");
                assert_close(got, want, tolerance::<B>(), context);
            }
        }
    }
}

/// `B` gives the reference backend's bits, rule by rule, on the same inputs.
fn check_update_matches_naive<B: UpdateKernels>(backend: &B) {
    let naive = NaiveCpu::<B::Scalar>::new();
    for (r, rule) in rules().iter().enumerate() {
        for (s, shape) in SHAPES.into_iter().enumerate() {
            let seed = (100 * r + s) as u64;
            let (.., got) = run(backend, rule, shape, seed);
            let (.., want) = run(&naive, rule, shape, seed);
            for (g, w) in got.iter().zip(&want) {
                assert_exact(
                    g,
                    w,
                    format_args!("update {rule:?} {shape:?} against NaiveCpu"),
                );
            }
        }
    }
}

fn check_update_panics_with_its_name<B: UpdateKernels>(backend: &B) {
    let z = |r, c| backend.zeros(r, c);
    let adam = rules()[14];
    expect_panic("update", || {
        backend.update(&adam, &mut z(2, 3), &z(3, 2), &mut [z(2, 3), z(2, 3)])
    });
    expect_panic("update", || {
        backend.update(&adam, &mut z(2, 3), &z(2, 3), &mut [z(2, 3)])
    });
    expect_panic("update", || {
        backend.update(&adam, &mut z(2, 3), &z(2, 3), &mut [z(2, 3), z(3, 2)])
    });
}

macro_rules! conformance_suite {
    ($($module:ident => $backend:expr),+ $(,)?) => {$(
        mod $module {
            use super::*;

            #[test] fn update_every_rule() { check_update_every_rule(&$backend) }
            #[test] fn update_matches_naive() { check_update_matches_naive(&$backend) }
            #[test] fn update_panics_with_its_name() { check_update_panics_with_its_name(&$backend) }
        }
    )+};
}

every_backend!(conformance_suite);
