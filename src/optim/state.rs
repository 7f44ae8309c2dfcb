//! What the optimisers share: the step count, the per-parameter state buffers created on the
//! first step, the update loop over a model's parameters, and the state dict in and out.

use super::UpdateRule;
use super::{Optimizer, UpdateKernels};
use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::io::{StateDict, Tensor, dtype_of, is_bias, torch_shape};
use crate::model::finite::check_matrix;
use crate::model::{Gradients, Rnn};
use crate::params::Params;
use crate::scalar::Scalar;
use num_traits::Float;
use std::collections::BTreeMap;

/// The hyperparameters of one optimiser: how they become an [`UpdateRule`] and a state dict's
/// metadata.
pub(crate) trait Hyper: Copy + std::fmt::Debug {
    /// The optimiser's name in a state dict (`optimizer` metadata) and in messages.
    const NAME: &'static str;

    /// The rule of update number `step` (from 1).
    fn rule(&self, step: u64) -> UpdateRule;

    /// The value every state buffer starts from.
    fn initial_state(&self) -> f64 {
        0.0
    }

    /// The learning rate.
    fn lr(&self) -> f64;

    /// The learning rate, mutable.
    fn lr_mut(&mut self) -> &mut f64;

    /// Every hyperparameter by its PyTorch name.
    fn to_metadata(&self) -> Vec<(&'static str, String)>;

    /// The hyperparameters from a state dict's metadata, validated as the builders validate.
    fn from_metadata(meta: &Metadata) -> Result<Self>;
}

/// The per-parameter buffers of a started optimiser, by parameter name, on the model's backend.
#[derive(Debug, Clone)]
struct Slots<B: Backend> {
    backend: B,
    names: Vec<String>,
    buffers: Vec<Vec<B::Matrix>>,
}

impl<B: Backend> Slots<B> {
    /// `count` buffers of every parameter's shape, filled with `value`.
    fn new(backend: &B, params: &Params<B>, count: usize, value: f64) -> Self {
        let filled = |m: &B::Matrix| {
            let (rows, cols) = backend.shape(m);
            if value == 0.0 {
                backend.zeros(rows, cols)
            } else {
                let data = vec![B::Scalar::of(value); rows * cols];
                backend
                    .from_vec(rows, cols, data)
                    .expect("rows * cols values")
            }
        };
        Slots {
            backend: backend.clone(),
            names: params.named().into_iter().map(|(n, _)| n).collect(),
            buffers: params
                .matrices()
                .map(|m| (0..count).map(|_| filled(m)).collect())
                .collect(),
        }
    }

    /// Checks that the buffers were made for parameters of `params`' names and shapes.
    fn check(&self, params: &Params<B>) -> Result<()> {
        let named = params.named();
        let names: Vec<&str> = named.iter().map(|(n, _)| n.as_str()).collect();
        if names != self.names {
            return Err(Error::shape(
                "optimizer state: parameter names",
                &self.names,
                names,
            ));
        }
        for ((name, m), buffers) in named.iter().zip(&self.buffers) {
            let want = self.backend.shape(m);
            if let Some(b) = buffers.iter().find(|b| self.backend.shape(b) != want) {
                let what = format!("optimizer state of {name}");
                return Err(Error::shape(what, self.backend.shape(b), want));
            }
        }
        Ok(())
    }
}

/// An optimiser: its hyperparameters, its step count and, once it has stepped, its buffers.
#[derive(Debug, Clone)]
pub(crate) struct Engine<H: Hyper, B: Backend> {
    pub(crate) hyper: H,
    step: u64,
    slots: Option<Slots<B>>,
}

impl<H: Hyper, B: Backend> Engine<H, B> {
    pub(crate) fn new(hyper: H) -> Self {
        Engine {
            hyper,
            step: 0,
            slots: None,
        }
    }

    /// Replaces the hyperparameters with `change(hyper)`, validated, before the first step.
    ///
    /// # Errors
    /// [`Error::Config`] once the optimiser has state (its buffers follow the hyperparameters),
    /// or what `change` returns.
    pub(crate) fn configure(
        mut self,
        what: &str,
        change: impl FnOnce(H) -> Result<H>,
    ) -> Result<Self> {
        if self.slots.is_some() {
            return Err(Error::config(format!(
                "{}: {what} can only be set before the first step (only the learning rate \
                 changes later)",
                H::NAME
            )));
        }
        self.hyper = change(self.hyper)?;
        Ok(self)
    }
}

impl<H: Hyper, B: UpdateKernels> Optimizer<B> for Engine<H, B> {
    fn step(&mut self, rnn: &mut Rnn<B>, grads: &Gradients<B>) -> Result<()> {
        let backend = rnn.backend().clone();
        rnn.params().check_matches(&backend, grads.params())?;
        if let Some(slots) = &self.slots {
            slots.check(rnn.params())?;
        }
        grads.check_finite_params()?;
        let rule = self.hyper.rule(self.step + 1);
        let (params, buffers) = self.updated(rnn, grads, &rule)?;
        // Checked and computed: from here on nothing fails.
        for (p, new) in rnn.params_mut().matrices_mut().zip(params) {
            *p = new;
        }
        let slots = self.slots.get_or_insert_with(|| Slots {
            backend: backend.clone(),
            names: rnn.params().named().into_iter().map(|(n, _)| n).collect(),
            buffers: vec![],
        });
        slots.buffers = buffers;
        self.step += 1;
        Ok(())
    }

    fn lr(&self) -> f64 {
        self.hyper.lr()
    }

    fn set_lr(&mut self, lr: f64) -> Result<()> {
        *self.hyper.lr_mut() = super::check::learning_rate(H::NAME, lr)?;
        Ok(())
    }

    fn step_count(&self) -> u64 {
        self.step
    }

    fn state_dict(&self) -> StateDict {
        let mut dict = StateDict::new();
        dict.set_metadata("format", "pt");
        dict.set_metadata("optimizer", H::NAME);
        dict.set_metadata("step", self.step.to_string());
        for (key, value) in self.hyper.to_metadata() {
            dict.set_metadata(key, value);
        }
        let Some(slots) = &self.slots else {
            return dict;
        };
        let buffer_names = self.hyper.rule(self.step.max(1)).state_names();
        for (name, buffers) in slots.names.iter().zip(&slots.buffers) {
            for (buffer, m) in buffer_names.iter().zip(buffers) {
                let shape = torch_shape(name, slots.backend.shape(m));
                let data = slots.backend.to_vec(m).into_iter();
                let data = data.map(Scalar::to_f64).collect();
                let tensor = Tensor::float(dtype_of::<B::Scalar>(), shape, data)
                    .expect("shape from the matrix");
                dict.insert(format!("{name}.{buffer}"), tensor);
            }
        }
        dict
    }

    fn load_state_dict(&mut self, rnn: &Rnn<B>, dict: &StateDict) -> Result<()> {
        let meta = Metadata(dict.metadata());
        match meta.get("optimizer")? {
            name if name == H::NAME => {}
            name => {
                return Err(Error::config(format!(
                    "{}: the state dict is of another optimizer, {name:?}",
                    H::NAME
                )));
            }
        }
        let hyper = H::from_metadata(&meta)?;
        let step = meta.u64("step")?;
        let slots = match step {
            0 => check_no_tensors(dict).map(|()| None)?,
            _ => Some(read_slots(rnn, dict, hyper.rule(step).state_names())?),
        };
        *self = Engine { hyper, step, slots };
        Ok(())
    }
}

/// The new parameters, in [`Params::matrices`] order, and the new buffers of each.
type Updated<B> = (
    Vec<<B as Backend>::Matrix>,
    Vec<Vec<<B as Backend>::Matrix>>,
);

impl<H: Hyper, B: UpdateKernels> Engine<H, B> {
    /// The parameters and buffers after update `rule`, computed on copies: the model and the
    /// optimiser are not touched, so that an update that overflows leaves both as they were.
    ///
    /// # Errors
    /// [`Error::NonFinite`] naming the first parameter (or buffer) that the update would turn
    /// into a NaN or infinity.
    fn updated(&self, rnn: &Rnn<B>, grads: &Gradients<B>, rule: &UpdateRule) -> Result<Updated<B>> {
        let backend = rnn.backend();
        let mut buffers = match &self.slots {
            Some(slots) => slots.buffers.clone(),
            None => {
                let (count, init) = (rule.state_names().len(), self.hyper.initial_state());
                Slots::new(backend, rnn.params(), count, init).buffers
            }
        };
        let mut params: Vec<B::Matrix> = rnn.params().matrices().cloned().collect();
        // The name is looked up only for a message.
        let name = |index: usize| rnn.params().named().swap_remove(index).0;
        for (index, ((p, g), state)) in params
            .iter_mut()
            .zip(grads.params().matrices())
            .zip(&mut buffers)
            .enumerate()
        {
            backend.update(rule, p, g, state);
            let what = || format!("{} after {} update {}", name(index), H::NAME, self.step + 1);
            check_matrix(backend, what, p).map_err(overflowed)?;
            for (buffer, m) in rule.state_names().iter().zip(state.iter()) {
                let what = || format!("{}: its {buffer}", what());
                check_matrix(backend, what, m).map_err(overflowed)?;
            }
        }
        Ok((params, buffers))
    }
}

/// An update that overflowed: the message says that nothing was applied and what to try.
fn overflowed(e: Error) -> Error {
    match e {
        Error::NonFinite { what } => Error::NonFinite {
            what: format!(
                "{}; the update was not applied: is the learning rate too large, or a gradient \
                 too large for the scalar type?)",
                what.trim_end_matches(')')
            ),
        },
        other => other,
    }
}

/// A fresh optimiser's state dict holds no tensors.
fn check_no_tensors(dict: &StateDict) -> Result<()> {
    let unexpected: Vec<String> = dict.names().map(str::to_string).collect();
    match unexpected.is_empty() {
        true => Ok(()),
        false => Err(Error::StateDict {
            missing: vec![],
            unexpected,
            mismatched: vec![],
        }),
    }
}

/// The buffers whose entries are sums or averages of squares, never negative.
const SQUARES: [&str; 4] = ["sum", "square_avg", "exp_avg_sq", "max_exp_avg_sq"];

/// Every buffer `{param}.{buffer}` of every parameter of `rnn`, checked (present, nothing else,
/// PyTorch's shape, a float dtype, finite, sums of squares not negative) and uploaded.
fn read_slots<B: Backend>(rnn: &Rnn<B>, dict: &StateDict, buffers: &[&str]) -> Result<Slots<B>> {
    let backend = rnn.backend();
    let (mut missing, mut mismatched, mut values) = (vec![], vec![], vec![]);
    let mut expected = vec![];
    let params = rnn.parameters();
    for (name, m) in &params {
        let (rows, cols) = backend.shape(m);
        for buffer in buffers {
            let key = format!("{name}.{buffer}");
            expected.push(key.clone());
            let Some(tensor) = dict.get(&key) else {
                missing.push(key);
                continue;
            };
            let shape = tensor.shape();
            let fits = shape == [rows, cols] || (rows == 1 && is_bias(name) && shape == [cols]);
            match (tensor.floats(), fits) {
                (Some(data), true) => values.push((key, buffer, data)),
                (None, _) => mismatched.push(format!(
                    "{key}: expected F32 or F64, given {:?}",
                    tensor.dtype()
                )),
                (_, false) => mismatched.push(format!(
                    "{key}: expected shape {:?}, given {shape:?}",
                    torch_shape(name, (rows, cols))
                )),
            }
        }
    }
    let unexpected: Vec<String> = dict
        .names()
        .filter(|n| !expected.iter().any(|k| k == n))
        .map(str::to_string)
        .collect();
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        return Err(Error::StateDict {
            missing,
            unexpected,
            mismatched,
        });
    }
    let mut matrices = Vec::with_capacity(values.len());
    for (key, buffer, data) in values {
        let converted: Vec<B::Scalar> = data.iter().map(|&v| B::Scalar::of(v)).collect();
        if !converted.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("optimizer state {key}"),
            });
        }
        if SQUARES.contains(buffer) && converted.iter().any(|v| *v < B::Scalar::of(0.0)) {
            return Err(Error::config(format!(
                "optimizer state {key} has a negative entry; it holds squares"
            )));
        }
        matrices.push(converted);
    }
    let mut data = matrices.into_iter();
    let mut buffers_of = |m: &B::Matrix| -> Result<Vec<B::Matrix>> {
        let (rows, cols) = backend.shape(m);
        (0..buffers.len())
            .map(|_| backend.from_vec(rows, cols, data.next().expect("one per buffer")))
            .collect()
    };
    Ok(Slots {
        backend: backend.clone(),
        names: params.iter().map(|(n, _)| n.clone()).collect(),
        buffers: params
            .iter()
            .map(|(_, m)| buffers_of(m))
            .collect::<Result<_>>()?,
    })
}

/// A state dict's metadata, read as hyperparameters.
pub(crate) struct Metadata<'a>(&'a BTreeMap<String, String>);

impl Metadata<'_> {
    fn get(&self, key: &str) -> Result<&str> {
        self.0
            .get(key)
            .map(String::as_str)
            .ok_or_else(|| Error::StateDict {
                missing: vec![format!("metadata {key}")],
                unexpected: vec![],
                mismatched: vec![],
            })
    }

    fn parse<T: std::str::FromStr>(&self, key: &str, kind: &str) -> Result<T> {
        let text = self.get(key)?;
        text.parse().map_err(|_| {
            Error::config(format!(
                "optimizer state dict: metadata {key} = {text:?} is not {kind}"
            ))
        })
    }

    /// The number under `key`.
    pub(crate) fn f64(&self, key: &str) -> Result<f64> {
        self.parse(key, "a number")
    }

    /// The `true` or `false` under `key`.
    pub(crate) fn bool(&self, key: &str) -> Result<bool> {
        self.parse(key, "true or false")
    }

    /// The count under `key`.
    pub(crate) fn u64(&self, key: &str) -> Result<u64> {
        self.parse(key, "a count")
    }
}

/// A hyperparameter as metadata text, which parses back to the same number.
pub(crate) fn text(value: impl std::fmt::Debug) -> String {
    format!("{value:?}")
}
