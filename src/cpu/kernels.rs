//! The row kernels of the fast backend: copies, the token-id gather and scatter-add, bias rows
//! and column sums, as loops over whole rows (the reference's index per element). The cell
//! kernels are in [`cells`](super::cells).

use super::cells::{RowBlock, in_row_blocks};
use super::math::Activations;
use super::plan::{Kernel, Threads, Work};
use crate::backend::DenseMatrix;
use crate::scalar::Scalar;
use std::sync::atomic::{AtomicBool, Ordering};

/// Values checked together by [`all_finite`].
const FINITE_BLOCK: usize = 64;

/// Whether every value is finite: a branch-free test over blocks of [`FINITE_BLOCK`] values,
/// which vectorises, stopping after the first block with a NaN or infinity; the values split
/// across `pool`'s threads.
pub fn all_finite<T: Scalar>(values: &[T], pool: Option<&Threads>) -> bool {
    let finite = |block: &[T]| block.iter().fold(true, |finite, v| finite & v.is_finite());
    let all = AtomicBool::new(true);
    let block = Pair {
        a: &mut [][..],
        b: values,
    };
    let work = Work::values(Kernel::Elementwise, values.len(), 1, 1);
    in_row_blocks(pool, block, values.len(), work, |part: Pair<'_, T>| {
        let mut blocks = part.b.chunks_exact(FINITE_BLOCK);
        if !(blocks.by_ref().all(finite) && finite(blocks.remainder())) {
            all.store(false, Ordering::Relaxed);
        }
    });
    all.into_inner()
}

/// `kernel(a, b)` on `a` (written) and `b` (read: as long as `a`, or empty), cut into one range
/// of elements per thread of `pool` when the [plan](super::plan) says they pay: for
/// element-wise kernels, whose every result depends on its own elements alone, so the same bits.
pub fn elementwise<T: Scalar>(
    pool: Option<&Threads>,
    a: &mut DenseMatrix<T>,
    b: &[T],
    kernel: impl Fn(&mut [T], &[T]) + Sync,
) {
    let a = a.as_mut_slice();
    assert!(b.is_empty() || b.len() == a.len(), "elementwise: lengths");
    let len = a.len();
    let work = Work::values(
        Kernel::Elementwise,
        len,
        1,
        if b.is_empty() { 1 } else { 2 },
    );
    in_row_blocks(pool, Pair { a, b }, len, work, |part| {
        kernel(part.a, part.b)
    });
}

/// A written and a read slice cut at the same element (an empty one stays empty).
struct Pair<'a, T> {
    a: &'a mut [T],
    b: &'a [T],
}

impl<T: Send + Sync> RowBlock for Pair<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (a0, a1) = self.a.split_at_mut(at.min(self.a.len()));
        let (b0, b1) = self.b.split_at(at.min(self.b.len()));
        (Pair { a: a0, b: b0 }, Pair { a: a1, b: b1 })
    }
}

/// An optimiser update's operands, cut at the same element: the parameter, its gradient and the
/// rule's state buffers.
pub struct Update<'a, T> {
    /// The parameter, updated.
    pub p: &'a mut [T],
    /// Its gradient.
    pub g: &'a [T],
    /// The state buffers, updated.
    pub state: Vec<&'a mut [T]>,
}

impl<T: Send + Sync> RowBlock for Update<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (p0, p1) = self.p.split_at_mut(at);
        let (g0, g1) = self.g.split_at(at);
        let (s0, s1) = self.state.into_iter().map(|s| s.split_at_mut(at)).unzip();
        (
            Update {
                p: p0,
                g: g0,
                state: s0,
            },
            Update {
                p: p1,
                g: g1,
                state: s1,
            },
        )
    }
}

/// Rows of a softmax cross-entropy: the logits, the gradient written, each row's target and
/// the `ln p` of its target written (`Cpu`'s `softmax_cross_entropy` has the equations).
pub struct SoftmaxRows<'a, T> {
    /// `rows x cols` logits.
    pub logits: &'a [T],
    /// `rows x cols`, written.
    pub grad: &'a mut [T],
    /// A class per row.
    pub targets: &'a [usize],
    /// `ln p(target)` per row, written.
    pub log_p: &'a mut [T],
    /// Classes.
    pub cols: usize,
}

impl<T: Send + Sync> RowBlock for SoftmaxRows<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let cols = self.cols;
        let (l0, l1) = self.logits.split_at(at * cols);
        let (g0, g1) = self.grad.split_at_mut(at * cols);
        let (t0, t1) = self.targets.split_at(at);
        let (p0, p1) = self.log_p.split_at_mut(at);
        let part = |logits, grad, targets, log_p| SoftmaxRows {
            logits,
            grad,
            targets,
            log_p,
            cols,
        };
        (part(l0, g0, t0, p0), part(l1, g1, t1, p1))
    }
}

/// The softmax cross-entropy of every row of `b`: `e_j = exp(z_j - max z)` into the gradient's
/// row, their sum `s`, `ln p(target) = z_target - max z - ln s`, and the gradient `e_j (1/s)`
/// less 1 at the target.
pub fn softmax_rows<T: Scalar + Activations>(b: SoftmaxRows<'_, T>) {
    let rows = (b.logits.chunks_exact(b.cols)).zip(b.grad.chunks_exact_mut(b.cols));
    for ((z, g), (&target, log_p)) in rows.zip(b.targets.iter().zip(b.log_p.iter_mut())) {
        let sum;
        (*log_p, sum) = log_p_row(z, target, g);
        let inverse = T::one() / sum;
        g.iter_mut().for_each(|e| *e = *e * inverse);
        g[target] = g[target] - T::one();
    }
}

/// `ln p(target)` of the logits `z` of one row, and the sum `s` of `e_j = exp(z_j - max z)`,
/// which are left in `e`.
fn log_p_row<T: Scalar + Activations>(z: &[T], target: usize, e: &mut [T]) -> (T, T) {
    let max = in_lanes(z, T::neg_infinity(), T::max, T::max);
    e.iter_mut().zip(z).for_each(|(e, &v)| *e = v - max);
    T::exp_slice(e);
    let sum = in_lanes(e, T::zero(), |a, e| a + e, |a, b| a + b);
    (z[target] - max - sum.ln(), sum)
}

/// Rows of a softmax cross-entropy's value alone: the logits, each row's target and the
/// `ln p` of its target written.
pub struct LossRows<'a, T> {
    /// `rows x cols` logits.
    pub logits: &'a [T],
    /// A class per row.
    pub targets: &'a [usize],
    /// `ln p(target)` per row, written.
    pub log_p: &'a mut [T],
    /// Classes.
    pub cols: usize,
}

impl<T: Send + Sync> RowBlock for LossRows<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let cols = self.cols;
        let (l0, l1) = self.logits.split_at(at * cols);
        let (t0, t1) = self.targets.split_at(at);
        let (p0, p1) = self.log_p.split_at_mut(at);
        let part = |logits, targets, log_p| LossRows {
            logits,
            targets,
            log_p,
            cols,
        };
        (part(l0, t0, p0), part(l1, t1, p1))
    }
}

/// `ln p(target)` of every row of `b` ([`softmax_rows`] without the gradient), the `e_j` of
/// each row in one scratch row.
pub fn loss_rows<T: Scalar + Activations>(b: LossRows<'_, T>) {
    let mut e = vec![T::zero(); b.cols];
    let rows = b.logits.chunks_exact(b.cols);
    for (z, (&target, log_p)) in rows.zip(b.targets.iter().zip(b.log_p)) {
        *log_p = log_p_row(z, target, &mut e).0;
    }
}

/// `xs` folded with `f` from `init` in [`LANES`] interleaved partial results (element `i` into
/// lane `i % LANES`), then the lanes combined in order with `combine`: independent chains that
/// the processor overlaps and the compiler vectorises, where one chain waits out each
/// addition's latency. The result does not depend on the threads: the order is fixed.
pub fn in_lanes<T: Scalar>(
    xs: &[T],
    init: T,
    f: impl Fn(T, T) -> T,
    combine: impl Fn(T, T) -> T,
) -> T {
    let mut lanes = [init; LANES];
    let mut chunks = xs.chunks_exact(LANES);
    for chunk in &mut chunks {
        for (lane, &x) in lanes.iter_mut().zip(chunk) {
            *lane = f(*lane, x);
        }
    }
    for (lane, &x) in lanes.iter_mut().zip(chunks.remainder()) {
        *lane = f(*lane, x);
    }
    lanes.into_iter().fold(init, combine)
}

/// Partial results of [`in_lanes`]: an AVX-512 register of `f32`.
const LANES: usize = 16;

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

/// `out[r, :] = src[rows[r], :]`, a slice copy per row.
pub fn gather_rows<T: Scalar>(out: &mut DenseMatrix<T>, src: &DenseMatrix<T>, rows: &[usize]) {
    let cols = src.cols();
    assert_eq!(out.shape(), (rows.len(), cols), "gather_rows: out shape");
    assert!(
        rows.iter().all(|&r| r < src.rows()),
        "gather_rows: row out of range"
    );
    if cols == 0 {
        return;
    }
    for (to, &from) in out.as_mut_slice().chunks_exact_mut(cols).zip(rows) {
        to.copy_from_slice(src.row(from));
    }
}

/// `m[r, :] += row` for every row, the rows split across `pool`'s threads.
pub fn add_row<T: Scalar>(m: &mut DenseMatrix<T>, row: &DenseMatrix<T>, pool: Option<&Threads>) {
    assert_eq!(row.shape(), (1, m.cols()), "add_row: row shape");
    let (rows, cols) = m.shape();
    if cols == 0 {
        return;
    }
    let row = row.as_slice();
    let block = Rows {
        m: m.as_mut_slice(),
        cols,
    };
    in_row_blocks(
        pool,
        block,
        rows,
        Work::values(Kernel::Rows, rows, cols, 1),
        |b| {
            for r in b.m.chunks_exact_mut(cols) {
                for (v, &b) in r.iter_mut().zip(row) {
                    *v = *v + b;
                }
            }
        },
    );
}

/// `acc[0, j] += sum_r m[r, j]`, walking `m` row by row (the reference walks it by columns),
/// the columns split across `pool`'s threads. Each sum adds the rows in order wherever the
/// split falls: the same bits.
pub fn add_column_sums<T: Scalar>(
    acc: &mut DenseMatrix<T>,
    m: &DenseMatrix<T>,
    pool: Option<&Threads>,
) {
    assert_eq!(acc.shape(), (1, m.cols()), "add_column_sums: acc shape");
    let (rows, cols) = m.shape();
    if cols == 0 {
        return;
    }
    let block = Columns {
        out: acc.as_mut_slice(),
        first: 0,
    };
    let m = m.as_slice();
    in_row_blocks(
        pool,
        block,
        cols,
        Work::values(Kernel::Rows, rows, cols, 1),
        |b| {
            let width = b.out.len();
            for r in m.chunks_exact(cols) {
                for (a, &v) in b.out.iter_mut().zip(&r[b.first..b.first + width]) {
                    *a = *a + v;
                }
            }
        },
    );
}

/// Whole rows of a matrix, `cols` wide.
struct Rows<'a, T> {
    m: &'a mut [T],
    cols: usize,
}

impl<T: Send> RowBlock for Rows<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let cols = self.cols;
        let (a, b) = self.m.split_at_mut(at * cols);
        (Rows { m: a, cols }, Rows { m: b, cols })
    }
}

/// Consecutive entries of an output, `out[i]` for entry `first + i`; with [`in_row_blocks`],
/// each thread writes its own range of entries (of a row vector, or of a table's rows).
struct Columns<'a, T> {
    out: &'a mut [T],
    first: usize,
}

impl<T: Send> RowBlock for Columns<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let (a, b) = self.out.split_at_mut(at);
        let first = self.first;
        (
            Columns { out: a, first },
            Columns {
                out: b,
                first: first + at,
            },
        )
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

/// Values of the table a thread copies, transposed, for [`scatter_add_columns`]: 256 KiB of
/// `f32`, within the second-level cache.
const TRANSPOSED_VALUES: usize = 1 << 16;

/// The reference's `scatter_add_columns`, adding into each entry in the same order as the
/// reference (id by id), so the same bits; the table's rows are split across `pool`'s threads.
///
/// With at least as many ids as columns (a sequence of one-hot tokens against `W_ih`), each
/// thread copies a block of its table rows transposed (`V x R`, a column per row), adds every
/// id's `R` values to that column's row as one contiguous run, and copies the block back: the
/// adds vectorise and read `src` by rows. With fewer ids (a few tokens of a large vocabulary),
/// blocks of 16 table rows are updated in place, the id's values `V` apart; no allocation.
pub fn scatter_add_columns<T: Scalar>(
    table: &mut DenseMatrix<T>,
    ids: &[usize],
    src: &DenseMatrix<T>,
    pool: Option<&Threads>,
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
    if rows == 0 || cols == 0 {
        return;
    }
    let block = Rows {
        m: table.as_mut_slice(),
        cols,
    };
    let src = src.as_slice();
    in_row_blocks(
        pool,
        TableRows {
            rows: block,
            first: 0,
        },
        rows,
        Work::values(Kernel::Rows, rows, ids.len(), 1),
        |b| {
            let part = Scatter {
                table: b.rows.m,
                cols,
                first: b.first,
                ids,
                src,
                src_width: rows,
            };
            if ids.len() >= cols {
                part.through_transpose(TRANSPOSED_VALUES);
            } else {
                part.in_place();
            }
        },
    );
}

/// Rows `first..` of a table (`cols` wide) and what [`scatter_add_columns`] adds to them: row
/// `q` of `src` (`src_width` wide) to column `ids[q]`.
struct Scatter<'a, T> {
    table: &'a mut [T],
    cols: usize,
    first: usize,
    ids: &'a [usize],
    src: &'a [T],
    src_width: usize,
}

impl<T: Scalar> Scatter<'_, T> {
    /// Blocks of [`TABLE_ROWS`] rows, every id's values added in place.
    fn in_place(self) {
        let cols = self.cols;
        let mine = self.table.len() / cols;
        for first in (0..mine).step_by(TABLE_ROWS) {
            let width = TABLE_ROWS.min(mine - first);
            let block = &mut self.table[first * cols..(first + width) * cols];
            let at = self.first + first;
            for (row, &id) in self.src.chunks_exact(self.src_width).zip(self.ids) {
                for (q, &v) in row[at..at + width].iter().enumerate() {
                    let t = &mut block[q * cols + id];
                    *t = *t + v;
                }
            }
        }
    }

    /// Blocks of rows whose transposed copy holds at most `budget` values (at least 16 rows),
    /// each copied out, added to by rows, and copied back.
    fn through_transpose(self, budget: usize) {
        let cols = self.cols;
        let mine = self.table.len() / cols;
        let most = (budget / cols).max(TABLE_ROWS);
        let width = mine.div_ceil(mine.div_ceil(most));
        let mut t = vec![T::zero(); width * cols];
        for first in (0..mine).step_by(width) {
            let width = width.min(mine - first);
            let block = &mut self.table[first * cols..(first + width) * cols];
            let t = &mut t[..width * cols];
            for (q, row) in block.chunks_exact(cols).enumerate() {
                for (id, &v) in row.iter().enumerate() {
                    t[id * width + q] = v;
                }
            }
            let at = self.first + first;
            for (row, &id) in self.src.chunks_exact(self.src_width).zip(self.ids) {
                let column = &mut t[id * width..(id + 1) * width];
                for (acc, &v) in column.iter_mut().zip(&row[at..at + width]) {
                    *acc = *acc + v;
                }
            }
            for (q, row) in block.chunks_exact_mut(cols).enumerate() {
                for (id, v) in row.iter_mut().enumerate() {
                    *v = t[id * width + q];
                }
            }
        }
    }
}

/// Whole rows of a table, the first of them row `first` of the whole.
struct TableRows<'a, T> {
    rows: Rows<'a, T>,
    first: usize,
}

impl<T: Send> RowBlock for TableRows<'_, T> {
    fn split_at(self, at: usize) -> (Self, Self) {
        let first = self.first;
        let (a, b) = self.rows.split_at(at);
        (
            TableRows { rows: a, first },
            TableRows {
                rows: b,
                first: first + at,
            },
        )
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The transposed blocks give the bits of the in-place adds, for blocks of every size the
    /// budget allows (several, the last partial) and a part of the table that starts mid-way.
    #[test]
    fn scatter_through_transpose_gives_the_bits_of_adding_in_place() {
        let (rows, cols, n) = (53, 5, 41);
        let value = |i: usize| ((i * 7919) % 1013) as f32 * 0.37 - 150.0;
        let src: Vec<f32> = (0..n * rows).map(value).collect();
        let ids: Vec<usize> = (0..n).map(|i| (i * i + 3) % cols).collect();
        let table: Vec<f32> = (0..rows * cols).map(|i| value(i + 5)).collect();
        for (first, budget) in [(0, 1), (0, 17 * cols), (0, 1 << 16), (11, 20 * cols)] {
            fn part<'a>(
                t: &'a mut [f32],
                at: usize,
                rest: (usize, &'a [usize], &'a [f32], usize),
            ) -> Scatter<'a, f32> {
                let (cols, ids, src, src_width) = rest;
                Scatter {
                    table: &mut t[at * cols..],
                    cols,
                    first: at,
                    ids,
                    src,
                    src_width,
                }
            }
            let rest = (cols, &ids[..], &src[..], rows);
            let (mut want, mut got) = (table.clone(), table.clone());
            part(&mut want, first, rest).in_place();
            part(&mut got, first, rest).through_transpose(budget);
            assert_eq!(want, got, "first row {first}, budget {budget}");
            assert_ne!(want, table);
        }
    }
}
