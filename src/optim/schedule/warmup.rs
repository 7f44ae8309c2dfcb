//! Linear warm-up in front of any [`Schedule`]: [`Warmup`].

use super::Schedule;
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::optim::Optimizer;

/// A linear warm-up of `w` steps, then `inner` from its own step 0: what "linear warm-up, then
/// cosine decay" means in most training recipes (Hugging Face's
/// `get_cosine_schedule_with_warmup` has this shape), and PyTorch's
///
/// ```text
/// warmup = LinearLR(optimizer, start_factor=s, end_factor=1.0, total_iters=w)
/// scheduler = SequentialLR(optimizer, [warmup, inner], milestones=[w])
/// ```
///
/// With `base = inner.lr_at(0)` (the rate `inner` starts from, PyTorch's `initial_lr`):
///
/// ```text
/// lr_at(e) = base * (s + (1 - s) * e / w)     for e < w    (LinearLR's closed form)
/// lr_at(e) = inner.lr_at(e - w)               for e >= w   (inner restarted at the milestone)
/// ```
///
/// so the rate climbs from `s * base` at step 0 to `base` at step `w`, where `inner` begins.
/// The warm-up's rates are `LinearLR`'s closed form, operation for operation (equal to
/// `_get_closed_form_lr` to the bit); PyTorch's `step()` computes them recursively, which stays
/// within a few ulps of it.
///
/// Chosen over PyTorch's other composition, `ChainedScheduler([LinearLR, inner])`, which runs
/// both at once (the inner schedule decays during the warm-up, and the two factors multiply):
/// that is what users of `SequentialLR` and of Hugging Face's schedules do not get, and its
/// rates depend on how each scheduler's recursion treats the other's changes (they are a product
/// of the two schedules only for purely multiplicative ones), so it is not offered.
///
/// `start_factor` is in `(0, 1]` as PyTorch's (0 would make the first rate 0, which an optimiser
/// refuses; Hugging Face's warm-up from 0 starts here at `start_factor * base` instead).
///
/// ```
/// use recurrent::optim::{CosineLr, Schedule, Warmup};
///
/// // 0.1 after 100 steps of warm-up from 0.01, then a cosine down to 1e-4 over 900 steps.
/// let cosine = CosineLr::new(0.1, 900)?.eta_min(1e-4)?;
/// let schedule = Warmup::new(cosine, 100, 0.1)?;
/// assert_eq!(schedule.lr_at(0), 0.1 * 0.1);
/// assert_eq!(schedule.lr_at(50), 0.1 * (0.1 + 0.9 * 50.0 / 100.0));
/// assert_eq!(schedule.lr_at(100), 0.1); // the cosine's step 0
/// assert_eq!(schedule.lr_at(1000), 1e-4); // the cosine's step 900
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Warmup<S> {
    inner: S,
    steps: u64,
    start_factor: f64,
}

impl<S: Schedule> Warmup<S> {
    /// `steps` steps of linear warm-up from `start_factor * inner.lr_at(0)`, then `inner`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `steps` is at least 1 and `start_factor` in `(0, 1]`, or if
    /// `inner`'s first rate is not finite and positive.
    pub fn new(inner: S, steps: u64, start_factor: f64) -> Result<Self> {
        if steps == 0 {
            return Err(Error::config(
                "Warmup: the warm-up must last at least 1 step, given 0 (without warm-up, use \
                 the inner schedule alone)",
            ));
        }
        if !(start_factor > 0.0 && start_factor <= 1.0) {
            return Err(Error::config(format!(
                "Warmup: start_factor must be in (0, 1], given {start_factor}"
            )));
        }
        let base = inner.lr_at(0);
        if !(base.is_finite() && base > 0.0) {
            return Err(Error::config(format!(
                "Warmup: the inner schedule's first rate must be finite and positive, given {base}"
            )));
        }
        Ok(Warmup {
            inner,
            steps,
            start_factor,
        })
    }

    /// The schedule that follows the warm-up.
    pub fn inner(&self) -> &S {
        &self.inner
    }

    /// The length of the warm-up, in steps.
    pub fn steps(&self) -> u64 {
        self.steps
    }
}

impl<S: Schedule> Schedule for Warmup<S> {
    fn lr_at(&self, epoch: u64) -> f64 {
        if epoch >= self.steps {
            return self.inner.lr_at(epoch - self.steps);
        }
        // LinearLR._get_closed_form_lr with end_factor 1, in PyTorch's order of operations.
        let (start, total) = (self.start_factor, self.steps as f64);
        let base = self.inner.lr_at(0);
        base * (start + (1.0 - start) * epoch as f64 / total)
    }

    /// Sets the rate of `epoch`; past the warm-up, as `inner`'s
    /// [`apply`](Schedule::apply) would at `epoch - steps` (with its checks, such as
    /// [`OneCycleLr`](super::OneCycleLr)'s end).
    fn apply<B: Backend, O: Optimizer<B> + ?Sized>(
        &self,
        optimizer: &mut O,
        epoch: u64,
    ) -> Result<()> {
        match epoch.checked_sub(self.steps) {
            Some(inner_epoch) => self.inner.apply(optimizer, inner_epoch),
            None => optimizer.set_lr(self.lr_at(epoch)),
        }
    }
}
