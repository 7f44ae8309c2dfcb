//! The many-to-one head: the output layer applied once per sequence, to the top layer's state
//! at the end of the sequence, for classifying or regressing a whole sequence.
//!
//! For sequence `b` of length `len_b` (all `T` without lengths), the features are PyTorch's
//! `h_n` of the top layer, as a packed batch gives it:
//!
//! ```text
//! unidirectional:  z_b = h_fwd[len_b - 1, b]                          (h_n[-1])
//! bidirectional:   z_b = [h_fwd[len_b - 1, b], h_rev[0, b]]            (cat(h_n[-2], h_n[-1]))
//! logits:          y_b = z_b W_hy^T + b_y                              (B x V)
//! ```
//!
//! The backward direction reads each sequence from its last real step to its first, so its
//! state at the end of the sequence is its output at step 0. In training mode with output
//! dropout, `z_b` is taken from the dropped output, as the per-step output layer reads it.
//!
//! Backward: `dW_hy = dY^T Z`, `db_y = colsum(dY)`, `dZ = dY W_hy`; row `b` of `dZ` goes to row
//! `(len_b - 1) * B + b` of the top layer's output gradient (the forward direction's columns)
//! and to row `b` (the backward direction's columns), zero elsewhere, and BPTT runs from there.

use super::backward::output_backward;
use super::{Gradients, Rnn, Trace, project_output};
use crate::backend::Backend;
use crate::cell::CellKernels;
use crate::error::{Error, Result};
use num_traits::One;

impl<B: Backend> Trace<B> {
    /// The top layer's state at the end of each sequence, `B x D*H`: PyTorch's `h_n[-1]`, or
    /// `cat(h_n[-2], h_n[-1])` for a bidirectional model (the forward direction at each
    /// sequence's last real step, the backward one at step 0). What
    /// [`Rnn::last_logits`] projects (before output dropout).
    pub fn last_hidden(&self, backend: &B) -> B::Matrix {
        self.pick_last(backend, self.hidden())
    }

    /// Row `(len_b - 1) * B + b` of every sequence `b`: where its last real step is.
    fn last_rows(&self) -> Vec<usize> {
        let (steps, batch) = (self.steps(), self.batch());
        let lengths = self.input.lengths();
        (0..batch)
            .map(|b| (lengths.map_or(steps, |l| l[b]) - 1) * batch + b)
            .collect()
    }

    /// The end-of-sequence rows of `m` (`T*B x D*H`), `B x D*H`, as [`last_hidden`] describes.
    ///
    /// [`last_hidden`]: Trace::last_hidden
    fn pick_last(&self, backend: &B, m: &B::Matrix) -> B::Matrix {
        let (batch, (_, width)) = (self.batch(), backend.shape(m));
        let mut out = backend.zeros(batch, width);
        backend.gather_rows(&mut out, m, &self.last_rows());
        if self.reversal.is_some() {
            let hidden = width / 2;
            let first: Vec<usize> = (0..batch).collect();
            let mut at_first = backend.zeros(batch, width);
            backend.gather_rows(&mut at_first, m, &first);
            backend.copy_columns(&mut out, hidden, &at_first, hidden, hidden);
        }
        out
    }

    /// The gradient of [`pick_last`](Trace::pick_last): `d` (`B x D*H`) in the rows it picked,
    /// zeros elsewhere, `T*B x D*H`.
    fn place_last(&self, backend: &B, d: &B::Matrix) -> B::Matrix {
        let (batch, (_, width)) = (self.batch(), backend.shape(d));
        let rows = self.steps() * batch;
        let bidirectional = self.reversal.is_some();
        let hidden = if bidirectional { width / 2 } else { width };
        let mut forward = d.clone();
        if bidirectional {
            backend.copy_columns(
                &mut forward,
                hidden,
                &backend.zeros(batch, width),
                0,
                hidden,
            );
        }
        let mut out = backend.zeros(rows, width);
        for (b, &r) in self.last_rows().iter().enumerate() {
            backend.copy_rows(&mut out, r, &forward, b, 1);
        }
        if bidirectional {
            // The backward direction's columns at step 0, added: a sequence of one step has
            // both directions' ends in the same row.
            let mut reverse = backend.zeros(rows, width);
            backend.copy_rows(&mut reverse, 0, d, 0, batch);
            backend.copy_columns(&mut reverse, 0, &backend.zeros(rows, width), 0, hidden);
            backend.axpy(&mut out, B::Scalar::one(), &reverse);
        }
        out
    }
}

/// The many-to-one head: on a backend with the cells' kernels ([`CellKernels`]).
impl<B: CellKernels> Rnn<B> {
    /// The output layer applied to each sequence's end ([`Trace::last_hidden`]): logits
    /// `B x V`, one row per sequence, for classifying or regressing whole sequences (the
    /// equations are in the [`model`](crate::model) docs, under Heads). Without an output layer, the
    /// features themselves, `B x D*H`.
    ///
    /// `forward` computes the per-step logits too ([`Trace::logits`]); for a head of `V`
    /// classes that is `T*B x V` more work than the head needs, one GEMM.
    ///
    /// ```
    /// # use recurrent::prelude::*;
    /// # fn main() -> recurrent::Result<()> {
    /// # let mut rng = StdRng::seed_from_u64(0);
    /// let config = RnnConfig::gru(4, 8).bidirectional(true).output(3); // 3 classes
    /// let rnn = Rnn::new(NaiveCpu::<f64>::default(), config, &mut rng)?;
    /// let input = Input::ids(vec![0, 1, 2, 3, 1, 0], 2).with_lengths(vec![3, 2]);
    /// let trace = rnn.forward(&input, None)?;
    /// let logits = rnn.last_logits(&trace)?; // 2 x 3: one row per sequence
    /// let (loss, d_logits) = CrossEntropy::mean().forward(rnn.backend(), &logits, &[2, 0])?;
    /// let grads = rnn.backward_last(&trace, &d_logits)?;
    /// assert!(loss > 0.0 && grads.get("out.weight").is_ok());
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if the trace was made by a model of another shape.
    pub fn last_logits(&self, trace: &Trace<B>) -> Result<B::Matrix> {
        self.check_trace(trace)?;
        let features = trace.pick_last(&self.backend, trace.top_input());
        Ok(match &self.params.out {
            Some(linear) => project_output(&self.backend, linear, &features),
            None => features,
        })
    }

    /// Backpropagation through time from `d_last = dE/d logits` of the many-to-one head
    /// ([`last_logits`](Rnn::last_logits), `B x V`): the gradient enters each sequence at its
    /// end (both ends for a bidirectional model) and runs back through every step, as in
    /// [`backward`](Rnn::backward), whose gradients these are in form.
    ///
    /// # Errors
    /// [`Error::Shape`] if `d_last` is not `B x V` or the trace was made by a model of another
    /// shape.
    pub fn backward_last(&self, trace: &Trace<B>, d_last: &B::Matrix) -> Result<Gradients<B>> {
        let backend = &self.backend;
        self.check_trace(trace)?;
        let (_, width) = backend.shape(&trace.logits);
        let want = (trace.batch(), width);
        if backend.shape(d_last) != want {
            let given = backend.shape(d_last);
            return Err(Error::shape("many-to-one logits gradient", want, given));
        }
        let mut grads = self.params.zeros_like(backend);
        let d_features = match (&self.params.out, &mut grads.out) {
            (Some(linear), Some(g)) => {
                let features = trace.pick_last(backend, trace.top_input());
                output_backward(backend, linear, g, &features, d_last)
            }
            _ => d_last.clone(),
        };
        let d_hidden = trace.place_last(backend, &d_features);
        self.backward_layers(trace, d_hidden, grads, None, None)
    }
}
