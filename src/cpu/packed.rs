//! Products `C <- alpha A op(B) + beta C` whose right-hand operand is packed once and used for
//! many products: the recurrence multiplies every step's `h_{t-1}` by the same `W_hh^T`
//! (forward) and every step's `d hh` by the same `W_hh` (backward). A general GEMM packs `op(B)`
//! again for each product; at batch 32, hidden 512 that packing took more time than the
//! multiply-adds themselves.
//!
//! `op(B)` (`k x n`) is stored as panels of `NR` columns, each panel `k` rows of `NR` values
//! (the last panel padded with zeros), so that the kernel reads it front to back. `A` is read in
//! place, row-major: at most 32 rows of `B x H`, it stays in cache. For each panel, blocks of `MR`
//! rows of `C` are summed in registers over the whole `k` and then written once. A single row of
//! `A` (batch 1) takes four panels at a time, so that eight chains of sums are in flight.
//!
//! The kernel is safe Rust that the compiler vectorises, compiled once per instruction set; the
//! `unsafe` here is the call into the variant the processor supports, and the unchecked loads of
//! the inner loop, whose bounds are asserted before it (with bounds checks in the loop, the
//! compiler kept the sums in memory, and the kernel ran at 40% of the speed).

#![allow(unsafe_code)]

use super::cells::{Blocks, in_row_blocks};
use super::gemm::{MatMul, Operand};
use super::plan::{self, Kernel, Threads, Work};
use crate::backend::Transpose;

/// `op(B)` in panels of [`Packed::width`] columns, ready for [`Packed::gemm`].
#[derive(Debug, Clone)]
pub struct Packed<T> {
    /// Rows of `op(B)`: the inner dimension of the product.
    k: usize,
    /// Columns of `op(B)`.
    n: usize,
    /// Which kernel the panels were laid out for.
    isa: Isa,
    /// `n.div_ceil(NR)` panels of `k * NR` values.
    data: Vec<T>,
}

/// Packs the columns `first ..` of `op(B)` into `panel`: `k` rows of `nr` values, the columns
/// past `op(B)`'s last left as they are (zero).
fn pack_panel<T: Copy>(b: &Operand<'_, T>, panel: &mut [T], first: usize, nr: usize) {
    let (k, n) = b.op_shape();
    let width = nr.min(n - first);
    match b.transpose {
        // Panel rows are slices of `B`'s rows.
        Transpose::No => {
            for (row, out) in panel.chunks_exact_mut(nr).enumerate() {
                out[..width].copy_from_slice(&b.data[row * n + first..][..width]);
            }
        }
        // Panel columns are `B`'s rows: a transpose, by blocks of `KB` values of each row, so
        // that reads and writes both stay within a few cache lines (reading a whole row at a
        // time scattered the writes and was 2.4 times slower for a 2048 x 512 `W_hh`).
        Transpose::Yes => {
            const KB: usize = 8;
            let mut kk = 0;
            while kk + KB <= k {
                for j in 0..width {
                    let source = &b.data[(first + j) * k + kk..][..KB];
                    for (q, &v) in source.iter().enumerate() {
                        panel[(kk + q) * nr + j] = v;
                    }
                }
                kk += KB;
            }
            for kk in kk..k {
                for j in 0..width {
                    panel[kk * nr + j] = b.data[(first + j) * k + kk];
                }
            }
        }
    }
}

/// The rows of `C` a kernel writes, all of one width.
trait RowsOut<T> {
    /// Row `i`.
    fn row(&mut self, i: usize) -> &mut [T];
    /// The rows' width.
    fn width(&self) -> usize;
}

/// All of `C`, row-major, `width` wide.
struct Contiguous<'a, T> {
    c: &'a mut [T],
    width: usize,
}

impl<T> RowsOut<T> for Contiguous<'_, T> {
    #[inline(always)]
    fn row(&mut self, i: usize) -> &mut [T] {
        &mut self.c[i * self.width..][..self.width]
    }

    fn width(&self) -> usize {
        self.width
    }
}

/// Columns `first..first + width` of every row of a row-major `C` (`rows` rows of `stride`
/// values): a view that can be cut between two columns, so that threads write disjoint columns of
/// the same rows without a list of row slices (which would be an allocation per product).
struct Columns<'a, T> {
    start: *mut T,
    rows: usize,
    stride: usize,
    first: usize,
    width: usize,
    _c: std::marker::PhantomData<&'a mut [T]>,
}

// SAFETY: a `Columns` is a set of disjoint `&mut [T]` (its columns of each row), which may move
// to another thread when `T` may.
unsafe impl<T: Send> Send for Columns<'_, T> {}

impl<'a, T> Columns<'a, T> {
    /// All of `c`, `stride` wide.
    fn new(c: &'a mut [T], stride: usize) -> Self {
        Columns {
            start: c.as_mut_ptr(),
            rows: c.len() / stride,
            stride,
            first: 0,
            width: stride,
            _c: std::marker::PhantomData,
        }
    }

    /// The first `at` columns, and the rest: two views of disjoint elements.
    fn split_at(self, at: usize) -> (Self, Self) {
        assert!(at <= self.width, "columns: cut beyond the view");
        let tail = Columns {
            first: self.first + at,
            width: self.width - at,
            ..self
        };
        (Columns { width: at, ..self }, tail)
    }
}

impl<T> RowsOut<T> for Columns<'_, T> {
    #[inline(always)]
    fn row(&mut self, i: usize) -> &mut [T] {
        assert!(i < self.rows, "columns: row out of range");
        // SAFETY: row `i` of `C` is `stride` values from `i * stride`, within the slice the view
        // was made from (`rows * stride` values), and columns `first..first + width` lie within
        // it (`split_at` only narrows them). Views made by `split_at` hold disjoint columns, and
        // the row borrows this view mutably, so no other live reference overlaps it.
        unsafe {
            std::slice::from_raw_parts_mut(self.start.add(i * self.stride + self.first), self.width)
        }
    }

    fn width(&self) -> usize {
        self.width
    }
}

/// The instruction sets with a kernel of their own, best first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Isa {
    /// 512-bit vectors: 32 accumulators of 16 `f32`.
    Avx512,
    /// 256-bit vectors with fused multiply-add.
    Avx2,
    /// Whatever the compiler makes of plain loops.
    Portable,
}

impl Isa {
    fn detect() -> Isa {
        #[cfg(target_arch = "x86_64")]
        {
            if std::is_x86_feature_detected!("avx512f") {
                return Isa::Avx512;
            }
            if std::is_x86_feature_detected!("avx2") && std::is_x86_feature_detected!("fma") {
                return Isa::Avx2;
            }
        }
        Isa::Portable
    }
}

/// Register blocking for `T` on `isa`: `(MR, NR)`, rows and columns of `C` per kernel call.
/// `NR` is two vector registers of `T`; `MR` rows keep `2 * MR` accumulators plus the two panel
/// vectors and a broadcast within the register file (32 registers with AVX-512, 16 otherwise).
const fn blocking(isa: Isa, bytes: usize) -> (usize, usize) {
    match isa {
        Isa::Avx512 => (8, 2 * 64 / bytes),
        Isa::Avx2 => (6, 2 * 32 / bytes),
        Isa::Portable => (4, 2 * 16 / bytes),
    }
}

impl<T: MatMul> Packed<T> {
    /// Packs `b` as `op(B)` for the kernel this processor runs best, the panels split across
    /// `pool`'s threads.
    pub fn new(b: Operand<'_, T>, pool: Option<&Threads>) -> Self {
        Self::for_isa(b, Isa::detect(), pool)
    }

    /// Packs `b` for the kernel of `isa`, which must be one the processor has (as
    /// [`Isa::detect`] finds): [`Packed::gemm`] runs its instructions, which is undefined
    /// behaviour on a processor without them.
    fn for_isa(b: Operand<'_, T>, isa: Isa, pool: Option<&Threads>) -> Self {
        assert_eq!(
            b.data.len(),
            b.rows * b.cols,
            "pack: B's data does not fit its shape"
        );
        let (k, n) = b.op_shape();
        let (_, nr) = blocking(isa, size_of::<T>());
        let panels = n.div_ceil(nr);
        let mut data = vec![T::default(); panels * k * nr];
        if k > 0 {
            let block = Blocks::new(&mut data, k * nr);
            let work = Work::values(Kernel::Rows, panels, k * nr, 1);
            in_row_blocks(pool, block, panels, work, |block| {
                let panels = block.data.chunks_exact_mut(k * nr);
                for (p, panel) in (block.first..).zip(panels) {
                    pack_panel(&b, panel, p * nr, nr);
                }
            });
        }
        Packed { k, n, isa, data }
    }

    /// Shape of `op(B)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.k, self.n)
    }

    /// Rows of `A` the kernel takes at a time (`MR`).
    pub fn block_rows(&self) -> usize {
        blocking(self.isa, size_of::<T>()).0
    }

    /// `C <- alpha A op(B) + beta C` for row-major `A` (`m x k`) and `C` (`m x n`), with the
    /// columns of `C` (whole panels) split across `pool`'s threads when the product is large. With
    /// `beta = 0`, `C` is not read.
    pub fn gemm(&self, c: &mut [T], alpha: T, a: &[T], beta: T, pool: Option<&Threads>) {
        let (k, n) = (self.k, self.n);
        // `is_multiple_of(0)` holds only for an empty `A`.
        assert!(
            a.len().is_multiple_of(k),
            "packed gemm: A's length is not a multiple of k"
        );
        let m = a.len().checked_div(k).unwrap_or(c.len() / n.max(1));
        assert_eq!(c.len(), m * n, "packed gemm: C has the wrong shape");
        if m == 0 || n == 0 {
            return;
        }
        if k == 0 {
            let zero = T::default();
            for v in c.iter_mut() {
                *v = if beta == zero { zero } else { beta * *v };
            }
            return;
        }
        let (_, nr) = blocking(self.isa, size_of::<T>());
        let panels = n.div_ceil(nr);
        let split = plan::split(pool, Work::product(Kernel::Packed, m, k, n), panels);
        let parts = split.parts();
        // Every row of `C` cut where a part's columns begin: each part is whole panels, its
        // columns of every row. Split by columns, each thread reads only its panels of `op(B)`
        // (from the shared cache, at every step of the recurrence) and uses each for all the
        // rows; split by rows, each read all of `op(B)`, and a 2 x 512 LSTM's step ran at the
        // pace of the cache. The same sums either way: the same bits.
        match pool {
            Some(pool) if parts > 1 => {
                let columns = Columns::new(c, n);
                self.in_column_parts(pool, columns, (0, panels), parts, (alpha, a, beta));
            }
            // One thread: `C` as it is, without a view of its columns.
            _ => self.rows(&mut Contiguous { c, width: n }, alpha, a, beta, 0),
        }
    }

    /// Panels `first..first + count` of `columns`, cut into `parts` runs of whole panels that
    /// run on `pool`'s threads, halving through `join` (no allocation: its jobs live on the stack).
    fn in_column_parts(
        &self,
        pool: &Threads,
        mut columns: Columns<'_, T>,
        (first, count): (usize, usize),
        parts: usize,
        (alpha, a, beta): (T, &[T], T),
    ) {
        if parts <= 1 {
            return self.rows(&mut columns, alpha, a, beta, first);
        }
        let (_, nr) = blocking(self.isa, size_of::<T>());
        let left = parts / 2;
        let at = count * left / parts;
        let (head, tail) = columns.split_at(at * nr);
        let operands = (alpha, a, beta);
        pool.join(
            || self.in_column_parts(pool, head, (first, at), left, operands),
            || self.in_column_parts(pool, tail, (first + at, count - at), parts - left, operands),
        );
    }

    /// Columns `first_panel * NR ..` of every row of `C` (`c`, its rows all as wide), from the
    /// rows of `A`.
    fn rows(&self, c: &mut impl RowsOut<T>, alpha: T, a: &[T], beta: T, first_panel: usize) {
        match self.isa {
            #[cfg(target_arch = "x86_64")]
            Isa::Avx512 => {
                // SAFETY: `rows_avx512` needs only the AVX-512F instructions. `self.isa` comes
                // from `Isa::detect`, which returns `Avx512` only when the processor reports
                // AVX-512F, or from a test that checked the same before calling `for_isa`.
                unsafe { rows_avx512(self, c, alpha, a, beta, first_panel) }
            }
            #[cfg(target_arch = "x86_64")]
            Isa::Avx2 => {
                // SAFETY: `rows_avx2` needs only AVX2 and FMA; `Isa::Avx2` is chosen only when
                // the processor reports both (as for `Avx512` above).
                unsafe { rows_avx2(self, c, alpha, a, beta, first_panel) }
            }
            _ => rows_portable::<T, { blocking(Isa::Portable, 4).0 }>(
                self,
                c,
                alpha,
                a,
                beta,
                first_panel,
            ),
        }
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
fn rows_avx512<T: MatMul>(
    packed: &Packed<T>,
    c: &mut impl RowsOut<T>,
    alpha: T,
    a: &[T],
    beta: T,
    first_panel: usize,
) {
    match size_of::<T>() {
        4 => all_rows::<T, 8, 32, true>(packed, c, alpha, a, beta, first_panel),
        _ => all_rows::<T, 8, 16, true>(packed, c, alpha, a, beta, first_panel),
    }
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
fn rows_avx2<T: MatMul>(
    packed: &Packed<T>,
    c: &mut impl RowsOut<T>,
    alpha: T,
    a: &[T],
    beta: T,
    first_panel: usize,
) {
    match size_of::<T>() {
        4 => all_rows::<T, 6, 16, true>(packed, c, alpha, a, beta, first_panel),
        _ => all_rows::<T, 6, 8, true>(packed, c, alpha, a, beta, first_panel),
    }
}

fn rows_portable<T: MatMul, const MR: usize>(
    packed: &Packed<T>,
    c: &mut impl RowsOut<T>,
    alpha: T,
    a: &[T],
    beta: T,
    first_panel: usize,
) {
    match size_of::<T>() {
        4 => all_rows::<T, MR, 8, false>(packed, c, alpha, a, beta, first_panel),
        _ => all_rows::<T, MR, 4, false>(packed, c, alpha, a, beta, first_panel),
    }
}

/// Every row of `C` in `c`: for each panel, blocks of `MR` rows, then the rows left over one
/// block of fewer rows. `FUSED` uses fused multiply-adds (only where the processor has them:
/// elsewhere `mul_add` is a slow library call).
#[inline(always)]
fn all_rows<T: MatMul, const MR: usize, const NR: usize, const FUSED: bool>(
    packed: &Packed<T>,
    c: &mut impl RowsOut<T>,
    alpha: T,
    a: &[T],
    beta: T,
    first_panel: usize,
) {
    let k = packed.k;
    debug_assert_eq!(blocking(packed.isa, size_of::<T>()).1, NR);
    let m = a.len() / k;
    // `c` is `m` rows of `ldc`: columns `first_panel * NR ..` of `C`.
    let ldc = c.width();
    debug_assert!(first_panel * NR + ldc <= packed.n);
    let mut skip = 0;
    if m == 1 {
        let data = &packed.data[first_panel * k * NR..][..ldc.div_ceil(NR) * k * NR];
        for panels in data.chunks_exact(WIDE * k * NR) {
            one_row::<T, NR, FUSED>(c, a, k, panels, skip * NR, (alpha, beta));
            skip += WIDE;
        }
    }
    let panels = packed.data.chunks_exact(k * NR).skip(first_panel);
    for (p, panel) in panels.take(ldc.div_ceil(NR)).enumerate().skip(skip) {
        let col = p * NR;
        let width = NR.min(ldc - col);
        let mut row = 0;
        while row + MR <= m {
            let acc = block::<T, MR, NR, FUSED>(&a[row * k..(row + MR) * k], k, panel);
            store(c, row, col, width, &acc, alpha, beta);
            row += MR;
        }
        macro_rules! tail {
            ($($r:literal)*) => {
                match m - row {
                    $($r if $r < MR => {
                        let acc = block::<T, $r, NR, FUSED>(&a[row * k..], k, panel);
                        store(c, row, col, width, &acc, alpha, beta);
                    })*
                    _ => {}
                }
            };
        }
        tail!(1 2 3 4 5 6 7);
    }
}

/// Panels one row of `A` multiplies at once: a row times one panel keeps only two vectors of
/// sums, each multiply-add waiting for the one before (about four cycles on current x86 cores),
/// and at batch 1 the recurrence ran at the pace of that chain rather than of the caches.
const WIDE: usize = 4;

/// The one row of `A` (`a`, `k` values) times [`WIDE`] panels (`panels`, written to columns
/// `col ..` of `c`): `WIDE` independent chains of sums, each in the order of `k` as [`block`]
/// adds them, so the same bits as one panel at a time.
#[inline(always)]
fn one_row<T: MatMul, const NR: usize, const FUSED: bool>(
    c: &mut impl RowsOut<T>,
    a: &[T],
    k: usize,
    panels: &[T],
    col: usize,
    (alpha, beta): (T, T),
) {
    assert!(
        a.len() == k && panels.len() == WIDE * k * NR,
        "packed gemm: one row out of range"
    );
    let mut acc = [[T::default(); NR]; WIDE];
    for kk in 0..k {
        // SAFETY: `kk < k == a.len()` (asserted above).
        let x = unsafe { *a.get_unchecked(kk) };
        for (g, sums) in acc.iter_mut().enumerate() {
            // SAFETY: panel `g` is the `k * NR` values from `g * k * NR` and `kk < k`, so the
            // `NR` values from `(g * k + kk) * NR` lie within `panels` (asserted above);
            // `[T; NR]` has `T`'s alignment.
            let b = unsafe { &*panels.as_ptr().add((g * k + kk) * NR).cast::<[T; NR]>() };
            for (s, &w) in sums.iter_mut().zip(b) {
                *s = madd::<T, FUSED>(x, w, *s);
            }
        }
    }
    let ldc = c.width();
    for (g, sums) in acc.iter().enumerate() {
        let first = col + g * NR;
        store(c, 0, first, NR.min(ldc - first), &[*sums], alpha, beta);
    }
}

/// `R` rows of `A` (`a`, row-major with `k` columns) times one panel: `R x NR` sums, in
/// registers.
#[inline(always)]
fn block<T: MatMul, const R: usize, const NR: usize, const FUSED: bool>(
    a: &[T],
    k: usize,
    panel: &[T],
) -> [[T; NR]; R] {
    assert!(
        a.len() >= R * k && panel.len() == k * NR,
        "packed gemm: block out of range"
    );
    let mut acc = [[T::default(); NR]; R];
    for kk in 0..k {
        // SAFETY: `kk < k` and `panel` holds `k * NR` values (asserted above), so the `NR`
        // values from `kk * NR` are in bounds; `[T; NR]` has `T`'s alignment.
        let b = unsafe { &*panel.as_ptr().add(kk * NR).cast::<[T; NR]>() };
        for (i, sums) in acc.iter_mut().enumerate() {
            // SAFETY: `i < R` and `kk < k`, and `a` holds at least `R * k` values (asserted).
            let x = unsafe { *a.get_unchecked(i * k + kk) };
            for (s, &w) in sums.iter_mut().zip(b) {
                *s = madd::<T, FUSED>(x, w, *s);
            }
        }
    }
    acc
}

/// `s + x w`: one rounding with `FUSED` (a fused multiply-add), two without.
#[inline(always)]
fn madd<T: MatMul, const FUSED: bool>(x: T, w: T, s: T) -> T {
    if FUSED {
        x.fused_mul_add(w, s)
    } else {
        s + x * w
    }
}

/// Writes `alpha * acc + beta * C` over rows `row ..` and columns `first .. first + width` of
/// `c`.
#[inline(always)]
fn store<T: MatMul, const R: usize, const NR: usize>(
    c: &mut impl RowsOut<T>,
    row: usize,
    first: usize,
    width: usize,
    acc: &[[T; NR]; R],
    alpha: T,
    beta: T,
) {
    let zero = T::default();
    for (i, sums) in acc.iter().enumerate() {
        let out = &mut c.row(row + i)[first..][..width];
        for (v, &s) in out.iter_mut().zip(sums) {
            *v = if beta == zero {
                alpha * s
            } else {
                alpha * s + beta * *v
            };
        }
    }
}

#[cfg(test)]
#[path = "packed_tests.rs"]
mod tests;
