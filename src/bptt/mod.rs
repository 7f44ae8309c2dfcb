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

mod backward;
mod trace;

pub use crate::cell::LayerInput;
pub(crate) use backward::backward_flow;
pub use backward::{backward, backward_recorded};
pub use trace::LayerTrace;

use crate::backend::Backend;
use crate::cell::{
    Cell, CellKernels, CellKind, CellParams, CellState, LoopPass, StepBuffers, TimeLoop, copy_all,
};
use crate::error::{Error, Result};

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
/// The loop runs inside [`CellKernels::install`].
///
/// # Errors
/// [`Error::Empty`] for an empty sequence or batch; [`Error::Shape`] if the rows are not a
/// multiple of `batch`, the input width is not the layer's input size, `initial` is not
/// `B x H`, or `lengths` does not hold `B` lengths in `1..=T`; [`Error::Index`] for a token id
/// not below the input size.
pub fn forward<B: CellKernels, C: Cell<B> + ?Sized>(
    backend: &B,
    cell: &C,
    input: LayerInput<'_, B>,
    batch: usize,
    lengths: Option<&[usize]>,
    initial: Option<&CellState<B>>,
) -> Result<LayerTrace<B>> {
    let (kind, params) = (cell.kind(), cell.params());
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
        // Every row is written by `save_step`, one step's rows at a time.
        h_prev: backend.empty(rows, hidden),
        output: backend.empty(rows, hidden),
        c: kind.has_cell_state().then(|| backend.empty(rows, hidden)),
        gates: gated.then(|| backend.empty(rows, gh)),
        hh: (kind == CellKind::Gru).then(|| backend.empty(rows, gh)),
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
    let time_loop = TimeLoop::recurrent(LoopPass::Forward, steps, (batch, hidden, gh));
    backend.install(time_loop, || {
        for t in 0..steps {
            let row = t * batch;
            projected.load(backend, row, &mut buf.xp);
            cell.forward_step(backend, &w_hh_t, &mut buf);
            trace.save_step(backend, t, &mut buf, &zero_row);
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
