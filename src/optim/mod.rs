//! Optimisers: they read [`Gradients`] and update an [`Rnn`]'s parameters, exactly as
//! `torch.optim` does.
//!
//! | type | PyTorch | state per parameter |
//! |------|---------|---------------------|
//! | [`Sgd`] | `SGD` (momentum, dampening, Nesterov, weight decay) | `momentum_buffer` (with momentum) |
//! | [`Adagrad`] | `Adagrad`; [`Adagrad::min_char_rnn`]: Karpathy's min-char-rnn | `sum` |
//! | [`RmsProp`] | `RMSprop` (momentum, centred, weight decay) | `square_avg`, `grad_avg`, `momentum_buffer` |
//! | [`Adam`] | `Adam` (AMSGrad, weight decay); [`Adam::adamw`]: `AdamW` | `exp_avg`, `exp_avg_sq`, `max_exp_avg_sq` |
//!
//! Each is made with `new(lr)` and builder methods for the other hyperparameters, or with
//! `for_model(&rnn, lr)` ([`Sgd::for_model`], ...), PyTorch's `SGD(model.parameters(), lr=...)`:
//! the optimiser's backend type then comes from the model, where `new` alone leaves it to be
//! inferred from a later [`step`](Optimizer::step) (or written, `Sgd::<Cpu<f32>>::new(lr)`).
//!
//! Every optimiser implements [`Optimizer`]: [`step`](Optimizer::step), the learning rate
//! ([`lr`](Optimizer::lr), [`set_lr`](Optimizer::set_lr), which a [`Schedule`] such as
//! [`StepLr`], [`ExponentialLr`], [`CosineLr`], [`Warmup`] or [`OneCycleLr`] drives, or
//! [`ReduceLrOnPlateau`] from a metric), and checkpoints
//! ([`state_dict`](Optimizer::state_dict), [`load_state_dict`](Optimizer::load_state_dict)).
//!
//! ```
//! use recurrent::prelude::*;
//!
//! # let mut rng = StdRng::seed_from_u64(0);
//! let mut rnn = Rnn::new(Cpu::<f64>::default(), RnnConfig::gru(4, 8).output(4), &mut rng)?;
//! let mut adam = Adam::for_model(&rnn, 1e-2)?;
//! let (input, targets) = (Input::ids(vec![0, 1, 2, 2], 1), [1, 2, 2, 3]);
//! for _ in 0..10 {
//!     let trace = rnn.forward(&input, None)?;
//!     let (_, d_logits) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &targets)?;
//!     let mut grads = rnn.backward(&trace, &d_logits)?;
//!     clip::global_norm(&mut grads, 5.0)?;
//!     adam.step(&mut rnn, &grads)?;
//! }
//! assert_eq!(adam.step_count(), 10);
//! # Ok::<(), recurrent::Error>(())
//! ```
//!
//! Gradients of several windows can be summed before one step, for batches larger than memory:
//! [`Gradients::accumulate`] and [`Gradients::scale`] ([recipe](accumulate)).
//!
//! # Exactness
//!
//! Each update is PyTorch's single-tensor CPU implementation (`_single_tensor_sgd`, `_adagrad`,
//! `_rmsprop`, `_adam` in `torch/optim/`), operation for operation and rounding for rounding
//! (its fused multiply-adds included), run by the backend ([`UpdateKernels::update`] with an
//! [`UpdateRule`]). In f64, five steps of every configuration give
//! PyTorch 2.15's numbers to the bit, except where PyTorch's square root (MKL's, within an ulp)
//! was not correctly rounded; those differ by a few ulps (`tests/optim.rs` prints the worst).
//!
//! # State and checkpoints
//!
//! An optimiser is not tied to a model: its buffers are created on the first
//! [`step`](Optimizer::step), with the model's parameter names and shapes, and every later step
//! checks that the model and the gradients still have them. A step that fails its checks
//! changes nothing: not the parameters, not the buffers, not the step count.
//!
//! # Non-finite numbers
//!
//! Unlike PyTorch, which applies whatever it is given, a step refuses to make a model
//! non-finite:
//!
//! - a NaN or infinite gradient is refused before anything runs, with
//!   [`Error::NonFinite`](crate::Error::NonFinite) naming the parameter and the entry
//!   ([`Gradients::check_finite_params`]);
//! - the update is computed on copies of the parameters and buffers, each checked after its
//!   update; if one became NaN or infinite (a learning rate too large, an `f32` overflow), the
//!   step returns [`Error::NonFinite`](crate::Error::NonFinite) naming the parameter (or
//!   buffer) and the copies are dropped, so the model and the optimiser are exactly as before.
//!
//! The checks cost one pass over the gradients, one over the new parameters and buffers, and
//! a copy of the parameters and buffers per step (memory for one more copy while it runs):
//! small beside the forward and backward passes that made the gradients. Counted by callgrind
//! on [`Cpu`](crate::Cpu) in release mode, for a 2-layer LSTM of 128 units over 65 symbols
//! (240k parameters) with Adam, they add 4.7 million instructions to the update's own 1.1
//! million: 0.7% of a training step at batch 50 and 50 steps (689 million for forward and
//! backward), 4% at batch 16 and 25 steps.
//!
//! [`state_dict`](Optimizer::state_dict) writes a [`StateDict`] (save it with
//! [`StateDict::write`]) holding, in the model's scalar type and with PyTorch's parameter
//! shapes (biases `[n]`):
//!
//! - one tensor per parameter and buffer, named `"{parameter}.{buffer}"` with PyTorch's buffer
//!   names, e.g. `weight_hh_l0.exp_avg`, `out.bias.momentum_buffer`, `bias_ih_l0.sum`;
//! - metadata `optimizer` (`SGD`, `Adagrad`, `RMSprop` or `Adam`), `step` (updates made; PyTorch
//!   keeps one count per parameter, all equal here) and every hyperparameter under PyTorch's
//!   name: `lr`, `momentum`, `dampening`, `nesterov`, `weight_decay`, `lr_decay`,
//!   `initial_accumulator_value`, `eps`, `alpha`, `centered`, `beta1`, `beta2` (PyTorch's
//!   `betas`), `amsgrad`, `decoupled_weight_decay`, and `eps_inside_sqrt` (Adagrad only).
//!
//! [`load_state_dict`](Optimizer::load_state_dict) checks all of it against the model
//! (optimiser kind, every hyperparameter's value, every tensor's presence, shape and dtype,
//! finite values, sums of squares not negative) before changing anything, then replaces the
//! hyperparameters, the step count and the buffers: a run resumed from a checkpoint continues
//! bit for bit as if it had not stopped.
//!
//! # Differences from PyTorch
//!
//! - The learning rate must be positive and momenta below 1; PyTorch accepts 0 and any
//!   momentum.
//! - Only the learning rate changes after the first step; the other builders then return
//!   [`Error::Config`](crate::Error::Config), since the buffers depend on them.
//! - One parameter group: every parameter has the same hyperparameters.
//! - Not offered: `maximize`, `foreach`, `fused`, `capturable`, `differentiable`, sparse
//!   gradients, complex parameters.

pub mod accumulate;
mod adagrad;
mod adam;
mod check;
mod rmsprop;
mod schedule;
mod sgd;
mod state;
mod update;

pub use adagrad::Adagrad;
pub use adam::Adam;
pub use rmsprop::RmsProp;
pub use schedule::{
    Anneal, CosineLr, ExponentialLr, OneCycleLr, PlateauMode, ReduceLrOnPlateau, Schedule,
    StatefulSchedule, StepLr, ThresholdMode, Warmup,
};
pub use sgd::Sgd;
pub use update::{UpdateKernels, UpdateRule};
// The fused `Cpu` update runs the same rule on slices.
#[cfg(feature = "cpu")]
pub(crate) use update::{apply as apply_update, check_operands as check_update_operands};

use crate::backend::Backend;
use crate::error::Result;
use crate::io::StateDict;
use crate::model::{Gradients, Rnn};

/// What every optimiser does: update a model from its gradients, expose its learning rate, and
/// save and restore its state. See the [module documentation](self) for the state dict's names.
pub trait Optimizer<B: Backend> {
    /// One update of every parameter of `rnn` from `grads`. The first step creates the
    /// optimiser's buffers with the model's parameter names and shapes.
    ///
    /// # Errors
    /// [`Error::Shape`](crate::Error::Shape) if `grads` do not have the model's parameter names
    /// and shapes, or if the model is not the one the optimiser's buffers were made for (other
    /// names or shapes); [`Error::NonFinite`](crate::Error::NonFinite) naming the parameter and
    /// entry of a NaN or infinite gradient, or of a parameter or buffer the update would make
    /// NaN or infinite. Nothing is updated then: parameters, buffers and step count stay.
    fn step(&mut self, rnn: &mut Rnn<B>, grads: &Gradients<B>) -> Result<()>;

    /// The learning rate of the next step.
    fn lr(&self) -> f64;

    /// Sets the learning rate of the following steps (what a [`Schedule`] calls).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive; the rate is
    /// unchanged then.
    fn set_lr(&mut self, lr: f64) -> Result<()>;

    /// The number of steps made (restored by [`load_state_dict`](Optimizer::load_state_dict)).
    fn step_count(&self) -> u64;

    /// The hyperparameters, the step count and every buffer (see the
    /// [module documentation](self) for the names).
    fn state_dict(&self) -> StateDict;

    /// Restores a [`state_dict`](Optimizer::state_dict) of the same kind of optimiser for
    /// `rnn`: its hyperparameters (the learning rate included), its step count and its buffers.
    /// Everything is checked first; on error nothing changes.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) for another optimiser kind, an unreadable or
    /// invalid hyperparameter, or a negative sum of squares; [`Error::StateDict`] listing
    /// missing, unexpected and mis-shaped or mis-typed tensors (and missing metadata);
    /// [`Error::NonFinite`](crate::Error::NonFinite) naming a tensor with a NaN or infinity.
    ///
    /// [`Error::StateDict`]: crate::Error::StateDict
    fn load_state_dict(&mut self, rnn: &Rnn<B>, dict: &StateDict) -> Result<()>;
}

/// Implements [`Optimizer`] for a newtype over [`state::Engine`] by delegation.
macro_rules! delegate_optimizer {
    ($name:ident) => {
        impl<B: $crate::optim::UpdateKernels> $crate::optim::Optimizer<B> for $name<B> {
            fn step(
                &mut self,
                rnn: &mut $crate::model::Rnn<B>,
                grads: &$crate::model::Gradients<B>,
            ) -> Result<()> {
                self.0.step(rnn, grads)
            }

            fn lr(&self) -> f64 {
                self.0.lr()
            }

            fn set_lr(&mut self, lr: f64) -> Result<()> {
                self.0.set_lr(lr)
            }

            fn step_count(&self) -> u64 {
                self.0.step_count()
            }

            fn state_dict(&self) -> $crate::io::StateDict {
                self.0.state_dict()
            }

            fn load_state_dict(
                &mut self,
                rnn: &$crate::model::Rnn<B>,
                dict: &$crate::io::StateDict,
            ) -> Result<()> {
                self.0.load_state_dict(rnn, dict)
            }
        }
    };
}
use delegate_optimizer;
