//! A row-major matrix in host memory, the storage of the CPU backends, and the spare buffers
//! its large allocations are reused from.

use crate::error::{Error, Result};

/// A row-major `rows x cols` matrix held in a `Vec`.
///
/// This is the `Matrix` type of the CPU backends. Its length always equals `rows * cols`.
///
/// Large `f32` and `f64` matrices (128 KiB and up) reuse memory: when one is dropped, its buffer
/// is kept for the thread's next matrix of about that size (see [`release_spare_buffers`] for the
/// limits). A
/// training step allocates its traces and gradients anew at every call, and without this the
/// system allocator handed those blocks back to the kernel and took them again with a page
/// fault per 4 KiB, up to half the time of a batch-32 step (`BENCHMARKS.md`).
#[derive(Debug, PartialEq)]
pub struct DenseMatrix<T: Copy + 'static> {
    rows: usize,
    cols: usize,
    data: Vec<T>,
}

impl<T: Copy + Default + 'static> Clone for DenseMatrix<T> {
    fn clone(&self) -> Self {
        let mut data = spare::take_empty(self.data.len());
        data.extend_from_slice(&self.data);
        DenseMatrix {
            rows: self.rows,
            cols: self.cols,
            data,
        }
    }
}

impl<T: Copy + 'static> Drop for DenseMatrix<T> {
    fn drop(&mut self) {
        spare::give(std::mem::take(&mut self.data));
    }
}

impl<T: Copy + Default + 'static> DenseMatrix<T> {
    /// A `rows x cols` matrix of `T::default()` (zero for floats).
    ///
    /// # Panics
    /// If `rows * cols` overflows `usize`, or the allocation fails.
    pub fn zeros(rows: usize, cols: usize) -> Self {
        let data = spare::take(checked_len("zeros", rows, cols));
        DenseMatrix { rows, cols, data }
    }

    /// A `rows x cols` matrix whose values are unspecified: in a kept buffer (see
    /// [`DenseMatrix`]) as its last matrix left it, where one fits, `T::default()` past its
    /// end, and `T::default()` everywhere in a new one. For an output its writer fills whole
    /// ([`Backend::empty`](crate::Backend::empty)).
    ///
    /// # Panics
    /// As [`zeros`](DenseMatrix::zeros).
    pub fn reused(rows: usize, cols: usize) -> Self {
        let data = spare::take_stale(checked_len("reused", rows, cols));
        DenseMatrix { rows, cols, data }
    }

    /// A matrix from row-major `data`.
    ///
    /// # Errors
    /// [`Error::Shape`] if `data.len() != rows * cols` (or `rows * cols` overflows `usize`).
    pub fn from_vec(rows: usize, cols: usize, data: Vec<T>) -> Result<Self> {
        if rows.checked_mul(cols) != Some(data.len()) {
            let expected = match rows.checked_mul(cols) {
                Some(n) => n.to_string(),
                None => format!("{rows} * {cols}, more than usize holds"),
            };
            return Err(Error::Shape {
                what: format!("matrix data for a {rows} x {cols} matrix"),
                expected,
                given: data.len().to_string(),
            });
        }
        Ok(DenseMatrix { rows, cols, data })
    }

    /// Number of rows.
    pub fn rows(&self) -> usize {
        self.rows
    }

    /// Number of columns.
    pub fn cols(&self) -> usize {
        self.cols
    }

    /// `(rows, cols)`.
    pub fn shape(&self) -> (usize, usize) {
        (self.rows, self.cols)
    }

    /// The elements, row-major.
    pub fn as_slice(&self) -> &[T] {
        &self.data
    }

    /// The elements, row-major, mutable.
    pub fn as_mut_slice(&mut self) -> &mut [T] {
        &mut self.data
    }

    /// Row `r` as a slice.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row(&self, r: usize) -> &[T] {
        self.check_row("row", r);
        &self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Row `r` as a mutable slice.
    ///
    /// # Panics
    /// If `r >= rows`.
    pub fn row_mut(&mut self, r: usize) -> &mut [T] {
        self.check_row("row_mut", r);
        &mut self.data[r * self.cols..(r + 1) * self.cols]
    }

    /// Element `(r, c)`.
    ///
    /// # Panics
    /// If `r >= rows` or `c >= cols` (a column past the end is not read from the next row).
    pub fn get(&self, r: usize, c: usize) -> T {
        self.check_row("get", r);
        assert!(
            c < self.cols,
            "DenseMatrix::get: column {c} of a {} x {} matrix",
            self.rows,
            self.cols
        );
        self.data[r * self.cols + c]
    }

    fn check_row(&self, op: &str, r: usize) {
        assert!(
            r < self.rows,
            "DenseMatrix::{op}: row {r} of a {} x {} matrix",
            self.rows,
            self.cols
        );
    }

    /// Consumes the matrix, returning its row-major elements.
    pub fn into_vec(mut self) -> Vec<T> {
        std::mem::take(&mut self.data)
    }
}

/// `rows * cols`, or a panic naming `DenseMatrix::{op}` if it overflows `usize`.
fn checked_len(op: &str, rows: usize, cols: usize) -> usize {
    rows.checked_mul(cols)
        .unwrap_or_else(|| panic!("DenseMatrix::{op}: {rows} x {cols} overflows usize"))
}

/// Frees the buffers the calling thread keeps for reuse by later large matrices (see
/// [`DenseMatrix`]): per thread and element type at most 64 of them and 1 GiB, each of 128 KiB or
/// more, the most recently freed. Other threads' buffers (a pool's workers') stay theirs.
pub fn release_spare_buffers() {
    spare::release();
}

/// An empty vector with room for `n` elements, in a kept buffer if one fits: for a large
/// matrix's elements that are written one by one and handed to [`DenseMatrix::from_vec`], which
/// would otherwise come fresh from the system, a page fault per 4 KiB.
pub(crate) fn spare_vec<T: Copy + 'static>(n: usize) -> Vec<T> {
    spare::take_empty(n)
}

/// The spare buffers: per thread and per element type (`f32`, `f64`), so that no lock is taken.
mod spare {
    use std::any::Any;
    use std::cell::RefCell;

    /// Buffers smaller than this come from the system allocator, which serves them from its heap.
    const MIN_BYTES: usize = 128 << 10;
    /// At most this many buffers are kept per thread and type ...
    const MAX_BUFFERS: usize = 64;
    /// ... holding at most this many bytes.
    const MAX_BYTES: usize = 1 << 30;

    struct Pool<T> {
        buffers: Vec<Vec<T>>,
        bytes: usize,
    }

    impl<T> Pool<T> {
        const fn new() -> Self {
            Pool {
                buffers: Vec::new(),
                bytes: 0,
            }
        }

        /// Keeps `buffer`, dropping the oldest kept ones if over the limits (a buffer larger
        /// than all the pool may hold is dropped itself, not kept at the others' expense).
        fn keep(&mut self, buffer: Vec<T>) {
            if buffer.capacity() * size_of::<T>() > MAX_BYTES {
                return;
            }
            self.bytes += buffer.capacity() * size_of::<T>();
            self.buffers.push(buffer);
            while self.buffers.len() > MAX_BUFFERS || self.bytes > MAX_BYTES {
                let old = self.buffers.remove(0);
                self.bytes -= old.capacity() * size_of::<T>();
            }
        }

        /// The smallest kept buffer that holds `n` elements without being more than twice that.
        fn find(&mut self, n: usize) -> Option<Vec<T>> {
            let (index, _) = self
                .buffers
                .iter()
                .enumerate()
                .filter(|(_, b)| b.capacity() >= n && b.capacity() <= 2 * n)
                .min_by_key(|(_, b)| b.capacity())?;
            // `remove`, not `swap_remove`: the buffers stay oldest first, for `keep`'s eviction.
            let buffer = self.buffers.remove(index);
            self.bytes -= buffer.capacity() * size_of::<T>();
            Some(buffer)
        }
    }

    thread_local! {
        static F32: RefCell<Pool<f32>> = const { RefCell::new(Pool::new()) };
        static F64: RefCell<Pool<f64>> = const { RefCell::new(Pool::new()) };
    }

    /// Runs `f` on this thread's pool for `T` if `T` is `f32` or `f64` and the pool is still
    /// there (not during the thread's teardown); `slot` carries a buffer in or out.
    fn with_pool<T: 'static>(
        slot: &mut Option<Vec<T>>,
        f32s: impl FnOnce(&mut Pool<f32>, &mut Option<Vec<f32>>),
        f64s: impl FnOnce(&mut Pool<f64>, &mut Option<Vec<f64>>),
    ) {
        let any = slot as &mut dyn Any;
        if let Some(slot) = any.downcast_mut::<Option<Vec<f32>>>() {
            let _ = F32.try_with(|p| f32s(&mut p.borrow_mut(), slot));
        } else if let Some(slot) = any.downcast_mut::<Option<Vec<f64>>>() {
            let _ = F64.try_with(|p| f64s(&mut p.borrow_mut(), slot));
        }
    }

    /// `n` elements of `T::default()`, in a kept buffer if one fits.
    pub fn take<T: Copy + Default + 'static>(n: usize) -> Vec<T> {
        let mut buffer = take_empty(n);
        buffer.resize(n, T::default());
        buffer
    }

    /// `n` elements: a kept buffer's as they were, if one fits, with `T::default()` past its
    /// old length; otherwise `n` of `T::default()`.
    pub fn take_stale<T: Copy + Default + 'static>(n: usize) -> Vec<T> {
        let mut buffer = take_kept(n).unwrap_or_default();
        if buffer.len() >= n {
            buffer.truncate(n);
        } else {
            buffer.resize(n, T::default());
        }
        buffer
    }

    /// An empty vector with room for `n` elements: a kept buffer if one fits.
    pub fn take_empty<T: Copy + 'static>(n: usize) -> Vec<T> {
        match take_kept(n) {
            Some(mut buffer) => {
                buffer.clear();
                buffer
            }
            None => Vec::with_capacity(n),
        }
    }

    /// A kept buffer with room for `n` elements, its old elements still in it, if one fits
    /// (none for a small `n`: those come from the system allocator).
    fn take_kept<T: Copy + 'static>(n: usize) -> Option<Vec<T>> {
        if n * size_of::<T>() < MIN_BYTES {
            return None;
        }
        let mut slot: Option<Vec<T>> = None;
        with_pool(
            &mut slot,
            |pool, slot| *slot = pool.find(n),
            |pool, slot| *slot = pool.find(n),
        );
        slot
    }

    /// Keeps `buffer` for a later [`take`] if it is large enough (else frees it).
    pub fn give<T: 'static>(buffer: Vec<T>) {
        if buffer.capacity() * size_of::<T>() < MIN_BYTES {
            return;
        }
        let mut slot = Some(buffer);
        with_pool(
            &mut slot,
            |pool, slot| pool.keep(slot.take().expect("a buffer")),
            |pool, slot| pool.keep(slot.take().expect("a buffer")),
        );
    }

    /// How many `f32` buffers this thread keeps.
    #[cfg(test)]
    pub fn kept_f32() -> usize {
        F32.with(|p| p.borrow().buffers.len())
    }

    /// Frees this thread's kept buffers.
    pub fn release() {
        let _ = F32.try_with(|p| *p.borrow_mut() = Pool::new());
        let _ = F64.try_with(|p| *p.borrow_mut() = Pool::new());
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A reused buffer comes back as zeros, clones copy, and release empties the pool.
    #[test]
    fn reused_buffers_are_zeroed_and_clones_equal() {
        let n = 1 << 16; // 256 KiB of f32: reused
        release_spare_buffers();
        drop(DenseMatrix::<f32>::zeros(1, n));
        assert_eq!(
            spare::kept_f32(),
            1,
            "a large matrix's buffer is kept when dropped"
        );
        let taken = DenseMatrix::<f32>::zeros(1, n);
        assert_eq!(spare::kept_f32(), 0, "and taken by the next of its size");
        drop(taken);
        drop(DenseMatrix::<f32>::zeros(1, 1000)); // small: not kept
        assert_eq!(spare::kept_f32(), 1);
        for _ in 0..3 {
            let mut m = DenseMatrix::<f32>::zeros(1, n);
            assert!(m.as_slice().iter().all(|&v| v == 0.0));
            m.as_mut_slice().fill(7.0);
            let copy = m.clone();
            assert_eq!(copy, m);
        }
        // A smaller request reuses a buffer of up to twice its size, still zeroed.
        let m = DenseMatrix::<f64>::zeros(3, n);
        drop(m);
        let smaller = DenseMatrix::<f64>::zeros(2, n);
        assert_eq!(smaller.as_slice().len(), 2 * n);
        assert!(smaller.as_slice().iter().all(|&v| v == 0.0));
        release_spare_buffers();
        assert_eq!(spare::kept_f32(), 0);
    }

    /// `reused` leaves a kept buffer's values as they were, zeros past its old length, and a
    /// new or small matrix zero.
    #[test]
    fn reused_buffers_keep_their_values_unwritten() {
        let n = 1 << 16;
        release_spare_buffers();
        let fresh = DenseMatrix::<f32>::reused(2, n);
        assert!(fresh.as_slice().iter().all(|&v| v == 0.0));
        drop(fresh);
        let mut m = DenseMatrix::<f32>::reused(2, n);
        assert_eq!(spare::kept_f32(), 0, "the dropped buffer was taken");
        m.as_mut_slice().fill(7.0);
        drop(m);
        let same = DenseMatrix::<f32>::reused(2, n);
        assert_eq!(same.shape(), (2, n));
        assert!(
            same.as_slice().iter().all(|&v| v == 7.0),
            "not written again"
        );
        drop(same);
        let shorter = DenseMatrix::<f32>::reused(1, n + 8);
        assert_eq!(shorter.as_slice().len(), n + 8);
        drop(shorter); // its buffer still holds 2n, of which the first n + 8 are kept as length
        let longer = DenseMatrix::<f32>::reused(1, 2 * n);
        assert!(longer.as_slice()[..n + 8].iter().all(|&v| v == 7.0));
        assert!(longer.as_slice()[n + 8..].iter().all(|&v| v == 0.0));
        let small = DenseMatrix::<f32>::reused(3, 5);
        assert_eq!(small.as_slice(), &[0.0; 15]);
        release_spare_buffers();
    }

    /// Reads past an edge panic with the method's name and the shape; a column past the end
    /// is not taken from the next row.
    #[test]
    fn out_of_range_reads_panic_with_the_shape() {
        let m = DenseMatrix::from_vec(2, 3, vec![0.0f64, 1.0, 2.0, 3.0, 4.0, 5.0]).unwrap();
        assert_eq!((m.row(1), m.get(1, 2)), (&[3.0, 4.0, 5.0][..], 5.0));
        let message = |f: &dyn Fn()| {
            let err = std::panic::catch_unwind(std::panic::AssertUnwindSafe(f)).unwrap_err();
            err.downcast_ref::<String>().cloned().unwrap_or_default()
        };
        assert_eq!(
            message(&|| {
                m.get(0, 3);
            }),
            "DenseMatrix::get: column 3 of a 2 x 3 matrix"
        );
        assert_eq!(
            message(&|| {
                m.get(2, 0);
            }),
            "DenseMatrix::get: row 2 of a 2 x 3 matrix"
        );
        assert_eq!(
            message(&|| {
                m.row(2);
            }),
            "DenseMatrix::row: row 2 of a 2 x 3 matrix"
        );
        let mut m = m;
        let text = message(&|| {
            m.clone().row_mut(5);
        });
        assert_eq!(text, "DenseMatrix::row_mut: row 5 of a 2 x 3 matrix");
        m.row_mut(0)[0] = 9.0;
        assert_eq!(
            message(&|| {
                DenseMatrix::<f32>::zeros(usize::MAX, 2);
            }),
            format!("DenseMatrix::zeros: {} x 2 overflows usize", usize::MAX)
        );
    }

    /// A shape whose element count overflows is an `Err`, not a wrapped count that happens to
    /// match the data.
    #[test]
    fn from_vec_refuses_an_overflowing_shape() {
        let big = 1usize << (usize::BITS / 2);
        // big * big wraps to 0 in release arithmetic: it must not pass for an empty matrix.
        let err = DenseMatrix::<f64>::from_vec(big, big, Vec::new()).unwrap_err();
        let text = err.to_string();
        assert!(text.contains("more than usize holds"), "{text}");
        assert!(DenseMatrix::<f64>::from_vec(2, 3, vec![0.0; 5]).is_err());
    }
}
