//! Optimisers: they read [`Gradients`] and update an [`Rnn`]'s parameters.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::{Gradients, Rnn};
use crate::scalar::Scalar;

/// Plain stochastic gradient descent: `p <- p - lr * g` for every parameter.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Sgd {
    lr: f64,
}

impl Sgd {
    /// SGD with learning rate `lr`.
    ///
    /// # Errors
    /// [`Error::Config`] unless `lr` is finite and positive.
    pub fn new(lr: f64) -> Result<Self> {
        if lr.is_finite() && lr > 0.0 {
            Ok(Sgd { lr })
        } else {
            Err(Error::config(format!(
                "learning rate must be finite and positive, given {lr}"
            )))
        }
    }

    /// The learning rate.
    pub fn lr(&self) -> f64 {
        self.lr
    }

    /// One update of every parameter of `rnn` from `grads`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `grads` do not have the model's parameter names and shapes. Nothing is
    /// updated then.
    pub fn step<B: Backend>(&self, rnn: &mut Rnn<B>, grads: &Gradients<B>) -> Result<()> {
        let backend = rnn.backend().clone();
        rnn.params().check_matches(&backend, grads.params())?;
        let lr = B::Scalar::of(-self.lr);
        for (p, g) in rnn
            .params_mut()
            .matrices_mut()
            .zip(grads.params().matrices())
        {
            backend.axpy(p, lr, g);
        }
        Ok(())
    }
}
