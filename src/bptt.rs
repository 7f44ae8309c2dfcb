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
use crate::cell::{
    CellKind, CellParams, CellState, StepCache, add_weight_grads, back_project, check_same_shapes,
    gates_backward, gates_forward,
};
use crate::error::{Error, Result, check_ids};
use num_traits::One;

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

/// What one layer's forward pass over a sequence keeps for backward.
#[derive(Debug, Clone)]
pub struct LayerTrace<B: Backend> {
    batch: usize,
    lengths: Option<Vec<usize>>,
    initial: CellState<B>,
    steps: Vec<StepCache<B>>,
    /// `h_{t-1}` for every step, `T*B x H`: the right operand of `dW_hh`.
    h_prev: B::Matrix,
    /// `h_t` for every step, `T*B x H`: the layer's output.
    output: B::Matrix,
}

impl<B: Backend> LayerTrace<B> {
    /// The layer's output `h_1 .. h_T`, `T*B x H`, time-major.
    pub fn output(&self) -> &B::Matrix {
        &self.output
    }

    /// The state after the last step, to carry into the next window.
    pub fn final_state(&self) -> &CellState<B> {
        self.steps.last().map_or(&self.initial, |s| &s.state)
    }

    /// The state the layer started from.
    pub fn initial_state(&self) -> &CellState<B> {
        &self.initial
    }

    /// Number of time steps `T`.
    pub fn steps(&self) -> usize {
        self.steps.len()
    }

    /// Batch size `B`.
    pub fn batch(&self) -> usize {
        self.batch
    }

    /// The per-sequence lengths, if the batch has sequences of different lengths.
    pub fn lengths(&self) -> Option<&[usize]> {
        self.lengths.as_deref()
    }

    /// The cache of step `t` (its output state and saved values).
    pub fn step(&self, t: usize) -> Option<&StepCache<B>> {
        self.steps.get(t)
    }

    fn prev_state(&self, t: usize) -> &CellState<B> {
        if t == 0 {
            &self.initial
        } else {
            &self.steps[t - 1].state
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
/// # Errors
/// [`Error::Empty`] for an empty sequence or batch; [`Error::Shape`] if the rows are not a
/// multiple of `batch`, the input width is not the layer's input size, `initial` is not
/// `B x H`, or `lengths` does not hold `B` lengths in `1..=T`; [`Error::Index`] for a token id
/// not below the input size.
pub fn forward<B: Backend>(
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
    // x: (T*B, I) or ids: (T*B) -> xp_all: (T*B, G*H), all steps in one product.
    let xp_all = match input {
        LayerInput::Dense(x) => params.project_input(backend, x),
        LayerInput::Ids(ids) => params.project_ids(backend, ids),
    };
    let zero_row = backend.zeros(1, hidden);
    let mut trace = LayerTrace {
        batch,
        lengths: lengths.map(<[usize]>::to_vec),
        initial,
        steps: Vec::with_capacity(steps),
        h_prev: backend.zeros(rows, hidden),
        output: backend.zeros(rows, hidden),
    };
    for t in 0..steps {
        let row = t * batch;
        let prev = match t {
            0 => &trace.initial,
            _ => &trace.steps[t - 1].state,
        };
        let mut xp = backend.zeros(batch, gh);
        backend.copy_rows(&mut xp, 0, &xp_all, row, batch);
        let hh = params.project_hidden(backend, &prev.h);
        let mut step = gates_forward(backend, kind, xp, hh, prev);
        backend.copy_rows(&mut trace.h_prev, row, &prev.h, 0, batch);
        // A sequence that has ended keeps its state; its output is zero.
        for b in ended(lengths, t) {
            backend.copy_rows(&mut step.state.h, b, &prev.h, b, 1);
            if let (Some(c), Some(c_prev)) = (&mut step.state.c, &prev.c) {
                backend.copy_rows(c, b, c_prev, b, 1);
            }
        }
        backend.copy_rows(&mut trace.output, row, &step.state.h, 0, batch);
        for b in ended(lengths, t) {
            backend.copy_rows(&mut trace.output, row + b, &zero_row, 0, 1);
        }
        trace.steps.push(step);
    }
    Ok(trace)
}

/// Backpropagation through time for one layer.
///
/// Given the trace of [`forward`] on `input`, the gradient `d_output` of the loss with respect to
/// the layer's output (`T*B x H`) and optionally with respect to its final state, adds the
/// gradients of every parameter into `grads` and returns `(dE/d input, dE/d initial state)`.
/// The input gradient is `None` for token ids (they have none).
///
/// # Errors
/// [`Error::Shape`] if `d_output`, `d_final` or `grads` do not match the forward pass, or if
/// `input` is not the one the trace was made from.
#[allow(clippy::too_many_arguments)]
pub fn backward<B: Backend>(
    backend: &B,
    kind: CellKind,
    params: &CellParams<B>,
    input: LayerInput<'_, B>,
    trace: &LayerTrace<B>,
    d_output: &B::Matrix,
    d_final: Option<&CellState<B>>,
    grads: &mut CellParams<B>,
) -> Result<(Option<B::Matrix>, CellState<B>)> {
    let (input_size, hidden) = params.sizes(backend);
    let (batch, steps) = (trace.batch, trace.steps());
    let rows = steps * batch;
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
    let mut d_next = match d_final {
        Some(d) => {
            d.check(backend, "final state gradient", kind, batch, hidden)?;
            d.clone()
        }
        None => CellState::zeros(backend, kind, batch, hidden),
    };
    let gh = kind.gates() * hidden;
    let mut d_xp_all = backend.zeros(rows, gh);
    let mut d_hh_all = backend.zeros(rows, gh);
    let lengths = trace.lengths.as_deref();
    let zero_row = backend.zeros(1, hidden);
    for t in (0..steps).rev() {
        let row = t * batch;
        // A sequence that has ended passed its state through this step unchanged: its gradient
        // passes through too, and its (constant zero) output takes none.
        let passed = ended(lengths, t).next().map(|_| d_next.clone());
        // dE/dh_t: from the layer's output at step t, plus what flows back from step t + 1.
        let mut dh = backend.zeros(batch, hidden);
        backend.copy_rows(&mut dh, 0, d_output, row, batch);
        backend.axpy(&mut dh, B::Scalar::one(), &d_next.h);
        let mut d_state = CellState { h: dh, c: d_next.c };
        for b in ended(lengths, t) {
            backend.copy_rows(&mut d_state.h, b, &zero_row, 0, 1);
            if let Some(dc) = &mut d_state.c {
                backend.copy_rows(dc, b, &zero_row, 0, 1);
            }
        }
        let g = gates_backward(
            backend,
            kind,
            &trace.steps[t],
            trace.prev_state(t),
            &d_state,
        );
        d_next = CellState {
            h: back_project(backend, &params.weight_hh, &g.d_hh, g.d_h_direct),
            c: g.d_c,
        };
        if let Some(passed) = passed {
            for b in ended(lengths, t) {
                backend.copy_rows(&mut d_next.h, b, &passed.h, b, 1);
                if let (Some(dc), Some(passed_c)) = (&mut d_next.c, &passed.c) {
                    backend.copy_rows(dc, b, passed_c, b, 1);
                }
            }
        }
        backend.copy_rows(&mut d_xp_all, row, &g.d_xp, 0, batch);
        backend.copy_rows(&mut d_hh_all, row, &g.d_hh, 0, batch);
    }
    // Every step's gradient summed into the shared weights, one GEMM per weight.
    add_weight_grads(
        backend,
        &mut grads.weight_hh,
        grads.bias_hh.as_mut(),
        &d_hh_all,
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
