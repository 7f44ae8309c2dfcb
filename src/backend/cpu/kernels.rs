//! The fused element-wise kernels of the fast backend: the same formulas as the reference's
//! (see [`Backend`](crate::Backend)'s documentation of each), as loops over whole rows with the
//! gate blocks split once instead of an indexed access per element.
//!
//! The activations run over whole slices ([`Activations`]), so that the arithmetic around them
//! vectorises too: each kernel first activates its gate blocks in place, then combines them.

use super::math::Activations;
use crate::backend::{Activation, DenseMatrix};
use crate::scalar::Scalar;

/// `tanh` of up to this many values at a time lives on the stack in the backward kernels.
const CHUNK: usize = 64;

/// The rows of `m`, `width` wide.
fn rows<T: Scalar>(m: &DenseMatrix<T>, width: usize) -> std::slice::ChunksExact<'_, T> {
    m.as_slice().chunks_exact(width)
}

/// Whether every value is finite: a branch-free test over blocks of [`CHUNK`] values, which
/// vectorises, stopping after the first block with a NaN or infinity.
pub fn all_finite<T: Scalar>(values: &[T]) -> bool {
    let finite = |block: &[T]| block.iter().fold(true, |finite, v| finite & v.is_finite());
    let mut blocks = values.chunks_exact(CHUNK);
    blocks.by_ref().all(finite) && finite(blocks.remainder())
}

/// `m <- act(m)` for the activations with a transcendental function; `false` for the others,
/// which the caller leaves to the reference.
pub fn activate<T: Scalar + Activations>(m: &mut DenseMatrix<T>, act: Activation) -> bool {
    match act {
        Activation::Tanh => T::tanh_slice(m.as_mut_slice()),
        Activation::Sigmoid => T::sigmoid_slice(m.as_mut_slice()),
        _ => return false,
    }
    true
}

/// The LSTM step: `gates` (`B x 4H`, pre-activations i, f, g, o in, activations out),
/// `c = f c_prev + i g`, `h = o tanh(c)`.
pub fn lstm_cell<T: Scalar + Activations>(
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

/// The LSTM step's backward pass, from the activated gates, `c_prev`, `c`, `dh` and `dc`.
#[allow(clippy::too_many_arguments)]
pub fn lstm_cell_backward<T: Scalar + Activations>(
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

/// The GRU step: `r`, `z`, `n` into `gates` (`B x 3H`) from `xp` and `hh`, and
/// `h = (1 - z) n + z h_prev`.
pub fn gru_cell<T: Scalar + Activations>(
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

/// Rows of the table handled together by [`gather_columns`] and [`scatter_add_columns`]: their
/// `V` columns stay in the first-level cache while every id reads (or adds to) them.
const TABLE_ROWS: usize = 16;

/// The reference's `gather_columns` by blocks of table rows: for each block, every id copies
/// its column's values of those rows, contiguous in `out`. The reference reads `R` values `V`
/// apart per id; this reads each block of the table from cache. No allocation.
pub fn gather_columns<T: Scalar>(out: &mut DenseMatrix<T>, table: &DenseMatrix<T>, ids: &[usize]) {
    let (rows, cols) = table.shape();
    assert_eq!(out.shape(), (ids.len(), rows), "gather_columns: out shape");
    assert!(
        ids.iter().all(|&id| id < cols),
        "gather_columns: id out of range"
    );
    if rows == 0 {
        return;
    }
    let table = table.as_slice();
    for first in (0..rows).step_by(TABLE_ROWS) {
        let width = TABLE_ROWS.min(rows - first);
        let block = &table[first * cols..(first + width) * cols];
        for (row, &id) in out.as_mut_slice().chunks_exact_mut(rows).zip(ids) {
            for (q, v) in row[first..first + width].iter_mut().enumerate() {
                *v = block[q * cols + id];
            }
        }
    }
}

/// The reference's `scatter_add_columns` by blocks of table rows, adding into each entry in the
/// same order as the reference (id by id), so the same bits. No allocation.
pub fn scatter_add_columns<T: Scalar>(
    table: &mut DenseMatrix<T>,
    ids: &[usize],
    src: &DenseMatrix<T>,
) {
    let (rows, cols) = table.shape();
    assert_eq!(
        src.shape(),
        (ids.len(), rows),
        "scatter_add_columns: src shape"
    );
    assert!(
        ids.iter().all(|&id| id < cols),
        "scatter_add_columns: id out of range"
    );
    if rows == 0 {
        return;
    }
    let table = table.as_mut_slice();
    for first in (0..rows).step_by(TABLE_ROWS) {
        let width = TABLE_ROWS.min(rows - first);
        let block = &mut table[first * cols..(first + width) * cols];
        for (row, &id) in src.as_slice().chunks_exact(rows).zip(ids) {
            for (q, &v) in row[first..first + width].iter().enumerate() {
                let t = &mut block[q * cols + id];
                *t = *t + v;
            }
        }
    }
}
