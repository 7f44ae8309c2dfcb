//! The fused element-wise kernels of the fast backend: the same formulas as the reference's
//! (see [`Backend`](crate::Backend)'s documentation of each), as loops over whole rows with the
//! gate blocks split once instead of an indexed access per element.
//!
//! The activations are the standard library's. A branch-free polynomial `f32` sigmoid was
//! tried: vectorised for AVX2 it took 1.58 ns an element against 1.41 ns for glibc's `expf`
//! (4096 elements, median of 20 runs), so it was not kept.

use crate::backend::{Activation, DenseMatrix, sigmoid};
use crate::scalar::Scalar;

/// The rows of `m`, `width` wide.
fn rows<T: Scalar>(m: &DenseMatrix<T>, width: usize) -> std::slice::ChunksExact<'_, T> {
    m.as_slice().chunks_exact(width)
}

/// `m <- act(m)` for the activations with a transcendental function; `false` for the others,
/// which the caller leaves to the reference.
pub fn activate<T: Scalar>(m: &mut DenseMatrix<T>, act: Activation) -> bool {
    let f: fn(T) -> T = match act {
        Activation::Tanh => T::tanh,
        Activation::Sigmoid => sigmoid,
        _ => return false,
    };
    for v in m.as_mut_slice() {
        *v = f(*v);
    }
    true
}

/// The LSTM step: `gates` (`B x 4H`, pre-activations i, f, g, o in, activations out),
/// `c = f c_prev + i g`, `h = o tanh(c)`.
pub fn lstm_cell<T: Scalar>(
    gates: &mut DenseMatrix<T>,
    c_prev: &DenseMatrix<T>,
    c: &mut DenseMatrix<T>,
    h: &mut DenseMatrix<T>,
) {
    let hidden = c_prev.cols();
    if hidden == 0 {
        return;
    }
    let rows = gates.as_mut_slice().chunks_exact_mut(4 * hidden);
    let states = c_prev
        .as_slice()
        .chunks_exact(hidden)
        .zip(c.as_mut_slice().chunks_exact_mut(hidden));
    for ((g, (cp, cn)), hn) in rows
        .zip(states)
        .zip(h.as_mut_slice().chunks_exact_mut(hidden))
    {
        let (i, rest) = g.split_at_mut(hidden);
        let (f, rest) = rest.split_at_mut(hidden);
        let (gg, o) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let (iv, fv, gv, ov) = (sigmoid(i[j]), sigmoid(f[j]), gg[j].tanh(), sigmoid(o[j]));
            (i[j], f[j], gg[j], o[j]) = (iv, fv, gv, ov);
            let c_new = fv * cp[j] + iv * gv;
            cn[j] = c_new;
            hn[j] = ov * c_new.tanh();
        }
    }
}

/// The LSTM step's backward pass, from the activated gates, `c_prev`, `c`, `dh` and `dc`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward<T: Scalar>(
    gates: &DenseMatrix<T>,
    c_prev: &DenseMatrix<T>,
    c: &DenseMatrix<T>,
    dh: &DenseMatrix<T>,
    dc: &DenseMatrix<T>,
    d_gates: &mut DenseMatrix<T>,
    dc_prev: &mut DenseMatrix<T>,
) {
    let hidden = c_prev.cols();
    if hidden == 0 {
        return;
    }
    let one = T::one();
    let per_row = |m| rows(m, hidden);
    let rows = gates
        .as_slice()
        .chunks_exact(4 * hidden)
        .zip(d_gates.as_mut_slice().chunks_exact_mut(4 * hidden));
    let states = per_row(c_prev)
        .zip(per_row(c))
        .zip(per_row(dh).zip(per_row(dc)));
    for (((g, d), ((cp, cn), (dhr, dcr))), dcp) in rows
        .zip(states)
        .zip(dc_prev.as_mut_slice().chunks_exact_mut(hidden))
    {
        let (i, rest) = g.split_at(hidden);
        let (f, rest) = rest.split_at(hidden);
        let (gg, o) = rest.split_at(hidden);
        let (di, rest) = d.split_at_mut(hidden);
        let (df, rest) = rest.split_at_mut(hidden);
        let (dg, d_o) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let tc = cn[j].tanh();
            let dc_t = dcr[j] + dhr[j] * o[j] * (one - tc * tc);
            di[j] = dc_t * gg[j] * i[j] * (one - i[j]);
            df[j] = dc_t * cp[j] * f[j] * (one - f[j]);
            dg[j] = dc_t * i[j] * (one - gg[j] * gg[j]);
            d_o[j] = dhr[j] * tc * o[j] * (one - o[j]);
            dcp[j] = dc_t * f[j];
        }
    }
}

/// The GRU step: `r`, `z`, `n` into `gates` (`B x 3H`) from `xp` and `hh`, and
/// `h = (1 - z) n + z h_prev`.
pub fn gru_cell<T: Scalar>(
    xp: &DenseMatrix<T>,
    hh: &DenseMatrix<T>,
    h_prev: &DenseMatrix<T>,
    gates: &mut DenseMatrix<T>,
    h: &mut DenseMatrix<T>,
) {
    let hidden = h_prev.cols();
    if hidden == 0 {
        return;
    }
    let one = T::one();
    let wide = |m| rows(m, 3 * hidden);
    let inputs = wide(xp)
        .zip(wide(hh))
        .zip(h_prev.as_slice().chunks_exact(hidden));
    let outputs = gates
        .as_mut_slice()
        .chunks_exact_mut(3 * hidden)
        .zip(h.as_mut_slice().chunks_exact_mut(hidden));
    for (((x, u), hp), (g, hn)) in inputs.zip(outputs) {
        let (gr, rest) = g.split_at_mut(hidden);
        let (gz, gn) = rest.split_at_mut(hidden);
        for j in 0..hidden {
            let r = sigmoid(x[j] + u[j]);
            let z = sigmoid(x[hidden + j] + u[hidden + j]);
            let n = (x[2 * hidden + j] + r * u[2 * hidden + j]).tanh();
            (gr[j], gz[j], gn[j]) = (r, z, n);
            hn[j] = (one - z) * n + z * hp[j];
        }
    }
}

/// Rows `src_row ..` of `src` over rows `dst_row ..` of `dst`, as one slice copy.
pub fn copy_rows<T: Scalar>(
    dst: &mut DenseMatrix<T>,
    dst_row: usize,
    src: &DenseMatrix<T>,
    src_row: usize,
    count: usize,
) {
    let cols = src.cols();
    assert_eq!(dst.cols(), cols, "copy_rows: column counts differ");
    assert!(dst_row + count <= dst.rows(), "copy_rows: dst too short");
    assert!(src_row + count <= src.rows(), "copy_rows: src too short");
    let from = &src.as_slice()[src_row * cols..(src_row + count) * cols];
    dst.as_mut_slice()[dst_row * cols..(dst_row + count) * cols].copy_from_slice(from);
}

/// `m[r, :] += row` for every row.
pub fn add_row<T: Scalar>(m: &mut DenseMatrix<T>, row: &DenseMatrix<T>) {
    assert_eq!(row.shape(), (1, m.cols()), "add_row: row shape");
    if m.cols() == 0 {
        return;
    }
    let cols = m.cols();
    for r in m.as_mut_slice().chunks_exact_mut(cols) {
        for (v, &b) in r.iter_mut().zip(row.as_slice()) {
            *v = *v + b;
        }
    }
}

/// `acc[0, j] += sum_r m[r, j]`, walking `m` row by row (the reference walks it by columns).
pub fn add_column_sums<T: Scalar>(acc: &mut DenseMatrix<T>, m: &DenseMatrix<T>) {
    assert_eq!(acc.shape(), (1, m.cols()), "add_column_sums: acc shape");
    if m.cols() == 0 {
        return;
    }
    for r in m.as_slice().chunks_exact(m.cols()) {
        for (a, &v) in acc.as_mut_slice().iter_mut().zip(r) {
            *a = *a + v;
        }
    }
}
