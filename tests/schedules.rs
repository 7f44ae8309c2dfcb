//! The schedules against `torch.optim.lr_scheduler` (fixtures written by
//! `tests/fixtures/generate.py schedules`, PyTorch 2.15, f64), each configured from the options
//! stored with its case:
//!
//! - `Warmup` over `CosineLr`, `StepLr` and `ExponentialLr`: PyTorch's closed forms to the bit,
//!   and the rates `SequentialLR([LinearLR, inner])`'s `step()` sets within [`RECURSIVE`]
//!   relative (the worst is printed);
//! - `OneCycleLr`, two and three phases, cosine and linear, every step to `total_steps`: to the
//!   bit;
//! - `ReduceLrOnPlateau`, modes min and max, relative and absolute thresholds, cooldown,
//!   `min_lr`, `eps`: the rate, `best` and both counters after every step, to the bit.
//!
//! Also: the state dict of a plateau schedule restored mid-run continues as the run would have.
//! Bad arguments are in `bad_input_schedules.rs`, checkpoints in `schedules_checkpoint.rs`.

#[path = "common/fixture.rs"]
mod fixture;

use fixture::floats;
use recurrent::StateDict;
use recurrent::optim::{
    Anneal, CosineLr, ExponentialLr, OneCycleLr, PlateauMode, ReduceLrOnPlateau, StepLr,
    ThresholdMode, Warmup,
};
use recurrent::prelude::*;
use std::collections::BTreeMap;

/// PyTorch's `step()` computes the warm-up and the cosine recursively; their closed forms stay
/// within a few ulps of it (the worst seen is printed).
const RECURSIVE: f64 = 1e-12;

fn fixture(name: &str) -> StateDict {
    let path = format!(
        "{}/tests/fixtures/schedules/{name}.safetensors",
        env!("CARGO_MANIFEST_DIR")
    );
    StateDict::read(&path).unwrap_or_else(|e| panic!("{path}: {e}"))
}

/// The options of `case`, `key=value` pairs joined by `;`.
fn options(dict: &StateDict, case: &str) -> BTreeMap<String, String> {
    let text = &dict.metadata()[case];
    text.split(';')
        .filter(|pair| !pair.is_empty())
        .map(|pair| {
            let (k, v) = pair.split_once('=').expect("key=value");
            (k.to_string(), v.to_string())
        })
        .collect()
}

/// The cases of a fixture: the names before the first `.` of its tensors.
fn cases(dict: &StateDict, suffix: &str) -> Vec<String> {
    let cases: Vec<String> = dict
        .names()
        .filter_map(|n| n.strip_suffix(suffix).map(str::to_string))
        .collect();
    assert!(!cases.is_empty(), "no {suffix} cases");
    cases
}

fn num(opts: &BTreeMap<String, String>, key: &str) -> f64 {
    opts[key]
        .parse()
        .unwrap_or_else(|_| panic!("{key} = {}", opts[key]))
}

fn count(opts: &BTreeMap<String, String>, key: &str) -> u64 {
    num(opts, key) as u64
}

/// Checks `schedule` against the case's rates: the warm-up against PyTorch's closed form, and
/// the inner schedule against its closed form (`CosineLr`) or against the stepped rates
/// (`StepLr` and `ExponentialLr` multiply by the factor once per decay, as PyTorch's `step()`;
/// their closed forms take a power instead), both to the bit; and every rate against the
/// stepped ones within [`RECURSIVE`]. Returns the worst relative difference from those.
fn check_warmup(schedule: &dyn Schedule, warmup: u64, want: &StateDict, case: &str) -> f64 {
    let closed = floats(want, &format!("{case}.closed"));
    let stepped = floats(want, &format!("{case}.lr"));
    let inner_closed = case.starts_with("cosine");
    let mut worst: f64 = 0.0;
    for (epoch, (&c, &s)) in closed.iter().zip(stepped).enumerate() {
        let ours = schedule.lr_at(epoch as u64);
        let exact = match (epoch as u64) < warmup || inner_closed {
            true => c,
            false => s,
        };
        assert_eq!(ours, exact, "{case}: step {epoch}");
        let relative = (ours - s).abs() / s;
        assert!(
            relative <= RECURSIVE,
            "{case}: step {epoch}: {ours} against {s}"
        );
        worst = worst.max(relative);
    }
    worst
}

#[test]
fn warmup_gives_torchs_sequential_lr() {
    let want = fixture("warmup");
    let mut checked = 0;
    for case in cases(&want, ".closed") {
        let o = options(&want, &case);
        let (lr, steps, start) = (num(&o, "lr"), count(&o, "warmup"), num(&o, "start_factor"));
        let worst = match case.split('_').next().unwrap() {
            "cosine" => {
                let inner = CosineLr::new(lr, count(&o, "t_max")).unwrap();
                let inner = inner.eta_min(num(&o, "eta_min")).unwrap();
                check_warmup(
                    &Warmup::new(inner, steps, start).unwrap(),
                    steps,
                    &want,
                    &case,
                )
            }
            "step" => {
                let inner = StepLr::new(lr, count(&o, "step_size"), num(&o, "gamma")).unwrap();
                check_warmup(
                    &Warmup::new(inner, steps, start).unwrap(),
                    steps,
                    &want,
                    &case,
                )
            }
            "exponential" => {
                let inner = ExponentialLr::new(lr, num(&o, "gamma")).unwrap();
                check_warmup(
                    &Warmup::new(inner, steps, start).unwrap(),
                    steps,
                    &want,
                    &case,
                )
            }
            other => panic!("unknown inner schedule {other}"),
        };
        println!("warmup {case}: to the bit; PyTorch's stepped rates within {worst:.2e}");
        checked += 1;
    }
    assert_eq!(checked, 4);
}

#[test]
fn one_cycle_gives_torchs_rates_bit_for_bit() {
    let want = fixture("one_cycle");
    let mut checked = 0;
    for case in cases(&want, ".lr") {
        let o = options(&want, &case);
        let mut schedule = OneCycleLr::new(num(&o, "max_lr"), count(&o, "total_steps")).unwrap();
        if o.contains_key("pct_start") {
            schedule = schedule.pct_start(num(&o, "pct_start")).unwrap();
        }
        if o.get("anneal_strategy").map(String::as_str) == Some("linear") {
            schedule = schedule.anneal(Anneal::Linear);
        }
        if o.contains_key("div_factor") {
            schedule = schedule.div_factor(num(&o, "div_factor")).unwrap();
        }
        if o.contains_key("final_div_factor") {
            let f = num(&o, "final_div_factor");
            schedule = schedule.final_div_factor(f).unwrap();
        }
        if o.get("three_phase").map(String::as_str) == Some("True") {
            schedule = schedule.three_phase(true).unwrap();
        }
        let lrs = floats(&want, &format!("{case}.lr"));
        assert_eq!(lrs.len() as u64, schedule.total_steps() + 1);
        for (step, &lr) in lrs.iter().enumerate() {
            assert_eq!(schedule.lr_at(step as u64), lr, "{case}: step {step}");
        }
        // Past the end the rate is held at that of `total_steps`.
        let end = schedule.total_steps();
        assert_eq!(schedule.lr_at(end + 5), schedule.lr_at(end));
        println!("one_cycle {case}: {} rates to the bit", lrs.len());
        checked += 1;
    }
    assert_eq!(checked, 7);
}

/// The plateau schedule of a fixture case.
fn plateau(o: &BTreeMap<String, String>) -> ReduceLrOnPlateau {
    let mut s = ReduceLrOnPlateau::new(num(o, "lr")).unwrap();
    if o["mode"] == "max" {
        s = s.mode(PlateauMode::Max);
    }
    s = s
        .factor(num(o, "factor"))
        .unwrap()
        .patience(count(o, "patience"));
    if o.get("threshold_mode").map(String::as_str) == Some("abs") {
        s = s.threshold_mode(ThresholdMode::Abs).unwrap();
    }
    if o.contains_key("threshold") {
        s = s.threshold(num(o, "threshold")).unwrap();
    }
    if o.contains_key("cooldown") {
        s = s.cooldown(count(o, "cooldown"));
    }
    if o.contains_key("min_lr") {
        s = s.min_lr(num(o, "min_lr")).unwrap();
    }
    if o.contains_key("eps") {
        s = s.eps(num(o, "eps")).unwrap();
    }
    s
}

#[test]
fn reduce_on_plateau_follows_torch_step_by_step() {
    let want = fixture("plateau");
    let metrics = floats(&want, "metrics");
    let mut checked = 0;
    for case in cases(&want, ".best") {
        let o = options(&want, &case);
        let sign = if o.get("metric").map(String::as_str) == Some("negated") {
            -1.0
        } else {
            1.0
        };
        let mut schedule = plateau(&o);
        let series = |key: &str| floats(&want, &format!("{case}.{key}"));
        let (lr, best) = (series("lr"), series("best"));
        let (bad, cooldown) = (series("num_bad_epochs"), series("cooldown_counter"));
        let mut cuts = 0;
        for (epoch, &metric) in metrics.iter().enumerate() {
            let before = schedule.lr();
            let got = schedule.step(sign * metric).unwrap();
            cuts += usize::from(got < before);
            let at = format!("{case}, step {epoch}");
            assert_eq!(got, lr[epoch], "{at}: lr");
            assert_eq!(schedule.lr(), got, "{at}: lr()");
            assert_eq!(schedule.best(), best[epoch], "{at}: best");
            assert_eq!(schedule.num_bad_epochs() as f64, bad[epoch], "{at}: bad");
            assert_eq!(schedule.cooldown_counter() as f64, cooldown[epoch], "{at}");
            assert_eq!(schedule.last_epoch(), epoch as u64 + 1, "{at}: last_epoch");
        }
        assert!(cuts >= 1, "{case}: the fixture cuts the rate at least once");
        println!(
            "plateau {case}: {} steps to the bit, {cuts} cuts",
            metrics.len()
        );
        checked += 1;
    }
    assert_eq!(checked, 8);
}

#[test]
fn a_plateau_state_restored_mid_run_continues_the_run() {
    let want = fixture("plateau");
    let metrics = floats(&want, "metrics");
    let o = options(&want, "cooldown");
    let mut straight = plateau(&o);
    let lrs: Vec<f64> = metrics.iter().map(|&m| straight.step(m).unwrap()).collect();
    for stop in [0, 1, 11, 17, 25] {
        let mut first = plateau(&o);
        for &m in &metrics[..stop] {
            first.step(m).unwrap();
        }
        // Through bytes, as a checkpoint stores it; into a schedule built with other settings.
        let bytes = first.state_dict().to_bytes().unwrap();
        let mut resumed = ReduceLrOnPlateau::new(0.5).unwrap().patience(7);
        resumed
            .load_state_dict(&StateDict::from_bytes(&bytes).unwrap())
            .unwrap();
        assert_eq!(resumed, first, "stopped after {stop}");
        for (epoch, &m) in metrics.iter().enumerate().skip(stop) {
            assert_eq!(resumed.step(m).unwrap(), lrs[epoch], "stopped after {stop}");
        }
        assert_eq!(resumed, straight);
    }
}

#[test]
fn apply_sets_the_optimizers_rate_and_a_bad_metric_changes_nothing() {
    let mut sgd = Sgd::<NaiveCpu<f64>>::new(0.1).unwrap();
    let mut plateau = ReduceLrOnPlateau::new(sgd.lr()).unwrap().patience(0);
    assert_eq!(plateau.apply(&mut sgd, 1.0).unwrap(), 0.1);
    assert_eq!(plateau.apply(&mut sgd, 1.0).unwrap(), 0.1 * 0.1);
    assert_eq!(sgd.lr(), 0.1 * 0.1);
    let before = plateau;
    for metric in [f64::NAN, f64::INFINITY, f64::NEG_INFINITY] {
        let message = plateau.apply(&mut sgd, metric).unwrap_err().to_string();
        assert!(message.contains("metric must be finite"), "{message}");
    }
    assert_eq!(plateau, before);
    assert_eq!(sgd.lr(), 0.1 * 0.1);
}

#[test]
fn warmup_hands_over_to_the_inner_schedules_checks() {
    let one_cycle = OneCycleLr::new(0.1, 10).unwrap();
    let schedule = Warmup::new(one_cycle, 3, 0.5).unwrap();
    assert_eq!(schedule.lr_at(0), one_cycle.lr_at(0) * 0.5);
    assert_eq!(schedule.lr_at(3), one_cycle.lr_at(0));
    assert_eq!(schedule.lr_at(7), one_cycle.lr_at(4));
    let mut adam = Adam::<NaiveCpu<f64>>::new(1.0).unwrap();
    schedule.apply(&mut adam, 13).unwrap(); // the cycle's step 10, its end
    assert_eq!(adam.lr(), one_cycle.lr_at(10));
    let message = schedule.apply(&mut adam, 14).unwrap_err().to_string();
    assert_eq!(
        message,
        "invalid configuration: OneCycleLR: step 11 is past the end of the cycle of 10 steps"
    );
    assert_eq!(adam.lr(), one_cycle.lr_at(10));
}

#[test]
fn one_cycle_peaks_at_max_lr_and_ends_at_min_lr() {
    for three_phase in [false, true] {
        for anneal in [Anneal::Cos, Anneal::Linear] {
            let s = OneCycleLr::new(0.2, 100).unwrap().anneal(anneal);
            let s = s.three_phase(three_phase).unwrap();
            let (initial, min) = s.initial_and_min_lr();
            let rates: Vec<f64> = (0..100).map(|e| s.lr_at(e)).collect();
            let peak = rates.iter().cloned().fold(0.0, f64::max);
            // PyTorch's cosine gives `end + (start - end)` at the start: not always `start`.
            assert!(
                (rates[0] - initial).abs() <= 1e-15 * initial,
                "{}",
                rates[0]
            );
            assert_eq!(peak, 0.2, "{anneal:?}, three phases {three_phase}");
            assert_eq!(rates[29], 0.2);
            // The linear anneal's `(end - start) * 1 + start` rounds at the scale of max_lr.
            assert!(
                (rates[99] - min).abs() <= 1e-16 * 0.2,
                "{} against {min}",
                rates[99]
            );
            assert!(
                rates[29..].windows(2).all(|w| w[1] <= w[0]),
                "falls after the peak"
            );
        }
    }
}
