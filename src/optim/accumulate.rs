//! Gradient accumulation: [`Gradients::accumulate`] and [`Gradients::scale`], for batches
//! larger than memory.
//!
//! A batch of `k * b` sequences that does not fit is run as `k` windows of `b`, each forward
//! and backward on its own; their gradients are summed, and one optimiser step is made with
//! the sum. The gradient of a loss summed over the batch is the sum of the windows' gradients,
//! so with [`Reduction::Sum`](crate::Reduction::Sum):
//!
//! ```text
//! g(big batch, sum) = g_1 + g_2 + ... + g_k
//! ```
//!
//! and for the mean over the big batch's `N = N_1 + ... + N_k` counted targets (PyTorch's
//! `reduction="mean"` on the whole batch), either sum the windows' summed losses and scale by
//! `1 / N`, or, with windows that count the same number of targets each (`N_i = N / k`: the
//! same shape, no padding, no ignored targets), sum their mean losses' gradients and scale by
//! `1 / k`:
//!
//! ```text
//! g(big batch, mean) = (g_1 + ... + g_k) / N   (each g_i of a summed loss)
//!                    = (m_1 + ... + m_k) / k   (each m_i of a mean loss over N / k targets)
//! ```
//!
//! Clip the accumulated gradient, after the scaling, as the big batch's would be: the clipping
//! rules ([`clip`](crate::clip)) are not linear, and clipping each window's gradient before the
//! sum is another rule.
//!
//! Only the parameter gradients are summed and scaled, as clipping and the optimisers read only
//! them: the gradients of a dense input and of the initial state belong to one window each, and
//! after [`accumulate`](Gradients::accumulate) they stay those of the window `self` came from.
//!
//! The windows' gradients are summed in the order they are added, so the sum is the big batch's
//! within rounding (a few ulps), not to the bit: the big batch sums over its rows in one
//! product, in another order. `tests/accumulate.rs` measures it.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::Gradients;
use num_traits::{Float, One};

impl<B: Backend> Gradients<B> {
    /// Adds `other`'s parameter gradients to these: the gradient of the sum of the two losses.
    /// The input and initial-state gradients are `self`'s still (see the
    /// [recipe](crate::optim::accumulate)).
    ///
    /// ```
    /// use recurrent::prelude::*;
    ///
    /// # let mut rng = StdRng::seed_from_u64(0);
    /// let mut rnn = Rnn::new(Cpu::<f64>::default(), RnnConfig::gru(4, 8).output(4), &mut rng)?;
    /// let mut adam = Adam::for_model(&rnn, 1e-2)?;
    /// // One batch of 4 sequences, in 2 windows of 2 (time-major ids, T = 3).
    /// let windows = [
    ///     (Input::ids(vec![0, 1, 1, 2, 2, 3], 2), [1, 2, 2, 3, 3, 0]),
    ///     (Input::ids(vec![3, 2, 2, 1, 1, 0], 2), [2, 1, 1, 0, 0, 3]),
    /// ];
    /// let mut total: Option<Gradients<_>> = None;
    /// for (input, targets) in &windows {
    ///     let trace = rnn.forward(input, None)?;
    ///     let (_, d_logits) = CrossEntropy::mean().forward(rnn.backend(), trace.logits(), targets)?;
    ///     let grads = rnn.backward(&trace, &d_logits)?;
    ///     match &mut total {
    ///         Some(total) => total.accumulate(&grads)?,
    ///         None => total = Some(grads),
    ///     }
    /// }
    /// let mut grads = total.expect("two windows");
    /// grads.scale(0.5)?; // the mean of 2 means over equal counts: the big batch's mean
    /// clip::global_norm(&mut grads, 5.0)?; // clipping after accumulating
    /// adam.step(&mut rnn, &grads)?;
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if `other` has not the same parameters (names and shapes, in order):
    /// gradients of another model. Nothing is added then.
    pub fn accumulate(&mut self, other: &Gradients<B>) -> Result<()> {
        let ours = self.params.named();
        let theirs = other.params.named();
        let names = |list: &[(String, &B::Matrix)]| -> Vec<String> {
            list.iter().map(|(name, _)| name.clone()).collect()
        };
        if names(&ours) != names(&theirs) {
            return Err(Error::shape(
                "Gradients::accumulate: the parameters of the gradients added",
                names(&ours),
                names(&theirs),
            ));
        }
        for ((name, a), (_, b)) in ours.iter().zip(&theirs) {
            let (want, given) = (self.backend.shape(a), self.backend.shape(b));
            if want != given {
                return Err(Error::shape(
                    format!("Gradients::accumulate: the gradient of {name}"),
                    want,
                    given,
                ));
            }
        }
        let backend = self.backend.clone();
        for (sum, add) in self.params.matrices_mut().zip(other.params.matrices()) {
            backend.axpy(sum, <B::Scalar as One>::one(), add);
        }
        Ok(())
    }

    /// Multiplies every parameter gradient by `factor`: `1 / k` to average `k` accumulated mean
    /// losses, `1 / N` to make a sum over `N` targets a mean. The input and initial-state
    /// gradients are not scaled, as clipping does not touch them.
    ///
    /// # Errors
    /// [`Error::Config`] unless `factor` is finite; the gradients are unchanged then.
    pub fn scale(&mut self, factor: B::Scalar) -> Result<()> {
        if !Float::is_finite(factor) {
            return Err(Error::config(format!(
                "Gradients::scale: the factor must be finite, given {factor}"
            )));
        }
        let backend = self.backend.clone();
        for g in self.params.matrices_mut() {
            backend.scale(g, factor);
        }
        Ok(())
    }
}
