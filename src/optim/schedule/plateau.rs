//! The rate cut when a metric stops improving: [`ReduceLrOnPlateau`].

use super::StatefulSchedule;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::StateDict;
use crate::optim::{Optimizer, check};

/// Whether a lower or a higher metric is better, PyTorch's `mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum PlateauMode {
    /// `"min"`: a loss.
    #[default]
    Min,
    /// `"max"`: an accuracy.
    Max,
}

/// How far past the best a metric must go to count as better, PyTorch's `threshold_mode`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum ThresholdMode {
    /// `"rel"`: below `best * (1 - threshold)` (mode min) or above `best * (threshold + 1)`.
    #[default]
    Rel,
    /// `"abs"`: below `best - threshold` (mode min) or above `best + threshold`.
    Abs,
}

/// Cuts the learning rate when a metric has stopped improving, PyTorch's `ReduceLROnPlateau`.
///
/// [`step`](ReduceLrOnPlateau::step) takes the epoch's metric (a validation loss, say) and
/// returns the rate for the next epoch, by PyTorch's rules:
///
/// ```text
/// better = metric < best * (1 - threshold)       (min, rel; max: metric > best * (threshold + 1))
///          metric < best - threshold             (min, abs; max: metric > best + threshold)
/// if better: best = metric, num_bad_epochs = 0   else: num_bad_epochs += 1
/// if cooldown_counter > 0: cooldown_counter -= 1, num_bad_epochs = 0
/// if num_bad_epochs > patience:
///     new = max(lr * factor, min_lr); if lr - new > eps: lr = new
///     cooldown_counter = cooldown, num_bad_epochs = 0
/// ```
///
/// with `best` starting at `+inf` (min) or `-inf` (max). A cut smaller than `eps` is not made;
/// the counters are reset all the same. The arithmetic is PyTorch's, so the rates, `best` and
/// the counters equal it to the bit. Its state ([`best`](ReduceLrOnPlateau::best),
/// [`num_bad_epochs`](ReduceLrOnPlateau::num_bad_epochs),
/// [`cooldown_counter`](ReduceLrOnPlateau::cooldown_counter),
/// [`lr`](ReduceLrOnPlateau::lr), [`last_epoch`](ReduceLrOnPlateau::last_epoch)) is saved in a
/// checkpoint with [`Checkpoint::with_schedule`](crate::Checkpoint::with_schedule).
///
/// The schedule holds the rate, which starts at the one given to [`new`](Self::new):
/// [`apply`](ReduceLrOnPlateau::apply) steps and sets the optimiser's rate to it (PyTorch reads
/// the rate back from the optimiser instead; the two agree while nothing else sets it).
///
/// Differences from PyTorch: `factor` must be in `(0, 1)` (PyTorch takes any below 1), `min_lr`
/// and `eps` finite and at least 0, `threshold` finite and at least 0 (below 1 in relative mode,
/// where `1 - threshold` must stay positive), and a NaN or infinite metric is an error (PyTorch
/// counts a NaN as a bad epoch, and an infinite one in the good direction becomes a best that
/// nothing beats). `patience` and `cooldown` are counts, so they cannot be negative.
///
/// ```
/// use recurrent::optim::{PlateauMode, ReduceLrOnPlateau};
/// use recurrent::prelude::*;
///
/// let mut adam = Adam::<Cpu<f32>>::new(1e-3)?;
/// let mut plateau = ReduceLrOnPlateau::new(adam.lr())?.factor(0.5)?.patience(1);
/// for val_loss in [2.0, 1.5, 1.5, 1.6] {
///     // ... an epoch of training with `adam`, then its validation loss:
///     plateau.apply(&mut adam, val_loss)?;
/// }
/// assert_eq!(plateau.best(), 1.5);
/// assert_eq!(adam.lr(), 5e-4); // two epochs without improvement: more than the patience
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ReduceLrOnPlateau {
    mode: PlateauMode,
    factor: f64,
    patience: u64,
    threshold: f64,
    threshold_mode: ThresholdMode,
    cooldown: u64,
    min_lr: f64,
    eps: f64,
    lr: f64,
    best: f64,
    num_bad_epochs: u64,
    cooldown_counter: u64,
    last_epoch: u64,
}

const NAME: &str = "ReduceLROnPlateau";

impl ReduceLrOnPlateau {
    /// Starts at rate `lr`, with PyTorch's defaults: mode min, `factor` 0.1, `patience` 10,
    /// `threshold` 1e-4 relative, `cooldown` 0, `min_lr` 0, `eps` 1e-8.
    ///
    /// # Errors
    /// [`Error::Config`] unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        check::learning_rate(NAME, lr)?;
        Ok(ReduceLrOnPlateau {
            mode: PlateauMode::Min,
            factor: 0.1,
            patience: 10,
            threshold: 1e-4,
            threshold_mode: ThresholdMode::Rel,
            cooldown: 0,
            min_lr: 0.0,
            eps: 1e-8,
            lr,
            best: f64::INFINITY,
            num_bad_epochs: 0,
            cooldown_counter: 0,
            last_epoch: 0,
        })
    }

    /// Whether lower or higher is better; resets `best` to the mode's worst value.
    pub fn mode(self, mode: PlateauMode) -> Self {
        let best = match mode {
            PlateauMode::Min => f64::INFINITY,
            PlateauMode::Max => f64::NEG_INFINITY,
        };
        ReduceLrOnPlateau { mode, best, ..self }
    }

    /// A cut multiplies the rate by `factor`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `factor` is in `(0, 1)`.
    pub fn factor(self, factor: f64) -> Result<Self> {
        if !(factor > 0.0 && factor < 1.0) {
            return Err(Error::config(format!(
                "{NAME}: factor must be in (0, 1), given {factor}"
            )));
        }
        Ok(ReduceLrOnPlateau { factor, ..self })
    }

    /// The number of epochs without improvement tolerated: the rate is cut after `patience + 1`.
    pub fn patience(self, patience: u64) -> Self {
        ReduceLrOnPlateau { patience, ..self }
    }

    /// How much better than the best a metric must be to count.
    ///
    /// # Errors
    /// [`Error::Config`] unless `threshold` is finite and at least 0, and below 1 in relative
    /// mode.
    pub fn threshold(self, threshold: f64) -> Result<Self> {
        check_threshold(threshold, self.threshold_mode)?;
        Ok(ReduceLrOnPlateau { threshold, ..self })
    }

    /// Whether the threshold is relative to the best or absolute.
    ///
    /// # Errors
    /// [`Error::Config`] for relative mode with a threshold of 1 or more.
    pub fn threshold_mode(self, threshold_mode: ThresholdMode) -> Result<Self> {
        check_threshold(self.threshold, threshold_mode)?;
        Ok(ReduceLrOnPlateau {
            threshold_mode,
            ..self
        })
    }

    /// Epochs after a cut during which bad epochs are not counted.
    pub fn cooldown(self, cooldown: u64) -> Self {
        ReduceLrOnPlateau { cooldown, ..self }
    }

    /// The rate is never cut below `min_lr`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `min_lr` is finite and at least 0.
    pub fn min_lr(self, min_lr: f64) -> Result<Self> {
        check::non_negative(NAME, "min_lr", min_lr)?;
        Ok(ReduceLrOnPlateau { min_lr, ..self })
    }

    /// A cut of `eps` or less is not made.
    ///
    /// # Errors
    /// [`Error::Config`] unless `eps` is finite and at least 0.
    pub fn eps(self, eps: f64) -> Result<Self> {
        check::non_negative(NAME, "eps", eps)?;
        Ok(ReduceLrOnPlateau { eps, ..self })
    }

    /// The rate for the next epoch.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// The best metric so far (`+inf` in mode min, `-inf` in mode max, before the first).
    pub fn best(&self) -> f64 {
        self.best
    }

    /// Epochs since the best, not counting those in cooldown.
    pub fn num_bad_epochs(&self) -> u64 {
        self.num_bad_epochs
    }

    /// Epochs of cooldown left.
    pub fn cooldown_counter(&self) -> u64 {
        self.cooldown_counter
    }

    /// The number of [`step`](ReduceLrOnPlateau::step)s taken (PyTorch's `last_epoch`).
    pub fn last_epoch(&self) -> u64 {
        self.last_epoch
    }

    /// Whether `metric` is better than the best by the threshold, PyTorch's `_is_better`.
    fn is_better(&self, metric: f64) -> bool {
        let (best, threshold) = (self.best, self.threshold);
        match (self.mode, self.threshold_mode) {
            (PlateauMode::Min, ThresholdMode::Rel) => metric < best * (1.0 - threshold),
            (PlateauMode::Min, ThresholdMode::Abs) => metric < best - threshold,
            (PlateauMode::Max, ThresholdMode::Rel) => metric > best * (threshold + 1.0),
            (PlateauMode::Max, ThresholdMode::Abs) => metric > best + threshold,
        }
    }

    /// Takes the metric of the epoch just ended and returns the rate for the next one.
    ///
    /// # Errors
    /// [`Error::Config`] for a NaN or infinite metric; nothing changes then.
    pub fn step(&mut self, metric: f64) -> Result<f64> {
        if !metric.is_finite() {
            return Err(Error::config(format!(
                "{NAME}: the metric must be finite, given {metric}"
            )));
        }
        self.last_epoch += 1;
        if self.is_better(metric) {
            self.best = metric;
            self.num_bad_epochs = 0;
        } else {
            self.num_bad_epochs += 1;
        }
        if self.cooldown_counter > 0 {
            self.cooldown_counter -= 1;
            self.num_bad_epochs = 0;
        }
        if self.num_bad_epochs > self.patience {
            let new_lr = (self.lr * self.factor).max(self.min_lr);
            if self.lr - new_lr > self.eps {
                self.lr = new_lr;
            }
            self.cooldown_counter = self.cooldown;
            self.num_bad_epochs = 0;
        }
        Ok(self.lr)
    }

    /// [`step`](ReduceLrOnPlateau::step), then sets `optimizer`'s rate to the new one; returns
    /// it.
    ///
    /// # Errors
    /// As [`step`](ReduceLrOnPlateau::step), and [`Error::Config`] if the optimiser refuses the
    /// rate (cut to 0 by underflow, possible only with `min_lr` and `eps` both 0). Neither the
    /// schedule nor the optimiser changes then.
    pub fn apply<B: Backend, O: Optimizer<B> + ?Sized>(
        &mut self,
        optimizer: &mut O,
        metric: f64,
    ) -> Result<f64> {
        let mut next = *self;
        let lr = next.step(metric)?;
        optimizer.set_lr(lr)?;
        *self = next;
        Ok(lr)
    }
}

fn check_threshold(threshold: f64, mode: ThresholdMode) -> Result<()> {
    check::non_negative(NAME, "threshold", threshold)?;
    if mode == ThresholdMode::Rel && threshold >= 1.0 {
        return Err(Error::config(format!(
            "{NAME}: a relative threshold must be below 1, given {threshold}"
        )));
    }
    Ok(())
}

impl StatefulSchedule for ReduceLrOnPlateau {
    /// Metadata `schedule` = `ReduceLROnPlateau`, and PyTorch's `state_dict()` keys: `mode`
    /// (`min`, `max`), `factor`, `patience`, `threshold`, `threshold_mode` (`rel`, `abs`),
    /// `cooldown`, `min_lr`, `eps`, `best`, `num_bad_epochs`, `cooldown_counter`, `last_epoch`,
    /// and `lr` (PyTorch's `_last_lr`). Numbers as `{:?}` writes them, which parses back to the
    /// same bits (`inf` included).
    fn state_dict(&self) -> StateDict {
        let mut dict = StateDict::new();
        let mode = match self.mode {
            PlateauMode::Min => "min",
            PlateauMode::Max => "max",
        };
        let threshold_mode = match self.threshold_mode {
            ThresholdMode::Rel => "rel",
            ThresholdMode::Abs => "abs",
        };
        let entries = [
            ("schedule", NAME.to_string()),
            ("mode", mode.to_string()),
            ("factor", format!("{:?}", self.factor)),
            ("patience", self.patience.to_string()),
            ("threshold", format!("{:?}", self.threshold)),
            ("threshold_mode", threshold_mode.to_string()),
            ("cooldown", self.cooldown.to_string()),
            ("min_lr", format!("{:?}", self.min_lr)),
            ("eps", format!("{:?}", self.eps)),
            ("lr", format!("{:?}", self.lr)),
            ("best", format!("{:?}", self.best)),
            ("num_bad_epochs", self.num_bad_epochs.to_string()),
            ("cooldown_counter", self.cooldown_counter.to_string()),
            ("last_epoch", self.last_epoch.to_string()),
        ];
        for (key, value) in entries {
            dict.set_metadata(key, value);
        }
        dict
    }

    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()> {
        *self = saved::read(dict)?;
        Ok(())
    }
}

/// Reading a saved [`ReduceLrOnPlateau`] back, every value checked.
mod saved {
    use super::{NAME, PlateauMode, ReduceLrOnPlateau, ThresholdMode};
    use crate::error::{Error, Result};
    use crate::io::StateDict;

    fn get<'a>(dict: &'a StateDict, key: &str) -> Result<&'a str> {
        dict.metadata()
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::StateDict {
                missing: vec![format!("metadata {key}")],
                unexpected: vec![],
                mismatched: vec![],
            })
    }

    fn parse<T: std::str::FromStr>(dict: &StateDict, key: &str, kind: &str) -> Result<T> {
        let text = get(dict, key)?;
        text.parse().map_err(|_| {
            Error::config(format!(
                "{NAME} state dict: metadata {key} = {text:?} is not {kind}"
            ))
        })
    }

    fn choice<T: Copy>(dict: &StateDict, key: &str, options: [(&str, T); 2]) -> Result<T> {
        let text = get(dict, key)?;
        let found = options.iter().find(|(name, _)| *name == text);
        found.map(|&(_, value)| value).ok_or_else(|| {
            Error::config(format!(
                "{NAME} state dict: metadata {key} = {text:?} is not {} or {}",
                options[0].0, options[1].0
            ))
        })
    }

    /// The kind and hyperparameters in `dict` (no tensors), with the rate saved, through the
    /// builders' checks.
    fn hyperparameters(dict: &StateDict) -> Result<ReduceLrOnPlateau> {
        if let Some(name) = dict.names().next() {
            return Err(Error::StateDict {
                missing: vec![],
                unexpected: vec![name.to_string()],
                mismatched: vec![],
            });
        }
        match get(dict, "schedule")? {
            NAME => {}
            other => {
                return Err(Error::config(format!(
                    "{NAME}: the state dict is of another schedule, {other:?}"
                )));
            }
        }
        let (number, count) = ("a number", "a count");
        let mode = choice(
            dict,
            "mode",
            [("min", PlateauMode::Min), ("max", PlateauMode::Max)],
        )?;
        let threshold_mode = choice(
            dict,
            "threshold_mode",
            [("rel", ThresholdMode::Rel), ("abs", ThresholdMode::Abs)],
        )?;
        // Abs first, so that the threshold is checked against the saved mode, not the default.
        ReduceLrOnPlateau::new(parse(dict, "lr", number)?)?
            .mode(mode)
            .factor(parse(dict, "factor", number)?)?
            .patience(parse(dict, "patience", count)?)
            .threshold_mode(ThresholdMode::Abs)?
            .threshold(parse(dict, "threshold", number)?)?
            .threshold_mode(threshold_mode)?
            .cooldown(parse(dict, "cooldown", count)?)
            .min_lr(parse(dict, "min_lr", number)?)?
            .eps(parse(dict, "eps", number)?)
    }

    /// The schedule in `dict`: its hyperparameters through the builders' checks, then its state,
    /// checked against them.
    pub(super) fn read(dict: &StateDict) -> Result<ReduceLrOnPlateau> {
        let schedule = hyperparameters(dict)?;
        let (number, count) = ("a number", "a count");
        let best: f64 = parse(dict, "best", number)?;
        let worst = schedule.best;
        if !(best.is_finite() || best == worst) {
            return Err(Error::config(format!(
                "{NAME} state dict: best must be finite, or {worst} before the first step, \
                 given {best}"
            )));
        }
        let state = ReduceLrOnPlateau {
            best,
            num_bad_epochs: parse(dict, "num_bad_epochs", count)?,
            cooldown_counter: parse(dict, "cooldown_counter", count)?,
            last_epoch: parse(dict, "last_epoch", count)?,
            ..schedule
        };
        let at_most = |what: &str, value: u64, limit: &str, bound: u64| match value > bound {
            true => Err(Error::config(format!(
                "{NAME} state dict: {what} ({value}) cannot exceed {limit} ({bound})"
            ))),
            false => Ok(()),
        };
        let bad = state.num_bad_epochs;
        at_most("num_bad_epochs", bad, "patience", state.patience)?;
        at_most("num_bad_epochs", bad, "last_epoch", state.last_epoch)?;
        at_most(
            "cooldown_counter",
            state.cooldown_counter,
            "cooldown",
            state.cooldown,
        )?;
        Ok(state)
    }
}
