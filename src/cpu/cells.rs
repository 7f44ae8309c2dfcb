//! The fused cell kernels of the fast backend, one step of a batch, and how they are split across
//! threads.
//!
//! Each kernel's operands are a struct of row-major slices that all hold the same rows (the
//! batch), so that [`in_row_blocks`] can cut them between two rows and run the blocks on the
//! pool's threads. A row's results depend on that row alone, computed in the same order wherever
//! the cut falls: one thread or several give the same bits.
//!
//! The formulas are the reference's (see [`Backend`](crate::Backend)'s documentation of each),
//! as loops over whole rows with the gate blocks split once instead of an indexed access per
//! element. The activations run over whole slices ([`Activations`]), so that the arithmetic
//! around them vectorises too.

use super::math::Activations;
use super::plan::{self, Threads, Work};
use crate::scalar::Scalar;

/// `tanh` of up to this many values at a time lives on the stack in the backward kernels.
const CHUNK: usize = 64;

/// Operands holding the same rows, which can be cut between two of them.
pub trait RowBlock: Sized + Send {
    /// The first `at` rows, and the rest.
    fn split_at(self, at: usize) -> (Self, Self);
}

/// Runs `kernel` on `block` (`rows` rows, `work` in all), in as many row blocks as `pool` has
/// threads when the [plan](super::plan) says the work pays for them, else on the caller's thread.
pub fn in_row_blocks<P: RowBlock>(
    pool: Option<&Threads>,
    block: P,
    rows: usize,
    work: Work,
    kernel: impl Fn(P) + Sync,
) {
    let split = plan::split(pool, work, rows);
    match pool {
        Some(pool) if split.parts() > 1 => in_parts(pool, block, rows, split.parts(), &kernel),
        _ => kernel(block),
    }
}

/// Runs `kernel` on `block` cut into `parts` blocks of about `rows / parts` rows, halving
/// through `join` (whose jobs live on the stack: no allocation, so none in the time loops).
pub fn in_parts<P: RowBlock>(
    pool: &Threads,
    block: P,
    rows: usize,
    parts: usize,
    kernel: &(impl Fn(P) + Sync),
) {
    if parts <= 1 {
        return kernel(block);
    }
    let left = parts / 2;
    let at = rows * left / parts;
    let (head, tail) = block.split_at(at);
    pool.join(
        || in_parts(pool, head, at, left, kernel),
        || in_parts(pool, tail, rows - at, parts - left, kernel),
    );
}

/// Equal blocks of a slice (rows of a matrix, panels of a packed operand), the first of them
/// block number `first`: cut between two blocks, each part knows where it starts.
pub struct Blocks<'a, T> {
    /// The blocks, one after the other.
    pub data: &'a mut [T],
    /// The number of the first block in the whole.
    pub first: usize,
    size: usize,
}

impl<'a, T> Blocks<'a, T> {
    /// All of `data`, in blocks of `size` values.
    pub fn new(data: &'a mut [T], size: usize) -> Self {
        Blocks {
            data,
            first: 0,
            size,
        }
    }
}

impl<T: Send> RowBlock for Blocks<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let Blocks { data, first, size } = self;
        let (head, tail) = data.split_at_mut(at * size);
        let tail = Blocks {
            data: tail,
            first: first + at,
            size,
        };
        (
            Blocks {
                data: head,
                first,
                size,
            },
            tail,
        )
    }
}

/// Cuts `s` after `rows` rows of `width` values.
fn cut<T>(s: &[T], rows: usize, width: usize) -> (&[T], &[T]) {
    s.split_at(rows * width)
}

/// As [`cut`], for a mutable slice.
fn cut_mut<T>(s: &mut [T], rows: usize, width: usize) -> (&mut [T], &mut [T]) {
    s.split_at_mut(rows * width)
}

/// The rows of `m`, `width` wide.
fn rows_of<T>(m: &[T], width: usize) -> std::slice::ChunksExact<'_, T> {
    m.chunks_exact(width)
}

/// An activation in place over whole rows.
pub struct Activate<'a, T> {
    /// The values, `rows x cols`.
    pub m: &'a mut [T],
    /// Values per row.
    pub cols: usize,
}

impl<T: Send> RowBlock for Activate<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (a, b) = cut_mut(self.m, at, self.cols);
        let cols = self.cols;
        (Activate { m: a, cols }, Activate { m: b, cols })
    }
}

/// The LSTM step's operands: `xp`, `hh` (`B x 4H`, the input and hidden projections with their
/// biases, gates i, f, g, o), `c_prev` (`B x H`); written: `gates` (`B x 4H`, the activations)
/// and `c`, `h` (`B x H`).
pub struct LstmStep<'a, T> {
    /// `x W_ih^T + b_ih`.
    pub xp: &'a [T],
    /// `h_prev W_hh^T + b_hh`.
    pub hh: &'a [T],
    /// The activated gates, written.
    pub gates: &'a mut [T],
    /// The previous cell state.
    pub c_prev: &'a [T],
    /// The new cell state, written.
    pub c: &'a mut [T],
    /// The new hidden state, written.
    pub h: &'a mut [T],
    /// `H`.
    pub hidden: usize,
}

impl<T: Send + Sync> RowBlock for LstmStep<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let hidden = self.hidden;
        let (x0, x1) = cut(self.xp, at, 4 * hidden);
        let (u0, u1) = cut(self.hh, at, 4 * hidden);
        let (g0, g1) = cut_mut(self.gates, at, 4 * hidden);
        let (p0, p1) = cut(self.c_prev, at, hidden);
        let (c0, c1) = cut_mut(self.c, at, hidden);
        let (h0, h1) = cut_mut(self.h, at, hidden);
        let part = |xp, hh, gates, c_prev, c, h| LstmStep {
            xp,
            hh,
            gates,
            c_prev,
            c,
            h,
            hidden,
        };
        (part(x0, u0, g0, p0, c0, h0), part(x1, u1, g1, p1, c1, h1))
    }
}

/// The LSTM step: the gates `act(xp + hh)`, `c = f c_prev + i g`, `h = o tanh(c)`.
pub fn lstm_step<T: Scalar + Activations>(s: LstmStep<'_, T>) {
    let hidden = s.hidden;
    if hidden == 0 {
        return;
    }
    let wide = |m| rows_of(m, 4 * hidden);
    let inputs = wide(s.xp).zip(wide(s.hh)).zip(rows_of(s.c_prev, hidden));
    let outputs = s
        .gates
        .chunks_exact_mut(4 * hidden)
        .zip(s.c.chunks_exact_mut(hidden))
        .zip(s.h.chunks_exact_mut(hidden));
    for (((x, u), cp), ((g, cn), hn)) in inputs.zip(outputs) {
        for ((v, &a), &b) in g.iter_mut().zip(x).zip(u) {
            *v = a + b;
        }
        let (ifg, o) = g.split_at_mut(3 * hidden);
        let (i_f, gg) = ifg.split_at_mut(2 * hidden);
        T::sigmoid_slice(i_f);
        T::tanh_slice(gg);
        T::sigmoid_slice(o);
        let (i, f) = i_f.split_at(hidden);
        for j in 0..hidden {
            let c_new = f[j] * cp[j] + i[j] * gg[j];
            cn[j] = c_new;
            hn[j] = c_new;
        }
        T::tanh_slice(hn);
        for (hv, &ov) in hn.iter_mut().zip(o.iter()) {
            *hv = ov * *hv;
        }
    }
}

/// The LSTM step's backward operands: the activated `gates` (`B x 4H`), `c_prev`, `c`, and the
/// gradients `dh`, `dc` reaching `h` and `c` (`B x H`); written: `d_gates` (`B x 4H`, of the
/// pre-activations) and `dc_prev` (`B x H`).
pub struct LstmStepBack<'a, T> {
    /// The activated gates i, f, g, o.
    pub gates: &'a [T],
    /// The previous cell state.
    pub c_prev: &'a [T],
    /// The cell state.
    pub c: &'a [T],
    /// `dE/dh`.
    pub dh: &'a [T],
    /// `dE/dc` from the step after.
    pub dc: &'a [T],
    /// `dE/d` pre-activations, written.
    pub d_gates: &'a mut [T],
    /// `dE/dc_prev`, written.
    pub dc_prev: &'a mut [T],
    /// `H`.
    pub hidden: usize,
}

impl<T: Send + Sync> RowBlock for LstmStepBack<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let hidden = self.hidden;
        let (g0, g1) = cut(self.gates, at, 4 * hidden);
        let (p0, p1) = cut(self.c_prev, at, hidden);
        let (c0, c1) = cut(self.c, at, hidden);
        let (dh0, dh1) = cut(self.dh, at, hidden);
        let (dc0, dc1) = cut(self.dc, at, hidden);
        let (dg0, dg1) = cut_mut(self.d_gates, at, 4 * hidden);
        let (dp0, dp1) = cut_mut(self.dc_prev, at, hidden);
        let first = LstmStepBack {
            gates: g0,
            c_prev: p0,
            c: c0,
            dh: dh0,
            dc: dc0,
            d_gates: dg0,
            dc_prev: dp0,
            hidden,
        };
        let second = LstmStepBack {
            gates: g1,
            c_prev: p1,
            c: c1,
            dh: dh1,
            dc: dc1,
            d_gates: dg1,
            dc_prev: dp1,
            hidden,
        };
        (first, second)
    }
}

/// The LSTM step's backward pass.
pub fn lstm_step_back<T: Scalar + Activations>(s: LstmStepBack<'_, T>) {
    let hidden = s.hidden;
    if hidden == 0 {
        return;
    }
    let one = T::one();
    let per_row = |m| rows_of(m, hidden);
    let gates = s.gates.chunks_exact(4 * hidden);
    let rows = gates.zip(s.d_gates.chunks_exact_mut(4 * hidden));
    let states = per_row(s.c_prev)
        .zip(per_row(s.c))
        .zip(per_row(s.dh).zip(per_row(s.dc)));
    let outs = s.dc_prev.chunks_exact_mut(hidden);
    for (((g, d), ((cp, cn), (dhr, dcr))), dcp) in rows.zip(states).zip(outs) {
        let (i, rest) = g.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (gg, o) = rest.split_at(hidden);
        let (di, rest) = d.split_at_mut(hidden);
        let (df, rest) = rest.split_at_mut(hidden);
        let (dg, d_o) = rest.split_at_mut(hidden);
        for start in (0..hidden).step_by(CHUNK) {
            let width = CHUNK.min(hidden - start);
            let mut tanh_c = [T::zero(); CHUNK];
            tanh_c[..width].copy_from_slice(&cn[start..start + width]);
            T::tanh_slice(&mut tanh_c[..width]);
            for (j, &tc) in (start..).zip(&tanh_c[..width]) {
                let dc_t = dcr[j] + dhr[j] * o[j] * (one - tc * tc);
                di[j] = dc_t * gg[j] * i[j] * (one - i[j]);
                df[j] = dc_t * cp[j] * f[j] * (one - f[j]);
                dg[j] = dc_t * i[j] * (one - gg[j] * gg[j]);
                d_o[j] = dhr[j] * tc * o[j] * (one - o[j]);
                dcp[j] = dc_t * f[j];
            }
        }
    }
}

/// The GRU step's operands: `xp`, `hh` (`B x 3H`, the input and hidden projections with their
/// biases), `h_prev` (`B x H`); written: `gates` (`B x 3H`: r, z, n) and `h` (`B x H`).
pub struct GruStep<'a, T> {
    /// `x W_ih^T + b_ih`.
    pub xp: &'a [T],
    /// `h_prev W_hh^T + b_hh`.
    pub hh: &'a [T],
    /// The previous hidden state.
    pub h_prev: &'a [T],
    /// r, z, n, written.
    pub gates: &'a mut [T],
    /// The new hidden state, written.
    pub h: &'a mut [T],
    /// `H`.
    pub hidden: usize,
}

impl<T: Send + Sync> RowBlock for GruStep<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let hidden = self.hidden;
        let (x0, x1) = cut(self.xp, at, 3 * hidden);
        let (u0, u1) = cut(self.hh, at, 3 * hidden);
        let (p0, p1) = cut(self.h_prev, at, hidden);
        let (g0, g1) = cut_mut(self.gates, at, 3 * hidden);
        let (h0, h1) = cut_mut(self.h, at, hidden);
        let part = |xp, hh, h_prev, gates, h| GruStep {
            xp,
            hh,
            h_prev,
            gates,
            h,
            hidden,
        };
        (part(x0, u0, p0, g0, h0), part(x1, u1, p1, g1, h1))
    }
}

/// The GRU step: `r`, `z`, `n` from `xp` and `hh`, and `h = (1 - z) n + z h_prev`.
pub fn gru_step<T: Scalar + Activations>(s: GruStep<'_, T>) {
    let hidden = s.hidden;
    if hidden == 0 {
        return;
    }
    let one = T::one();
    let wide = |m| rows_of(m, 3 * hidden);
    let inputs = wide(s.xp)
        .zip(wide(s.hh))
        .zip(s.h_prev.chunks_exact(hidden));
    let outputs = s
        .gates
        .chunks_exact_mut(3 * hidden)
        .zip(s.h.chunks_exact_mut(hidden));
    for (((x, u), hp), (g, hn)) in inputs.zip(outputs) {
        let (rz, gn) = g.split_at_mut(2 * hidden);
        for ((v, &a), &b) in rz.iter_mut().zip(&x[..2 * hidden]).zip(&u[..2 * hidden]) {
            *v = a + b;
        }
        T::sigmoid_slice(rz);
        let (r, z) = rz.split_at(hidden);
        let (x_n, u_n) = (&x[2 * hidden..], &u[2 * hidden..]);
        for j in 0..hidden {
            gn[j] = x_n[j] + r[j] * u_n[j];
        }
        T::tanh_slice(gn);
        for j in 0..hidden {
            hn[j] = (one - z[j]) * gn[j] + z[j] * hp[j];
        }
    }
}

/// The GRU step's backward operands: `gates` (`B x 3H`: r, z, n), `hh` (`B x 3H`), `h_prev`
/// and `dh` (`B x H`); written: `d_xp`, `d_hh` (`B x 3H`, the gradients of the two
/// projections) and `dh_prev` (`B x H`, the direct part only: `dh z`).
pub struct GruStepBack<'a, T> {
    /// r, z, n.
    pub gates: &'a [T],
    /// `h_prev W_hh^T + b_hh`.
    pub hh: &'a [T],
    /// The previous hidden state.
    pub h_prev: &'a [T],
    /// `dE/dh`.
    pub dh: &'a [T],
    /// `dE/d xp`, written.
    pub d_xp: &'a mut [T],
    /// `dE/d hh`, written.
    pub d_hh: &'a mut [T],
    /// `dh z`, written.
    pub dh_prev: &'a mut [T],
    /// `H`.
    pub hidden: usize,
}

impl<T: Send + Sync> RowBlock for GruStepBack<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let hidden = self.hidden;
        let (g0, g1) = cut(self.gates, at, 3 * hidden);
        let (u0, u1) = cut(self.hh, at, 3 * hidden);
        let (p0, p1) = cut(self.h_prev, at, hidden);
        let (dh0, dh1) = cut(self.dh, at, hidden);
        let (dx0, dx1) = cut_mut(self.d_xp, at, 3 * hidden);
        let (du0, du1) = cut_mut(self.d_hh, at, 3 * hidden);
        let (dp0, dp1) = cut_mut(self.dh_prev, at, hidden);
        let first = GruStepBack {
            gates: g0,
            hh: u0,
            h_prev: p0,
            dh: dh0,
            d_xp: dx0,
            d_hh: du0,
            dh_prev: dp0,
            hidden,
        };
        let second = GruStepBack {
            gates: g1,
            hh: u1,
            h_prev: p1,
            dh: dh1,
            d_xp: dx1,
            d_hh: du1,
            dh_prev: dp1,
            hidden,
        };
        (first, second)
    }
}

/// The GRU step's backward pass, operation for operation the reference's.
pub fn gru_step_back<T: Scalar>(s: GruStepBack<'_, T>) {
    let hidden = s.hidden;
    if hidden == 0 {
        return;
    }
    let one = T::one();
    let wide = |m| rows_of(m, 3 * hidden);
    let narrow = |m| rows_of(m, hidden);
    let inputs = wide(s.gates)
        .zip(wide(s.hh))
        .zip(narrow(s.h_prev).zip(narrow(s.dh)));
    let outputs = s
        .d_xp
        .chunks_exact_mut(3 * hidden)
        .zip(s.d_hh.chunks_exact_mut(3 * hidden))
        .zip(s.dh_prev.chunks_exact_mut(hidden));
    for (((g, u), (hp, dhr)), ((dx, du), dp)) in inputs.zip(outputs) {
        for j in 0..hidden {
            let (r, z, n) = (g[j], g[hidden + j], g[2 * hidden + j]);
            let dh = dhr[j];
            let d_an = dh * (one - z) * (one - n * n);
            let d_ar = d_an * u[2 * hidden + j] * r * (one - r);
            let d_az = dh * (hp[j] - n) * z * (one - z);
            dx[j] = d_ar;
            dx[hidden + j] = d_az;
            dx[2 * hidden + j] = d_an;
            du[j] = d_ar;
            du[hidden + j] = d_az;
            du[2 * hidden + j] = d_an * r;
            dp[j] = dh * z;
        }
    }
}
