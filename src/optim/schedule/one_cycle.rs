//! The 1cycle policy: [`OneCycleLr`].

use super::Schedule;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::optim::{Optimizer, check};

/// How [`OneCycleLr`] moves between two rates, PyTorch's `anneal_strategy`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum Anneal {
    /// `"cos"`: `end + (start - end) / 2 * (cos(pi * pct) + 1)`.
    #[default]
    Cos,
    /// `"linear"`: `(end - start) * pct + start`.
    Linear,
}

impl Anneal {
    /// From `start` (at `pct = 0`) to `end` (at `pct = 1`), in PyTorch's operations.
    fn at(self, start: f64, end: f64, pct: f64) -> f64 {
        match self {
            Anneal::Cos => {
                let cos_out = (std::f64::consts::PI * pct).cos() + 1.0;
                end + (start - end) / 2.0 * cos_out
            }
            Anneal::Linear => (end - start) * pct + start,
        }
    }
}

/// The 1cycle policy (Smith & Topin, *Super-Convergence*, 2017), PyTorch's `OneCycleLR`: per
/// step (batch), the rate climbs from `initial = max_lr / div_factor` to `max_lr` over the first
/// `pct_start` of `total_steps`, then falls to `min = initial / final_div_factor` at the last
/// step. With `three_phase`, it falls back to `initial` over as many steps as it climbed, and
/// only then to `min`.
///
/// The phases end at steps (PyTorch's `end_step`, fractional)
///
/// ```text
/// two phases:   e1 = pct_start * total - 1,                          e2 = total - 1
/// three phases: e1 = pct_start * total - 1, e2 = 2 * pct_start * total - 2, e3 = total - 1
/// ```
///
/// and step `s` in the phase from `a` (0 for the first) to `b`, running from rate `r0` to `r1`,
/// has `lr_at(s) = anneal(r0, r1, (s - a) / (b - a))` ([`Anneal`]). The rates are PyTorch's
/// `get_lr`, operation for operation: equal to it to the bit where Rust's `f64::cos` and
/// Python's `math.cos` are the same C library's (as on Linux).
///
/// Differences from PyTorch, where it is silent or fails:
///
/// - `pct_start` must be in `(0, 1)` and every phase at least one step long (for three phases,
///   also `2 * pct_start * total - 1 < total`): PyTorch divides by zero when a phase has no
///   length (`pct_start * total_steps == 1`), and skips the climb below that.
/// - PyTorch raises past `total_steps`; [`lr_at`](Schedule::lr_at) holds the rate of step
///   `total_steps` there, and [`apply`](Schedule::apply) refuses any step past `total_steps`.
/// - PyTorch's momentum cycling (`cycle_momentum`, `base_momentum`, `max_momentum`) is left out:
///   the optimisers here take their momentum (or `beta1`) only before their first step, since
///   their buffers depend on it. It is as PyTorch's `cycle_momentum=False`.
///
/// ```
/// use recurrent::optim::{Anneal, OneCycleLr, Schedule};
///
/// let one_cycle = OneCycleLr::new(0.1, 100)?; // pct_start 0.3, cosine, div 25, final div 1e4
/// // PyTorch's cosine gives `max + (initial - max)` there: `initial` within an ulp of max_lr.
/// assert!((one_cycle.lr_at(0) - 0.1 / 25.0).abs() < 1e-17);
/// assert_eq!(one_cycle.lr_at(29), 0.1); // the end of the climb: 0.3 * 100 - 1
/// assert_eq!(one_cycle.lr_at(99), 0.1 / 25.0 / 1e4);
/// let linear = OneCycleLr::new(0.1, 100)?.anneal(Anneal::Linear).three_phase(true)?;
/// assert!((linear.lr_at(58) - 0.1 / 25.0).abs() < 1e-16); // back at the start: 2 * 30 - 2
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct OneCycleLr {
    max_lr: f64,
    total_steps: u64,
    pct_start: f64,
    anneal: Anneal,
    div_factor: f64,
    final_div_factor: f64,
    three_phase: bool,
}

/// One phase: where it ends (a fractional step) and the rates it runs between.
#[derive(Debug, Clone, Copy)]
struct Phase {
    end: f64,
    from: f64,
    to: f64,
}

impl OneCycleLr {
    /// A cycle of `total_steps` steps peaking at `max_lr`, with PyTorch's defaults:
    /// `pct_start` 0.3, [`Anneal::Cos`], `div_factor` 25, `final_div_factor` 1e4, two phases.
    ///
    /// # Errors
    /// [`Error::Config`] unless `max_lr` is finite and positive and the phases each have at
    /// least one step (`total_steps` at least 4 with the default `pct_start`).
    pub fn new(max_lr: f64, total_steps: u64) -> Result<Self> {
        check::learning_rate("OneCycleLR", max_lr)?;
        if total_steps == 0 {
            return Err(Error::config(
                "OneCycleLR: total_steps must be at least 1, given 0",
            ));
        }
        OneCycleLr {
            max_lr,
            total_steps,
            pct_start: 0.3,
            anneal: Anneal::Cos,
            div_factor: 25.0,
            final_div_factor: 1e4,
            three_phase: false,
        }
        .checked()
    }

    /// The share of the steps spent climbing.
    ///
    /// # Errors
    /// [`Error::Config`] unless `pct_start` is in `(0, 1)` and leaves every phase a step.
    pub fn pct_start(self, pct_start: f64) -> Result<Self> {
        if !(pct_start > 0.0 && pct_start < 1.0) {
            return Err(Error::config(format!(
                "OneCycleLR: pct_start must be in (0, 1), given {pct_start}"
            )));
        }
        OneCycleLr { pct_start, ..self }.checked()
    }

    /// How the rate moves within a phase.
    pub fn anneal(self, anneal: Anneal) -> Self {
        OneCycleLr { anneal, ..self }
    }

    /// The first rate is `max_lr / div_factor`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `div_factor` is finite and positive and the rates it gives are.
    pub fn div_factor(self, div_factor: f64) -> Result<Self> {
        check::positive("OneCycleLR", "div_factor", div_factor)?;
        OneCycleLr { div_factor, ..self }.checked()
    }

    /// The last rate is `max_lr / div_factor / final_div_factor`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `final_div_factor` is finite and positive and the last rate is.
    pub fn final_div_factor(self, final_div_factor: f64) -> Result<Self> {
        check::positive("OneCycleLR", "final_div_factor", final_div_factor)?;
        OneCycleLr {
            final_div_factor,
            ..self
        }
        .checked()
    }

    /// Three phases (up, down to the first rate, down to the last) instead of two.
    ///
    /// # Errors
    /// [`Error::Config`] if a phase would have no step.
    pub fn three_phase(self, three_phase: bool) -> Result<Self> {
        OneCycleLr {
            three_phase,
            ..self
        }
        .checked()
    }

    /// The number of steps in the cycle.
    pub fn total_steps(&self) -> u64 {
        self.total_steps
    }

    /// The first rate, `max_lr / div_factor` (PyTorch's `initial_lr`), and the last,
    /// `initial_lr / final_div_factor` (`min_lr`).
    pub fn initial_and_min_lr(&self) -> (f64, f64) {
        let initial = self.max_lr / self.div_factor;
        (initial, initial / self.final_div_factor)
    }

    /// The phases, as PyTorch's `_schedule_phases`.
    fn phases(&self) -> Vec<Phase> {
        let (initial, min) = self.initial_and_min_lr();
        let (total, max) = (self.total_steps as f64, self.max_lr);
        let up = Phase {
            end: self.pct_start * total - 1.0,
            from: initial,
            to: max,
        };
        let last = total - 1.0;
        match self.three_phase {
            false => vec![
                up,
                Phase {
                    end: last,
                    from: max,
                    to: min,
                },
            ],
            true => vec![
                up,
                Phase {
                    end: 2.0 * self.pct_start * total - 2.0,
                    from: max,
                    to: initial,
                },
                Phase {
                    end: last,
                    from: initial,
                    to: min,
                },
            ],
        }
    }

    /// `self` if its rates are positive and every phase is longer than 0 steps.
    fn checked(self) -> Result<Self> {
        let (initial, min) = self.initial_and_min_lr();
        if !(initial > 0.0 && min > 0.0 && initial.is_finite()) {
            return Err(Error::config(format!(
                "OneCycleLR: the first rate max_lr / div_factor ({initial}) and the last \
                 / final_div_factor ({min}) must be finite and positive"
            )));
        }
        let mut start = 0.0;
        for (index, phase) in self.phases().iter().enumerate() {
            if phase.end <= start {
                return Err(Error::config(format!(
                    "OneCycleLR: phase {} would end at step {} and so not be longer than 0 \
                     steps (it starts at {start}); with total_steps {} and pct_start {}, raise \
                     total_steps or change pct_start",
                    index + 1,
                    phase.end,
                    self.total_steps,
                    self.pct_start
                )));
            }
            start = phase.end;
        }
        Ok(self)
    }
}

impl Schedule for OneCycleLr {
    /// PyTorch's rate after `step` calls of `scheduler.step()`; past `total_steps`, that of
    /// `total_steps`.
    fn lr_at(&self, step: u64) -> f64 {
        let step = step.min(self.total_steps) as f64;
        let phases = self.phases();
        // The first phase that has not ended at `step`, else the last (PyTorch's loop).
        let index = phases
            .iter()
            .position(|phase| step <= phase.end)
            .unwrap_or(phases.len() - 1);
        let start = match index {
            0 => 0.0,
            _ => phases[index - 1].end,
        };
        let phase = phases[index];
        self.anneal
            .at(phase.from, phase.to, (step - start) / (phase.end - start))
    }

    /// Sets the rate of `step`.
    ///
    /// # Errors
    /// [`Error::Config`] for a step past `total_steps` (PyTorch raises there too), or a rate
    /// that is not positive (the linear anneal's rate at `total_steps` itself, past the last
    /// step of training, can be).
    fn apply<B: Backend, O: Optimizer<B> + ?Sized>(
        &self,
        optimizer: &mut O,
        step: u64,
    ) -> Result<()> {
        if step > self.total_steps {
            return Err(Error::config(format!(
                "OneCycleLR: step {step} is past the end of the cycle of {} steps",
                self.total_steps
            )));
        }
        optimizer.set_lr(self.lr_at(step))
    }
}
