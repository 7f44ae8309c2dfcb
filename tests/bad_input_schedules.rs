//! Bad arguments to the schedules, and broken schedule state dicts: each an `Err` whose message
//! names what was expected and what was given; nothing changes on error.

use recurrent::optim::{
    CosineLr, OneCycleLr, PlateauMode, ReduceLrOnPlateau, StepLr, ThresholdMode, Warmup,
};
use recurrent::prelude::*;
use recurrent::{Error, StateDict};

fn message<T: std::fmt::Debug>(result: Result<T>) -> String {
    result.unwrap_err().to_string()
}

const CONFIG: &str = "invalid configuration: ";

#[test]
fn warmup_arguments() {
    let cosine = CosineLr::new(0.1, 10).unwrap();
    assert_eq!(
        message(Warmup::new(cosine, 0, 0.1)),
        format!(
            "{CONFIG}Warmup: the warm-up must last at least 1 step, given 0 (without warm-up, \
             use the inner schedule alone)"
        )
    );
    for factor in [0.0, -0.5, 1.5, f64::NAN] {
        assert_eq!(
            message(Warmup::new(cosine, 5, factor)),
            format!("{CONFIG}Warmup: start_factor must be in (0, 1], given {factor}")
        );
    }
    // A step schedule decayed to 0 by underflow cannot be warmed up to.
    let step = StepLr::new(1e-300, 1, 1e-300).unwrap();
    let shifted = ShiftedBy(step, 2);
    assert_eq!(
        message(Warmup::new(shifted, 5, 0.5)),
        format!(
            "{CONFIG}Warmup: the inner schedule's first rate must be finite and positive, given 0"
        )
    );
}

/// Another schedule `.1` epochs on: a way to give `Warmup` a zero first rate.
#[derive(Debug)]
struct ShiftedBy<S>(S, u64);

impl<S: Schedule> Schedule for ShiftedBy<S> {
    fn lr_at(&self, epoch: u64) -> f64 {
        self.0.lr_at(epoch + self.1)
    }
}

#[test]
fn one_cycle_arguments() {
    let bad_lr = |lr: f64| message(OneCycleLr::new(lr, 100));
    for lr in [0.0, -1.0, f64::NAN, f64::INFINITY] {
        assert_eq!(
            bad_lr(lr),
            format!("{CONFIG}OneCycleLR: learning rate must be finite and positive, given {lr}")
        );
    }
    assert_eq!(
        message(OneCycleLr::new(0.1, 0)),
        format!("{CONFIG}OneCycleLR: total_steps must be at least 1, given 0")
    );
    let ok = OneCycleLr::new(0.1, 100).unwrap();
    for pct in [0.0, 1.0, -0.1, 1.5, f64::NAN] {
        assert_eq!(
            message(ok.pct_start(pct)),
            format!("{CONFIG}OneCycleLR: pct_start must be in (0, 1), given {pct}")
        );
    }
    // PyTorch divides by zero here: the climb would end at step 0.
    assert_eq!(
        message(OneCycleLr::new(0.1, 10).unwrap().pct_start(0.1)),
        format!(
            "{CONFIG}OneCycleLR: phase 1 would end at step 0 and so not be longer than 0 steps \
             (it starts at 0); with total_steps 10 and pct_start 0.1, raise total_steps or \
             change pct_start"
        )
    );
    // Too short for the default pct_start: 0.3 * 3 - 1 < 0.
    assert!(message(OneCycleLr::new(0.1, 3)).contains("phase 1 would end at step -0.1"));
    // Three phases: the way back down must end before the last step.
    let late = OneCycleLr::new(0.1, 10).unwrap().pct_start(0.6).unwrap();
    assert!(message(late.three_phase(true)).contains("phase 3 would end at step 9"));
    for (what, result) in [
        ("div_factor", ok.div_factor(0.0)),
        ("final_div_factor", ok.final_div_factor(f64::NAN)),
    ] {
        assert!(
            message(result).starts_with(&format!("{CONFIG}OneCycleLR: {what} must be finite")),
            "{what}"
        );
    }
    let tiny = OneCycleLr::new(1e-300, 100).unwrap();
    assert!(message(tiny.final_div_factor(1e300)).contains("(0) must be finite and positive"));
    let mut sgd = Sgd::<NaiveCpu<f64>>::new(0.5).unwrap();
    assert_eq!(
        message(ok.apply(&mut sgd, 101)),
        format!("{CONFIG}OneCycleLR: step 101 is past the end of the cycle of 100 steps")
    );
    assert_eq!(sgd.lr(), 0.5, "the rate is unchanged");
}

#[test]
fn plateau_arguments() {
    let p = ReduceLrOnPlateau::new(0.1).unwrap();
    assert_eq!(
        message(ReduceLrOnPlateau::new(0.0)),
        format!("{CONFIG}ReduceLROnPlateau: learning rate must be finite and positive, given 0")
    );
    for factor in [1.0, 1.5, 0.0, -0.5, f64::NAN] {
        assert_eq!(
            message(p.factor(factor)),
            format!("{CONFIG}ReduceLROnPlateau: factor must be in (0, 1), given {factor}")
        );
    }
    for threshold in [-1e-4, f64::NAN, f64::INFINITY] {
        assert_eq!(
            message(p.threshold(threshold)),
            format!(
                "{CONFIG}ReduceLROnPlateau: threshold must be finite and >= 0, given {threshold}"
            )
        );
    }
    let relative =
        format!("{CONFIG}ReduceLROnPlateau: a relative threshold must be below 1, given 1");
    assert_eq!(message(p.threshold(1.0)), relative);
    let absolute = p
        .threshold_mode(ThresholdMode::Abs)
        .unwrap()
        .threshold(1.0)
        .unwrap();
    assert_eq!(
        message(absolute.threshold_mode(ThresholdMode::Rel)),
        relative
    );
    assert_eq!(
        message(p.min_lr(-1e-5)),
        format!("{CONFIG}ReduceLROnPlateau: min_lr must be finite and >= 0, given -0.00001")
    );
    assert_eq!(
        message(p.eps(f64::NAN)),
        format!("{CONFIG}ReduceLROnPlateau: eps must be finite and >= 0, given NaN")
    );
    let mut stepped = p;
    assert_eq!(
        message(stepped.step(f64::NAN)),
        format!("{CONFIG}ReduceLROnPlateau: the metric must be finite, given NaN")
    );
    assert_eq!(stepped, p, "nothing changed");
}

#[test]
fn a_rate_the_optimizer_refuses_changes_nothing() {
    // With min_lr and eps 0, the rate can be cut until it underflows to 0.
    let mut plateau = ReduceLrOnPlateau::new(1e-300).unwrap().patience(0);
    let mut plateau_cut = plateau.factor(1e-10).unwrap().eps(0.0).unwrap();
    let mut sgd = Sgd::<NaiveCpu<f64>>::new(1e-300).unwrap();
    plateau_cut.apply(&mut sgd, 1.0).unwrap(); // the first metric is the best
    // 1e-310 and 1e-320 (subnormal) are taken; 1e-330 rounds to 0.
    for lr in [1e-310, 1e-320] {
        assert_eq!(plateau_cut.apply(&mut sgd, 1.0).unwrap(), lr);
    }
    let before = (plateau_cut, sgd.lr());
    let text = message(plateau_cut.apply(&mut sgd, 1.0));
    assert!(
        text.contains("learning rate must be finite and positive, given 0"),
        "{text}"
    );
    assert_eq!((plateau_cut, sgd.lr()), before);
    plateau = plateau.mode(PlateauMode::Max);
    assert_eq!(plateau.best(), f64::NEG_INFINITY);
}

/// A valid plateau state dict, edited by `edit`, loaded into a fresh schedule.
fn load_edited(edit: impl FnOnce(&mut StateDict)) -> (Result<()>, ReduceLrOnPlateau) {
    let mut saved = ReduceLrOnPlateau::new(0.1).unwrap().patience(2).cooldown(1);
    for metric in [1.0, 0.5, 0.6] {
        saved.step(metric).unwrap();
    }
    let mut dict = saved.state_dict();
    edit(&mut dict);
    let mut target = ReduceLrOnPlateau::new(0.3).unwrap();
    let before = target;
    let result = target.load_state_dict(&dict);
    if result.is_err() {
        assert_eq!(target, before, "nothing changes on error");
    }
    (result, target)
}

#[test]
fn broken_plateau_state_dicts() {
    let (ok, loaded) = load_edited(|_| {});
    ok.unwrap();
    assert_eq!(
        (loaded.best(), loaded.num_bad_epochs(), loaded.last_epoch()),
        (0.5, 1, 3)
    );
    let cases: [(&str, &str, &str); 9] = [
        (
            "schedule",
            "StepLR",
            "ReduceLROnPlateau: the state dict is of another schedule, \"StepLR\"",
        ),
        (
            "mode",
            "lowest",
            "metadata mode = \"lowest\" is not min or max",
        ),
        ("factor", "2.0", "factor must be in (0, 1), given 2"),
        (
            "patience",
            "-1",
            "metadata patience = \"-1\" is not a count",
        ),
        (
            "best",
            "NaN",
            "best must be finite, or inf before the first step, given NaN",
        ),
        (
            "best",
            "-inf",
            "best must be finite, or inf before the first step, given -inf",
        ),
        (
            "num_bad_epochs",
            "3",
            "num_bad_epochs (3) cannot exceed patience (2)",
        ),
        (
            "cooldown_counter",
            "2",
            "cooldown_counter (2) cannot exceed cooldown (1)",
        ),
        (
            "lr",
            "0.0",
            "learning rate must be finite and positive, given 0",
        ),
    ];
    for (key, value, want) in cases {
        let (result, _) = load_edited(|d| d.set_metadata(key, value));
        let text = result.unwrap_err().to_string();
        assert!(text.ends_with(want), "{key} = {value}: {text}");
    }
    // A missing key is named as PyTorch's load_state_dict names a missing entry.
    let (result, _) = load_edited(|d| {
        let mut without = StateDict::new();
        for (k, v) in d.metadata() {
            if k != "eps" {
                without.set_metadata(k.clone(), v.clone());
            }
        }
        *d = without;
    });
    assert_eq!(
        result.unwrap_err(),
        Error::StateDict {
            missing: vec!["metadata eps".into()],
            unexpected: vec![],
            mismatched: vec![],
        }
    );
    let (result, _) = load_edited(|d| {
        d.insert("stray", recurrent::Tensor::int(vec![1], vec![0]).unwrap());
    });
    assert!(matches!(result, Err(Error::StateDict { unexpected, .. }) if unexpected == ["stray"]));
}
