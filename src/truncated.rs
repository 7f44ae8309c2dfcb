//! Truncated backpropagation through time with an update every `k1` steps and gradients that
//! flow back `k2` steps: [`Tbptt`].
//!
//! # The two parameters
//!
//! A stream too long to unroll whole is trained on in pieces. Sutskever (*Training Recurrent
//! Neural Networks*, PhD thesis, Toronto 2013) writes the general scheme TBPTT(k1, k2): every
//! `k1` steps, run BPTT back over the last `k2` steps. It is Williams & Peng's BPTT(h; h')
//! (*An efficient gradient-based algorithm for on-line training of recurrent network
//! trajectories*, Neural Computation 2(4), 1990) with `h = k2` and `h' = k1`. Common practice,
//! and [`Corpus`](crate::Corpus)'s windows with the state carried over, is the special case
//! `k1 = k2 = T`: the error at the first step of a window reaches no step before it. With
//! `k2 > k1` the error at every new step reaches at least `k2 - k1 + 1` steps back (counting its
//! own), the last one's `k2`.
//!
//! # What one update computes
//!
//! Number the steps of a stream `1, 2, ...`; update `n` receives the `k1` new steps ending at
//! `t = n*k1`. Its window is steps `s ..= t` with `s = max(1, t - k2 + 1)`: up to `k2 - k1`
//! steps of *context* (inputs already seen) and then the `k1` new ones.
//!
//! 1. Forward over the window with the current weights, from `h_{s-1}`, the state saved by the
//!    previous update (zeros for `s = 1`). The context steps are recomputed: their activations
//!    are those of the current weights, not of the weights they were first seen with (an
//!    on-line implementation in Williams & Peng's manner keeps the old ones instead; with
//!    `k1 = k2` the two agree).
//! 2. The loss counts the `k1` new steps' targets only: the context rows of `dE/d logits` are
//!    zero, and [`Reduction::Mean`](crate::Reduction::Mean) divides by the new tokens, `k1*B`.
//! 3. Backward through the whole window: the gradient reaches every one of its steps and stops
//!    at `h_{s-1}`, which is held constant.
//! 4. The next window starts at `s' = max(1, t + k1 - k2 + 1)`: the state saved for it is
//!    `h_{s'-1}`, taken from this forward pass (so computed with the weights as they were
//!    before the user's update), and the context kept is the last `min(k2 - k1, t)` steps of
//!    input. Once windows are `k2` steps long, `h_{s'-1}` is the state after the first `k1` steps
//!    of the window, [`Trace::state_at`]`(k1 - 1)`.
//!
//! Before `k2 - k1` steps of context exist (the first updates of a stream, after
//! [`new`](Tbptt::new) or [`reset`](Tbptt::reset)), a window holds what there is: the first has
//! no context and starts from zeros, the next ones reach back to the stream's first step and
//! start from zeros too, until the stream is long enough.
//!
//! Every update runs `k2` steps forward and backward for `k1` new ones: `k2 / k1` times the work
//! of `k1 = k2`.

use crate::backend::Backend;
use crate::cell::CellKernels;
use crate::error::{Error, Result, check_ids};
use crate::loss::{CrossEntropy, LossKernels};
use crate::model::{Gradients, Input, Rnn, RnnConfig, State, Trace};
use num_traits::Float;
use rand::Rng;
use std::borrow::Borrow;

/// Truncated BPTT over `B` parallel token streams, with a parameter update every `k1` steps and
/// gradients flowing back `k2 >= k1` steps: TBPTT(k1, k2) (see the [module](self) docs for
/// the exact computation).
///
/// A `Tbptt` holds what one update leaves for the next: the last `k2 - k1` steps of inputs
/// (the context) and the state at their start. Feed it the stream in chunks of `k1` steps;
/// each [`step`](Tbptt::step) returns the loss over the chunk and the gradients, which the
/// caller clips and hands to an optimiser before the next step. Call [`reset`](Tbptt::reset)
/// where the streams start again (a [`Window`](crate::Window) with `reset` set).
/// To stop and go on later, save [`context`](Tbptt::context) and [`state`](Tbptt::state) with
/// the checkpoint and start again with [`resume`](Tbptt::resume).
///
/// For more streams than fit in memory, give each group of streams its own `Tbptt` (each holds
/// its own streams' state and context), run their [`step`](Tbptt::step)s with the same weights,
/// and sum their gradients with [`Gradients::accumulate`] before one optimiser step: with
/// [`CrossEntropy::sum`] the sum is the gradient of the `Tbptt` over all the streams (scale it
/// by one over the tokens counted for the mean; see the
/// [recipe](crate::optim::accumulate)). `Tbptt` itself needs no accumulation path: it never
/// updates the model, so the windows of one group can also be accumulated over several steps.
///
/// Only token-id input and unidirectional models: a backward direction would need steps that
/// have not arrived.
///
/// ```
/// use recurrent::prelude::*;
/// use recurrent::{Corpus, Tbptt};
///
/// # fn main() -> recurrent::Result<()> {
/// let ids: Vec<usize> = "abcabcabdabcabcabd".bytes().map(|b| usize::from(b - b'a')).collect();
/// let mut rng = StdRng::seed_from_u64(0);
/// let mut rnn = Rnn::new(NaiveCpu::<f64>::default(), RnnConfig::gru(4, 8).output(4), &mut rng)?;
/// let mut sgd = Sgd::for_model(&rnn, 0.1)?;
/// // Two streams, an update every 2 steps, gradients through the last 5.
/// let (k1, k2, batch) = (2, 5, 2);
/// let corpus = Corpus::new(ids, batch, k1)?; // windows of k1 steps that continue one another
/// let mut tbptt = Tbptt::new(k1, k2, batch)?;
/// let mut pass_losses = vec![];
/// for _pass in 0..30 {
///     let mut total = 0.0;
///     for window in corpus.windows() {
///         if window.reset {
///             tbptt.reset();
///         }
///         let mut out = tbptt.step(&rnn, &window.inputs, &window.targets, CrossEntropy::mean())?;
///         clip::global_norm(&mut out.grads, 5.0)?;
///         sgd.step(&mut rnn, &out.grads)?;
///         total += out.loss;
///     }
///     pass_losses.push(total);
/// }
/// assert_eq!(tbptt.context_steps(), 3); // k2 - k1 steps kept for the next update
/// assert!(pass_losses[29] < 0.8 * pass_losses[0], "{pass_losses:?}"); // it learns the streams
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Tbptt<B: Backend> {
    k1: usize,
    k2: usize,
    batch: usize,
    /// The state at the start of the context, from an earlier update; `None` means zeros.
    state: Option<State<B>>,
    /// The context's input ids, `steps * B` of them, time-major.
    context: Vec<usize>,
    /// The configuration of the model whose state is held, once a step has run.
    model: Option<RnnConfig>,
}

/// What one [`Tbptt::step`] gives.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct TbpttStep<B: Backend> {
    /// The loss over the `k1` new steps' targets (summed, or averaged over their `k1*B`
    /// tokens).
    pub loss: B::Scalar,
    /// The gradient of that loss with respect to every parameter, back-propagated through the
    /// whole window of [`steps`](TbpttStep::steps) steps.
    pub grads: Gradients<B>,
    /// How many context steps came before the new ones in this window: `k2 - k1` once the
    /// stream is long enough, fewer at its start.
    pub context: usize,
    /// The forward pass over the window, `(context + k1) * B` rows: its last `k1*B` logits are
    /// the new steps'.
    pub trace: Trace<B>,
}

impl<B: Backend> TbpttStep<B> {
    /// The steps the window ran over, `context + k1`.
    pub fn steps(&self) -> usize {
        self.trace.steps()
    }
}

impl<B: CellKernels + LossKernels> Tbptt<B> {
    /// TBPTT(k1, k2) over `batch` streams, starting from zeros with no context.
    ///
    /// # Errors
    /// [`Error::Config`] unless `1 <= k1 <= k2` and `batch >= 1`, or if a window's ids
    /// (`k2 * batch`) would not fit in memory.
    pub fn new(k1: usize, k2: usize, batch: usize) -> Result<Self> {
        if k1 == 0 || k2 < k1 {
            return Err(Error::config(format!(
                "truncated BPTT needs 1 <= k1 <= k2 (k1 steps between updates, k2 steps \
                 back-propagated), given k1 = {k1} and k2 = {k2}"
            )));
        }
        if batch == 0 || k2.checked_mul(batch).is_none() {
            return Err(Error::config(format!(
                "truncated BPTT needs a batch of at least 1 and k2 * batch ids to fit in \
                 memory, given batch {batch} and k2 = {k2}"
            )));
        }
        Ok(Tbptt {
            k1,
            k2,
            batch,
            state: None,
            context: Vec::new(),
            model: None,
        })
    }

    /// A TBPTT(k1, k2) that goes on where another left off, from what that one held: its
    /// [`context`](Tbptt::context) and [`state`](Tbptt::state), saved with a checkpoint (the
    /// state with [`Checkpoint::with_state`](crate::Checkpoint::with_state), the context ids
    /// as metadata, for instance). The next [`step`](Tbptt::step) then computes what the
    /// uninterrupted one would have, bit for bit.
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// use recurrent::Tbptt;
    ///
    /// # fn main() -> recurrent::Result<()> {
    /// let running = Tbptt::<NaiveCpu<f64>>::new(2, 5, 1)?;
    /// // ... steps, then save `running.context()` and `running.state()` ...
    /// let context = running.context().to_vec();
    /// let state = running.state().cloned();
    /// let resumed = Tbptt::resume(2, 5, 1, context, state)?;
    /// assert_eq!(resumed.context_steps(), running.context_steps());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// The model is not saved with the context: the next step accepts any model that the ids
    /// and the state fit (as after [`reset`](Tbptt::reset)), so resume with the checkpoint's
    /// own model.
    ///
    /// # Errors
    /// As [`new`](Tbptt::new); [`Error::Shape`] unless the context is a whole number of steps
    /// of `batch` ids, at most `k2 - k1` of them. The ids and the state are checked against
    /// the model at the next step, as every step checks its input.
    pub fn resume(
        k1: usize,
        k2: usize,
        batch: usize,
        context: Vec<usize>,
        state: Option<State<B>>,
    ) -> Result<Self> {
        let tbptt = Tbptt::new(k1, k2, batch)?;
        let most = (k2 - k1) * batch;
        if !context.len().is_multiple_of(batch) {
            return Err(Error::shape(
                format!("truncated BPTT context (whole steps of batch = {batch} ids)"),
                format!("a multiple of {batch}"),
                context.len(),
            ));
        }
        if context.len() > most {
            return Err(Error::shape(
                format!(
                    "truncated BPTT context (at most k2 - k1 = {} steps of batch = {batch} ids)",
                    k2 - k1
                ),
                format!("at most {most}"),
                context.len(),
            ));
        }
        Ok(Tbptt {
            state,
            context,
            ..tbptt
        })
    }

    /// Steps between updates, `k1`: each [`step`](Tbptt::step) takes `k1` new steps.
    pub fn k1(&self) -> usize {
        self.k1
    }

    /// Steps back-propagated per update, `k2`.
    pub fn k2(&self) -> usize {
        self.k2
    }

    /// The number of parallel streams, `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// Steps of context held for the next update: `min(k2 - k1, steps seen since the reset)`.
    pub fn context_steps(&self) -> usize {
        self.context.len() / self.batch
    }

    /// The context's input ids, [`context_steps`](Tbptt::context_steps)` * B` of them,
    /// time-major.
    pub fn context(&self) -> &[usize] {
        &self.context
    }

    /// The state the next window starts from, at the start of the context; `None` for zeros
    /// (before any update, after a reset, and while the context reaches back to the streams'
    /// first step).
    pub fn state(&self) -> Option<&State<B>> {
        self.state.as_ref()
    }

    /// Starts the streams again: zero state, no context, and any model may be used next.
    pub fn reset(&mut self) {
        self.state = None;
        self.context.clear();
        self.model = None;
    }

    /// One update's forward and backward pass (inference mode: no dropout): the `k1` new steps
    /// `ids` with their `targets` (`k1*B` of each, time-major: `ids[t*B + b]` is stream `b` at
    /// step `t`), after the context, from the saved state, with the loss `loss` over the new
    /// steps only. The context and state then move on by `k1` steps.
    ///
    /// # Errors
    /// [`Error::Config`] for a bidirectional model, or a model of another configuration than
    /// the one the held state came from (call [`reset`](Tbptt::reset) to change models);
    /// [`Error::Shape`] unless there are `k1*B` ids and `k1*B` targets; [`Error::Index`] for an
    /// id not below the model's input size or a target not below its output size, at its
    /// position in `ids` or `targets`; [`Error::NonFinite`] naming where the forward pass first
    /// holds a NaN or infinity (the held state, a layer's `h` or `c` at a step of the window,
    /// or the logits; see [`Trace::check_finite`]), a loss that is not finite, or the first
    /// parameter whose gradient is not finite. After an error nothing has changed.
    pub fn step(
        &mut self,
        rnn: &Rnn<B>,
        ids: &[usize],
        targets: &[usize],
        loss: impl Borrow<CrossEntropy>,
    ) -> Result<TbpttStep<B>> {
        self.update(rnn, ids, targets, loss.borrow(), |input, state| {
            rnn.forward(input, state)
        })
    }

    /// As [`step`](Tbptt::step), in training mode ([`Rnn::forward_train`]): dropout between
    /// layers and before the output layer, as configured, drawn from `rng`. The context steps
    /// are recomputed with fresh masks.
    ///
    /// # Errors
    /// As [`step`](Tbptt::step).
    pub fn step_train<R: Rng + ?Sized>(
        &mut self,
        rnn: &Rnn<B>,
        ids: &[usize],
        targets: &[usize],
        loss: impl Borrow<CrossEntropy>,
        rng: &mut R,
    ) -> Result<TbpttStep<B>> {
        self.update(rnn, ids, targets, loss.borrow(), |input, state| {
            rnn.forward_train(input, state, rng)
        })
    }

    fn update(
        &mut self,
        rnn: &Rnn<B>,
        ids: &[usize],
        targets: &[usize],
        loss: &CrossEntropy,
        forward: impl FnOnce(&Input<B>, Option<&State<B>>) -> Result<Trace<B>>,
    ) -> Result<TbpttStep<B>> {
        self.check(rnn, ids, targets)?;
        let (k1, batch, backend) = (self.k1, self.batch, rnn.backend());
        // window: ((context + k1) * B) ids = the context, then the new steps.
        let context = self.context_steps();
        let steps = context + k1;
        let mut window = Vec::with_capacity(steps * batch);
        window.extend_from_slice(&self.context);
        window.extend_from_slice(ids);
        // The next window keeps the last k2 - k1 steps and starts after the first `dropped`.
        let kept = steps.min(self.k2 - k1);
        let dropped = steps - kept;
        let next_context = window[dropped * batch..].to_vec();
        let trace = forward(&Input::ids(window, batch), self.state.as_ref())?;
        // Where a NaN or infinity first appeared: the held state, a layer, the logits.
        trace.check_finite(backend)?;
        let (value, d_logits) = if context == 0 {
            loss.forward(backend, trace.logits(), targets)?
        } else {
            // The context rows take no loss and get a zero gradient; their targets are unread.
            let rows = steps * batch;
            let new_from = context * batch;
            let mut all_targets = vec![0; new_from];
            all_targets.extend_from_slice(targets);
            let mask: Vec<bool> = (0..rows).map(|r| r >= new_from).collect();
            loss.forward_masked(backend, trace.logits(), &all_targets, Some(&mask))?
        };
        if !value.is_finite() {
            return Err(Error::NonFinite {
                what: format!("truncated BPTT loss ({value})"),
            });
        }
        let grads = rnn.backward(&trace, &d_logits)?;
        grads.check_finite_params()?;
        let next_state = match dropped {
            0 => self.state.clone(),
            d => Some(trace.state_at(backend, d - 1)?),
        };
        // Everything that can fail has run: only now does the held state move on.
        self.state = next_state;
        self.context = next_context;
        self.model = Some(rnn.config().clone());
        Ok(TbpttStep {
            loss: value,
            grads,
            context,
            trace,
        })
    }

    /// Checks a step's model and data before anything runs, positions counted in the chunk.
    fn check(&self, rnn: &Rnn<B>, ids: &[usize], targets: &[usize]) -> Result<()> {
        let config = rnn.config();
        if config.directions() != 1 {
            return Err(Error::config(
                "truncated BPTT runs unidirectional models only: a backward direction would \
                 read steps that have not arrived",
            ));
        }
        if let Some(held) = &self.model
            && held != config
        {
            return Err(Error::config(format!(
                "this truncated BPTT holds the state of a model configured as {held:?}, not \
                 {config:?}; call reset() before changing models"
            )));
        }
        let rows = self.k1 * self.batch;
        let what = |name: &str| {
            format!(
                "truncated BPTT {name} (k1 * batch = {} * {}, time-major)",
                self.k1, self.batch
            )
        };
        if ids.len() != rows {
            return Err(Error::shape(what("input ids"), rows, ids.len()));
        }
        if targets.len() != rows {
            return Err(Error::shape(what("targets"), rows, targets.len()));
        }
        check_ids("truncated BPTT input ids", ids, config.input_size())?;
        let classes = config.output_size().unwrap_or(config.hidden_size());
        check_ids("truncated BPTT targets", targets, classes)
    }
}
