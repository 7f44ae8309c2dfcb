//! Where a backend may run the cells' element-wise steps its own way: [`CellKernels`].

use super::{CellKind, StepBuffers, copy_all, gates_backward, gates_forward, gru, lstm};
use crate::backend::{Backend, NaiveCpu};
use crate::scalar::Scalar;
use num_traits::{One, Zero};

/// The cells' element-wise steps and the time loop, as a backend runs them.
///
/// Every method has a default: the generic equations of `lstm.rs` and `gru.rs` in this module,
/// on the [`Backend`] operations, and a time loop on the caller's thread. A backend declares the
/// trait with an empty body to use them all (`impl CellKernels for MyBackend {}`), and
/// overrides a method only to run the same equations faster: [`Cpu`](crate::Cpu) fuses each step
/// into one pass over its rows and splits it across its threads. An override computes the same
/// values up to rounding; the conformance suite `tests/backend_conformance_cells.rs` checks it
/// against the definitions.
///
/// Each method reads and writes the fields of [`StepBuffers`] it names; `B` is the batch and
/// `H` the hidden size.
///
/// # Panics
///
/// The four step methods panic, naming the step, if the buffers they read and write do not
/// have the shapes given (`buf` made by [`StepBuffers::new`] for the cell's kind, batch and
/// hidden size has them all).
pub trait CellKernels: Backend {
    /// The LSTM step forward (see [`LstmCell`](crate::LstmCell)): from `xp`, `hh` (`B x 4H`)
    /// and `c_prev` (`B x H`), writes the activated `gates` (`B x 4H`, order i, f, g, o), `c`
    /// and `h` (`B x H`).
    fn lstm_forward(&self, buf: &mut StepBuffers<Self>) {
        lstm::forward(self, buf)
    }

    /// The LSTM step backward: from the saved `gates`, `c_prev` and `c`, and `dh`, `dc`, writes
    /// `d_xp` (`B x 4H`, the gradient of the gates' pre-activations) and `dc_prev`.
    fn lstm_backward(&self, buf: &mut StepBuffers<Self>) {
        lstm::backward(self, buf)
    }

    /// The GRU step forward (see [`GruCell`](crate::GruCell)): from `xp`, `hh` (`B x 3H`) and
    /// `h_prev`, writes the activated `gates` (`B x 3H`, order r, z, n) and `h`.
    fn gru_forward(&self, buf: &mut StepBuffers<Self>) {
        gru::forward(self, buf)
    }

    /// The GRU step backward: from the saved `gates`, `hh` and `h_prev`, and `dh`, writes
    /// `d_xp`, `d_hh` (`B x 3H`) and `dh_direct` (`B x H`, the part of `dE/dh_{t-1}` that
    /// bypasses `W_hh`).
    fn gru_backward(&self, buf: &mut StepBuffers<Self>) {
        gru::backward(self, buf)
    }

    /// A step of the sequence loop after the input projection: `hh = h_prev W_hh^T + b_hh` from
    /// `w_hh_t` (`W_hh^T`, [prepared](Backend::prepare_rhs)) and `b_hh` (`1 x G*H`), then the
    /// `kind` cell's element-wise step (the Elman cell's, [`lstm_forward`](Self::lstm_forward)
    /// or [`gru_forward`](Self::gru_forward)). Reads `xp`, `h_prev`, `c_prev`; writes `hh`,
    /// `gates`, `h`, `c`.
    ///
    /// The default makes the product, then the step. [`Cpu`](crate::Cpu) cuts the batch's rows
    /// between its threads, each making both for its rows: one hand-off per step, not two.
    fn recurrent_forward(
        &self,
        kind: CellKind,
        w_hh_t: &Self::Prepared,
        b_hh: Option<&Self::Matrix>,
        buf: &mut StepBuffers<Self>,
    ) {
        recurrent_forward(self, kind, w_hh_t, b_hh, buf)
    }

    /// A step of the loop backward: the `kind` cell's derivative (as
    /// [`lstm_backward`](Self::lstm_backward), [`gru_backward`](Self::gru_backward)), then
    /// `dh_prev = d_hh W_hh`, plus `dh_direct` for the GRU, from `w_hh` (`W_hh`, prepared), over
    /// `dh_prev` (`B x H`). The default makes one after the other; `Cpu` cuts the rows as forward.
    fn recurrent_backward(
        &self,
        kind: CellKind,
        w_hh: &Self::Prepared,
        buf: &mut StepBuffers<Self>,
        dh_prev: &mut Self::Matrix,
    ) {
        recurrent_backward(self, kind, w_hh, buf, dh_prev)
    }

    /// Runs `work`, the time loop `time_loop` describes, which calls this backend's kernels
    /// many times, where they run best, and returns its result.
    ///
    /// The default runs it on the caller's thread. [`Cpu`](crate::Cpu) chooses, per kind of
    /// loop, between its pool (each kernel splitting its work across the threads without
    /// handing it over from the caller's thread twice per time step) and the caller's thread
    /// alone, by timing both on the machine it runs on (`src/cpu/loops.rs`).
    fn install<R: Send>(&self, time_loop: TimeLoop, work: impl FnOnce() -> R + Send) -> R {
        let _ = time_loop;
        work()
    }
}

/// [`CellKernels::recurrent_forward`]'s default: the product, the bias, then the cell's step.
pub(crate) fn recurrent_forward<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    w_hh_t: &B::Prepared,
    b_hh: Option<&B::Matrix>,
    buf: &mut StepBuffers<B>,
) {
    let (one, zero) = (B::Scalar::one(), B::Scalar::zero());
    backend.gemm_prepared(&mut buf.hh, one, &buf.h_prev, w_hh_t, zero);
    if let Some(b) = b_hh {
        backend.add_row(&mut buf.hh, b);
    }
    gates_forward(backend, kind, buf);
}

/// [`CellKernels::recurrent_backward`]'s default: the cell's derivative, then the product.
pub(crate) fn recurrent_backward<B: CellKernels>(
    backend: &B,
    kind: CellKind,
    w_hh: &B::Prepared,
    buf: &mut StepBuffers<B>,
    dh_prev: &mut B::Matrix,
) {
    gates_backward(backend, kind, buf);
    product_back(backend, kind, w_hh, buf, dh_prev);
}

/// `dh_prev = d_hh W_hh`, plus `dh_direct` for the GRU (the part that bypasses `W_hh`).
pub(crate) fn product_back<B: Backend>(
    backend: &B,
    kind: CellKind,
    w_hh: &B::Prepared,
    buf: &StepBuffers<B>,
    dh_prev: &mut B::Matrix,
) {
    let beta = match buf.dh_direct(kind) {
        Some(direct) => {
            copy_all(backend, dh_prev, direct);
            B::Scalar::one()
        }
        None => B::Scalar::zero(),
    };
    backend.gemm_prepared(dh_prev, B::Scalar::one(), buf.d_hh(kind), w_hh, beta);
}

/// What a time loop handed to [`CellKernels::install`] is: the facts a backend may choose
/// where to run it by, and the key under which it remembers its choice.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub struct TimeLoop {
    /// Which pass runs the loop.
    pub pass: LoopPass,
    /// Its iterations: the time steps (1 for a stream's step).
    pub steps: usize,
    /// The size of one iteration: the multiply-adds of its largest product (`B * G*H * H` for a
    /// recurrent step of a cell with `G` gates).
    pub step_work: usize,
}

impl TimeLoop {
    /// The loop of `steps` recurrent steps of `pass`, each a product `B x H` by `H x G*H`
    /// (`batch`, `hidden`, `gates_width = G*H`).
    pub fn recurrent(
        pass: LoopPass,
        steps: usize,
        (batch, hidden, gates_width): (usize, usize, usize),
    ) -> Self {
        TimeLoop {
            pass,
            steps,
            step_work: batch * gates_width * hidden,
        }
    }
}

/// The passes that run a time loop through [`CellKernels::install`].
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum LoopPass {
    /// A layer's forward pass over a sequence.
    Forward,
    /// A layer's backpropagation through time.
    Backward,
    /// One step of a [`Stream`](crate::Stream), every layer and the output head.
    Stream,
}

/// The reference backend runs the generic equations.
impl<T: Scalar> CellKernels for NaiveCpu<T> {}
