//! `Cpu`'s recurrent step ([`CellKernels::recurrent_forward`] and `recurrent_backward`): the
//! product with `W_hh` and the cell's element-wise step, both made by each thread for its own
//! rows of the batch.
//!
//! The generic step makes the product `h_prev W_hh^T` for the whole batch, cut by columns across
//! the threads, then the element-wise step, cut by rows: two hand-offs per step, and the gates
//! written by one thread are read by the other. Here the batch's rows are cut once: each thread
//! makes the product for its rows (reading all of `W_hh`, which every thread uses for all its
//! rows), adds the bias and runs the cell on the same rows while they are in its cache. Backward
//! is the same in reverse: the cell's derivative, then `d_hh W_hh` for its rows.
//!
//! A row's results depend on that row alone, computed in the same order as the generic step: one
//! thread or several, cut here or not, the same bits. Steps too small for the plan
//! ([`Kernel::Step`]), or with less than one of the kernel's blocks of rows per thread (where
//! each thread would read all of `W_hh` for a row or two; the generic step's column cut reads
//! half each), and the Elman cell with ReLU, run the generic step on `Cpu`'s other kernels.
//! One block a part rather than two: the word model's batch of 20 (AVX2 blocks of 6 rows) took
//! 0.83 to 0.89 of its epoch's training time cut in two
//! (`benches/compare/results/step-by-rows/word-lm-batch20/`).

use super::cells::{self, GruStep, GruStepBack, LstmStep, LstmStepBack, RowBlock};
use super::math::Activations;
use super::plan::{self, Kernel, Work};
use super::{Cpu, CpuRhs, MatMul};
use crate::backend::DenseMatrix;
use crate::cell::{
    CellKind, Nonlinearity, StepBuffers, check_step_shapes, recurrent_backward, recurrent_forward,
};
use crate::scalar::Scalar;

/// Runs [`CellKernels::recurrent_forward`](crate::cell::CellKernels::recurrent_forward).
pub fn forward<T: Scalar + MatMul + Activations>(
    cpu: &Cpu<T>,
    kind: CellKind,
    w_hh_t: &CpuRhs<T>,
    b_hh: Option<&DenseMatrix<T>>,
    buf: &mut StepBuffers<Cpu<T>>,
) {
    let parts = parts(cpu, kind, w_hh_t, buf.h_prev.rows());
    if parts <= 1 {
        return recurrent_forward(cpu, kind, w_hh_t, b_hh, buf);
    }
    let b = buf;
    let (rows, hidden) = b.h_prev.shape();
    let (wide, narrow) = ([&b.xp, &b.hh, &b.gates], [&b.c_prev, &b.c, &b.h]);
    check_step_shapes(
        cpu,
        "recurrent_forward",
        kind.gates(),
        &b.h_prev,
        &wide,
        &narrow,
    );
    let bias = b_hh.map(|b| {
        assert_eq!(
            b.shape(),
            (1, kind.gates() * hidden),
            "recurrent_forward: b_hh"
        );
        b.as_slice()
    });
    let step = Forward {
        h_prev: b.h_prev.as_slice(),
        xp: b.xp.as_slice(),
        hh: b.hh.as_mut_slice(),
        gates: b.gates.as_mut_slice(),
        c_prev: b.c_prev.as_slice(),
        c: b.c.as_mut_slice(),
        h: b.h.as_mut_slice(),
        hidden,
        width: kind.gates() * hidden,
    };
    let packed = &w_hh_t.0;
    let pool = cpu.pool.as_ref().expect("a cut needs the pool");
    cells::in_parts(pool, step, rows, parts, &|part: Forward<'_, T>| {
        let one = T::one();
        packed.gemm(part.hh, one, part.h_prev, T::zero(), None);
        if let Some(bias) = bias {
            for row in part.hh.chunks_exact_mut(part.width) {
                for (v, &b) in row.iter_mut().zip(bias) {
                    *v = *v + b;
                }
            }
        }
        part.cell(kind);
    });
}

/// Runs [`CellKernels::recurrent_backward`](crate::cell::CellKernels::recurrent_backward).
pub fn backward<T: Scalar + MatMul + Activations>(
    cpu: &Cpu<T>,
    kind: CellKind,
    w_hh: &CpuRhs<T>,
    buf: &mut StepBuffers<Cpu<T>>,
    dh_prev: &mut DenseMatrix<T>,
) {
    let parts = parts(cpu, kind, w_hh, buf.h_prev.rows());
    if parts <= 1 {
        return recurrent_backward(cpu, kind, w_hh, buf, dh_prev);
    }
    let b = buf;
    let (rows, hidden) = b.h_prev.shape();
    let wide = [&b.gates, &b.hh, &b.d_xp, &b.d_hh];
    let narrow = [
        &b.c_prev,
        &b.c,
        &b.h,
        &b.dh,
        &b.dc,
        &b.dh_direct,
        &b.dc_prev,
        dh_prev,
    ];
    check_step_shapes(
        cpu,
        "recurrent_backward",
        kind.gates(),
        &b.h_prev,
        &wide,
        &narrow,
    );
    let step = Backward {
        gates: b.gates.as_slice(),
        hh: b.hh.as_slice(),
        h_prev: b.h_prev.as_slice(),
        c_prev: b.c_prev.as_slice(),
        c: b.c.as_slice(),
        h: b.h.as_slice(),
        dh: b.dh.as_slice(),
        dc: b.dc.as_slice(),
        d_xp: b.d_xp.as_mut_slice(),
        d_hh: b.d_hh.as_mut_slice(),
        dh_direct: b.dh_direct.as_mut_slice(),
        dc_prev: b.dc_prev.as_mut_slice(),
        dh_prev: dh_prev.as_mut_slice(),
        hidden,
        width: kind.gates() * hidden,
    };
    let packed = &w_hh.0;
    let pool = cpu.pool.as_ref().expect("a cut needs the pool");
    cells::in_parts(pool, step, rows, parts, &|part: Backward<'_, T>| {
        let one = T::one();
        let (d_hh, dh_prev, beta) = part.cell(kind);
        packed.gemm(dh_prev, one, d_hh, beta, None);
    });
}

/// Parts to cut a step of `rows` into: the plan's, for the product `rows x H` by `H x G*H`, with
/// at least one of the kernel's blocks of rows a part; 1 for the cells made generically here.
fn parts<T: Scalar + MatMul + Activations>(
    cpu: &Cpu<T>,
    kind: CellKind,
    packed: &CpuRhs<T>,
    rows: usize,
) -> usize {
    if kind == CellKind::Rnn(Nonlinearity::Relu) {
        return 1;
    }
    let (k, n) = packed.0.shape();
    let most = rows / packed.0.block_rows();
    let work = Work::product(Kernel::Step, rows, k, n);
    plan::split(cpu.pool.as_ref(), work, most).parts()
}

/// A forward step's operands (see [`StepBuffers`]), all holding the same rows of the batch.
struct Forward<'a, T> {
    h_prev: &'a [T],
    xp: &'a [T],
    hh: &'a mut [T],
    gates: &'a mut [T],
    c_prev: &'a [T],
    c: &'a mut [T],
    h: &'a mut [T],
    hidden: usize,
    /// `G*H`.
    width: usize,
}

impl<T: Send + Sync> RowBlock for Forward<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (hidden, width) = (self.hidden, self.width);
        let (h_prev, h_prev1) = self.h_prev.split_at(at * hidden);
        let (xp, xp1) = self.xp.split_at(at * width);
        let (hh, hh1) = self.hh.split_at_mut(at * width);
        let (gates, gates1) = self.gates.split_at_mut(at * width);
        let (c_prev, c_prev1) = self.c_prev.split_at(at * hidden);
        let (c, c1) = self.c.split_at_mut(at * hidden);
        let (h, h1) = self.h.split_at_mut(at * hidden);
        let head = Forward {
            h_prev,
            xp,
            hh,
            gates,
            c_prev,
            c,
            h,
            hidden,
            width,
        };
        let tail = Forward {
            h_prev: h_prev1,
            xp: xp1,
            hh: hh1,
            gates: gates1,
            c_prev: c_prev1,
            c: c1,
            h: h1,
            hidden,
            width,
        };
        (head, tail)
    }
}

impl<T: Scalar + Activations> Forward<'_, T> {
    /// The `kind` cell's element-wise step on these rows, `hh` made.
    fn cell(self, kind: CellKind) {
        let hidden = self.hidden;
        match kind {
            CellKind::Lstm => cells::lstm_step(LstmStep {
                xp: self.xp,
                hh: self.hh,
                gates: self.gates,
                c_prev: self.c_prev,
                c: self.c,
                h: self.h,
                hidden,
            }),
            CellKind::Gru => cells::gru_step(GruStep {
                xp: self.xp,
                hh: self.hh,
                h_prev: self.h_prev,
                gates: self.gates,
                h: self.h,
                hidden,
            }),
            // The generic step's `h = xp; h += 1 hh; tanh(h)`: the same sums.
            CellKind::Rnn(_) => {
                for ((h, &x), &u) in self.h.iter_mut().zip(self.xp).zip(&*self.hh) {
                    *h = x + u;
                }
                T::tanh_slice(self.h);
            }
        }
    }
}

/// A backward step's operands (see [`StepBuffers`]) and `dh_prev`, all holding the same rows.
struct Backward<'a, T> {
    gates: &'a [T],
    hh: &'a [T],
    h_prev: &'a [T],
    c_prev: &'a [T],
    c: &'a [T],
    h: &'a [T],
    dh: &'a [T],
    dc: &'a [T],
    d_xp: &'a mut [T],
    d_hh: &'a mut [T],
    dh_direct: &'a mut [T],
    dc_prev: &'a mut [T],
    dh_prev: &'a mut [T],
    hidden: usize,
    /// `G*H`.
    width: usize,
}

impl<T: Send + Sync> RowBlock for Backward<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (hidden, width) = (self.hidden, self.width);
        let (n, w) = (at * hidden, at * width);
        let (gates, gates1) = self.gates.split_at(w);
        let (hh, hh1) = self.hh.split_at(w);
        let (h_prev, h_prev1) = self.h_prev.split_at(n);
        let (c_prev, c_prev1) = self.c_prev.split_at(n);
        let (c, c1) = self.c.split_at(n);
        let (h, h1) = self.h.split_at(n);
        let (dh, dh1) = self.dh.split_at(n);
        let (dc, dc1) = self.dc.split_at(n);
        let (d_xp, d_xp1) = self.d_xp.split_at_mut(w);
        let (d_hh, d_hh1) = self.d_hh.split_at_mut(w);
        let (dh_direct, dh_direct1) = self.dh_direct.split_at_mut(n);
        let (dc_prev, dc_prev1) = self.dc_prev.split_at_mut(n);
        let (dh_prev, dh_prev1) = self.dh_prev.split_at_mut(n);
        let head = Backward {
            gates,
            hh,
            h_prev,
            c_prev,
            c,
            h,
            dh,
            dc,
            d_xp,
            d_hh,
            dh_direct,
            dc_prev,
            dh_prev,
            hidden,
            width,
        };
        let tail = Backward {
            gates: gates1,
            hh: hh1,
            h_prev: h_prev1,
            c_prev: c_prev1,
            c: c1,
            h: h1,
            dh: dh1,
            dc: dc1,
            d_xp: d_xp1,
            d_hh: d_hh1,
            dh_direct: dh_direct1,
            dc_prev: dc_prev1,
            dh_prev: dh_prev1,
            hidden,
            width,
        };
        (head, tail)
    }
}

impl<'a, T: Scalar + Activations> Backward<'a, T> {
    /// The `kind` cell's derivative on these rows; returns the gradient `d_hh` to multiply by
    /// `W_hh`, and `dh_prev` with the `beta` to add the product with (the GRU's direct part).
    fn cell(self, kind: CellKind) -> (&'a [T], &'a mut [T], T) {
        let hidden = self.hidden;
        match kind {
            CellKind::Lstm => {
                cells::lstm_step_back(LstmStepBack {
                    gates: self.gates,
                    c_prev: self.c_prev,
                    c: self.c,
                    dh: self.dh,
                    dc: self.dc,
                    d_gates: &mut *self.d_xp,
                    dc_prev: self.dc_prev,
                    hidden,
                });
                (self.d_xp, self.dh_prev, T::zero())
            }
            CellKind::Gru => {
                cells::gru_step_back(GruStepBack {
                    gates: self.gates,
                    hh: self.hh,
                    h_prev: self.h_prev,
                    dh: self.dh,
                    d_xp: self.d_xp,
                    d_hh: &mut *self.d_hh,
                    dh_prev: &mut *self.dh_direct,
                    hidden,
                });
                self.dh_prev.copy_from_slice(self.dh_direct);
                (self.d_hh, self.dh_prev, T::one())
            }
            // The generic step's `d_xp = dh; d_xp *= 1 - h^2` (the reference's tanh slope).
            CellKind::Rnn(_) => {
                for ((d, &g), &y) in self.d_xp.iter_mut().zip(self.dh).zip(self.h) {
                    *d = g * (T::one() - y * y);
                }
                (self.d_xp, self.dh_prev, T::zero())
            }
        }
    }
}
