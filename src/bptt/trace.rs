//! [`LayerTrace`]: what one layer's forward pass keeps for its backward pass.

use crate::backend::Backend;
use crate::cell::{CellKind, CellState, StepBuffers, copy_all};
use crate::error::{Error, Result};

/// What one layer's forward pass over a sequence keeps for backward: the per-step values as
/// `T*B`-row matrices, time-major like the input, so that nothing is allocated per step.
#[derive(Debug, Clone)]
pub struct LayerTrace<B: Backend> {
    pub(super) kind: CellKind,
    pub(super) batch: usize,
    pub(super) steps: usize,
    pub(super) lengths: Option<Vec<usize>>,
    pub(super) initial: CellState<B>,
    pub(super) final_state: CellState<B>,
    /// `h_{t-1}` for every step, `T*B x H`: the right operand of `dW_hh`.
    pub(super) h_prev: B::Matrix,
    /// `h_t` for every step, `T*B x H`: the layer's output (zero at padded steps).
    pub(super) output: B::Matrix,
    /// `c_t` for every step, `T*B x H` (LSTM).
    pub(super) c: Option<B::Matrix>,
    /// The activated gates of every step, `T*B x G*H` (LSTM, GRU).
    pub(super) gates: Option<B::Matrix>,
    /// `hh_t = h_{t-1} W_hh^T + b_hh` for every step, `T*B x G*H` (GRU).
    pub(super) hh: Option<B::Matrix>,
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

    /// Saves step `t` of the forward pass from `buf` (`h_{t-1}`, `h_t`, and `c_t`, the gates and
    /// `hh` where the cell keeps them). A sequence that has ended before step `t` keeps its state
    /// (its rows of `h`, `c` in `buf` are set back to `h_{t-1}`, `c_{t-1}`) and outputs zeros
    /// (`zero_row`, `1 x H`).
    pub(super) fn save_step(
        &mut self,
        backend: &B,
        t: usize,
        buf: &mut StepBuffers<B>,
        zero_row: &B::Matrix,
    ) {
        let (row, batch) = (t * self.batch, self.batch);
        let lengths = self.lengths.as_deref();
        for b in super::ended(lengths, t) {
            backend.copy_rows(&mut buf.h, b, &buf.h_prev, b, 1);
            backend.copy_rows(&mut buf.c, b, &buf.c_prev, b, 1);
        }
        backend.copy_rows(&mut self.h_prev, row, &buf.h_prev, 0, batch);
        backend.copy_rows(&mut self.output, row, &buf.h, 0, batch);
        for b in super::ended(lengths, t) {
            backend.copy_rows(&mut self.output, row + b, zero_row, 0, 1);
        }
        let saved = [
            (&mut self.c, &buf.c),
            (&mut self.gates, &buf.gates),
            (&mut self.hh, &buf.hh),
        ];
        for (all, this_step) in saved {
            if let Some(all) = all {
                backend.copy_rows(all, row, this_step, 0, batch);
            }
        }
    }

    /// Loads what step `t` saved into `buf`: the previous state, the new state and the gates.
    ///
    /// Only what the cell's backward reads: `h_t` for the Elman cell (its derivative comes from
    /// the output), `c_{t-1}`, `c_t` and the gates for the LSTM, `h_{t-1}`, the gates and `hh`
    /// for the GRU.
    pub(super) fn load_step(&self, backend: &B, t: usize, buf: &mut StepBuffers<B>) {
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
