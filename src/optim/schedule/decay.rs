//! The decaying schedules: [`StepLr`], [`ExponentialLr`], [`CosineLr`].

use super::Schedule;
use crate::error::{Error, Result};
use crate::optim::check;

/// `base_lr` times `gamma` multiplied in `decays` times, stopping early at 0.
fn decayed(base_lr: f64, gamma: f64, decays: u64) -> f64 {
    let mut lr = base_lr;
    for _ in 0..decays {
        if lr == 0.0 {
            break;
        }
        lr *= gamma;
    }
    lr
}

/// Step decay, PyTorch's `StepLR`: the rate is multiplied by `gamma` every `step_size` epochs,
/// `lr_at(e) = base_lr * gamma^floor(e / step_size)`.
///
/// ```
/// # use recurrent::optim::{Schedule, StepLr};
/// let halve_every_10 = StepLr::new(0.1, 10, 0.5)?;
/// assert_eq!(halve_every_10.lr_at(9), 0.1);
/// assert_eq!(halve_every_10.lr_at(10), 0.05);
/// assert_eq!(halve_every_10.lr_at(25), 0.025);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct StepLr {
    base_lr: f64,
    step_size: u64,
    gamma: f64,
}

impl StepLr {
    /// Starts at `base_lr` and multiplies by `gamma` every `step_size` epochs.
    ///
    /// # Errors
    /// [`Error::Config`] unless `base_lr` and `gamma` are finite and positive and `step_size` is
    /// at least 1.
    pub fn new(base_lr: f64, step_size: u64, gamma: f64) -> Result<Self> {
        check::learning_rate("StepLR", base_lr)?;
        check::positive("StepLR", "gamma", gamma)?;
        if step_size == 0 {
            return Err(Error::config(
                "StepLR: step size must be at least 1, given 0",
            ));
        }
        Ok(StepLr {
            base_lr,
            step_size,
            gamma,
        })
    }
}

impl Schedule for StepLr {
    fn lr_at(&self, epoch: u64) -> f64 {
        decayed(self.base_lr, self.gamma, epoch / self.step_size)
    }
}

/// Exponential decay, PyTorch's `ExponentialLR`, optionally held at the base rate for the first
/// epochs: `lr_at(e) = base_lr * gamma^max(0, e + 1 - first)`, with the first decay when
/// `first` epochs are complete (PyTorch: `first = 1`).
///
/// Karpathy's char-rnn (RMSprop, lr 2e-3, `learning_rate_decay` 0.97,
/// `learning_rate_decay_after` 10) multiplies the rate by 0.97 at the end of every epoch from the
/// tenth on: epochs 0 to 9 (counting from 0) run at 2e-3, epoch 10 at 2e-3 * 0.97, epoch 11 at
/// 2e-3 * 0.97^2.
///
/// ```
/// use recurrent::optim::{ExponentialLr, Schedule};
/// use recurrent::prelude::*;
///
/// let mut rmsprop = RmsProp::<Cpu<f32>>::new(2e-3)?.alpha(0.95)?;
/// let schedule = ExponentialLr::new(2e-3, 0.97)?.first_decay_at(10)?;
/// for epoch in 0..12 {
///     schedule.apply(&mut rmsprop, epoch)?;
///     // ... every batch of the epoch: forward, backward, clip, `rmsprop.step(&mut rnn, &grads)?`
/// }
/// assert_eq!(schedule.lr_at(9), 2e-3);
/// assert_eq!(schedule.lr_at(10), 2e-3 * 0.97);
/// assert_eq!(rmsprop.lr(), 2e-3 * 0.97 * 0.97);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ExponentialLr {
    base_lr: f64,
    gamma: f64,
    first: u64,
}

impl ExponentialLr {
    /// Starts at `base_lr` and multiplies by `gamma` after every epoch.
    ///
    /// # Errors
    /// [`Error::Config`] unless `base_lr` and `gamma` are finite and positive.
    pub fn new(base_lr: f64, gamma: f64) -> Result<Self> {
        check::learning_rate("ExponentialLR", base_lr)?;
        check::positive("ExponentialLR", "gamma", gamma)?;
        Ok(ExponentialLr {
            base_lr,
            gamma,
            first: 1,
        })
    }

    /// Holds the base rate until `epochs` epochs are complete, then decays after each one:
    /// `first_decay_at(10)` is char-rnn's `learning_rate_decay_after = 10`.
    ///
    /// # Errors
    /// [`Error::Config`] for 0 (the rate would be decayed before any training).
    pub fn first_decay_at(self, epochs: u64) -> Result<Self> {
        match epochs {
            0 => Err(Error::config(
                "ExponentialLR: the first decay must come after at least 1 epoch, given 0",
            )),
            first => Ok(ExponentialLr { first, ..self }),
        }
    }
}

impl Schedule for ExponentialLr {
    fn lr_at(&self, epoch: u64) -> f64 {
        let decays = (epoch + 1).saturating_sub(self.first);
        decayed(self.base_lr, self.gamma, decays)
    }
}

/// Cosine annealing, PyTorch's `CosineAnnealingLR`: from `base_lr` down to `eta_min` along half
/// a cosine over `t_max` epochs (or steps),
/// `lr_at(e) = eta_min + (base_lr - eta_min) * (1 + cos(pi * e / t_max)) / 2`.
///
/// Past `t_max` the formula goes on, as PyTorch's does: the rate climbs back to `base_lr` at
/// `2 * t_max`. Set `t_max` to the length of the run to end it at `eta_min`. With `eta_min` 0
/// the rate at `t_max` itself is 0, which [`apply`](Schedule::apply) refuses (an optimiser does
/// not take a zero rate); a loop over the epochs `0..t_max` never asks for it. The rates are
/// PyTorch's closed form (what `scheduler.step(epoch)` sets), operation for operation, so they
/// equal it to the last bit where Rust's `f64::cos` and Python's `math.cos` are the same C
/// library's (as on Linux; elsewhere they may differ in the last place). PyTorch's plain `scheduler.step()` updates the rate recursively
/// instead, which stays within about an ulp of the closed form over the first `t_max` epochs
/// and drifts further in the last digits after.
///
/// ```
/// use recurrent::optim::{CosineLr, Schedule};
/// let anneal = CosineLr::new(0.1, 10)?.eta_min(1e-4)?;
/// assert_eq!(anneal.lr_at(0), 0.1);
/// assert_eq!(anneal.lr_at(5), 0.050050000000000004);
/// assert_eq!(anneal.lr_at(10), 1e-4);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct CosineLr {
    base_lr: f64,
    t_max: u64,
    eta_min: f64,
}

impl CosineLr {
    /// Starts at `base_lr` and anneals to 0 over `t_max` epochs (or steps).
    ///
    /// # Errors
    /// [`Error::Config`] unless `base_lr` is finite and positive and `t_max` at least 1.
    pub fn new(base_lr: f64, t_max: u64) -> Result<Self> {
        check::learning_rate("CosineAnnealingLR", base_lr)?;
        if t_max == 0 {
            return Err(Error::config(
                "CosineAnnealingLR: T_max must be at least 1, given 0",
            ));
        }
        Ok(CosineLr {
            base_lr,
            t_max,
            eta_min: 0.0,
        })
    }

    /// Anneals to `eta_min` instead of 0.
    ///
    /// # Errors
    /// [`Error::Config`] unless `eta_min` is finite, at least 0 and below the base rate.
    pub fn eta_min(self, eta_min: f64) -> Result<Self> {
        check::non_negative("CosineAnnealingLR", "eta_min", eta_min)?;
        if eta_min >= self.base_lr {
            return Err(Error::config(format!(
                "CosineAnnealingLR: eta_min must be below the base rate {}, given {eta_min}",
                self.base_lr
            )));
        }
        Ok(CosineLr { eta_min, ..self })
    }
}

impl Schedule for CosineLr {
    fn lr_at(&self, epoch: u64) -> f64 {
        let phase = std::f64::consts::PI * epoch as f64 / self.t_max as f64;
        self.eta_min + (self.base_lr - self.eta_min) * (1.0 + phase.cos()) / 2.0
    }
}
