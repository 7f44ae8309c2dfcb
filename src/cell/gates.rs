//! The element-wise part of each cell's step, forward and backward: the gate math that follows
//! the two projections. The equations are in `rnn.rs`, `lstm.rs` and `gru.rs`; a backend may run
//! the gated cells' own through [`CellKernels`].
//!
//! Both directions work in place on [`StepBuffers`], matrices sized once per batch and reused
//! at every step, so that the time loop allocates nothing.

use super::{CellKernels, CellKind, CellState, rnn};
use crate::backend::Backend;

/// What the forward pass of one step keeps for its backward pass: the new state, and for the
/// gated cells their activated gates (LSTM: i, f, g, o; GRU: r, z, n) and, for the GRU, the
/// recurrent projection `hh` whose `n` block the reset gate multiplied. The Elman cell needs only
/// the new state: its derivative comes from the output, `1 - h_t^2` for tanh.
///
/// Only the state is public: what the backward step reads besides it is the crate's own, and
/// a cache is made only by [`Cell::step_forward`](super::Cell::step_forward).
#[derive(Debug, Clone)]
pub struct StepCache<B: Backend> {
    /// The state after the step.
    pub state: CellState<B>,
    /// The cell that took the step: its backward pass reads what only that cell saved.
    pub(crate) kind: CellKind,
    pub(crate) gates: Option<B::Matrix>,
    pub(crate) hh: Option<B::Matrix>,
}

/// The matrices one step reads and writes, `B x G*H` or `B x H`.
///
/// Forward reads `xp = x W_ih^T + b_ih`, `hh = h_{t-1} W_hh^T + b_hh`, `h_prev` and `c_prev` and
/// writes `gates` (activated), `h` and `c`. Backward reads those saved values and `dh`, `dc` (the
/// gradients reaching `h_t` and `c_t`) and writes `d_xp`, `d_hh` (GRU only: the Elman and LSTM
/// cells have `d_hh = d_xp`), `dh_direct` (GRU: the part of `dh_{t-1}` that bypasses `W_hh`) and
/// `dc_prev` (LSTM).
///
/// This is the interface of [`CellKernels`]: each of its methods documents which of these it
/// reads and writes. `B` is the batch, `H` the hidden size, `G` the cell's number of gates.
///
/// The fields stay public because they are that interface: a backend of another crate
/// overrides a kernel by reading and writing them. The struct is `#[non_exhaustive]`, made
/// only by [`StepBuffers::new`], so that a buffer can be added without breaking such a
/// backend.
#[derive(Debug, Clone)]
#[non_exhaustive]
pub struct StepBuffers<B: Backend> {
    /// `x_t W_ih^T + b_ih`, `B x G*H`.
    pub xp: B::Matrix,
    /// `h_{t-1} W_hh^T + b_hh`, `B x G*H`.
    pub hh: B::Matrix,
    /// The activated gates, `B x G*H` (LSTM: i, f, g, o; GRU: r, z, n).
    pub gates: B::Matrix,
    /// `h_{t-1}`, `B x H`.
    pub h_prev: B::Matrix,
    /// `c_{t-1}`, `B x H` (LSTM).
    pub c_prev: B::Matrix,
    /// `h_t`, `B x H`.
    pub h: B::Matrix,
    /// `c_t`, `B x H` (LSTM).
    pub c: B::Matrix,
    /// `dE/dh_t`, `B x H`.
    pub dh: B::Matrix,
    /// `dE/dc_t` from step `t + 1`, `B x H` (LSTM).
    pub dc: B::Matrix,
    /// `dE/d xp`, `B x G*H`: the gradient of the pre-activations (also `dE/d hh` but for the GRU).
    pub d_xp: B::Matrix,
    /// `dE/d hh`, `B x G*H` (GRU, whose reset gate makes it differ from `d_xp`).
    pub d_hh: B::Matrix,
    /// The part of `dE/dh_{t-1}` that bypasses `W_hh`, `B x H` (GRU: `dh * z`).
    pub dh_direct: B::Matrix,
    /// `dE/dc_{t-1}`, `B x H` (LSTM).
    pub dc_prev: B::Matrix,
    /// Temporaries of the generic equations, made at their first use.
    pub scratch: Scratch<B>,
}

/// The temporaries of the generic cell equations (`B x H` matrices, and a matrix of ones for the
/// `1 - y` factors), made at the first step that needs them and reused after, so that the time
/// loop allocates nothing after its first step. A backend whose [`CellKernels`] override the
/// equations never touches it.
#[derive(Debug, Clone)]
pub struct Scratch<B: Backend> {
    temps: Vec<B::Matrix>,
    ones: Option<B::Matrix>,
}

impl<B: Backend> Default for Scratch<B> {
    fn default() -> Self {
        Scratch {
            temps: Vec::new(),
            ones: None,
        }
    }
}

impl<B: Backend> Scratch<B> {
    /// `N` temporaries of `rows x cols` (contents unspecified) and a `rows x cols` matrix of
    /// ones, each made only if it does not exist with that shape yet.
    pub(crate) fn take<const N: usize>(
        &mut self,
        backend: &B,
        rows: usize,
        cols: usize,
    ) -> ([&mut B::Matrix; N], &B::Matrix) {
        if self.temps.len() < N {
            self.temps.resize_with(N, || backend.zeros(rows, cols));
        }
        for m in &mut self.temps {
            if backend.shape(m) != (rows, cols) {
                *m = backend.zeros(rows, cols);
            }
        }
        let ones = match self.ones.take() {
            Some(m) if backend.shape(&m) == (rows, cols) => m,
            _ => {
                let one = <B::Scalar as num_traits::One>::one();
                let data = vec![one; rows * cols];
                backend
                    .from_vec(rows, cols, data)
                    .expect("rows * cols values")
            }
        };
        let ones = self.ones.insert(ones);
        let mut temps = self.temps.iter_mut();
        let temps = std::array::from_fn(|_| temps.next().expect("N temporaries"));
        (temps, ones)
    }
}

impl<B: Backend> StepBuffers<B> {
    /// Buffers for a batch of `batch` and `hidden` units of a `kind` cell, all zero.
    pub fn new(backend: &B, kind: CellKind, batch: usize, hidden: usize) -> Self {
        let wide = || backend.zeros(batch, kind.gates() * hidden);
        let narrow = || backend.zeros(batch, hidden);
        StepBuffers {
            xp: wide(),
            hh: wide(),
            gates: wide(),
            h_prev: narrow(),
            c_prev: narrow(),
            h: narrow(),
            c: narrow(),
            dh: narrow(),
            dc: narrow(),
            d_xp: wide(),
            d_hh: wide(),
            dh_direct: narrow(),
            dc_prev: narrow(),
            scratch: Scratch::default(),
        }
    }

    /// The gradient with respect to `hh` after a step backward: its own buffer for the GRU,
    /// whose reset gate makes it differ from `d_xp`; `d_xp` itself for the others.
    pub fn d_hh(&self, kind: CellKind) -> &B::Matrix {
        match kind {
            CellKind::Gru => &self.d_hh,
            _ => &self.d_xp,
        }
    }

    /// The direct part of `dh_{t-1}` after a step backward, if the cell has one (the GRU).
    pub fn dh_direct(&self, kind: CellKind) -> Option<&B::Matrix> {
        (kind == CellKind::Gru).then_some(&self.dh_direct)
    }
}

/// Copies `src` over `dst`, same shape.
pub(crate) fn copy_all<B: Backend>(backend: &B, dst: &mut B::Matrix, src: &B::Matrix) {
    let (rows, _) = backend.shape(src);
    backend.copy_rows(dst, 0, src, 0, rows);
}

/// The shape checks of a cell's element-wise step `op` (a bug in the crate if they fail): every
/// `wide` matrix `B x G*H` and every `narrow` one `B x H`, as `state` is.
pub(crate) fn check_step_shapes<B: Backend>(
    backend: &B,
    op: &str,
    gates: usize,
    state: &B::Matrix,
    wide: &[&B::Matrix],
    narrow: &[&B::Matrix],
) {
    let (batch, hidden) = backend.shape(state);
    for m in wide {
        assert_eq!(
            backend.shape(m),
            (batch, gates * hidden),
            "{op}: gates shape"
        );
    }
    for m in narrow {
        assert_eq!(backend.shape(m), (batch, hidden), "{op}: state shapes");
    }
}

/// `out <- 1 - y`, from a matrix of `ones` of the same shape (`1 + (-1) y`, exactly `1 - y`).
pub(crate) fn one_minus<B: Backend>(
    backend: &B,
    out: &mut B::Matrix,
    ones: &B::Matrix,
    y: &B::Matrix,
) {
    copy_all(backend, out, ones);
    backend.axpy(out, -<B::Scalar as num_traits::One>::one(), y);
}

/// The element-wise part of a step forward: `h`, `c` and `gates` from `xp`, `hh`, `h_prev` and
/// `c_prev`, by the equations of the `kind` cell.
pub(crate) fn gates_forward<B: CellKernels>(backend: &B, kind: CellKind, buf: &mut StepBuffers<B>) {
    match kind {
        CellKind::Rnn(nonlinearity) => rnn::forward(backend, nonlinearity, buf),
        CellKind::Lstm => backend.lstm_forward(buf),
        CellKind::Gru => backend.gru_forward(buf),
    }
}

/// The element-wise part of a step backward: `d_xp`, `d_hh`, `dh_direct` and `dc_prev` from
/// `dh`, `dc` and the step's saved values, by the derivatives of the `kind` cell.
pub(crate) fn gates_backward<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    buf: &mut StepBuffers<B>,
) {
    match kind {
        CellKind::Rnn(nonlinearity) => rnn::backward(backend, nonlinearity, buf),
        CellKind::Lstm => backend.lstm_backward(buf),
        CellKind::Gru => backend.gru_backward(buf),
    }
}
