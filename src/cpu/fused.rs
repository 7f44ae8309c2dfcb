//! `Cpu`'s overrides of the generic cell, loss and update code: the same equations (see
//! `src/cell/lstm.rs`, `src/cell/gru.rs`, [`LossKernels`] and [`UpdateRule`]), each fused into one
//! pass over its rows, split across the pool's threads by batch rows (`cells`) or ranges of
//! elements, and the time loops run on a thread of the pool.

use super::math::Activations;
use super::plan::{Kernel, Work};
use super::{Cpu, CpuRhs, MatMul, cells, kernels, loops, math, step};
use crate::backend::DenseMatrix;
use crate::cell::{CellKernels, CellKind, StepBuffers, TimeLoop, check_step_shapes};
use crate::loss::LossKernels;
use crate::optim::{UpdateKernels, UpdateRule};
use crate::scalar::Scalar;

impl<T: Scalar + MatMul + Activations> CellKernels for Cpu<T> {
    fn recurrent_forward(
        &self,
        kind: CellKind,
        w_hh_t: &CpuRhs<T>,
        b_hh: Option<&DenseMatrix<T>>,
        buf: &mut StepBuffers<Self>,
    ) {
        step::forward(self, kind, w_hh_t, b_hh, buf)
    }

    fn recurrent_backward(
        &self,
        kind: CellKind,
        w_hh: &CpuRhs<T>,
        buf: &mut StepBuffers<Self>,
        dh_prev: &mut DenseMatrix<T>,
    ) {
        step::backward(self, kind, w_hh, buf, dh_prev)
    }

    fn lstm_forward(&self, buf: &mut StepBuffers<Self>) {
        let b = buf;
        check_step_shapes(
            self,
            "lstm_forward",
            4,
            &b.c_prev,
            &[&b.xp, &b.hh, &b.gates],
            &[&b.c, &b.h],
        );
        let (rows, hidden) = b.c_prev.shape();
        let step = cells::LstmStep {
            xp: b.xp.as_slice(),
            hh: b.hh.as_slice(),
            gates: b.gates.as_mut_slice(),
            c_prev: b.c_prev.as_slice(),
            c: b.c.as_mut_slice(),
            h: b.h.as_mut_slice(),
            hidden,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            step,
            rows,
            Work::values(Kernel::CellStep, rows, 4 * hidden, 1),
            cells::lstm_step,
        )
    }

    fn lstm_backward(&self, buf: &mut StepBuffers<Self>) {
        let b = buf;
        let states = [&b.c, &b.dh, &b.dc, &b.dc_prev];
        check_step_shapes(
            self,
            "lstm_backward",
            4,
            &b.c_prev,
            &[&b.gates, &b.d_xp],
            &states,
        );
        let (rows, hidden) = b.c_prev.shape();
        let step = cells::LstmStepBack {
            gates: b.gates.as_slice(),
            c_prev: b.c_prev.as_slice(),
            c: b.c.as_slice(),
            dh: b.dh.as_slice(),
            dc: b.dc.as_slice(),
            d_gates: b.d_xp.as_mut_slice(),
            dc_prev: b.dc_prev.as_mut_slice(),
            hidden,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            step,
            rows,
            Work::values(Kernel::CellStep, rows, 4 * hidden, 1),
            cells::lstm_step_back,
        )
    }

    fn gru_forward(&self, buf: &mut StepBuffers<Self>) {
        let b = buf;
        check_step_shapes(
            self,
            "gru_forward",
            3,
            &b.h_prev,
            &[&b.xp, &b.hh, &b.gates],
            &[&b.h],
        );
        let (rows, hidden) = b.h_prev.shape();
        let step = cells::GruStep {
            xp: b.xp.as_slice(),
            hh: b.hh.as_slice(),
            h_prev: b.h_prev.as_slice(),
            gates: b.gates.as_mut_slice(),
            h: b.h.as_mut_slice(),
            hidden,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            step,
            rows,
            Work::values(Kernel::CellStep, rows, 3 * hidden, 1),
            cells::gru_step,
        )
    }

    fn gru_backward(&self, buf: &mut StepBuffers<Self>) {
        let b = buf;
        let wide = [&b.gates, &b.hh, &b.d_xp, &b.d_hh];
        check_step_shapes(
            self,
            "gru_backward",
            3,
            &b.h_prev,
            &wide,
            &[&b.dh, &b.dh_direct],
        );
        let (rows, hidden) = b.h_prev.shape();
        let step = cells::GruStepBack {
            gates: b.gates.as_slice(),
            hh: b.hh.as_slice(),
            h_prev: b.h_prev.as_slice(),
            dh: b.dh.as_slice(),
            d_xp: b.d_xp.as_mut_slice(),
            d_hh: b.d_hh.as_mut_slice(),
            dh_prev: b.dh_direct.as_mut_slice(),
            hidden,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            step,
            rows,
            Work::values(Kernel::CellStep, rows, 3 * hidden, 1),
            cells::gru_step_back,
        )
    }

    fn install<R: Send>(&self, time_loop: TimeLoop, work: impl FnOnce() -> R + Send) -> R {
        match &self.pool {
            Some(pool) => loops::run(pool, time_loop, work),
            None => work(),
        }
    }
}

impl<T: Scalar + MatMul + Activations> LossKernels for Cpu<T> {
    // One pass per row, split across the pool's threads by rows, with one exp per logit:
    //   m = max_j z_j,   e_j = exp(z_j - m),   s = sum_j e_j (in 16 interleaved partial sums),
    //   loss_r = -(z_y - m - ln s),   grad_j = e_j (1/s) - [j = y].
    // The reference sums in column order and takes a second exp, grad_j = exp(z_j - m - ln s) -
    // [j = y]: the two differ by a few roundings (the conformance suites bound them).
    fn softmax_cross_entropy(
        &self,
        logits: &DenseMatrix<T>,
        targets: &[usize],
        grad: &mut DenseMatrix<T>,
    ) -> T {
        assert_eq!(
            logits.shape(),
            grad.shape(),
            "softmax_cross_entropy: grad shape"
        );
        let (rows, cols) = check_targets("softmax_cross_entropy", logits, targets);
        let mut log_p = vec![T::zero(); rows];
        let block = kernels::SoftmaxRows {
            logits: logits.as_slice(),
            grad: grad.as_mut_slice(),
            targets,
            log_p: &mut log_p,
            cols,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            block,
            rows,
            Work::values(Kernel::Rows, rows, cols, 2),
            kernels::softmax_rows,
        );
        minus_sum(&log_p)
    }

    // The same rows' `ln p(target)`, each row's `e_j` in a scratch row of the thread's own.
    fn cross_entropy_sum(&self, logits: &DenseMatrix<T>, targets: &[usize]) -> T {
        let (rows, cols) = check_targets("cross_entropy_sum", logits, targets);
        let mut log_p = vec![T::zero(); rows];
        let block = kernels::LossRows {
            logits: logits.as_slice(),
            targets,
            log_p: &mut log_p,
            cols,
        };
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            block,
            rows,
            Work::values(Kernel::Rows, rows, cols, 1),
            kernels::loss_rows,
        );
        minus_sum(&log_p)
    }
}

/// The shape of `logits`, after checking that `targets` has a class below its width per row
/// (else a panic naming `kernel`).
fn check_targets<T: Scalar>(
    kernel: &str,
    logits: &DenseMatrix<T>,
    targets: &[usize],
) -> (usize, usize) {
    let (rows, cols) = logits.shape();
    assert_eq!(targets.len(), rows, "{kernel}: targets");
    assert!(
        targets.iter().all(|&t| t < cols),
        "{kernel}: target out of range"
    );
    (rows, cols)
}

/// `-sum ln p`, in row order as the reference sums (from `0`, so that no loss is `-0`).
fn minus_sum<T: Scalar>(log_p: &[T]) -> T {
    log_p.iter().fold(T::zero(), |loss, &lp| loss - lp)
}

impl<T: Scalar + MatMul + Activations> UpdateKernels for Cpu<T> {
    // One pass over four or five slices per parameter, split by ranges of elements.
    fn update(
        &self,
        rule: &UpdateRule,
        param: &mut DenseMatrix<T>,
        grad: &DenseMatrix<T>,
        state: &mut [DenseMatrix<T>],
    ) {
        crate::optim::check_update_operands(self, rule, param, grad, state);
        let block = kernels::Update {
            p: param.as_mut_slice(),
            g: grad.as_slice(),
            state: state.iter_mut().map(DenseMatrix::as_mut_slice).collect(),
        };
        let len = block.p.len();
        // The widest operand: the parameter, its gradient and the buffers, each element read
        // (and written) once.
        let width = 2 + 2 * block.state.len();
        let pool = self.pool.as_ref();
        cells::in_row_blocks(
            pool,
            block,
            len,
            Work::values(Kernel::Elementwise, len, width, 1),
            |mut b| math::update(rule, b.p, b.g, &mut b.state),
        )
    }
}
