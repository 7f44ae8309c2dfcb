//! Backpropagation through time for one layer.
//!
//! The unrolled network is the same cell applied at every step with the same weights. Forward
//! runs the steps in order and keeps each step's cache; backward runs them in reverse, carrying
//! `dh_next` (the gradient reaching `h_t` from step `t + 1`), and sums every step's gradient into
//! the one set of shared weights:
//!
//! ```text
//! forward   for t in 0..T:       xp_t = rows t of (X W_ih^T + b_ih)          (one GEMM for all t)
//!                                hh_t = h_{t-1} W_hh^T + b_hh                 (one GEMM per step)
//!                                h_t, cache_t = gates(xp_t, hh_t, state_{t-1})
//! backward  for t in (0..T).rev: dh_t = dE/dh_t (from above) + dh_next
//!                                d xp_t, d hh_t = gates'(cache_t, dh_t)
//!                                dh_next = d hh_t W_hh  (+ the direct part, if the cell has one)
//!           then, over all steps at once: dW_hh = sum_t d hh_t^T h_{t-1},
//!                                dW_ih = sum_t d xp_t^T x_t, and the bias gradients are column sums.
//! ```
//!
//! Sequences are time-major: `T * B` rows, rows `t * B .. t * B + B` are step `t`.

use crate::backend::Backend;
use crate::backend::Transpose;
use crate::cell::CellKernels;
use crate::cell::{
    CellKind, CellParams, CellState, StepBuffers, add_weight_grads, back_project,
    check_same_shapes, copy_all, gates_backward, gates_forward,
};
use crate::diagnostics::{LayerFlow, Recorder};
use crate::error::{Error, Result, check_ids};
use num_traits::{One, Zero};

/// The input of a layer for a whole sequence.
#[derive(Debug)]
pub enum LayerInput<'a, B: Backend> {
    /// Dense rows, `T*B x I`.
    Dense(&'a B::Matrix),
    /// Token ids, `T*B` of them, each below `I`: the input projection is a column gather of
    /// `W_ih`, never a one-hot GEMM.
    Ids(&'a [usize]),
}

// Manual impls: a derive would ask `B: Copy`, but only references are copied.
impl<B: Backend> Clone for LayerInput<'_, B> {
    fn clone(&self) -> Self {
        *self
    }
}

impl<B: Backend> Copy for LayerInput<'_, B> {}

impl<B: Backend> LayerInput<'_, B> {
    /// Number of rows, `T * B`.
    pub fn rows(&self, backend: &B) -> usize {
        match self {
            LayerInput::Dense(x) => backend.shape(x).0,
            LayerInput::Ids(ids) => ids.len(),
        }
    }

    /// Checks the input against the layer's input size and the batch, returning `T`.
    pub(crate) fn check(&self, backend: &B, input_size: usize, batch: usize) -> Result<usize> {
        if batch == 0 {
            return Err(Error::empty("batch"));
        }
        let rows = self.rows(backend);
        if rows == 0 {
            return Err(Error::empty("input sequence"));
        }
        if !rows.is_multiple_of(batch) {
            return Err(Error::Shape {
                what: format!("input rows (time-major, steps * batch with batch {batch})"),
                expected: format!("a multiple of {batch} rows"),
                given: format!("{rows} rows"),
            });
        }
        match self {
            LayerInput::Dense(x) => {
                let (r, c) = backend.shape(x);
                if c != input_size {
                    return Err(Error::shape("input", (r, input_size), (r, c)));
                }
            }
            LayerInput::Ids(ids) => check_ids("input token ids", ids, input_size)?,
        }
        Ok(rows / batch)
    }
}

/// The batch entries whose sequence has ended before step `t`.
fn ended(lengths: Option<&[usize]>, t: usize) -> impl Iterator<Item = usize> + '_ {
    lengths
        .unwrap_or_default()
        .iter()
        .enumerate()
        .filter(move |&(_, &len)| t >= len)
        .map(|(b, _)| b)
}

/// Checks per-sequence lengths: one per batch entry, each in `1..=steps`.
pub(crate) fn check_lengths(lengths: &[usize], batch: usize, steps: usize) -> Result<()> {
    if lengths.len() != batch {
        return Err(Error::shape(
            "sequence lengths (one per batch entry)",
            batch,
            lengths.len(),
        ));
    }
    match lengths.iter().position(|&len| len == 0 || len > steps) {
        Some(b) => Err(Error::Shape {
            what: format!("length of sequence {b}"),
            expected: format!("1..={steps} steps"),
            given: format!("{} steps", lengths[b]),
        }),
        None => Ok(()),
    }
}

/// What one layer's forward pass over a sequence keeps for backward: the per-step values as
/// `T*B`-row matrices, time-major like the input, so that nothing is allocated per step.
#[derive(Debug, Clone)]
pub struct LayerTrace<B: Backend> {
    kind: CellKind,
    batch: usize,
    steps: usize,
    lengths: Option<Vec<usize>>,
    initial: CellState<B>,
    final_state: CellState<B>,
    /// `h_{t-1}` for every step, `T*B x H`: the right operand of `dW_hh`.
    h_prev: B::Matrix,
    /// `h_t` for every step, `T*B x H`: the layer's output (zero at padded steps).
    output: B::Matrix,
    /// `c_t` for every step, `T*B x H` (LSTM).
    c: Option<B::Matrix>,
    /// The activated gates of every step, `T*B x G*H` (LSTM, GRU).
    gates: Option<B::Matrix>,
    /// `hh_t = h_{t-1} W_hh^T + b_hh` for every step, `T*B x G*H` (GRU).
    hh: Option<B::Matrix>,
}

impl<B: Backend> LayerTrace<B> {
    /// The layer's output `h_1 .. h_T`, `T*B x H`, time-major.
    pub fn output(&self) -> &B::Matrix {
        &self.output
    }

    /// The state after the last step, to carry into the next window.
    pub fn final_state(&self) -> &CellState<B> {
        &self.final_state
    }

    /// The state the layer started from.
    pub fn initial_state(&self) -> &CellState<B> {
        &self.initial
    }

    /// Number of time steps `T`.
    pub fn steps(&self) -> usize {
        self.steps
    }

    /// Batch size `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The per-sequence lengths, if the batch has sequences of different lengths.
    pub fn lengths(&self) -> Option<&[usize]> {
        self.lengths.as_deref()
    }

    /// The state after step `step` (counted from 0), `h` (and `c`), each `B x H`: the state
    /// the layer would carry into a next window had the sequence stopped there. The state after
    /// the last step, `state_at(T - 1)`, is [`final_state`](LayerTrace::final_state), bit for
    /// bit. A sequence that has ended (lengths) keeps its state, so its rows are those of its
    /// own last step. For a backward direction, steps count in the order it read them.
    ///
    /// # Errors
    /// [`Error::Index`] if `step` is not below `T`.
    pub fn state_at(&self, backend: &B, step: usize) -> Result<CellState<B>> {
        if step >= self.steps {
            return Err(Error::Index {
                what: "step of the layer trace".to_string(),
                position: 0,
                value: step,
                bound: self.steps,
            });
        }
        let batch = self.batch;
        // Row (t, b) of the per-step matrices, t the sequence's own last step up to `step`.
        let rows: Vec<usize> = (0..batch)
            .map(|b| {
                let last = self.lengths.as_ref().map_or(step, |l| step.min(l[b] - 1));
                last * batch + b
            })
            .collect();
        let hidden = backend.shape(&self.output).1;
        let gather = |all: &B::Matrix| {
            let mut out = backend.zeros(batch, hidden);
            backend.gather_rows(&mut out, all, &rows);
            out
        };
        Ok(CellState {
            h: gather(&self.output),
            c: self.c.as_ref().map(gather),
        })
    }

    /// Loads what step `t` saved into `buf`: the previous state, the new state and the gates.
    ///
    /// Only what the cell's backward reads: `h_t` for the Elman cell (its derivative comes from
    /// the output), `c_{t-1}`, `c_t` and the gates for the LSTM, `h_{t-1}`, the gates and `hh`
    /// for the GRU.
    fn load_step(&self, backend: &B, t: usize, buf: &mut StepBuffers<B>) {
        let (row, batch) = (t * self.batch, self.batch);
        match self.kind {
            CellKind::Rnn(_) => backend.copy_rows(&mut buf.h, 0, &self.output, row, batch),
            CellKind::Gru => backend.copy_rows(&mut buf.h_prev, 0, &self.h_prev, row, batch),
            CellKind::Lstm => {}
        }
        if let Some(c) = &self.c {
            backend.copy_rows(&mut buf.c, 0, c, row, batch);
            match t {
                0 => copy_all(
                    backend,
                    &mut buf.c_prev,
                    self.initial.c.as_ref().expect("LSTM state"),
                ),
                _ => backend.copy_rows(&mut buf.c_prev, 0, c, row - batch, batch),
            }
        }
        if let Some(gates) = &self.gates {
            backend.copy_rows(&mut buf.gates, 0, gates, row, batch);
        }
        if let Some(hh) = &self.hh {
            backend.copy_rows(&mut buf.hh, 0, hh, row, batch);
        }
    }
}

/// A layer's input projection `x W_ih^T + b_ih`, which the forward loop reads a step at a time.
enum Projected<'a, B: Backend> {
    /// All `T*B` rows (`T*B x G*H`): one product for dense input, or a column gather for fewer
    /// ids than the vocabulary.
    Rows(B::Matrix),
    /// [`CellParams::id_table`] (`I x G*H`) and the ids, for at least as many ids as the
    /// vocabulary: a step gathers its `B` rows from the table, and the `T*B` rows are never
    /// stored.
    Table(B::Matrix, &'a [usize]),
}

impl<'a, B: Backend> Projected<'a, B> {
    fn new(backend: &B, params: &CellParams<B>, input: LayerInput<'a, B>) -> Self {
        let (_, input_size) = backend.shape(&params.weight_ih);
        match input {
            LayerInput::Dense(x) => Projected::Rows(params.project_input(backend, x)),
            LayerInput::Ids(ids) if ids.len() >= input_size => {
                Projected::Table(params.id_table(backend), ids)
            }
            LayerInput::Ids(ids) => Projected::Rows(params.project_ids(backend, ids)),
        }
    }

    /// Rows `row .. row + B` of the projection over `xp` (`B x G*H`).
    fn load(&self, backend: &B, row: usize, xp: &mut B::Matrix) {
        let batch = backend.shape(xp).0;
        match self {
            Projected::Rows(all) => backend.copy_rows(xp, 0, all, row, batch),
            Projected::Table(table, ids) => {
                backend.gather_rows(xp, table, &ids[row..row + batch]);
            }
        }
    }
}

/// Runs one layer forward over a whole sequence of `T*B` rows with batch `batch`.
///
/// `initial` is the state before the first step (zeros if `None`). With `lengths` (one per
/// batch entry, each in `1..=T`), sequence `b` stops after `lengths[b]` steps: later steps keep
/// its state unchanged and output zeros, so its final state is the one at its own last step and
/// padded steps receive no gradient (what `pack_padded_sequence` gives in PyTorch, unsorted).
///
/// Every matrix is allocated before the time loop, and the loop itself allocates nothing (on
/// one thread; a threaded [`Cpu`](crate::Cpu) hands each split kernel's parts to its pool).
/// The loop runs inside [`Backend::install`].
///
/// # Errors
/// [`Error::Empty`] for an empty sequence or batch; [`Error::Shape`] if the rows are not a
/// multiple of `batch`, the input width is not the layer's input size, `initial` is not
/// `B x H`, or `lengths` does not hold `B` lengths in `1..=T`; [`Error::Index`] for a token id
/// not below the input size.
pub fn forward<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    input: LayerInput<'_, B>,
    batch: usize,
    lengths: Option<&[usize]>,
    initial: Option<&CellState<B>>,
) -> Result<LayerTrace<B>> {
    let (input_size, hidden) = params.sizes(backend);
    let steps = input.check(backend, input_size, batch)?;
    if let Some(lengths) = lengths {
        check_lengths(lengths, batch, steps)?;
    }
    let initial = match initial {
        Some(s) => {
            s.check(backend, "initial state", kind, batch, hidden)?;
            s.clone()
        }
        None => CellState::zeros(backend, kind, batch, hidden),
    };
    let rows = steps * batch;
    let gh = kind.gates() * hidden;
    let projected = Projected::new(backend, params, input);
    let gated = kind.gates() > 1;
    let mut trace = LayerTrace {
        kind,
        batch,
        steps,
        lengths: lengths.map(<[usize]>::to_vec),
        final_state: initial.clone(),
        h_prev: backend.zeros(rows, hidden),
        output: backend.zeros(rows, hidden),
        c: kind.has_cell_state().then(|| backend.zeros(rows, hidden)),
        gates: gated.then(|| backend.zeros(rows, gh)),
        hh: (kind == CellKind::Gru).then(|| backend.zeros(rows, gh)),
        initial,
    };
    let mut buf = StepBuffers::new(backend, kind, batch, hidden);
    copy_all(backend, &mut buf.h_prev, &trace.initial.h);
    if let Some(c0) = &trace.initial.c {
        copy_all(backend, &mut buf.c_prev, c0);
    }
    let zero_row = backend.zeros(1, hidden);
    let w_hh_t = params.prepare_hidden(backend, batch);
    // The loop on one of the backend's threads: its kernels split the batch between threads
    // without handing work over from the caller's thread at every step.
    backend.install(batch * gh * hidden, || {
        for t in 0..steps {
            let row = t * batch;
            projected.load(backend, row, &mut buf.xp);
            params.project_hidden(backend, &w_hh_t, &buf.h_prev, &mut buf.hh);
            gates_forward(backend, kind, &mut buf);
            // A sequence that has ended keeps its state; its output is zero.
            for b in ended(lengths, t) {
                backend.copy_rows(&mut buf.h, b, &buf.h_prev, b, 1);
                backend.copy_rows(&mut buf.c, b, &buf.c_prev, b, 1);
            }
            backend.copy_rows(&mut trace.h_prev, row, &buf.h_prev, 0, batch);
            backend.copy_rows(&mut trace.output, row, &buf.h, 0, batch);
            for b in ended(lengths, t) {
                backend.copy_rows(&mut trace.output, row + b, &zero_row, 0, 1);
            }
            let saved = [
                (&mut trace.c, &buf.c),
                (&mut trace.gates, &buf.gates),
                (&mut trace.hh, &buf.hh),
            ];
            for (all, this_step) in saved {
                if let Some(all) = all {
                    backend.copy_rows(all, row, this_step, 0, batch);
                }
            }
            std::mem::swap(&mut buf.h, &mut buf.h_prev);
            std::mem::swap(&mut buf.c, &mut buf.c_prev);
        }
    });
    trace.final_state = CellState {
        h: buf.h_prev,
        c: kind.has_cell_state().then_some(buf.c_prev),
    };
    Ok(trace)
}

/// Backpropagation through time for one layer.
///
/// Given the trace of [`forward`] on `input`, the gradient `d_output` of the loss with respect to
/// the layer's output (`T*B x H`) and optionally with respect to its final state, adds the
/// gradients of every parameter into `grads` and returns `(dE/d input, dE/d initial state)`.
/// The input gradient is `None` for token ids (they have none). As in [`forward`], the time loop
/// itself allocates nothing.
///
/// # Errors
/// [`Error::Shape`] if `d_output`, `d_final` or `grads` do not match the forward pass, or if
/// `input` is not the one the trace was made from.
#[allow(clippy::too_many_arguments)]
pub fn backward<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    input: LayerInput<'_, B>,
    trace: &LayerTrace<B>,
    d_output: &B::Matrix,
    d_final: Option<&CellState<B>>,
    grads: &mut CellParams<B>,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let run = (input, trace, d_output, d_final);
    backward_flow(backend, kind, params, run, grads, None)
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
pub fn backward_recorded<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    input: LayerInput<'_, B>,
    trace: &LayerTrace<B>,
    d_output: &B::Matrix,
    d_final: Option<&CellState<B>>,
    grads: &mut CellParams<B>,
    flow: &mut LayerFlow,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let run = (input, trace, d_output, d_final);
    backward_flow(backend, kind, params, run, grads, Some(flow))
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
pub(crate) fn backward_flow<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    (input, trace, d_output, d_final): BackwardRun<'_, B>,
    grads: &mut CellParams<B>,
    flow: Option<&mut LayerFlow>,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
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
    check_same_shapes(backend, params, grads)?;
    let gh = kind.gates() * hidden;
    let mut buf = StepBuffers::new(backend, kind, batch, hidden);
    // dE/dh and dE/dc flowing back into the current step from the one after it.
    let mut d_next = CellState::zeros(backend, kind, batch, hidden);
    if let Some(d) = d_final {
        d.check(backend, "final state gradient", kind, batch, hidden)?;
        d_next = d.clone();
    }
    let mut passed = d_next.clone();
    let mut d_xp_all = backend.zeros(rows, gh);
    let mut d_hh_all = (kind == CellKind::Gru).then(|| backend.zeros(rows, gh));
    let lengths = trace.lengths.as_deref();
    let zero_row = backend.zeros(1, hidden);
    let w_hh = backend.prepare_rhs(&params.weight_hh, Transpose::No, batch);
    let bias = params.bias_hh.is_some();
    let mut recorder = flow.map(|f| Recorder::new(backend, f, kind, (batch, hidden, steps), bias));
    // On one of the backend's threads, as in `forward`.
    backend.install(batch * gh * hidden, || {
        for t in (0..steps).rev() {
            let row = t * batch;
            trace.load_step(backend, t, &mut buf);
            // A sequence that has ended passed its state through this step unchanged: its gradient
            // passes through too, and its (constant zero) output takes none.
            let any_ended = ended(lengths, t).next().is_some();
            if any_ended {
                copy_all(backend, &mut passed.h, &d_next.h);
                if let (Some(p), Some(d)) = (&mut passed.c, &d_next.c) {
                    copy_all(backend, p, d);
                }
            }
            // dE/dh_t: from the layer's output at step t, plus what flows back from step t + 1.
            backend.copy_rows(&mut buf.dh, 0, d_output, row, batch);
            backend.axpy(&mut buf.dh, B::Scalar::one(), &d_next.h);
            if let Some(dc) = &d_next.c {
                copy_all(backend, &mut buf.dc, dc);
            }
            for b in ended(lengths, t) {
                backend.copy_rows(&mut buf.dh, b, &zero_row, 0, 1);
                backend.copy_rows(&mut buf.dc, b, &zero_row, 0, 1);
            }
            if let Some(recorder) = &mut recorder {
                recorder.step(backend, t, &buf);
            }
            gates_backward(backend, kind, &mut buf);
            // dE/dh_{t-1} = d hh W_hh (+ the direct part); dE/dc_{t-1} from the cell.
            let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
            let beta = match buf.dh_direct(kind) {
                Some(direct) => {
                    copy_all(backend, &mut d_next.h, direct);
                    one
                }
                None => zero,
            };
            backend.gemm_prepared(&mut d_next.h, one, buf.d_hh(kind), &w_hh, beta);
            if let Some(dc) = &mut d_next.c {
                copy_all(backend, dc, &buf.dc_prev);
            }
            if any_ended {
                for b in ended(lengths, t) {
                    backend.copy_rows(&mut d_next.h, b, &passed.h, b, 1);
                    if let (Some(dc), Some(p)) = (&mut d_next.c, &passed.c) {
                        backend.copy_rows(dc, b, p, b, 1);
                    }
                }
            }
            backend.copy_rows(&mut d_xp_all, row, &buf.d_xp, 0, batch);
            if let Some(all) = &mut d_hh_all {
                backend.copy_rows(all, row, &buf.d_hh, 0, batch);
            }
        }
    });
    // Every step's gradient summed into the shared weights, one GEMM per weight.
    let d_hh_all = d_hh_all.as_ref().unwrap_or(&d_xp_all);
    if let Some(recorder) = recorder {
        recorder.weight_terms(backend, &d_xp_all, d_hh_all, &trace.h_prev, input, batch);
    }
    add_weight_grads(
        backend,
        &mut grads.weight_hh,
        grads.bias_hh.as_mut(),
        d_hh_all,
        &trace.h_prev,
    );
    let d_input = match input {
        LayerInput::Dense(x) => {
            add_weight_grads(
                backend,
                &mut grads.weight_ih,
                grads.bias_ih.as_mut(),
                &d_xp_all,
                x,
            );
            Some(back_project(backend, &params.weight_ih, &d_xp_all, None))
        }
        LayerInput::Ids(ids) => {
            backend.scatter_add_columns(&mut grads.weight_ih, ids, &d_xp_all);
            if let Some(db) = &mut grads.bias_ih {
                backend.add_column_sums(db, &d_xp_all);
            }
            None
        }
    };
    Ok((d_input, d_next))
}
