//! `Sgd`: stochastic gradient descent with momentum, as `torch.optim.SGD`.

use super::UpdateRule;
use super::check;
use super::state::{Engine, Hyper, Metadata, text};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::Rnn;

/// Stochastic gradient descent, `torch.optim.SGD`: with weight decay `wd`, momentum `mu`,
/// dampening `tau` and, on request, Nesterov momentum,
///
/// ```text
/// g   <- g + wd * p                          (wd != 0)
/// buf <- g  on the first step,  buf * mu + (1 - tau) * g  after it      (mu > 0)
/// g   <- g + mu * buf  (Nesterov)  or  buf                              (mu > 0)
/// p   <- p - lr * g
/// ```
///
/// [`Sgd::new`] is plain SGD, `p <- p - lr * g`, without state. Like PyTorch, the first step puts
/// the gradient itself in the momentum buffer, undamped.
///
/// State per parameter: `momentum_buffer` when the momentum is above 0. The update is
/// [`UpdateRule::Sgd`], run by the backend.
///
/// Hyperparameters are set by the builder methods before the first step; each checks its value
/// and returns [`Error::Config`] naming it. Stricter than PyTorch: the learning rate must be
/// positive and the momentum below 1.
///
/// ```
/// # use recurrent::prelude::*;
/// let sgd = Sgd::<Cpu<f32>>::new(0.1)?.momentum(0.9)?.nesterov(true)?;
/// assert_eq!(sgd.lr(), 0.1);
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Sgd<B: Backend>(Engine<SgdHyper, B>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct SgdHyper {
    lr: f64,
    momentum: f64,
    dampening: f64,
    nesterov: bool,
    weight_decay: f64,
}

impl SgdHyper {
    fn validated(self) -> Result<Self> {
        let name = Self::NAME;
        check::learning_rate(name, self.lr)?;
        check::unit(name, "momentum", self.momentum)?;
        check::closed_unit(name, "dampening", self.dampening)?;
        check::non_negative(name, "weight decay", self.weight_decay)?;
        if self.nesterov && (self.momentum == 0.0 || self.dampening != 0.0) {
            return Err(Error::config(format!(
                "{name}: Nesterov momentum needs a momentum above 0 and dampening 0, given \
                 momentum {} and dampening {} (set the momentum first)",
                self.momentum, self.dampening
            )));
        }
        Ok(self)
    }
}

impl Hyper for SgdHyper {
    const NAME: &'static str = "SGD";

    fn rule(&self, step: u64) -> UpdateRule {
        UpdateRule::Sgd {
            lr: self.lr,
            momentum: self.momentum,
            dampening: self.dampening,
            nesterov: self.nesterov,
            weight_decay: self.weight_decay,
            step,
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
            ("momentum", text(self.momentum)),
            ("dampening", text(self.dampening)),
            ("nesterov", text(self.nesterov)),
            ("weight_decay", text(self.weight_decay)),
        ]
    }

    fn from_metadata(meta: &Metadata) -> Result<Self> {
        SgdHyper {
            lr: meta.f64("lr")?,
            momentum: meta.f64("momentum")?,
            dampening: meta.f64("dampening")?,
            nesterov: meta.bool("nesterov")?,
            weight_decay: meta.f64("weight_decay")?,
        }
        .validated()
    }
}

impl<B: Backend> Sgd<B> {
    /// Plain SGD with learning rate `lr`: no momentum, no weight decay.
    ///
    /// # Errors
    /// [`Error::Config`] unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        let hyper = SgdHyper {
            lr,
            momentum: 0.0,
            dampening: 0.0,
            nesterov: false,
            weight_decay: 0.0,
        };
        Ok(Sgd(Engine::new(hyper.validated()?)))
    }

    /// [`Sgd::new`] for the backend of `rnn`, as PyTorch's `torch.optim.SGD(model.parameters(), lr=lr)`: the
    /// optimiser's backend type is then known without an annotation, where `Sgd::new(lr)` alone
    /// needs one (`Sgd::<Cpu<f32>>::new(lr)`) until a [`step`](crate::Optimizer::step) on the
    /// model tells it. The optimiser keeps nothing of `rnn`; its buffers are made at the first
    /// step, as with `new`.
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(Cpu::<f32>::default(), RnnConfig::gru(3, 8), &mut rng)?;
    /// let opt = Sgd::for_model(&rnn, 0.05)?.momentum(0.9)?;
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

    fn set(self, what: &str, change: impl FnOnce(SgdHyper) -> SgdHyper) -> Result<Self> {
        let engine = self.0.configure(what, |h| change(h).validated())?;
        Ok(Sgd(engine))
    }

    /// The momentum factor `mu` (PyTorch's default 0: none).
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 <= momentum < 1`, if Nesterov momentum is on and `momentum`
    /// is 0, or after the first step.
    pub fn momentum(self, momentum: f64) -> Result<Self> {
        self.set("momentum", |h| SgdHyper { momentum, ..h })
    }

    /// The dampening `tau` of the gradient in the momentum buffer (default 0).
    ///
    /// # Errors
    /// [`Error::Config`] unless `0 <= dampening <= 1`, if Nesterov momentum is on and
    /// `dampening` is not 0, or after the first step.
    pub fn dampening(self, dampening: f64) -> Result<Self> {
        self.set("dampening", |h| SgdHyper { dampening, ..h })
    }

    /// Nesterov momentum (default off). Set the momentum first.
    ///
    /// # Errors
    /// [`Error::Config`] when turning it on with no momentum or a dampening, or after the first
    /// step.
    pub fn nesterov(self, nesterov: bool) -> Result<Self> {
        self.set("nesterov", |h| SgdHyper { nesterov, ..h })
    }

    /// The L2 penalty `wd` added to the gradient (default 0).
    ///
    /// # Errors
    /// [`Error::Config`] unless `weight_decay` is finite and `>= 0`, or after the first step.
    pub fn weight_decay(self, weight_decay: f64) -> Result<Self> {
        self.set("weight decay", |h| SgdHyper { weight_decay, ..h })
    }
}

super::delegate_optimizer!(Sgd);
