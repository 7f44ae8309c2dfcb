//! Finite-difference gradient checking, like `torch.autograd.gradcheck`.
//!
//! Each entry `x_i` of a parameter (or of the input or initial state) is moved by `±eps` and
//! `±2 eps` and the loss recomputed; the fourth-order central difference
//!
//! ```text
//! (8 (E(x + eps) - E(x - eps)) - (E(x + 2 eps) - E(x - 2 eps))) / 12 eps
//! ```
//!
//! (truncation error `O(eps^4)`, against `O(eps^2)` for the two-point quotient, so `eps` can be
//! large enough that rounding in `E` hardly matters) is compared with the analytic gradient from
//! backward by the relative error
//!
//! ```text
//! |analytic - numeric| / max(|analytic|, |numeric|, floor)
//! ```
//!
//! The `floor` guards the denominator: for gradients far below it the error is measured relative
//! to `floor`, since the difference quotient itself carries an absolute rounding error of about
//! `ulp(E) / eps`. Run it in `f64`, on gradients before any clipping. Functions with kinks
//! (ReLU) must not have one within `2 eps` of the point.

use crate::backend::Backend;
use crate::cell::CellKernels;
use crate::error::Result;
use crate::loss::{CrossEntropy, LossKernels};
use crate::model::{Gradients, Input, Rnn, State};
use std::borrow::Borrow;

/// Step and error guard of a check.
///
/// Non-exhaustive, so that options can be added: make one with [`Options::new`] or
/// [`Options::default`], then set fields.
#[derive(Debug, Clone, Copy, PartialEq)]
#[non_exhaustive]
pub struct Options {
    /// The finite-difference step.
    pub eps: f64,
    /// The least denominator of the relative error.
    pub floor: f64,
}

impl Options {
    /// A finite-difference step `eps` and the least denominator `floor` of the relative error.
    ///
    /// ```
    /// let options = recurrent::gradcheck::Options::new(1e-4, 1e-3);
    /// assert_eq!((options.eps, options.floor), (1e-4, 1e-3));
    /// ```
    pub fn new(eps: f64, floor: f64) -> Self {
        Options { eps, floor }
    }
}

impl Default for Options {
    /// `eps = 1e-3`, `floor = 1e-3`: with losses of order 10 in `f64`, rounding in the
    /// difference quotient stays near `1e-11` absolute and truncation below that, so correct
    /// gradients show relative errors far below `1e-6` and a wrong one stands out.
    fn default() -> Self {
        Options {
            eps: 1e-3,
            floor: 1e-3,
        }
    }
}

/// The outcome of a check: how many entries were compared and the worst relative error.
/// Non-exhaustive: more may be reported later.
#[derive(Debug, Clone, PartialEq)]
#[non_exhaustive]
pub struct Report {
    /// Number of entries compared.
    pub checked: usize,
    /// The largest relative error seen (0 when nothing was checked).
    pub worst: f64,
    /// Where it was seen, e.g. `weight_hh_l0[4]`.
    pub worst_at: String,
    /// The analytic gradient at that entry.
    pub analytic: f64,
    /// The finite-difference gradient at that entry.
    pub numeric: f64,
}

impl Report {
    fn empty() -> Self {
        Report {
            checked: 0,
            worst: 0.0,
            worst_at: String::new(),
            analytic: 0.0,
            numeric: 0.0,
        }
    }

    /// Combines two reports: counts add, the worst entry is kept (a NaN error is the worst).
    pub fn merge(self, other: Report) -> Report {
        let checked = self.checked + other.checked;
        let worst = if worse(other.worst, self.worst) {
            other
        } else {
            self
        };
        Report { checked, ..worst }
    }
}

/// Whether error `a` is worse than `b`: larger, or NaN (a NaN gradient must never pass).
fn worse(a: f64, b: f64) -> bool {
    match (a.is_nan(), b.is_nan()) {
        (true, false) => true,
        (false, false) => a > b,
        _ => false,
    }
}

impl Options {
    fn check(&self) -> Result<()> {
        let fine = |v: f64| v.is_finite() && v > 0.0;
        if fine(self.eps) && fine(self.floor) {
            Ok(())
        } else {
            Err(crate::Error::config(format!(
                "gradcheck needs a finite positive eps and floor, given eps {} and floor {}",
                self.eps, self.floor
            )))
        }
    }
}

/// `|a - n| / max(|a|, |n|, floor)`.
pub fn relative_error(analytic: f64, numeric: f64, floor: f64) -> f64 {
    (analytic - numeric).abs() / analytic.abs().max(numeric.abs()).max(floor)
}

/// Checks `analytic`, the claimed gradient of `f` at `point`, entry by entry.
///
/// `name` labels the entries in the report (`name[i]`). `f` is called four times per entry with
/// `point` moved by `±eps` and `±2 eps` in that entry.
///
/// A NaN relative error (a NaN analytic or numeric gradient) is reported as the worst.
///
/// # Errors
/// Whatever `f` returns; [`Error::Shape`](crate::Error::Shape) if `analytic` and `point`
/// differ in length; [`Error::Config`](crate::Error::Config) unless `eps` and `floor` are finite
/// and positive.
pub fn check(
    name: &str,
    point: &[f64],
    analytic: &[f64],
    mut f: impl FnMut(&[f64]) -> Result<f64>,
    options: Options,
) -> Result<Report> {
    if point.len() != analytic.len() {
        return Err(crate::Error::shape(
            format!("analytic gradient of {name}"),
            point.len(),
            analytic.len(),
        ));
    }
    options.check()?;
    let mut report = Report::empty();
    let mut x = point.to_vec();
    for i in 0..x.len() {
        let original = x[i];
        let mut at = |offset: f64| {
            x[i] = original + offset;
            f(&x)
        };
        let h = options.eps;
        let near = at(h)? - at(-h)?;
        let far = at(2.0 * h)? - at(-2.0 * h)?;
        x[i] = original;
        let numeric = (8.0 * near - far) / (12.0 * h);
        let error = relative_error(analytic[i], numeric, options.floor);
        report.checked += 1;
        if worse(error, report.worst) || report.worst_at.is_empty() {
            report.worst = error;
            report.worst_at = format!("{name}[{i}]");
            report.analytic = analytic[i];
            report.numeric = numeric;
        }
    }
    Ok(report)
}

/// Checks every gradient [`Rnn::backward`] gives for `loss` on `targets`: every entry of every
/// parameter, of the dense input (if the input is dense) and of the initial state (zeros when
/// `state` is `None`). For an input with lengths the loss counts only the real steps
/// ([`Trace::mask`](crate::Trace::mask)).
///
/// # Errors
/// Any error of [`Rnn::forward`], [`CrossEntropy::forward`] or [`Rnn::backward`] on these inputs.
pub fn check_rnn<B: CellKernels<Scalar = f64> + LossKernels>(
    rnn: &Rnn<B>,
    input: &Input<B>,
    state: Option<&State<B>>,
    targets: &[usize],
    loss: impl Borrow<CrossEntropy>,
    options: Options,
) -> Result<Report> {
    let (backend, loss) = (rnn.backend(), loss.borrow());
    let state = match state {
        Some(s) => s.clone(),
        None => rnn.zero_state(input.batch()),
    };
    let loss_of = |model: &Rnn<B>, input: &Input<B>, state: &State<B>| -> Result<f64> {
        let trace = model.forward(input, Some(state))?;
        Ok(loss
            .forward_masked(backend, trace.logits(), targets, trace.mask())?
            .0)
    };
    let trace = rnn.forward(input, Some(&state))?;
    let (_, d_logits) = loss.forward_masked(backend, trace.logits(), targets, trace.mask())?;
    let grads = rnn.backward(&trace, &d_logits)?;

    let mut report = Report::empty();
    for (name, p) in rnn.parameters() {
        let analytic = backend.to_vec(grads.get(&name)?);
        let r = check(
            &name,
            &backend.to_vec(p),
            &analytic,
            |v| {
                let mut model = rnn.clone();
                model.set_parameter(&name, v.to_vec())?;
                loss_of(&model, input, &state)
            },
            options,
        )?;
        report = report.merge(r);
    }
    if let (Some(x), Some(dx)) = (input.as_dense(), grads.input()) {
        let (rows, cols) = backend.shape(x);
        let r = check(
            "input",
            &backend.to_vec(x),
            &backend.to_vec(dx),
            |v| {
                let mut moved =
                    Input::dense(backend.from_vec(rows, cols, v.to_vec())?, input.batch());
                if let Some(lengths) = input.lengths() {
                    moved = moved.with_lengths(lengths.to_vec());
                }
                loss_of(rnn, &moved, &state)
            },
            options,
        )?;
        report = report.merge(r);
    }
    let initial = check_initial_state(backend, &state, &grads, options, |moved| {
        loss_of(rnn, input, moved)
    })?;
    Ok(report.merge(initial))
}

/// The finite-difference checks of the initial state's gradient: `h` of every layer, and `c`
/// where the cell has one; `loss` is the loss from a given initial state.
fn check_initial_state<B: Backend<Scalar = f64>>(
    backend: &B,
    state: &State<B>,
    grads: &Gradients<B>,
    options: Options,
    loss: impl Fn(&State<B>) -> Result<f64>,
) -> Result<Report> {
    let mut report = Report::empty();
    let moved_state = |k: usize, is_c: bool, v: &[f64]| -> Result<State<B>> {
        let mut layers = state.clone().into_layers();
        let (rows, cols) = backend.shape(&layers[k].h);
        let moved = backend.from_vec(rows, cols, v.to_vec())?;
        match is_c {
            true => layers[k].c = Some(moved),
            false => layers[k].h = moved,
        }
        Ok(State::new(layers))
    };
    for (k, (value, d)) in state
        .layers()
        .iter()
        .zip(grads.initial_state().layers())
        .enumerate()
    {
        let mut parts = vec![(format!("h0_l{k}"), false, &value.h, &d.h)];
        if let (Some(c), Some(dc)) = (&value.c, &d.c) {
            parts.push((format!("c0_l{k}"), true, c, dc));
        }
        for (name, is_c, value, d) in parts {
            let r = check(
                &name,
                &backend.to_vec(value),
                &backend.to_vec(d),
                |v| loss(&moved_state(k, is_c, v)?),
                options,
            )?;
            report = report.merge(r);
        }
    }
    Ok(report)
}
