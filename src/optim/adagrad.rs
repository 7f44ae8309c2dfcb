//! `Adagrad`: PyTorch's, and min-char-rnn's with the epsilon under the square root.

use super::UpdateRule;
use super::check;
use super::state::{Engine, Hyper, Metadata, text};
use crate::backend::Backend;
use crate::error::Result;
use crate::model::Rnn;

/// Adagrad: every entry's step is scaled by the root of the sum of its squared gradients.
///
/// Two variants, which differ only in where the epsilon goes:
///
/// ```text
/// [Adagrad::new], torch.optim.Adagrad            [Adagrad::min_char_rnn], Karpathy's min-char-rnn
/// g   <- g + wd * p          (wd != 0)           mem <- mem + g * g
/// clr <- lr / (1 + (t - 1) * lr_decay)           p   <- p - lr * g / sqrt(mem + 1e-8)
/// sum <- sum + g * g
/// p   <- p - clr * g / (sqrt(sum) + eps)
/// ```
///
/// with `t` the step number from 1, `eps` 1e-10 by default, and `sum` starting at
/// `initial_accumulator_value` (default 0). [`eps_inside_sqrt`](Adagrad::eps_inside_sqrt) moves
/// the epsilon of either; the other hyperparameters apply to both.
///
/// State per parameter: `sum` (min-char-rnn's `mem`). The update is [`UpdateRule::Adagrad`].
///
/// ```
/// # use recurrent::prelude::*;
/// // min-char-rnn: `mem += dparam * dparam; param += -learning_rate * dparam / np.sqrt(mem + 1e-8)`
/// let adagrad = Adagrad::<Cpu<f64>>::min_char_rnn(0.1)?;
/// // The same update, spelled out from PyTorch's defaults.
/// let same = Adagrad::<Cpu<f64>>::new(0.1)?.eps(1e-8)?.eps_inside_sqrt(true)?;
/// # Ok::<(), recurrent::Error>(())
/// ```
#[derive(Debug, Clone)]
pub struct Adagrad<B: Backend>(Engine<AdagradHyper, B>);

#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct AdagradHyper {
    lr: f64,
    lr_decay: f64,
    weight_decay: f64,
    initial_accumulator_value: f64,
    eps: f64,
    eps_inside_sqrt: bool,
}

impl AdagradHyper {
    fn validated(self) -> Result<Self> {
        let name = Self::NAME;
        check::learning_rate(name, self.lr)?;
        check::non_negative(name, "learning-rate decay", self.lr_decay)?;
        check::non_negative(name, "weight decay", self.weight_decay)?;
        let init = self.initial_accumulator_value;
        check::non_negative(name, "initial accumulator value", init)?;
        check::positive(name, "eps", self.eps)?;
        Ok(self)
    }
}

impl Hyper for AdagradHyper {
    const NAME: &'static str = "Adagrad";

    fn rule(&self, step: u64) -> UpdateRule {
        UpdateRule::Adagrad {
            lr: self.lr,
            lr_decay: self.lr_decay,
            eps: self.eps,
            eps_inside_sqrt: self.eps_inside_sqrt,
            weight_decay: self.weight_decay,
            step,
        }
    }

    fn initial_state(&self) -> f64 {
        self.initial_accumulator_value
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
            ("lr_decay", text(self.lr_decay)),
            ("weight_decay", text(self.weight_decay)),
            (
                "initial_accumulator_value",
                text(self.initial_accumulator_value),
            ),
            ("eps", text(self.eps)),
            ("eps_inside_sqrt", text(self.eps_inside_sqrt)),
        ]
    }

    fn from_metadata(meta: &Metadata) -> Result<Self> {
        AdagradHyper {
            lr: meta.f64("lr")?,
            lr_decay: meta.f64("lr_decay")?,
            weight_decay: meta.f64("weight_decay")?,
            initial_accumulator_value: meta.f64("initial_accumulator_value")?,
            eps: meta.f64("eps")?,
            eps_inside_sqrt: meta.bool("eps_inside_sqrt")?,
        }
        .validated()
    }
}

impl<B: Backend> Adagrad<B> {
    /// `torch.optim.Adagrad` with learning rate `lr` (PyTorch's default is 0.01) and its
    /// defaults: `eps` 1e-10 added to the root, no learning-rate decay, no weight decay, the
    /// accumulator starting at 0.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        let hyper = AdagradHyper {
            lr,
            lr_decay: 0.0,
            weight_decay: 0.0,
            initial_accumulator_value: 0.0,
            eps: 1e-10,
            eps_inside_sqrt: false,
        };
        Ok(Adagrad(Engine::new(hyper.validated()?)))
    }

    /// Karpathy's min-char-rnn update (lr 0.1 there): `eps` 1e-8 under the square root,
    /// `p <- p - lr * g / sqrt(mem + 1e-8)`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless `lr` is finite and positive.
    pub fn min_char_rnn(lr: f64) -> Result<Self> {
        Self::new(lr)?.eps(1e-8)?.eps_inside_sqrt(true)
    }

    /// [`Adagrad::new`] for the backend of `rnn`, as PyTorch's `torch.optim.Adagrad(model.parameters(), lr=lr)`: the
    /// optimiser's backend type is then known without an annotation, where `Adagrad::new(lr)` alone
    /// needs one (`Adagrad::<Cpu<f32>>::new(lr)`) until a [`step`](crate::Optimizer::step) on the
    /// model tells it. The optimiser keeps nothing of `rnn`; its buffers are made at the first
    /// step, as with `new`.
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(Cpu::<f32>::default(), RnnConfig::gru(3, 8), &mut rng)?;
    /// let opt = Adagrad::for_model(&rnn, 0.05)?.lr_decay(1e-3)?;
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

    fn set(self, what: &str, change: impl FnOnce(AdagradHyper) -> AdagradHyper) -> Result<Self> {
        let engine = self.0.configure(what, |h| change(h).validated())?;
        Ok(Adagrad(engine))
    }

    /// The learning-rate decay: step `t` uses `lr / (1 + (t - 1) * lr_decay)` (default 0).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and `>= 0`, or after the first
    /// step.
    pub fn lr_decay(self, lr_decay: f64) -> Result<Self> {
        self.set("learning-rate decay", |h| AdagradHyper { lr_decay, ..h })
    }

    /// The epsilon (default 1e-10; min-char-rnn's 1e-8).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and positive, or after the first
    /// step.
    pub fn eps(self, eps: f64) -> Result<Self> {
        self.set("eps", |h| AdagradHyper { eps, ..h })
    }

    /// Where the epsilon goes: `false` (PyTorch) adds it to the root, `sqrt(sum) + eps`; `true`
    /// (min-char-rnn) adds it under the root, `sqrt(sum + eps)`.
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) after the first step.
    pub fn eps_inside_sqrt(self, inside: bool) -> Result<Self> {
        self.set("eps placement", |h| AdagradHyper {
            eps_inside_sqrt: inside,
            ..h
        })
    }

    /// The value every entry of `sum` starts from (default 0).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and `>= 0`, or after the first
    /// step.
    pub fn initial_accumulator_value(self, value: f64) -> Result<Self> {
        self.set("initial accumulator value", |h| AdagradHyper {
            initial_accumulator_value: value,
            ..h
        })
    }

    /// The L2 penalty `wd` added to the gradient (default 0).
    ///
    /// # Errors
    /// [`Error::Config`](crate::Error::Config) unless finite and `>= 0`, or after the first
    /// step.
    pub fn weight_decay(self, weight_decay: f64) -> Result<Self> {
        self.set("weight decay", |h| AdagradHyper { weight_decay, ..h })
    }
}

super::delegate_optimizer!(Adagrad);
