//! `RmsProp`: `torch.optim.RMSprop`, the optimiser of Karpathy's char-rnn.

use super::UpdateRule;
use super::check;
use super::state::{Engine, Hyper, Metadata, text};
use crate::backend::Backend;
use crate::error::Result;
use crate::model::Rnn;

/// RMSprop, `torch.optim.RMSprop`: every entry's step is scaled by the root of a running average
/// of its squared gradient,
///
/// ```text
/// g   <- g + wd * p                                   (wd != 0)
/// v   <- alpha * v + (1 - alpha) * g^2
/// ga  <- alpha * ga + (1 - alpha) * g;  v~ <- v - ga^2  (centered; otherwise v~ = v)
/// d   <- g / (sqrt(v~) + eps)
/// buf <- mu * buf + d;  d <- buf                       (momentum mu > 0)
/// p   <- p - lr * d
/// ```
///
/// Defaults are PyTorch's: `alpha` 0.99, `eps` 1e-8, no momentum, not centred, no weight decay.
/// Karpathy's char-rnn trains with `lr` 2e-3 and `alpha` 0.95 (its `decay_rate`), the learning
/// rate multiplied by 0.97 after every epoch from the tenth on (see
/// [`ExponentialLr`](super::ExponentialLr)).
///
/// State per parameter: `square_avg`, then `grad_avg` when centred and `momentum_buffer` with
/// momentum, all starting at 0. The update is [`UpdateRule::RmsProp`].
///
/// ```
/// # use recurrent::prelude::*;
/// let char_rnn = RmsProp::<Cpu<f32>>::new(2e-3)?.alpha(0.95)?;
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct RmsProp<B: Backend>(Engine<RmsPropHyper, B>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct RmsPropHyper {
    lr: f64,
    alpha: f64,
    eps: f64,
    weight_decay: f64,
    momentum: f64,
    centered: bool,
}

impl RmsPropHyper {
    fn validated(self) -> Result<Self> {
        let name = Self::NAME;
        check::learning_rate(name, self.lr)?;
        check::unit(name, "alpha", self.alpha)?;
        check::positive(name, "eps", self.eps)?;
        check::non_negative(name, "weight decay", self.weight_decay)?;
        check::unit(name, "momentum", self.momentum)?;
        Ok(self)
    }
}

impl Hyper for RmsPropHyper {
    const NAME: &'static str = "RMSprop";

    fn rule(&self, _step: u64) -> UpdateRule {
        UpdateRule::RmsProp {
            lr: self.lr,
            alpha: self.alpha,
            eps: self.eps,
            momentum: self.momentum,
            centered: self.centered,
            weight_decay: self.weight_decay,
        }
    }

    fn lr(&self) -> f64 {
        self.lr
    }

    fn lr_mut(&mut self) -> &mut f64 {
        &mut self.lr
    }

    fn to_metadata(&self) -> Vec<(&'static str, String)> {
        vec![
            ("lr", text(self.lr)),
            ("alpha", text(self.alpha)),
            ("eps", text(self.eps)),
            ("weight_decay", text(self.weight_decay)),
            ("momentum", text(self.momentum)),
            ("centered", text(self.centered)),
        ]
    }

    fn from_metadata(meta: &Metadata) -> Result<Self> {
        RmsPropHyper {
            lr: meta.f64("lr")?,
            alpha: meta.f64("alpha")?,
            eps: meta.f64("eps")?,
            weight_decay: meta.f64("weight_decay")?,
            momentum: meta.f64("momentum")?,
            centered: meta.bool("centered")?,
        }
        .validated()
    }
}

impl<B: Backend> RmsProp<B> {
    /// RMSprop with learning rate `lr` (PyTorch's default is 0.01) and PyTorch's defaults.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        let hyper = RmsPropHyper {
            lr,
            alpha: 0.99,
            eps: 1e-8,
            weight_decay: 0.0,
            momentum: 0.0,
            centered: false,
        };
        Ok(RmsProp(Engine::new(hyper.validated()?)))
    }

    /// [`RmsProp::new`] for the backend of `rnn`, as PyTorch's `torch.optim.RMSprop(model.parameters(), lr=lr)`: the
    /// optimiser's backend type is then known without an annotation, where `RmsProp::new(lr)` alone
    /// needs one (`RmsProp::<Cpu<f32>>::new(lr)`) until a [`step`](crate::Optimizer::step) on the
    /// model tells it. The optimiser keeps nothing of `rnn`; its buffers are made at the first
    /// step, as with `new`.
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(Cpu::<f32>::default(), RnnConfig::gru(3, 8), &mut rng)?;
    /// let opt = RmsProp::for_model(&rnn, 0.05)?.alpha(0.95)?;
    /// assert_eq!((opt.lr(), opt.step_count()), (0.05, 0));
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn for_model(rnn: &Rnn<B>, lr: f64) -> Result<Self> {
        let _ = rnn;
        Self::new(lr)
    }

    fn set(self, what: &str, change: impl FnOnce(RmsPropHyper) -> RmsPropHyper) -> Result<Self> {
        let engine = self.0.configure(what, |h| change(h).validated())?;
        Ok(RmsProp(engine))
    }

    /// The smoothing constant of the running averages (default 0.99; char-rnn's 0.95).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `0 <= alpha < 1`, or after the first step.
    pub fn alpha(self, alpha: f64) -> Result<Self> {
        self.set("alpha", |h| RmsPropHyper { alpha, ..h })
    }

    /// The epsilon added to the root (default 1e-8).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and positive, or after the first
    /// step.
    pub fn eps(self, eps: f64) -> Result<Self> {
        self.set("eps", |h| RmsPropHyper { eps, ..h })
    }

    /// The momentum factor (default 0: none).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `0 <= momentum < 1`, or after the first
    /// step.
    pub fn momentum(self, momentum: f64) -> Result<Self> {
        self.set("momentum", |h| RmsPropHyper { momentum, ..h })
    }

    /// Centred RMSprop: normalise by an estimate of the gradient's variance (default off).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) after the first step.
    pub fn centered(self, centered: bool) -> Result<Self> {
        self.set("centered", |h| RmsPropHyper { centered, ..h })
    }

    /// The L2 penalty `wd` added to the gradient (default 0).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and `>= 0`, or after the first
    /// step.
    pub fn weight_decay(self, weight_decay: f64) -> Result<Self> {
        self.set("weight decay", |h| RmsPropHyper { weight_decay, ..h })
    }
}

super::delegate_optimizer!(RmsProp);
