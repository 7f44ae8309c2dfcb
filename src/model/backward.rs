//! `Rnn`'s backward pass: the output projection, then every layer from the top down, each
//! direction through [`bptt`], optionally recording the gradient flow.

use super::{Gradients, Rnn, State, Trace, in_layer, permute_rows};
use crate::backend::{Backend, Transpose};
use crate::bptt::{self, LayerInput};
use crate::cell::{CellKernels, CellState, LayerCell};
use crate::diagnostics::{GradientFlow, LayerFlow};
use crate::error::{Error, Result};
use crate::params::{Linear, Params};
use num_traits::{One, Zero};
use std::borrow::Cow;

impl<B: CellKernels> Rnn<B> {
    /// Backpropagation through time from `d_logits = dE/d logits` (`T*B x V`), e.g. the second
    /// value of [`CrossEntropy::forward`](crate::CrossEntropy::forward).
    ///
    /// Returns the gradients of every parameter, summed over all steps and the batch, of the
    /// dense input and of the initial state. The many-to-one head's gradient (`B x V`) goes to
    /// [`backward_last`](Rnn::backward_last) instead.
    ///
    /// ```
    /// use recurrent::prelude::*;
    /// let mut rnn = Rnn::new(NaiveCpu::<f64>::new(), RnnConfig::rnn(3, 5).output(3), &mut StdRng::seed_from_u64(0))?;
    /// let (input, targets) = (Input::ids(vec![0, 1, 2, 1], 1), [1, 2, 1, 0]);
    /// let trace = rnn.forward(&input, None)?;
    /// let (loss, d_logits) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &targets)?;
    /// let grads = rnn.backward(&trace, &d_logits)?;
    /// // One gradient per parameter, named as the parameters are.
    /// assert_eq!(grads.named().len(), rnn.parameters().len());
    /// // A small step against the gradient lowers the loss.
    /// Sgd::for_model(&rnn, 0.01)?.step(&mut rnn, &grads)?;
    /// let after = rnn.forward(&input, None)?;
    /// let (lower, _) = CrossEntropy::sum().forward(rnn.backend(), after.logits(), &targets)?;
    /// assert!(lower < loss);
    /// # Ok::<(), recurrent::Error>(())
    /// ```
    ///
    /// # Errors
    /// [`Error::Shape`] if `d_logits` is not the shape of [`Trace::logits`], or the trace was
    /// made by a model of another shape.
    pub fn backward(&self, trace: &Trace<B>, d_logits: &B::Matrix) -> Result<Gradients<B>> {
        self.backward_with_state(trace, d_logits, None)
    }

    /// As [`backward`](Rnn::backward), with a gradient reaching the final state as well (when the
    /// loss also depends on `h_n`, or on the next window's output in a longer unroll).
    ///
    /// # Errors
    /// As [`backward`](Rnn::backward); also [`Error::Shape`] if `d_final` does not fit the model.
    pub fn backward_with_state(
        &self,
        trace: &Trace<B>,
        d_logits: &B::Matrix,
        d_final: Option<&State<B>>,
    ) -> Result<Gradients<B>> {
        self.backward_flow(trace, d_logits, d_final, None)
    }

    /// As [`backward_with_state`](Rnn::backward_with_state), recording the gradient flow into
    /// `flow`: for every layer and direction, per time step, `||dE/dh_t||`, `||dE/dc_t||` (LSTM)
    /// and the norm of the step's term of every weight and bias gradient (see
    /// [`diagnostics`](crate::diagnostics) for exactly which quantities).
    ///
    /// The gradients are those of [`backward_with_state`](Rnn::backward_with_state), bit for
    /// bit. `flow` is overwritten, not appended to: it is sized for this model and this trace's
    /// steps (reusing its vectors' capacity) and its clipping record is cleared, so a record
    /// reused across training steps describes the last call alone.
    ///
    /// ```
    /// # use recurrent::prelude::*;
    /// use recurrent::diagnostics::GradientFlow;
    /// # fn main() -> recurrent::Result<()> {
    /// # let mut rng = StdRng::seed_from_u64(0);
    /// let rnn = Rnn::new(Cpu::<f64>::default(), RnnConfig::rnn(4, 8).output(4), &mut rng)?;
    /// let trace = rnn.forward(&Input::ids(vec![0, 1, 2, 3], 1), None)?;
    /// let (_, d_logits) = CrossEntropy::sum().forward(rnn.backend(), trace.logits(), &[1, 2, 3, 0])?;
    /// let mut flow = GradientFlow::new();
    /// let grads = rnn.backward_recorded(&trace, &d_logits, None, &mut flow)?;
    /// let layer = flow.layer(0, 0).expect("one layer");
    /// assert_eq!(layer.dh().len(), 4); // ||dE/dh_t|| for t = 0..4
    /// let record = clip::global_norm_recorded(&mut { grads }, 1e-3)?;
    /// assert!(record.clipped() && (record.after - 1e-3).abs() < 1e-12);
    /// flow.record_clip(record);
    /// # Ok(())
    /// # }
    /// ```
    ///
    /// # Errors
    /// As [`backward_with_state`](Rnn::backward_with_state). A call that fails before the
    /// backward pass starts (a trace or gradient of the wrong shape) leaves `flow` as it was;
    /// one that fails inside a layer may leave it partly overwritten.
    pub fn backward_recorded(
        &self,
        trace: &Trace<B>,
        d_logits: &B::Matrix,
        d_final: Option<&State<B>>,
        flow: &mut GradientFlow,
    ) -> Result<Gradients<B>> {
        self.backward_flow(trace, d_logits, d_final, Some(flow))
    }

    /// The body of both backward passes: records into `flow` when given one.
    fn backward_flow(
        &self,
        trace: &Trace<B>,
        d_logits: &B::Matrix,
        d_final: Option<&State<B>>,
        flow: Option<&mut GradientFlow>,
    ) -> Result<Gradients<B>> {
        let backend = &self.backend;
        self.check_trace(trace)?;
        if let Some(state) = d_final {
            self.check_state_count("final state gradient", state)?;
        }
        let want = backend.shape(&trace.logits);
        if backend.shape(d_logits) != want {
            return Err(Error::shape(
                "logits gradient",
                want,
                backend.shape(d_logits),
            ));
        }
        let mut grads = self.params.zeros_like(backend);
        let d_hidden = match (&self.params.out, &mut grads.out) {
            (Some(linear), Some(g)) => {
                output_backward(backend, linear, g, trace.top_input(), d_logits)
            }
            _ => d_logits.clone(),
        };
        self.backward_layers(trace, d_hidden, grads, d_final, flow)
    }

    /// Backward through every layer from the top down, from `d_hidden`, the gradient of what
    /// the output layer read (`T*B x D*H`), into `grads`, which hold the output layer's.
    pub(super) fn backward_layers(
        &self,
        trace: &Trace<B>,
        mut d_hidden: B::Matrix,
        mut grads: Params<B>,
        d_final: Option<&State<B>>,
        flow: Option<&mut GradientFlow>,
    ) -> Result<Gradients<B>> {
        let backend = &self.backend;
        let dirs = self.config.directions();
        let mut flows = flow.map(|f| f.prepare(self.params.layers.len(), dirs));
        let mut d_initial = Vec::with_capacity(self.params.layers.len());
        let mut d_input = None;
        for layer in (0..trace.records.len()).rev() {
            if let Some((mask, _)) = &trace.records[layer].dropout {
                backend.mul(&mut d_hidden, mask);
            }
            let layer_flows = flows.as_deref_mut().map(|f| &mut f[layer * dirs..][..dirs]);
            let shares = (&d_hidden, d_final);
            let layer_grads = self.layer_backward(trace, layer, shares, &mut grads, layer_flows)?;
            // Layers run top-down: this layer's states go before those above it.
            d_initial.splice(0..0, layer_grads.initial);
            match layer_grads.input {
                Some(d) if layer > 0 => d_hidden = d,
                d => d_input = d,
            }
        }
        // Through the first layer's dropout masks, then (with an embedding) to the rows read.
        if let (Some(mask), Some(d)) = (&trace.first_mask, d_input.as_mut()) {
            backend.mul(d, mask);
        }
        if let (Some(table), Some(ids)) = (grads.embedding_mut(), trace.input.as_ids())
            && let Some(d_rows) = d_input.take()
        {
            scatter_add_rows(backend, table, ids, &d_rows);
        }
        Ok(Gradients {
            backend: backend.clone(),
            params: grads,
            input: d_input,
            initial_state: State::new(d_initial),
        })
    }

    /// Backward through layer `layer`, every direction, from the gradient of its output
    /// (`T*B x D*H`): adds its parameter gradients into `grads` and returns the gradient of its
    /// input (`None` for token ids) and of its initial state, one per direction.
    ///
    /// With `flows` (one per direction), each direction's gradient flow is recorded there.
    fn layer_backward(
        &self,
        trace: &Trace<B>,
        layer: usize,
        (d_output, d_final): (&B::Matrix, Option<&State<B>>),
        grads: &mut Params<B>,
        mut flows: Option<&mut [LayerFlow]>,
    ) -> Result<LayerGrads<B>> {
        let backend = &self.backend;
        let dirs = self.config.directions();
        let record = &trace.records[layer];
        let mut d_input: Option<B::Matrix> = None;
        let mut d_initial = Vec::with_capacity(dirs);
        for (dir, layer_trace) in record.directions().enumerate() {
            let index = layer * dirs + dir;
            // The backward direction ran on time-reversed rows: its input and gradients too.
            let (input, reversal) = match (&record.reverse, &trace.reversal) {
                (Some((_, reversed)), Some(rows)) if dir == 1 => {
                    (reversed.as_layer_input(), Some(rows))
                }
                _ if layer == 0 => (trace.first_input(), None),
                _ => (
                    LayerInput::Dense(trace.records[layer - 1].next_input()),
                    None,
                ),
            };
            let d_out = self.direction_share(d_output, dir, reversal.map(Vec::as_slice));
            let d_fin = d_final.map(|s| &s.layers()[index]);
            // With weight dropout the direction ran on W_hh times a mask: so does its backward,
            // and the gradient reaches the stored W_hh through the mask.
            let dropped = record.weight_drop.get(dir).and_then(Option::as_ref);
            let params = dropped.map_or(&self.params.layers[index], |(_, p)| p);
            let cell = LayerCell::of(self.config.kind(), params);
            let into = &mut grads.layers[index];
            let flow = flows.as_deref_mut().map(|f| &mut f[dir]);
            let run = (input, layer_trace, &*d_out, d_fin);
            let (d_in, d_h0) = bptt::backward_flow(backend, &cell, run, into, flow)
                .map_err(|e| in_layer(e, layer, dir))?;
            if let Some((mask, _)) = dropped {
                backend.mul(&mut into.weight_hh, mask);
            }
            d_initial.push(d_h0);
            if let Some(d_in) = d_in {
                let d_in = match reversal {
                    Some(rows) => permute_rows(backend, &d_in, rows),
                    None => d_in,
                };
                match &mut d_input {
                    Some(sum) => backend.axpy(sum, B::Scalar::one(), &d_in),
                    None => d_input = Some(d_in),
                }
            }
        }
        Ok(LayerGrads {
            input: d_input,
            initial: d_initial,
        })
    }

    /// Direction `dir`'s columns of a layer's output gradient, in the row order that direction
    /// ran (time-reversed for the backward one).
    fn direction_share<'a>(
        &self,
        d_output: &'a B::Matrix,
        dir: usize,
        reversal: Option<&[usize]>,
    ) -> Cow<'a, B::Matrix> {
        let backend = &self.backend;
        if self.config.directions() == 1 {
            return Cow::Borrowed(d_output);
        }
        let (rows, width) = backend.shape(d_output);
        let hidden = width / 2;
        let mut part = backend.zeros(rows, hidden);
        backend.copy_columns(&mut part, 0, d_output, dir * hidden, hidden);
        Cow::Owned(match reversal {
            Some(order) => permute_rows(backend, &part, order),
            None => part,
        })
    }
}

/// What backward through one layer gives besides its parameter gradients.
struct LayerGrads<B: Backend> {
    /// The gradient of the layer's input; `None` for token ids.
    input: Option<B::Matrix>,
    /// The gradient of its initial state, one per direction.
    initial: Vec<CellState<B>>,
}

/// The output layer's backward: `dW += dY^T H`, `db += colsum(dY)`; returns `dH = dY W`.
pub(super) fn output_backward<B: Backend>(
    backend: &B,
    linear: &Linear<B>,
    grads: &mut Linear<B>,
    h: &B::Matrix,
    d_logits: &B::Matrix,
) -> B::Matrix {
    let one = B::Scalar::one();
    backend.gemm(
        &mut grads.weight,
        one,
        d_logits,
        Transpose::Yes,
        h,
        Transpose::No,
        one,
    );
    if let Some(db) = &mut grads.bias {
        backend.add_column_sums(db, d_logits);
    }
    let (rows, width) = backend.shape(h);
    let mut d_h = backend.empty(rows, width); // written whole: beta = 0
    backend.gemm(
        &mut d_h,
        one,
        d_logits,
        Transpose::No,
        &linear.weight,
        Transpose::No,
        B::Scalar::zero(),
    );
    d_h
}

/// The gradient of the embedding lookup: for every `r`, row `ids[r]` of `table` (`V x E`) gains
/// row `r` of `src` (`n x E`); repeated ids accumulate. Summed on the host, as the backend has
/// no row scatter: one read of `src` and one of a `V x E` update, once per backward pass.
fn scatter_add_rows<B: Backend>(
    backend: &B,
    table: &mut B::Matrix,
    ids: &[usize],
    src: &B::Matrix,
) {
    let (rows, cols) = backend.shape(table);
    let values = backend.to_vec(src);
    let mut delta = vec![B::Scalar::zero(); rows * cols];
    for (row, &id) in values.chunks_exact(cols).zip(ids) {
        for (d, &v) in delta[id * cols..][..cols].iter_mut().zip(row) {
            *d = *d + v;
        }
    }
    let delta = backend
        .from_vec(rows, cols, delta)
        .expect("rows * cols values");
    backend.axpy(table, B::Scalar::one(), &delta);
}
