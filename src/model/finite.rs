//! Finding the first NaN or infinity: in a model's weights, an input, a state, a forward pass
//! or a backward pass, named precisely enough to act on.
//!
//! Every check returns [`Error::NonFinite`] whose `what` says where the first offending entry
//! is and what it holds, e.g. `layer 1 (reverse) hidden state h at step 3, batch row 0 (unit 2
//! is NaN)` or `gradient of weight_hh_l0 (entry [4, 1] is inf)`. "First" follows the order in
//! which the numbers were computed: the input and the initial state, then the layers from the
//! bottom up (each direction in turn: the earliest step at which its cell vector `c` or its
//! hidden state `h` is not finite, `c` first at one step), then the logits. A backward direction
//! computes from the last step back, so its first step computed is the latest in time; steps
//! are always named in time order.
//!
//! A matrix is first tested whole by the backend ([`Backend::all_finite`], one pass without
//! copying, vectorised on [`Cpu`](crate::Cpu)); only one that fails is read entry by entry.

use super::Rnn;
use super::data::{Input, State};
use super::trace::{Gradients, Trace};
use crate::backend::Backend;
use crate::error::{Error, Result};
use num_traits::Float;

/// The first NaN or infinite entry of `m` (row-major): `(row, column, value)`.
pub(crate) fn first_non_finite<B: Backend>(
    backend: &B,
    m: &B::Matrix,
) -> Option<(usize, usize, B::Scalar)> {
    if backend.all_finite(m) {
        return None;
    }
    let cols = backend.shape(m).1;
    let data = backend.to_vec(m);
    let index = data.iter().position(|v| !v.is_finite())?;
    Some((index / cols, index % cols, data[index]))
}

/// Checks a matrix that is not a sequence (a parameter, a gradient of one): the error names
/// `what()` (only called on error) and the entry.
pub(crate) fn check_matrix<B: Backend>(
    backend: &B,
    what: impl FnOnce() -> String,
    m: &B::Matrix,
) -> Result<()> {
    match first_non_finite(backend, m) {
        None => Ok(()),
        Some((row, col, value)) => Err(Error::NonFinite {
            what: format!("{} (entry [{row}, {col}] is {value})", what()),
        }),
    }
}

/// Checks a time-major sequence matrix (`T*B` rows, batch `batch`, in time order): the error
/// names `what`, the step, the batch row and the column (`column` says what a column is).
fn check_sequence<B: Backend>(
    backend: &B,
    what: &str,
    column: &str,
    m: &B::Matrix,
    batch: usize,
) -> Result<()> {
    match first_non_finite(backend, m) {
        None => Ok(()),
        Some((row, col, value)) => Err(Error::NonFinite {
            what: format!(
                "{what} at step {}, batch row {} ({column} {col} is {value})",
                row / batch,
                row % batch
            ),
        }),
    }
}

/// `layer 1`, or `layer 0 (reverse)` for a backward direction.
fn layer_name(index: usize, directions: usize) -> String {
    match index % directions {
        0 => format!("layer {}", index / directions),
        _ => format!("layer {} (reverse)", index / directions),
    }
}

/// Checks one state per layer and direction, `h` then `c`, naming the layer, the direction
/// and the batch row.
fn check_states<'a, B: Backend + 'a>(
    backend: &B,
    what: &str,
    states: impl Iterator<Item = &'a crate::cell::CellState<B>>,
    directions: usize,
) -> Result<()> {
    for (index, state) in states.enumerate() {
        let layer = layer_name(index, directions);
        let parts = std::iter::once(("h", &state.h)).chain(state.c.as_ref().map(|c| ("c", c)));
        for (name, m) in parts {
            if let Some((row, col, value)) = first_non_finite(backend, m) {
                return Err(Error::NonFinite {
                    what: format!(
                        "{what} {name} of {layer}, batch row {row} (unit {col} is {value})"
                    ),
                });
            }
        }
    }
    Ok(())
}

impl<B: Backend> Rnn<B> {
    /// Checks every parameter for a NaN or infinity, in `state_dict()` order.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first parameter and entry that is not finite, e.g.
    /// `parameter out.weight (entry [3, 0] is NaN)`.
    pub fn check_finite(&self) -> Result<()> {
        for (name, m) in self.params.named() {
            check_matrix(&self.backend, || format!("parameter {name}"), m)?;
        }
        Ok(())
    }
}

impl<B: Backend> Input<B> {
    /// Checks a dense input for a NaN or infinity (token ids are always finite).
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first step, batch row and column that is not finite,
    /// e.g. `input at step 2, batch row 1 (column 0 is NaN)`.
    pub fn check_finite(&self, backend: &B) -> Result<()> {
        match self.as_dense() {
            Some(x) => check_sequence(backend, "input", "column", x, self.batch().max(1)),
            None => Ok(()),
        }
    }
}

impl<B: Backend> State<B> {
    /// Checks every layer's `h` (and `c`) for a NaN or infinity. `directions` (1 or 2) is the
    /// model's, so that entry `k` is named as layer `k / directions`, reverse when `k` is odd
    /// in a bidirectional model.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first layer, direction, part and batch row that is not
    /// finite, e.g. `state c of layer 1, batch row 0 (unit 3 is inf)`.
    pub fn check_finite(&self, backend: &B, directions: usize) -> Result<()> {
        check_states(backend, "state", self.layers().iter(), directions.max(1))
    }
}

impl<B: Backend> Trace<B> {
    /// Checks a forward pass for a NaN or infinity and names where it first appeared: the
    /// dense input, the initial state, a layer's cell vector `c` or hidden state `h` (layers
    /// from the bottom up, each direction in turn, the earliest step computed), or the logits.
    ///
    /// The LSTM's cell vector is checked in the final state and, only when that is not finite,
    /// step by step: once `c` is NaN or infinite it stays so (`c' = f c + i g` with `f > 0`;
    /// `f = 0` turns an infinity into NaN), so a finite final `c` proves every step finite.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the place, e.g. `layer 0 cell state c at step 4, batch row 1
    /// (unit 0 is inf)` or `logits at step 0, batch row 0 (class 2 is NaN)`.
    pub fn check_finite(&self, backend: &B) -> Result<()> {
        let batch = self.batch().max(1);
        self.input.check_finite(backend)?;
        let directions = self.records.first().map_or(1, |r| r.directions().count());
        let initial = self.records.iter().flat_map(|r| r.directions());
        check_states(
            backend,
            "initial state",
            initial.map(|t| t.initial_state()),
            directions,
        )?;
        for (layer, record) in self.records.iter().enumerate() {
            for (dir, trace) in record.directions().enumerate() {
                let name = layer_name(layer * directions + dir, directions);
                let order = if dir == 1 {
                    self.reversal.as_deref()
                } else {
                    None
                };
                check_layer(backend, &name, trace, order)?;
            }
        }
        check_sequence(backend, "logits", "class", &self.logits, batch)
    }
}

/// A NaN or infinity in a sequence: at which step (in the order computed), batch row and unit,
/// and its value.
struct Found<T> {
    step: usize,
    row: usize,
    unit: usize,
    value: T,
}

/// One layer and direction of a trace: the earliest step (in the order computed) at which its
/// `c` or its `h` is not finite, `c` first at the same step.
fn check_layer<B: Backend>(
    backend: &B,
    name: &str,
    trace: &crate::bptt::LayerTrace<B>,
    order: Option<&[usize]>,
) -> Result<()> {
    let batch = trace.batch().max(1);
    let h = first_non_finite(backend, trace.output()).map(|(row, unit, value)| Found {
        step: row / batch,
        row: row % batch,
        unit,
        value,
    });
    let c = first_bad_cell(backend, trace)?;
    let (what, found) = match (c, h) {
        (Some(c), Some(h)) if h.step < c.step => ("hidden state h", h),
        (Some(c), _) => ("cell state c", c),
        (None, Some(h)) => ("hidden state h", h),
        (None, None) => return Ok(()),
    };
    // The row this direction computed at that step, in time order.
    let stored = found.step * batch + found.row;
    let time = order.map_or(stored, |o| o[stored]) / batch;
    Err(Error::NonFinite {
        what: format!(
            "{name} {what} at step {time}, batch row {} (unit {} is {})",
            found.row, found.unit, found.value
        ),
    })
}

/// The LSTM's `c`: the first entry that is not finite, in the order computed; `None` for
/// other cells or when the final `c` is finite (see [`Trace::check_finite`]).
fn first_bad_cell<B: Backend>(
    backend: &B,
    trace: &crate::bptt::LayerTrace<B>,
) -> Result<Option<Found<B::Scalar>>> {
    let Some(c) = &trace.final_state().c else {
        return Ok(None);
    };
    if first_non_finite(backend, c).is_none() {
        return Ok(None);
    }
    for step in 0..trace.steps() {
        let state = trace.state_at(backend, step)?;
        let c = state.c.as_ref().expect("an LSTM state has c");
        if let Some((row, unit, value)) = first_non_finite(backend, c) {
            return Ok(Some(Found {
                step,
                row,
                unit,
                value,
            }));
        }
    }
    Ok(None)
}

impl<B: Backend> Gradients<B> {
    /// Checks the parameter gradients, in `state_dict()` order, for a NaN or infinity.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first parameter and entry that is not finite, e.g.
    /// `gradient of weight_hh_l0 (entry [4, 1] is NaN)`.
    pub fn check_finite_params(&self) -> Result<()> {
        for (name, g) in self.params.named() {
            check_matrix(&self.backend, || format!("gradient of {name}"), g)?;
        }
        Ok(())
    }

    /// Checks every gradient: the parameters (as
    /// [`check_finite_params`](Gradients::check_finite_params)), then the dense input's, then
    /// the initial state's.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first gradient and entry that is not finite.
    pub fn check_finite(&self) -> Result<()> {
        self.check_finite_params()?;
        if let Some(dx) = &self.input {
            check_matrix(&self.backend, || "gradient of the input".into(), dx)?;
        }
        let directions = self.params.directions;
        let states = self.initial_state.layers().iter();
        check_states(
            &self.backend,
            "gradient of the initial state",
            states,
            directions,
        )
    }
}

#[cfg(test)]
mod tests {
    use crate::{Backend, NaiveCpu, Rnn, RnnConfig};
    use rand::SeedableRng;

    /// No public path puts a NaN into a model's weights; the check is there for one that does.
    #[test]
    fn a_nan_weight_is_named() {
        let mut rng = rand::rngs::StdRng::seed_from_u64(0);
        let config = RnnConfig::gru(3, 2).layers(2).bidirectional(true).output(3);
        let mut rnn = Rnn::new(NaiveCpu::<f64>::default(), config, &mut rng).unwrap();
        rnn.check_finite().unwrap();
        let backend = *rnn.backend();
        let slot = rnn.params_mut().get_mut("bias_hh_l1_reverse").unwrap();
        let mut data = backend.to_vec(slot);
        data[4] = f64::NAN;
        *slot = backend.from_vec(1, 6, data).unwrap();
        let message = rnn.check_finite().unwrap_err().to_string();
        let want = "parameter bias_hh_l1_reverse (entry [0, 4] is NaN) holds a NaN";
        assert!(message.starts_with(want), "{message}");
    }
}
