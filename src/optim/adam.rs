//! `Adam`: `torch.optim.Adam`, with AMSGrad and AdamW's decoupled weight decay.

use super::UpdateRule;
use super::check;
use super::state::{Engine, Hyper, Metadata, text};
use crate::backend::Backend;
use crate::error::Result;
use crate::model::Rnn;

/// Adam, `torch.optim.Adam` (Kingma & Ba, 2015), with AMSGrad and, through
/// [`Adam::adamw`], `torch.optim.AdamW`:
///
/// ```text
/// g    <- g + wd * p            (wd != 0; AdamW instead: p <- p * (1 - lr * wd))
/// m    <- beta1 * m + (1 - beta1) * g
/// v    <- beta2 * v + (1 - beta2) * g^2
/// vmax <- max(vmax, v)          (amsgrad; the denominator then uses vmax for v)
/// p    <- p - lr / (1 - beta1^t) * m / (sqrt(v) / sqrt(1 - beta2^t) + eps)
/// ```
///
/// with `t` the step number from 1. Defaults are PyTorch's: betas (0.9, 0.999), `eps` 1e-8, no
/// weight decay, no AMSGrad. The arithmetic follows PyTorch's single-tensor CPU implementation
/// step for step (`m` by `lerp`, the bias corrections in `f64`), see [`UpdateRule::Adam`].
///
/// State per parameter: `exp_avg` (`m`), `exp_avg_sq` (`v`) and, with AMSGrad,
/// `max_exp_avg_sq` (`vmax`), all starting at 0.
///
/// ```
/// # use recurrent::prelude::*;
/// let adam = Adam::<Cpu<f32>>::new(1e-3)?.betas(0.9, 0.98)?.amsgrad(true)?;
/// let adamw = Adam::<Cpu<f32>>::adamw(1e-3)?.weight_decay(0.1)?;
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adam<B: Backend>(Engine<AdamHyper, B>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdamHyper {
    lr: f64,
    beta1: f64,
    beta2: f64,
    eps: f64,
    weight_decay: f64,
    amsgrad: bool,
    decoupled_weight_decay: bool,
}

impl AdamHyper {
    fn validated(self) -> Result<Self> {
        let name = Self::NAME;
        check::learning_rate(name, self.lr)?;
        check::unit(name, "beta1", self.beta1)?;
        check::unit(name, "beta2", self.beta2)?;
        check::positive(name, "eps", self.eps)?;
        check::non_negative(name, "weight decay", self.weight_decay)?;
        Ok(self)
    }
}

impl Hyper for AdamHyper {
    const NAME: &'static str = "Adam";

    fn rule(&self, step: u64) -> UpdateRule {
        UpdateRule::Adam {
            lr: self.lr,
            beta1: self.beta1,
            beta2: self.beta2,
            eps: self.eps,
            weight_decay: self.weight_decay,
            decoupled_weight_decay: self.decoupled_weight_decay,
            amsgrad: self.amsgrad,
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
            ("beta1", text(self.beta1)),
            ("beta2", text(self.beta2)),
            ("eps", text(self.eps)),
            ("weight_decay", text(self.weight_decay)),
            ("amsgrad", text(self.amsgrad)),
            ("decoupled_weight_decay", text(self.decoupled_weight_decay)),
        ]
    }

    fn from_metadata(meta: &Metadata) -> Result<Self> {
        AdamHyper {
            lr: meta.f64("lr")?,
            beta1: meta.f64("beta1")?,
            beta2: meta.f64("beta2")?,
            eps: meta.f64("eps")?,
            weight_decay: meta.f64("weight_decay")?,
            amsgrad: meta.bool("amsgrad")?,
            decoupled_weight_decay: meta.bool("decoupled_weight_decay")?,
        }
        .validated()
    }
}

impl<B: Backend> Adam<B> {
    /// Adam with learning rate `lr` (PyTorch's default is 1e-3) and PyTorch's defaults.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        let hyper = AdamHyper {
            lr,
            beta1: 0.9,
            beta2: 0.999,
            eps: 1e-8,
            weight_decay: 0.0,
            amsgrad: false,
            decoupled_weight_decay: false,
        };
        Ok(Adam(Engine::new(hyper.validated()?)))
    }

    /// AdamW, `torch.optim.AdamW` (Loshchilov & Hutter, 2019): Adam with decoupled weight
    /// decay, PyTorch's default 0.01.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn adamw(lr: f64) -> Result<Self> {
        Self::new(lr)?
            .weight_decay(0.01)?
            .decoupled_weight_decay(true)
    }

    /// [`Adam::new`] for the backend of `rnn`, as PyTorch's `torch.optim.Adam(model.parameters(), lr=lr)`: the
    /// optimiser's backend type is then known without an annotation, where `Adam::new(lr)` alone
    /// needs one (`Adam::<Cpu<f32>>::new(lr)`) until a [`step`](crate::Optimizer::step) on the
    /// model tells it. The optimiser keeps nothing of `rnn`; its buffers are made at the first
    /// step, as with `new`.
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(Cpu::<f32>::default(), RnnConfig::gru(3, 8), &mut rng)?;
    /// let opt = Adam::for_model(&rnn, 0.05)?.weight_decay(1e-4)?;
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

    fn set(self, what: &str, change: impl FnOnce(AdamHyper) -> AdamHyper) -> Result<Self> {
        let engine = self.0.configure(what, |h| change(h).validated())?;
        Ok(Adam(engine))
    }

    /// The decays of the running averages of the gradient and its square (default 0.9, 0.999).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless both are in `[0, 1)`, or after the first
    /// step.
    pub fn betas(self, beta1: f64, beta2: f64) -> Result<Self> {
        self.set("betas", |h| AdamHyper { beta1, beta2, ..h })
    }

    /// The epsilon added to the denominator (default 1e-8).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and positive, or after the first
    /// step.
    pub fn eps(self, eps: f64) -> Result<Self> {
        self.set("eps", |h| AdamHyper { eps, ..h })
    }

    /// The weight decay `wd` (default 0; 0.01 for [`Adam::adamw`]): an L2 penalty added to the
    /// gradient, or with [`decoupled_weight_decay`](Adam::decoupled_weight_decay) a shrinking of
    /// the parameter.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and `>= 0`, or after the first
    /// step.
    pub fn weight_decay(self, weight_decay: f64) -> Result<Self> {
        self.set("weight decay", |h| AdamHyper { weight_decay, ..h })
    }

    /// AMSGrad (Reddi et al., 2018): normalise by the running maximum of `v` (default off).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) after the first step.
    pub fn amsgrad(self, amsgrad: bool) -> Result<Self> {
        self.set("amsgrad", |h| AdamHyper { amsgrad, ..h })
    }

    /// AdamW's weight decay: `p <- p * (1 - lr * wd)` before the update instead of adding
    /// `wd * p` to the gradient (default off; on for [`Adam::adamw`]).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) after the first step.
    pub fn decoupled_weight_decay(self, decoupled: bool) -> Result<Self> {
        self.set("decoupled weight decay", |h| AdamHyper {
            decoupled_weight_decay: decoupled,
            ..h
        })
    }
}

super::delegate_optimizer!(Adam);
