//! [`Stream`]: a model run one step at a time, without a trace, for generation and online use.

use super::{Rnn, State};
use crate::backend::{Backend, Transpose};
use crate::cell::{
    Cell, CellKernels, CellKind, CellState, LayerCell, LoopPass, StepBuffers, TimeLoop, copy_all,
};
use crate::error::{Error, Result, check_ids};
use num_traits::{One, Zero};

/// The running state of a unidirectional [`Rnn`] fed one step at a time by [`Rnn::step`]: the
/// hidden (and LSTM cell) state of every layer for a batch of `B` independent sequences, the
/// last step's logits, and every buffer a step needs.
///
/// Everything is sized when the stream is made, and `W_hh` and the output weight are prepared
/// for the backend's kernel on the first step, so later steps allocate nothing. If the model's
/// weights change (an optimiser step, [`Rnn::set_parameter`]), the next step prepares them
/// again: a stream always computes with the model's current weights.
///
/// Steps run in inference mode: no dropout.
///
/// ```
/// use recurrent::prelude::*;
///
/// # fn main() -> recurrent::Result<()> {
/// let mut rng = StdRng::seed_from_u64(0);
/// let rnn = Rnn::new(Cpu::<f32>::new(), RnnConfig::lstm(4, 8).output(4), &mut rng)?;
/// let mut stream = rnn.stream(1)?;
/// for id in [0, 1, 2] {
///     let logits = rnn.step(&mut stream, &[id])?; // 1 x 4: scores of the next token
///     assert_eq!(rnn.backend().shape(logits), (1, 4));
/// }
/// // The same as a forward pass over the three tokens, to rounding (`Cpu` sums a step's
/// // products in another order than a whole pass's; `NaiveCpu` gives the same bits):
/// let trace = rnn.forward(&Input::ids(vec![0, 1, 2], 1), None)?;
/// let last = &rnn.backend().to_vec(trace.logits())[8..];
/// let streamed = rnn.backend().to_vec(stream.logits());
/// assert!(streamed.iter().zip(last).all(|(s, f)| (s - f).abs() <= 1e-5 * (1.0 + f.abs())));
/// # Ok(())
/// # }
/// ```
#[derive(Debug, Clone)]
pub struct Stream<B: Backend> {
    batch: usize,
    kind: CellKind,
    hidden: usize,
    /// Per layer: the state in `h_prev` / `c_prev` between steps, and the step's buffers.
    layers: Vec<StepBuffers<B>>,
    /// `B x V` (or `B x H` without an output layer).
    logits: B::Matrix,
    /// The embedding's rows for a step's ids, `B x E`, for a model with an embedding.
    embedded: Option<B::Matrix>,
    /// The weights prepared for the backend's kernel, and the model version they came from.
    prepared: Option<Prepared<B>>,
}

#[derive(Debug, Clone)]
struct Prepared<B: Backend> {
    version: u64,
    /// `W_ih^T` of each layer; the first layer's only once dense input needs it (token ids
    /// select its columns instead).
    w_ih_t: Vec<Option<B::Prepared>>,
    w_hh_t: Vec<B::Prepared>,
    out_t: Option<B::Prepared>,
}

impl<B: Backend> Stream<B> {
    /// The number of sequences advanced together.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The logits of the last step (zeros before the first), `B x V` (`B x H` for a model
    /// without an output layer).
    pub fn logits(&self) -> &B::Matrix {
        &self.logits
    }

    /// The current state of every layer, as [`Rnn::forward`] takes it.
    pub fn state(&self) -> State<B> {
        State::new(
            self.layers
                .iter()
                .map(|buf| CellState {
                    h: buf.h_prev.clone(),
                    c: self.kind.has_cell_state().then(|| buf.c_prev.clone()),
                })
                .collect(),
        )
    }

    /// Sets every layer's state (and the logits) back to zero, keeping the buffers.
    pub fn reset(&mut self, backend: &B) {
        let zero = B::Scalar::zero();
        for buf in &mut self.layers {
            backend.scale(&mut buf.h_prev, zero);
            backend.scale(&mut buf.c_prev, zero);
        }
        backend.scale(&mut self.logits, zero);
    }
}

impl<B: CellKernels> Rnn<B> {
    /// A [`Stream`] of `batch` sequences starting from the zero state.
    ///
    /// # Errors
    /// [`Error::Empty`] for a batch of 0; [`Error::Config`] for a bidirectional model, whose
    /// backward direction needs the whole sequence.
    pub fn stream(&self, batch: usize) -> Result<Stream<B>> {
        if batch == 0 {
            return Err(Error::empty("stream batch"));
        }
        if self.config.directions() != 1 {
            return Err(Error::config(
                "a bidirectional model cannot run step by step: its backward direction reads \
                 the sequence from its end; use `forward` on whole sequences",
            ));
        }
        let (kind, hidden) = (self.config.kind(), self.config.hidden_size());
        let backend = &self.backend;
        let width = self.config.output_size().unwrap_or(hidden);
        Ok(Stream {
            batch,
            kind,
            hidden,
            layers: (0..self.config.num_layers())
                .map(|_| StepBuffers::new(backend, kind, batch, hidden))
                .collect(),
            logits: backend.zeros(batch, width),
            embedded: (self.config.embedding_dim()).map(|dim| backend.zeros(batch, dim)),
            prepared: None,
        })
    }

    /// A [`Stream`] starting from `state`, e.g. [`Trace::final_state`](super::Trace) after a
    /// priming text.
    ///
    /// # Errors
    /// As [`stream`](Rnn::stream), and [`Error::Shape`] if `state` does not have one `B x H`
    /// state per layer (and a cell state for an LSTM).
    pub fn stream_from(&self, state: &State<B>) -> Result<Stream<B>> {
        self.check_state_count("stream state", state)?;
        let (kind, hidden) = (self.config.kind(), self.config.hidden_size());
        let batch = match state.layers().first() {
            Some(first) => self.backend.shape(&first.h).0,
            None => 0,
        };
        let mut stream = self.stream(batch)?;
        for (layer, (buf, s)) in stream.layers.iter_mut().zip(state.layers()).enumerate() {
            s.check(
                &self.backend,
                &format!("stream state of layer {layer}"),
                kind,
                batch,
                hidden,
            )?;
            copy_all(&self.backend, &mut buf.h_prev, &s.h);
            if let Some(c) = &s.c {
                copy_all(&self.backend, &mut buf.c_prev, c);
            }
        }
        Ok(stream)
    }

    /// Advances every sequence of `stream` by one token, `ids[b]` for sequence `b`, and returns
    /// the new logits (`B x V`): the same numbers as [`forward`](Rnn::forward) over the whole
    /// sequence gives at that step (up to rounding where a backend orders sums differently).
    ///
    /// # Errors
    /// [`Error::Shape`] if `ids` does not hold one id per sequence or the stream was made by a
    /// model of another shape; [`Error::Index`] for an id not below the input size; the stream
    /// is unchanged on error.
    pub fn step<'s>(&self, stream: &'s mut Stream<B>, ids: &[usize]) -> Result<&'s B::Matrix> {
        self.check_stream(stream)?;
        if ids.len() != stream.batch {
            return Err(Error::shape("stream ids", stream.batch, ids.len()));
        }
        check_ids("stream ids", ids, self.config.input_size())?;
        let work = self.time_loop(stream);
        self.backend
            .install(work, || self.advance(stream, StepInput::Ids(ids)));
        Ok(&stream.logits)
    }

    /// As [`step`](Rnn::step) for dense input: `x` is `B x I`, one row per sequence.
    ///
    /// # Errors
    /// [`Error::Shape`] if `x` is not `B x I` or the stream was made by a model of another
    /// shape; [`Error::Config`] for a model with an embedding, which reads token ids; the
    /// stream is unchanged on error.
    pub fn step_dense<'s>(
        &self,
        stream: &'s mut Stream<B>,
        x: &B::Matrix,
    ) -> Result<&'s B::Matrix> {
        self.check_stream(stream)?;
        if self.config.embedding_dim().is_some() {
            return Err(Error::config(
                "this model has an embedding: its input is token ids (Rnn::step), not dense rows",
            ));
        }
        let want = (stream.batch, self.config.input_size());
        if self.backend.shape(x) != want {
            return Err(Error::shape("stream input x", want, self.backend.shape(x)));
        }
        let work = self.time_loop(stream);
        self.backend
            .install(work, || self.advance(stream, StepInput::Dense(x)));
        Ok(&stream.logits)
    }

    /// Checks that `stream` was made by a model of this shape.
    fn check_stream(&self, stream: &Stream<B>) -> Result<()> {
        let want = (
            self.config.kind(),
            self.config.hidden_size(),
            self.config.num_layers(),
            self.config.directions(),
        );
        let have = (stream.kind, stream.hidden, stream.layers.len(), 1);
        let width = self.config.output_size().unwrap_or(stream.hidden);
        let embedded = stream.embedded.as_ref().map(|e| self.backend.shape(e).1);
        if want != have
            || self.backend.shape(&stream.logits).1 != width
            || embedded != self.config.embedding_dim()
        {
            return Err(Error::shape(
                "stream (made by a model of another shape): (cell, hidden, layers, directions)",
                format!("{:?}", want),
                format!("{:?}", have),
            ));
        }
        Ok(())
    }

    /// A step, for [`CellKernels::install`]: its largest product is a layer's recurrence.
    fn time_loop(&self, stream: &Stream<B>) -> TimeLoop {
        let hidden = self.config.hidden_size();
        let gates_width = self.config.kind().gates() * hidden;
        TimeLoop::recurrent(LoopPass::Stream, 1, (stream.batch, hidden, gates_width))
    }

    /// Prepares the weights for the backend's kernel, unless the stream holds them for the
    /// model's current version.
    fn prepare(&self, stream: &mut Stream<B>) {
        let (backend, batch) = (&self.backend, stream.batch);
        if stream.prepared.as_ref().map(|p| p.version) != Some(self.version) {
            stream.prepared = Some(Prepared {
                version: self.version,
                w_ih_t: (self.params.layers.iter().enumerate())
                    .map(|(layer, cell)| (layer > 0).then(|| cell.prepare_input(backend, batch)))
                    .collect(),
                w_hh_t: self
                    .params
                    .layers
                    .iter()
                    .map(|cell| cell.prepare_hidden(backend, batch))
                    .collect(),
                out_t: self
                    .params
                    .out
                    .as_ref()
                    .map(|out| backend.prepare_rhs(&out.weight, Transpose::Yes, batch)),
            });
        }
    }

    /// The step itself, on checked input (run on the backend's thread: [`Backend::install`]).
    fn advance(&self, stream: &mut Stream<B>, input: StepInput<'_, B>) {
        let backend = &self.backend;
        let (kind, batch) = (stream.kind, stream.batch);
        self.prepare(stream);
        let prepared = stream.prepared.as_mut().expect("prepared just above");
        let dense_first = matches!(input, StepInput::Dense(_)) || stream.embedded.is_some();
        if let (true, slot @ None) = (dense_first, &mut prepared.w_ih_t[0]) {
            *slot = Some(self.params.layers[0].prepare_input(backend, batch));
        }
        // With an embedding, the first layer reads the ids' rows of it.
        let input = match (input, &mut stream.embedded, self.params.embedding()) {
            (StepInput::Ids(ids), Some(rows), Some(table)) => {
                backend.gather_rows(rows, table, ids);
                StepInput::Dense(&*rows)
            }
            (input, _, _) => input,
        };
        let prepared = &*prepared;
        for layer in 0..stream.layers.len() {
            let (below, rest) = stream.layers.split_at_mut(layer);
            let buf = &mut rest[0];
            let cell = &self.params.layers[layer];
            let w_ih_t = || {
                let w = prepared.w_ih_t[layer].as_ref();
                w.expect("prepared for every layer that reads dense rows")
            };
            match (below.last(), &input) {
                (None, StepInput::Ids(ids)) => cell.project_ids_into(backend, ids, &mut buf.xp),
                (None, StepInput::Dense(x)) => {
                    cell.project_input_prepared(backend, w_ih_t(), x, &mut buf.xp)
                }
                (Some(below), _) => {
                    cell.project_input_prepared(backend, w_ih_t(), &below.h_prev, &mut buf.xp)
                }
            }
            LayerCell::of(kind, cell).forward_step(backend, &prepared.w_hh_t[layer], buf);
            std::mem::swap(&mut buf.h, &mut buf.h_prev);
            std::mem::swap(&mut buf.c, &mut buf.c_prev);
        }
        let top = &stream.layers.last().expect("at least one layer").h_prev;
        match (&self.params.out, &prepared.out_t) {
            (Some(out), Some(out_t)) => {
                let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
                backend.gemm_prepared(&mut stream.logits, one, top, out_t, zero);
                if let Some(b) = &out.bias {
                    backend.add_row(&mut stream.logits, b);
                }
            }
            _ => copy_all(backend, &mut stream.logits, top),
        }
    }
}

/// One step's input to the first layer.
enum StepInput<'a, B: Backend> {
    Ids(&'a [usize]),
    Dense(&'a B::Matrix),
}
