//! Backpropagation through time for one layer: the reverse time loop over a [`LayerTrace`].

use super::{LayerInput, LayerTrace, ended};
use crate::backend::{Backend, Transpose};
use crate::cell::{
    Cell, CellKernels, CellKind, CellParams, CellState, LoopPass, StepBuffers, TimeLoop,
    add_weight_grads, back_project, check_same_shapes, copy_all,
};
use crate::diagnostics::{LayerFlow, Recorder};
use crate::error::{Error, Result};
use num_traits::One;

/// Backpropagation through time for one layer.
///
/// Given the trace of [`forward`](super::forward) on `input`, the gradient `d_output` of the loss with respect to
/// the layer's output (`T*B x H`) and optionally with respect to its final state, adds the
/// gradients of every parameter into `grads` and returns `(dE/d input, dE/d initial state)`.
/// The input gradient is `None` for token ids (they have none). As in [`forward`](super::forward), the time loop
/// itself allocates nothing.
///
/// # Errors
/// [`Error::Shape`] if `d_output`, `d_final` or `grads` do not match the forward pass, or if
/// `input` is not the one the trace was made from.
#[allow(clippy::too_many_arguments)]
pub fn backward<B: CellKernels, C: Cell<B> + ?Sized>(
    backend: &B,
    cell: &C,
    input: LayerInput<'_, B>,
    trace: &LayerTrace<B>,
    d_output: &B::Matrix,
    d_final: Option<&CellState<B>>,
    grads: &mut CellParams<B>,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let run = (input, trace, d_output, d_final);
    backward_flow(backend, cell, run, grads, None)
}

/// As [`backward`], recording the gradient flow into `flow` (see
/// [`diagnostics`](crate::diagnostics)): per step `||dE/dh_t||`, `||dE/dc_t||` for the LSTM and
/// the norm of each step's term of every weight and bias gradient. The gradients are the same
/// as [`backward`]'s, to the bit. `flow` is overwritten, sized for this trace's `T` steps; the
/// time loop allocates nothing more than without it.
///
/// # Errors
/// As [`backward`].
#[allow(clippy::too_many_arguments)]
pub fn backward_recorded<B: CellKernels, C: Cell<B> + ?Sized>(
    backend: &B,
    cell: &C,
    input: LayerInput<'_, B>,
    trace: &LayerTrace<B>,
    d_output: &B::Matrix,
    d_final: Option<&CellState<B>>,
    grads: &mut CellParams<B>,
    flow: &mut LayerFlow,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let run = (input, trace, d_output, d_final);
    backward_flow(backend, cell, run, grads, Some(flow))
}

/// What one layer's backward runs on: its input, its trace, the gradient of its output and of
/// its final state.
pub(crate) type BackwardRun<'a, B> = (
    LayerInput<'a, B>,
    &'a LayerTrace<B>,
    &'a <B as Backend>::Matrix,
    Option<&'a CellState<B>>,
);

/// [`backward`], recording into `flow` when given one.
pub(crate) fn backward_flow<B: CellKernels, C: Cell<B> + ?Sized>(
    backend: &B,
    cell: &C,
    (input, trace, d_output, d_final): BackwardRun<'_, B>,
    grads: &mut CellParams<B>,
    flow: Option<&mut LayerFlow>,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let (kind, params) = (cell.kind(), cell.params());
    check_backward(backend, kind, params, (input, trace, d_output), grads)?;
    let (batch, steps) = (trace.batch, trace.steps);
    let (rows, hidden) = (steps * batch, params.sizes(backend).1);
    // dE/dh and dE/dc flowing back into the current step from the one after it.
    let mut d_next = CellState::zeros(backend, kind, batch, hidden);
    if let Some(d) = d_final {
        d.check(backend, "final state gradient", kind, batch, hidden)?;
        d_next = d.clone();
    }
    let gh = kind.gates() * hidden;
    let bias = params.bias_hh.is_some();
    let mut back = Reverse {
        backend,
        cell,
        trace,
        d_output,
        buf: StepBuffers::new(backend, kind, batch, hidden),
        passed: d_next.clone(),
        d_next,
        // Written one step's rows at a time, every step.
        d_xp_all: backend.empty(rows, gh),
        d_hh_all: (kind == CellKind::Gru).then(|| backend.empty(rows, gh)),
        zero_row: backend.zeros(1, hidden),
        w_hh: backend.prepare_rhs(&params.weight_hh, Transpose::No, batch),
        recorder: flow.map(|f| Recorder::new(backend, f, kind, (batch, hidden, steps), bias)),
    };
    // On one of the backend's threads, as in `forward`.
    let time_loop = TimeLoop::recurrent(LoopPass::Backward, steps, (batch, hidden, gh));
    backend.install(time_loop, || {
        for t in (0..steps).rev() {
            back.step(t);
        }
    });
    Ok(back.sum_weight_grads(params, input, grads))
}

/// The checks of [`backward`]'s arguments against the layer and its trace.
fn check_backward<B: Backend>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    (input, trace, d_output): (LayerInput<'_, B>, &LayerTrace<B>, &B::Matrix),
    grads: &CellParams<B>,
) -> Result<()> {
    let (input_size, hidden) = params.sizes(backend);
    let (batch, steps) = (trace.batch, trace.steps);
    let rows = steps * batch;
    if kind != trace.kind {
        return Err(Error::config(format!(
            "the trace is of a {} layer, not {}",
            trace.kind.name(),
            kind.name()
        )));
    }
    if input.check(backend, input_size, batch)? != steps {
        return Err(Error::shape("layer input rows", rows, input.rows(backend)));
    }
    if backend.shape(&trace.output) != (rows, hidden) {
        let what = "trace (made by a layer of another size)";
        return Err(Error::shape(
            what,
            (rows, hidden),
            backend.shape(&trace.output),
        ));
    }
    if backend.shape(d_output) != (rows, hidden) {
        return Err(Error::shape(
            "output gradient",
            (rows, hidden),
            backend.shape(d_output),
        ));
    }
    check_same_shapes(backend, params, grads)
}

/// The reverse time loop of one layer: what it reads, carries from step to step and collects.
struct Reverse<'a, 'f, B: Backend, C: ?Sized> {
    backend: &'a B,
    cell: &'a C,
    trace: &'a LayerTrace<B>,
    d_output: &'a B::Matrix,
    buf: StepBuffers<B>,
    /// `dE/dh_t` (and `dE/dc_t`) reaching the current step from the one after it.
    d_next: CellState<B>,
    /// `d_next` as it entered the current step, for the sequences that have ended.
    passed: CellState<B>,
    /// Every step's `dE/d xp`, `T*B x G*H`, and `dE/d hh` where it differs (GRU).
    d_xp_all: B::Matrix,
    d_hh_all: Option<B::Matrix>,
    zero_row: B::Matrix,
    w_hh: B::Prepared,
    recorder: Option<Recorder<'f, B>>,
}

impl<B: CellKernels, C: Cell<B> + ?Sized> Reverse<'_, '_, B, C> {
    /// Step `t` backward: `dE/dh_t`, the cell's derivative, and `dE/dh_{t-1}`, `dE/dc_{t-1}`.
    fn step(&mut self, t: usize) {
        let (backend, trace) = (self.backend, self.trace);
        let (batch, lengths) = (trace.batch, trace.lengths.as_deref());
        let (row, buf, d_next) = (t * batch, &mut self.buf, &mut self.d_next);
        let one = B::Scalar::one();
        trace.load_step(backend, t, buf);
        // A sequence that has ended passed its state through this step unchanged: its gradient
        // passes through too, and its (constant zero) output takes none.
        let any_ended = ended(lengths, t).next().is_some();
        if any_ended {
            copy_state(backend, &mut self.passed, d_next);
        }
        // dE/dh_t: from the layer's output at step t, plus what flows back from step t + 1.
        backend.copy_rows(&mut buf.dh, 0, self.d_output, row, batch);
        backend.axpy(&mut buf.dh, one, &d_next.h);
        if let Some(dc) = &d_next.c {
            copy_all(backend, &mut buf.dc, dc);
        }
        for b in ended(lengths, t) {
            backend.copy_rows(&mut buf.dh, b, &self.zero_row, 0, 1);
            backend.copy_rows(&mut buf.dc, b, &self.zero_row, 0, 1);
        }
        if let Some(recorder) = &mut self.recorder {
            recorder.step(backend, t, buf);
        }
        // The cell's derivative, then dE/dh_{t-1} = d hh W_hh (+ the direct part); dE/dc_{t-1}
        // from the cell.
        self.cell
            .backward_step(backend, &self.w_hh, buf, &mut d_next.h);
        if let Some(dc) = &mut d_next.c {
            copy_all(backend, dc, &buf.dc_prev);
        }
        for b in ended(lengths, t) {
            backend.copy_rows(&mut d_next.h, b, &self.passed.h, b, 1);
            if let (Some(dc), Some(p)) = (&mut d_next.c, &self.passed.c) {
                backend.copy_rows(dc, b, p, b, 1);
            }
        }
        backend.copy_rows(&mut self.d_xp_all, row, &buf.d_xp, 0, batch);
        if let Some(all) = &mut self.d_hh_all {
            backend.copy_rows(all, row, &buf.d_hh, 0, batch);
        }
    }

    /// After the loop: every step's gradient summed into the shared weights, one GEMM per
    /// weight; returns the input gradient (none for token ids) and the initial state's.
    fn sum_weight_grads(
        self,
        params: &CellParams<B>,
        input: LayerInput<'_, B>,
        grads: &mut CellParams<B>,
    ) -> (Option<B::Matrix>, CellState<B>) {
        let (backend, trace, d_xp_all) = (self.backend, self.trace, &self.d_xp_all);
        let d_hh_all = self.d_hh_all.as_ref().unwrap_or(d_xp_all);
        if let Some(recorder) = self.recorder {
            let batch = trace.batch;
            recorder.weight_terms(backend, d_xp_all, d_hh_all, &trace.h_prev, input, batch);
        }
        let (w_hh, b_hh) = (&mut grads.weight_hh, grads.bias_hh.as_mut());
        add_weight_grads(backend, w_hh, b_hh, d_hh_all, &trace.h_prev);
        let d_input = match input {
            LayerInput::Dense(x) => {
                let (w_ih, b_ih) = (&mut grads.weight_ih, grads.bias_ih.as_mut());
                add_weight_grads(backend, w_ih, b_ih, d_xp_all, x);
                Some(back_project(backend, &params.weight_ih, d_xp_all, None))
            }
            LayerInput::Ids(ids) => {
                backend.scatter_add_columns(&mut grads.weight_ih, ids, d_xp_all);
                if let Some(db) = &mut grads.bias_ih {
                    backend.add_column_sums(db, d_xp_all);
                }
                None
            }
        };
        (d_input, self.d_next)
    }
}

/// Copies a state (`h`, and `c` where both have it) over another of the same shapes.
fn copy_state<B: Backend>(backend: &B, dst: &mut CellState<B>, src: &CellState<B>) {
    copy_all(backend, &mut dst.h, &src.h);
    if let (Some(d), Some(s)) = (&mut dst.c, &src.c) {
        copy_all(backend, d, s);
    }
}
