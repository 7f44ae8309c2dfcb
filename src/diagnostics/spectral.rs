//! The two norms of `W_hh` that decide vanishing or exploding gradients in the Elman cell.
//!
//! Going one step back through time multiplies the gradient by `W_hh^T diag(1 - h_t^2)`, and
//! `|tanh'| <= 1`, so
//!
//! ```text
//! ||dE/dh_{t-1}|| <= sigma_max(W_hh) * max|tanh'| * ||dE/dh_t|| <= sigma_max(W_hh) ||dE/dh_t||
//! ```
//!
//! A largest singular value below 1 is therefore *sufficient* for the gradient to vanish
//! geometrically (at least as fast as `sigma_max^k` over `k` steps). Conversely the spectral
//! radius `rho(W_hh) = max |eigenvalue|` is at most `sigma_max`, and `rho > 1` is *necessary*
//! for it to explode: in tanh's linear region the product of `k` Jacobians behaves like
//! `W_hh^k`, whose norm grows like `rho^k` (Pascanu, Mikolov & Bengio 2013). It is not
//! sufficient: saturated units (`|h| -> 1`) shrink the Jacobian again.
//!
//! Both estimates run in `f64` on a copy of the matrix, so they work on any backend; they are
//! meant for a weight matrix now and then, not inside a training step.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::scalar::Scalar;

/// How long an iterative estimate runs: at most `max_iterations` rounds, stopping earlier once
/// a round changes the estimate by no more than `tolerance` times itself.
///
/// Non-exhaustive, so that settings can be added: make one with [`Iteration::new`] or
/// [`Iteration::default`], then set fields.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Iteration {
    /// The most rounds to run, at least 1.
    pub max_iterations: usize,
    /// The relative change at which to stop, finite and positive.
    pub tolerance: f64,
}

impl Default for Iteration {
    /// 1000 rounds, relative tolerance `1e-10`.
    fn default() -> Self {
        Iteration {
            max_iterations: 1000,
            tolerance: 1e-10,
        }
    }
}

impl Iteration {
    /// At most `max_iterations` rounds, stopping at a relative change of `tolerance` (checked
    /// where it is used).
    ///
    /// ```
    /// let it = recurrent::diagnostics::Iteration::new(50, 1e-8);
    /// assert_eq!((it.max_iterations, it.tolerance), (50, 1e-8));
    /// ```
    pub fn new(max_iterations: usize, tolerance: f64) -> Self {
        Iteration {
            max_iterations,
            tolerance,
        }
    }

    fn check(&self) -> Result<()> {
        if self.max_iterations == 0 || !(self.tolerance.is_finite() && self.tolerance > 0.0) {
            return Err(Error::config(format!(
                "an iteration needs max_iterations >= 1 and a finite positive tolerance, given \
                 {} and {}",
                self.max_iterations, self.tolerance
            )));
        }
        Ok(())
    }

    /// Whether `new` is within the tolerance of `old`.
    fn settled(&self, old: f64, new: f64) -> bool {
        (new - old).abs() <= self.tolerance * new.abs()
    }
}

/// `m` as `(rows, cols, row-major f64 entries)`, checked non-empty and finite.
fn entries<B: Backend>(backend: &B, m: &B::Matrix, what: &str) -> Result<(usize, usize, Vec<f64>)> {
    let (rows, cols) = backend.shape(m);
    if rows == 0 || cols == 0 {
        return Err(Error::empty(format!("{what} ({rows} x {cols})")));
    }
    let data: Vec<f64> = backend.to_vec(m).into_iter().map(Scalar::to_f64).collect();
    if data.iter().any(|v| !v.is_finite()) {
        return Err(Error::NonFinite {
            what: what.to_string(),
        });
    }
    Ok((rows, cols, data))
}

/// `out = A v` for `A` (`rows x cols`, row-major), or `A^T v` when `transpose`.
fn mat_vec(a: &[f64], rows: usize, cols: usize, v: &[f64], transpose: bool, out: &mut [f64]) {
    out.fill(0.0);
    for r in 0..rows {
        let row = &a[r * cols..(r + 1) * cols];
        if transpose {
            for (o, &x) in out.iter_mut().zip(row) {
                *o += x * v[r];
            }
        } else {
            out[r] = row.iter().zip(v).map(|(x, y)| x * y).sum();
        }
    }
}

fn euclid(v: &[f64]) -> f64 {
    v.iter().map(|x| x * x).sum::<f64>().sqrt()
}

/// The largest singular value `sigma_max(W) = ||W||_2` of `w` (`m x n`, any shape), by power
/// iteration on `W^T W`.
///
/// The start vector is fixed (entries `1 + (0.618... * i mod 1)`, normalised), so the result is
/// deterministic. Each round takes `u = W v`, reads the estimate `||u||` and sets
/// `v = W^T u / ||W^T u||`; the estimate never decreases and never exceeds `sigma_max`, so after
/// `max_iterations` rounds without settling it is still a lower bound. It converges at the rate
/// `(sigma_2 / sigma_1)^2` per round; a zero matrix gives 0.
///
/// # Errors
/// [`Error::Empty`] for a matrix with no entries; [`Error::NonFinite`] if an entry is NaN or
/// infinite; [`Error::Config`] for a zero `max_iterations` or a tolerance that is not finite
/// and positive.
pub fn largest_singular_value<B: Backend>(
    backend: &B,
    w: &B::Matrix,
    options: Iteration,
) -> Result<f64> {
    options.check()?;
    let (rows, cols, a) = entries(backend, w, "matrix of largest_singular_value")?;
    const GOLDEN: f64 = 0.618_033_988_749_895;
    let mut v: Vec<f64> = (0..cols)
        .map(|i| 1.0 + (GOLDEN * i as f64).fract())
        .collect();
    let start = euclid(&v);
    v.iter_mut().for_each(|x| *x /= start);
    let mut u = vec![0.0; rows];
    let mut estimate = 0.0;
    for _ in 0..options.max_iterations {
        mat_vec(&a, rows, cols, &v, false, &mut u);
        let next = euclid(&u);
        if next == 0.0 {
            return Ok(0.0);
        }
        let settled = options.settled(estimate, next);
        estimate = next;
        if settled {
            break;
        }
        mat_vec(&a, rows, cols, &u, true, &mut v);
        let length = euclid(&v);
        v.iter_mut().for_each(|x| *x /= length);
    }
    Ok(estimate)
}

/// The spectral radius `rho(W) = max |lambda_i(W)|` of a square `w` (`n x n`), by Gelfand's
/// formula `rho = lim_k ||W^k||^(1/k)` with `k = 2, 4, 8, ...` (repeated squaring).
///
/// Each round squares the matrix and rescales it to unit Frobenius norm, keeping the scale in
/// a logarithm, so nothing overflows; the estimate after round `j` is `||W^(2^j)||_F^(1/2^j)`,
/// which is never below `rho` and exceeds it by at most a factor `n^(1/2^(j+1))` (times a
/// polynomial factor of the same kind for a defective matrix). It works for complex and
/// repeated eigenvalues alike, where plain power iteration oscillates. Each round costs one
/// `n x n` product (`2 n^3` flops); 30 to 40 rounds reach a tolerance of `1e-10`. A nilpotent
/// matrix gives 0.
///
/// # Errors
/// [`Error::Empty`] for a matrix with no entries; [`Error::Shape`] if it is not square;
/// [`Error::NonFinite`] if an entry is NaN or infinite; [`Error::Config`] as for
/// [`largest_singular_value`].
pub fn spectral_radius<B: Backend>(backend: &B, w: &B::Matrix, options: Iteration) -> Result<f64> {
    options.check()?;
    let (rows, cols, mut a) = entries(backend, w, "matrix of spectral_radius")?;
    if rows != cols {
        return Err(Error::Shape {
            what: "matrix of spectral_radius".to_string(),
            expected: "a square matrix".to_string(),
            given: format!("{rows} x {cols}"),
        });
    }
    let n = rows;
    let scale = euclid(&a);
    if scale == 0.0 {
        return Ok(0.0);
    }
    a.iter_mut().for_each(|x| *x /= scale);
    // W^(2^j) = exp(log_scale) * a, with ||a||_F = 1.
    let (mut log_scale, mut power) = (scale.ln(), 1.0f64);
    let mut estimate = scale;
    let mut square = vec![0.0; n * n];
    for _ in 0..options.max_iterations {
        square_into(&a, n, &mut square);
        let length = euclid(&square);
        if length == 0.0 {
            return Ok(0.0);
        }
        std::mem::swap(&mut a, &mut square);
        a.iter_mut().for_each(|x| *x /= length);
        log_scale = 2.0 * log_scale + length.ln();
        power *= 2.0;
        let next = (log_scale / power).exp();
        let settled = options.settled(estimate, next);
        estimate = next;
        if settled || !power.is_finite() {
            break;
        }
    }
    Ok(estimate)
}

/// `out = a a` for `a` (`n x n`, row-major).
fn square_into(a: &[f64], n: usize, out: &mut [f64]) {
    out.fill(0.0);
    for i in 0..n {
        for k in 0..n {
            let aik = a[i * n + k];
            let (row_out, row_k) = (&mut out[i * n..(i + 1) * n], &a[k * n..(k + 1) * n]);
            for (o, &x) in row_out.iter_mut().zip(row_k) {
                *o += aik * x;
            }
        }
    }
}
