//! Parity of the losses with PyTorch's functional losses: every case of
//! `tests/fixtures/losses/*.safetensors` (written by `tests/fixtures/generate.py`, PyTorch f64),
//! its loss and its gradient, on every backend.
//!
//! The cases: cross-entropy summed and averaged, masked, with `ignore_index` (a class, and an
//! index outside the classes), label smoothing (0.1, 0.25 and 1), class weights, and all at once;
//! MSE, L1 (one difference exactly 0) and Huber (`delta` 1, 0.5 and 2.5), summed, averaged and
//! masked; BCE with logits (logits up to +-40 and -800, hard and soft labels) with and without
//! `pos_weight`. PyTorch drops the masked rows before the loss (`x[mask]`), as its users do.
//!
//! Tolerance: `1e-10` of `max(1, |expected|)`, as `tests/parity.rs`; the worst error is printed.

#[path = "common/fixture.rs"]
mod fixture;
#[path = "common/vec_backend.rs"]
mod vec_backend;

use fixture::{Worst, floats, ints};
use recurrent::{
    Backend, BceWithLogits, Cpu, CrossEntropy, Huber, Kernels, L1, Mse, NaiveCpu, Reduction,
    StateDict,
};
use std::collections::BTreeMap;
use std::path::Path;
use vec_backend::VecBackend;

fn read(family: &str) -> StateDict {
    let path = Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("tests/fixtures/losses")
        .join(format!("{family}.safetensors"));
    StateDict::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()))
}

/// The cases of a file, each with its options (`key=value;...` in the metadata).
fn cases(dict: &StateDict) -> Vec<(String, BTreeMap<String, String>)> {
    let mut names: Vec<String> = dict
        .names()
        .filter_map(|n| n.strip_suffix(".loss").map(str::to_string))
        .collect();
    names.sort();
    assert!(!names.is_empty(), "no cases");
    names
        .into_iter()
        .map(|name| {
            let text = dict.metadata().get(&name).expect("options of every case");
            let options = text
                .split(';')
                .filter(|kv| !kv.is_empty())
                .map(|kv| {
                    let (k, v) = kv.split_once('=').expect("key=value");
                    (k.to_string(), v.to_string())
                })
                .collect();
            (name, options)
        })
        .collect()
}

fn reduction(options: &BTreeMap<String, String>) -> Reduction {
    match options["reduction"].as_str() {
        "sum" => Reduction::Sum,
        "mean" => Reduction::Mean,
        other => panic!("reduction {other}"),
    }
}

/// A loss's value and gradient on `x` for a case: `(loss, grad)`.
type Run<'a, B> = dyn Fn(
        &B,
        &<B as recurrent::Backend>::Matrix,
        &StateDict,
        &str,
        &BTreeMap<String, String>,
        &[bool],
    ) -> (f64, Vec<f64>)
    + 'a;

fn check_family<B: Kernels<Scalar = f64>>(backend: &B, family: &str, input: &str, run: &Run<B>) {
    let dict = read(family);
    let shape = dict.get(input).expect("input").shape().to_vec();
    let x = backend
        .from_vec(shape[0], shape[1], floats(&dict, input).to_vec())
        .unwrap();
    let mut worst = Worst::default();
    for (name, options) in cases(&dict) {
        let mask: Vec<bool> = ints(&dict, &format!("{name}.mask"))
            .iter()
            .map(|&m| m == 1)
            .collect();
        let (loss, grad) = run(backend, &x, &dict, &name, &options, &mask);
        worst.compare(
            &format!("{name}.loss"),
            &[loss],
            floats(&dict, &format!("{name}.loss")),
        );
        let want = floats(&dict, &format!("{name}.grad"));
        worst.compare(&format!("{name}.grad"), &grad, want);
    }
    println!(
        "{family}: {} values, worst relative error {:.2e} at {}",
        worst.compared, worst.error, worst.at
    );
}

/// The mask argument: `None` when every row counts, as most callers pass it.
fn mask_arg(mask: &[bool]) -> Option<&[bool]> {
    (!mask.iter().all(|&m| m)).then_some(mask)
}

fn cross_entropy<B: Kernels<Scalar = f64>>(backend: &B) {
    check_family(
        backend,
        "ce",
        "logits",
        &|backend, x, dict, name, options, mask| {
            let mut loss = CrossEntropy::with_reduction(reduction(options));
            if let Some(i) = options.get("ignore_index") {
                loss = loss.ignore_index(i.parse().unwrap());
            }
            if let Some(e) = options.get("label_smoothing") {
                loss = loss.label_smoothing(e.parse().unwrap()).unwrap();
            }
            if let Some(w) = dict.get(&format!("{name}.weight")) {
                loss = loss.weights(w.floats().unwrap().to_vec()).unwrap();
            }
            let targets: Vec<usize> = ints(dict, &format!("{name}.targets"))
                .iter()
                .map(|&t| t as usize)
                .collect();
            let (value, grad) = loss
                .forward_masked(backend, x, &targets, mask_arg(mask))
                .unwrap();
            (value, backend.to_vec(&grad))
        },
    );
}

fn targets<B: Kernels<Scalar = f64>>(backend: &B, dict: &StateDict, name: &str) -> B::Matrix {
    let key = format!("{name}.targets");
    let shape = dict.get(&key).unwrap().shape().to_vec();
    let data = floats(dict, &key).to_vec();
    backend.from_vec(shape[0], shape[1], data).unwrap()
}

fn regression<B: Kernels<Scalar = f64>>(backend: &B) {
    for family in ["mse", "l1", "huber"] {
        check_family(
            backend,
            family,
            "prediction",
            &|backend, x, dict, name, options, mask| {
                let y = targets(backend, dict, name);
                let r = reduction(options);
                let mask = mask_arg(mask);
                let (value, grad) = match family {
                    "mse" => Mse::with_reduction(r).forward_masked(backend, x, &y, mask),
                    "l1" => L1::with_reduction(r).forward_masked(backend, x, &y, mask),
                    _ => Huber::with_reduction(r)
                        .delta(options["delta"].parse().unwrap())
                        .unwrap()
                        .forward_masked(backend, x, &y, mask),
                }
                .unwrap();
                (value, backend.to_vec(&grad))
            },
        );
    }
}

fn binary<B: Kernels<Scalar = f64>>(backend: &B) {
    check_family(
        backend,
        "bce",
        "logits",
        &|backend, x, dict, name, options, mask| {
            let y = targets(backend, dict, name);
            let mut loss = BceWithLogits::with_reduction(reduction(options));
            if let Some(w) = dict.get(&format!("{name}.weight")) {
                loss = loss.pos_weight(w.floats().unwrap().to_vec()).unwrap();
            }
            let (value, grad) = loss.forward_masked(backend, x, &y, mask_arg(mask)).unwrap();
            (value, backend.to_vec(&grad))
        },
    );
}

fn every_loss<B: Kernels<Scalar = f64>>(backend: B) {
    cross_entropy(&backend);
    regression(&backend);
    binary(&backend);
}

#[test]
fn losses_match_pytorch_on_the_naive_backend() {
    every_loss(NaiveCpu::<f64>::new());
}

#[test]
fn losses_match_pytorch_on_the_fast_backend() {
    every_loss(Cpu::<f64>::new());
}

#[test]
fn losses_match_pytorch_on_the_vec_backend() {
    every_loss(VecBackend::<f64>::new());
}

#[cfg(feature = "candle")]
#[test]
fn losses_match_pytorch_on_the_candle_backend() {
    every_loss(recurrent::Candle::<f64>::cpu());
}

/// Options that change nothing (an ignored index no target has, unit class weights) take the
/// generic path; on `Cpu` the plain loss is its fused kernel: the two agree.
#[test]
fn neutral_options_agree_with_the_plain_loss_on_the_fast_backend() {
    let backend = Cpu::<f64>::new();
    let dict = read("ce");
    let logits = backend
        .from_vec(6, 4, floats(&dict, "logits").to_vec())
        .unwrap();
    let targets = [0, 2, 1, 3, 2, 1];
    let mask = [true, false, true, true, true, false];
    for reduction in [Reduction::Sum, Reduction::Mean] {
        let plain = CrossEntropy::with_reduction(reduction);
        let neutral = plain
            .clone()
            .ignore_index(99)
            .weights(vec![1.0; 4])
            .unwrap();
        for mask in [None, Some(&mask[..])] {
            let (a, da) = plain
                .forward_masked(&backend, &logits, &targets, mask)
                .unwrap();
            let (b, db) = neutral
                .forward_masked(&backend, &logits, &targets, mask)
                .unwrap();
            assert!(
                (a - b).abs() <= 1e-15 * a.abs(),
                "{reduction:?}: {a} vs {b}"
            );
            for (x, y) in backend.to_vec(&da).iter().zip(backend.to_vec(&db)) {
                assert!((x - y).abs() <= 1e-15, "{reduction:?}: {x} vs {y}");
            }
        }
    }
}
