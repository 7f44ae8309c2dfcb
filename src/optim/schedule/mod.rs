//! Learning-rate schedules, with PyTorch's `torch.optim.lr_scheduler` semantics.
//!
//! | type | PyTorch | rate |
//! |------|---------|------|
//! | [`StepLr`] | `StepLR` | `base * gamma^floor(e / step_size)` |
//! | [`ExponentialLr`] | `ExponentialLR` | `base * gamma^e` (optionally held for the first epochs) |
//! | [`CosineLr`] | `CosineAnnealingLR` | `eta_min + (base - eta_min) (1 + cos(pi e / T_max)) / 2` |
//! | [`Warmup`] | `SequentialLR([LinearLR, inner], milestones=[w])` | linear from `start_factor * base` for `w` steps, then the inner schedule from its start |
//! | [`OneCycleLr`] | `OneCycleLR` | up from `max_lr / div_factor` to `max_lr`, then down to `max_lr / div_factor / final_div_factor` |
//! | [`ReduceLrOnPlateau`] | `ReduceLROnPlateau` | `lr * factor` after more than `patience` epochs without improvement of a metric |
//!
//! The first five are [`Schedule`]s: functions of the number of epochs (or steps) done, with no
//! state, so a resumed run needs only its step count ([`Progress`](crate::Progress)) to get
//! the same rates. [`ReduceLrOnPlateau`] depends on the metrics it has seen: it is a
//! [`StatefulSchedule`], whose state (best metric, epochs without improvement, cooldown, rate,
//! step count) a [`Checkpoint`](crate::Checkpoint) saves with
//! [`with_schedule`](crate::Checkpoint::with_schedule) and restores with
//! [`restore_schedule`](crate::Checkpoint::restore_schedule).
//!
//! PyTorch's schedulers are objects that change the optimiser's rate on `scheduler.step()`;
//! here the rate of epoch `e` is `schedule.lr_at(e)`, and [`Schedule::apply`] sets it. A PyTorch
//! loop that calls `scheduler.step()` after every epoch trains epoch `e` (from 0) with the rate
//! `lr_at(e)`:
//!
//! ```text
//! PyTorch                                  recurrent
//! for epoch in range(n):                   for epoch in 0..n {
//!     train(...)  # optimizer.step()           schedule.apply(&mut optimizer, epoch)?;
//!     scheduler.step()                         train(...)?; // optimizer.step(...)
//!                                          }
//! ```
//!
//! The parity tests (`tests/schedules.rs`) check every schedule against
//! `torch.optim.lr_scheduler` (PyTorch 2.15, f64): [`OneCycleLr`] and [`ReduceLrOnPlateau`]
//! reproduce its arithmetic and agree to the bit; [`Warmup`] is PyTorch's closed form (to the bit
//! against `_get_closed_form_lr`), which PyTorch's recursive `step()` follows within a few
//! ulps.

mod decay;
mod one_cycle;
mod plateau;
mod warmup;

pub use decay::{CosineLr, ExponentialLr, StepLr};
pub use one_cycle::{Anneal, OneCycleLr};
pub use plateau::{PlateauMode, ReduceLrOnPlateau, ThresholdMode};
pub use warmup::Warmup;

use super::Optimizer;
use crate::backend::Backend;
use crate::error::Result;
use crate::io::StateDict;

/// A learning rate for every epoch: `lr_at(e)` is the rate to train with once `e` epochs (or
/// steps, whichever the caller counts) are complete, `lr_at(0)` the initial one.
///
/// A schedule holds no state: call [`apply`](Schedule::apply) before each epoch with the number
/// of epochs done, and a resumed run gets the same rates. [`StepLr`]'s and [`ExponentialLr`]'s
/// rates are products of the factor, one multiplication per decay, as PyTorch's schedulers
/// compute them epoch by epoch, so they agree with `scheduler.step()` to the last bit;
/// [`CosineLr`] is PyTorch's closed form (see there).
pub trait Schedule {
    /// The learning rate once `epoch` epochs are complete.
    fn lr_at(&self, epoch: u64) -> f64;

    /// Sets `optimizer`'s learning rate to [`lr_at(epoch)`](Schedule::lr_at).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) if the rate is not positive: decayed to 0
    /// (underflow after very many decays), a [`CosineLr`] with `eta_min` 0 at `t_max` (and its
    /// odd multiples), or an epoch past the end of a [`OneCycleLr`].
    fn apply<B: Backend, O: Optimizer<B> + ?Sized>(
        &self,
        optimizer: &mut O,
        epoch: u64,
    ) -> Result<()>
    where
        Self: Sized,
    {
        optimizer.set_lr(self.lr_at(epoch))
    }
}

/// A schedule whose rate depends on what it has seen, not only on the epoch count
/// ([`ReduceLrOnPlateau`]): its state is saved and restored as an optimiser's is, through a
/// [`StateDict`] (metadata only), which a [`Checkpoint`](crate::Checkpoint) stores under
/// `schedule.`.
pub trait StatefulSchedule {
    /// The hyperparameters and the state, as metadata under PyTorch's `state_dict()` names.
    fn state_dict(&self) -> StateDict;

    /// Restores a [`state_dict`](StatefulSchedule::state_dict) of the same kind of schedule:
    /// its hyperparameters and its state. Everything is checked first; on error nothing
    /// changes.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for another kind of schedule or a value out of
    /// its range; [`Error::StateDict`](crate::Error::StateDict) naming missing metadata.
    fn load_state_dict(&mut self, dict: &StateDict) -> Result<()>;
}
