//! The model and its PyTorch `state_dict`: the configuration a dict describes, the dict of a
//! model, and a model from a dict, every tensor checked before anything is built.

use super::{Dtype, StateDict, Tensor};
use crate::backend::Backend;
use crate::cell::{CellKind, Nonlinearity};
use crate::error::{Error, Result};
use crate::model::{Rnn, RnnConfig};
use crate::params::{EMBEDDING, OUT_WEIGHT};
use crate::scalar::Scalar;

impl RnnConfig {
    /// The configuration a PyTorch state dict describes: the cell from the gate count (rows of
    /// `weight_hh_l0` over its columns: 1 RNN, 3 GRU, 4 LSTM), sizes from the shapes, layers and
    /// directions from the names, biases and the output layer from their presence. The Elman
    /// non-linearity and the dropout probabilities are not in a PyTorch state dict: `tanh` unless
    /// the metadata says `nonlinearity = relu`, and no dropout unless it holds `dropout`,
    /// `output_dropout`, `embedding_dropout`, `input_dropout`, `weight_dropout` or
    /// `locked_dropout = true` (all as [`Rnn::state_dict`] writes them). An `embedding.weight` `(V, E)`
    /// makes an [embedding](RnnConfig::embedding); its weights are
    /// [tied](RnnConfig::tie_weights) only when the metadata says `tie_weights = true` (as
    /// [`Rnn::state_dict`] writes it): a PyTorch file holds both names with the same values and
    /// nothing else to tell a tied model from an untied one, so it loads untied unless the
    /// configuration given to [`Rnn::from_state_dict`] ties them.
    ///
    /// # Errors
    /// [`Error::StateDict`] if `weight_ih_l0` or `weight_hh_l0` is missing or mis-shaped;
    /// [`Error::Format`] if a dropout probability in the metadata is not a number, or
    /// `locked_dropout` is not `true` or `false`.
    pub fn from_state_dict(dict: &StateDict) -> Result<RnnConfig> {
        let matrix = |name: &str| match dict.get(name).map(Tensor::shape) {
            Some(&[rows, cols]) => Ok((rows, cols)),
            Some(shape) => Err(mismatch(name, "2 dimensions", format!("{shape:?}"))),
            None => Err(Error::StateDict {
                missing: vec![name.to_string()],
                unexpected: vec![],
                mismatched: vec![],
            }),
        };
        let (gh, hidden) = matrix("weight_hh_l0")?;
        let (_, input) = matrix("weight_ih_l0")?;
        let kind = match (hidden > 0).then(|| gh / hidden) {
            Some(1) if gh == hidden => {
                match dict.metadata().get("nonlinearity").map(String::as_str) {
                    Some("relu") => CellKind::Rnn(Nonlinearity::Relu),
                    _ => CellKind::Rnn(Nonlinearity::Tanh),
                }
            }
            Some(3) if gh == 3 * hidden => CellKind::Gru,
            Some(4) if gh == 4 * hidden => CellKind::Lstm,
            _ => {
                return Err(mismatch(
                    "weight_hh_l0",
                    "(G * H, H) with G = 1, 3 or 4",
                    format!("{:?}", (gh, hidden)),
                ));
            }
        };
        let layers = (0..)
            .take_while(|k| dict.get(&format!("weight_ih_l{k}")).is_some())
            .count();
        let probability = |key: &str| match dict.metadata().get(key) {
            None => Ok(0.0),
            Some(text) => text.parse().map_err(|_| Error::Format {
                message: format!("metadata {key} = {text:?} is not a number"),
            }),
        };
        let mut config = RnnConfig::new(kind, input, hidden)
            .layers(layers)
            .bidirectional(dict.get("weight_ih_l0_reverse").is_some())
            .bias(dict.get("bias_ih_l0").is_some())
            .dropout(probability("dropout")?)
            .output_dropout(probability("output_dropout")?);
        if let Ok((size, _)) = matrix("out.weight") {
            config = config
                .output(size)
                .output_bias(dict.get("out.bias").is_some());
        }
        if let Ok((vocab, dim)) = matrix(EMBEDDING) {
            let tied = dict.metadata().get("tie_weights").map(String::as_str);
            config = config
                .embedding(vocab, dim)
                .tie_weights(tied == Some("true"));
        }
        regularisers_from_metadata(dict, config)
    }
}

/// The regularisers [`Rnn::state_dict`] writes to the metadata when they are set
/// (`embedding_dropout`, `input_dropout`, `weight_dropout`, `locked_dropout`), onto `config`;
/// absent ones are off.
///
/// # Errors
/// [`Error::Format`] for a probability that is not a number, or a `locked_dropout` other than
/// `true` or `false`.
pub(crate) fn regularisers_from_metadata(dict: &StateDict, config: RnnConfig) -> Result<RnnConfig> {
    let meta = dict.metadata();
    let probability = |key: &str| match meta.get(key) {
        None => Ok(0.0),
        Some(text) => text.parse().map_err(|_| Error::Format {
            message: format!("metadata {key} = {text:?} is not a number"),
        }),
    };
    let locked = match meta.get("locked_dropout").map(String::as_str) {
        None | Some("false") => false,
        Some("true") => true,
        Some(other) => {
            return Err(Error::Format {
                message: format!("metadata locked_dropout = {other:?} is not true or false"),
            });
        }
    };
    Ok(config
        .embedding_dropout(probability("embedding_dropout")?)
        .input_dropout(probability("input_dropout")?)
        .weight_dropout(probability("weight_dropout")?)
        .locked_dropout(locked))
}

/// Whether PyTorch stores the parameter `name` as a vector, `[n]`: the biases.
pub(crate) fn is_bias(name: &str) -> bool {
    name.starts_with("bias") || name == "out.bias"
}

/// PyTorch's shape of the parameter `name`, stored here as `rows x cols`: `[cols]` for a bias.
pub(crate) fn torch_shape(name: &str, (rows, cols): (usize, usize)) -> Vec<usize> {
    match is_bias(name) {
        true => vec![cols],
        false => vec![rows, cols],
    }
}

/// The dtype a state dict holds a `T` as.
pub(crate) fn dtype_of<T: Scalar>() -> Dtype {
    match std::mem::size_of::<T>() {
        4 => Dtype::F32,
        _ => Dtype::F64,
    }
}

fn mismatch(name: &str, expected: &str, given: String) -> Error {
    Error::StateDict {
        missing: vec![],
        unexpected: vec![],
        mismatched: vec![format!("{name}: expected {expected}, given {given}")],
    }
}

impl<B: Backend> Rnn<B> {
    /// The parameters as a PyTorch `state_dict`: PyTorch's names and shapes (biases `[n]`), in
    /// the model's scalar type, with what the names and shapes do not say in the metadata:
    /// `cell` (`RNN`, `LSTM` or `GRU`), `nonlinearity` (Elman cells: `tanh` or `relu`),
    /// `dropout` and `output_dropout` (the probabilities, as text that parses back to the same
    /// `f64`), `tie_weights` (`true` or `false`, for a model with an embedding) and `format`
    /// (`pt`, which `safetensors`' PyTorch loader expects). A tied weight is written under both
    /// its names, `embedding.weight` and `out.weight`, as PyTorch's `state_dict()` holds it.
    pub fn state_dict(&self) -> StateDict {
        let backend = self.backend();
        let dtype = dtype_of::<B::Scalar>();
        let mut dict = StateDict::new();
        let mut named = self.parameters();
        if let (true, Some(weight)) = (self.params().is_tied(), self.params().embedding()) {
            named.push((OUT_WEIGHT.to_string(), weight));
        }
        for (name, m) in named {
            let shape = torch_shape(&name, backend.shape(m));
            let data = backend.to_vec(m).into_iter().map(Scalar::to_f64).collect();
            let tensor = Tensor::float(dtype, shape, data).expect("shape from the matrix");
            dict.insert(name, tensor);
        }
        let config = self.config();
        dict.set_metadata("cell", config.kind().name());
        if let CellKind::Rnn(n) = config.kind() {
            dict.set_metadata(
                "nonlinearity",
                if n == Nonlinearity::Relu {
                    "relu"
                } else {
                    "tanh"
                },
            );
        }
        // Debug formatting: the shortest text that parses back to the same f64.
        dict.set_metadata("dropout", format!("{:?}", config.dropout_probability()));
        dict.set_metadata(
            "output_dropout",
            format!("{:?}", config.output_dropout_probability()),
        );
        if config.embedding_dim().is_some() {
            dict.set_metadata("tie_weights", config.ties_weights().to_string());
        }
        // The newer regularisers only when set, so that other models' files stay as they were.
        let newer = [
            ("embedding_dropout", config.embedding_dropout_probability()),
            ("input_dropout", config.input_dropout_probability()),
            ("weight_dropout", config.weight_dropout_probability()),
        ];
        for (key, p) in newer.into_iter().filter(|(_, p)| *p != 0.0) {
            dict.set_metadata(key, format!("{p:?}"));
        }
        if config.is_locked_dropout() {
            dict.set_metadata("locked_dropout", "true");
        }
        dict.set_metadata("format", "pt");
        dict
    }

    /// A model of shape `config` with its parameters from `dict` (see
    /// [`load_state_dict`](Rnn::load_state_dict)). The state dict is checked against the
    /// configuration before the model is allocated, so a file cannot make it allocate more than
    /// the file itself holds.
    ///
    /// # Errors
    /// As [`Rnn::new`] and [`load_state_dict`](Rnn::load_state_dict).
    pub fn from_state_dict(
        backend: B,
        config: RnnConfig,
        dict: &StateDict,
        strict: bool,
    ) -> Result<Self> {
        let values = checked_values::<B::Scalar>(&config.parameter_shapes()?, dict, strict)?;
        Self::from_values(backend, config, values)
    }

    /// A model of shape `config` with the parameter `values` from [`checked_values`].
    pub(super) fn from_values(
        backend: B,
        config: RnnConfig,
        values: Vec<(String, Vec<B::Scalar>)>,
    ) -> Result<Self> {
        check_tied(&config, &values)?;
        // The values are all replaced; a fixed seed only fills the shapes first.
        let mut rng = <rand::rngs::StdRng as rand::SeedableRng>::seed_from_u64(0);
        let mut rnn = Rnn::new(backend, config, &mut rng)?;
        for (name, data) in values {
            rnn.set_parameter(&name, data)?;
        }
        Ok(rnn)
    }

    /// Copies every parameter from `dict`, as PyTorch's `load_state_dict`: names must match,
    /// shapes must be PyTorch's (`[n]` or `[1, n]` for biases), values `F32` or `F64` (converted
    /// to the model's scalar type) and finite after conversion. With `strict`, tensors the model
    /// does not have are an error too; without it they are ignored (a file may hold more, such
    /// as test data).
    ///
    /// All or nothing: everything is checked before anything is written, so on error the model
    /// is unchanged.
    ///
    /// # Errors
    /// [`Error::StateDict`] listing every missing, unexpected and mis-shaped (or mis-typed)
    /// tensor; [`Error::NonFinite`] naming a tensor with a NaN or infinity (or, for an `f32`
    /// model, a value beyond `f32`'s range).
    pub fn load_state_dict(&mut self, dict: &StateDict, strict: bool) -> Result<()> {
        let values = checked_values::<B::Scalar>(&self.config().parameter_shapes()?, dict, strict)?;
        check_tied(self.config(), &values)?;
        for (name, data) in values {
            self.set_parameter(&name, data)?;
        }
        Ok(())
    }
}

/// For a model with tied weights, checks that the values of `embedding.weight` and
/// `out.weight` (both in `values`, as [`RnnConfig::parameter_shapes`] lists them) are the same:
/// the model keeps one matrix, and loading two different ones would drop one silently.
///
/// # Errors
/// [`Error::StateDict`] naming both tensors and the first entry where they differ.
fn check_tied<T: Scalar>(config: &RnnConfig, values: &[(String, Vec<T>)]) -> Result<()> {
    if !config.ties_weights() {
        return Ok(());
    }
    let find = |name: &str| values.iter().find(|(n, _)| n == name).map(|(_, v)| v);
    let (Some(embedding), Some(out)) = (find(EMBEDDING), find(OUT_WEIGHT)) else {
        return Ok(()); // Not reached: both are checked present before.
    };
    match embedding.iter().zip(out).position(|(a, b)| a != b) {
        None => Ok(()),
        Some(i) => Err(Error::StateDict {
            missing: vec![],
            unexpected: vec![],
            mismatched: vec![format!(
                "{OUT_WEIGHT}: a model with tied weights needs it equal to {EMBEDDING}, but \
                 entry {i} differs ({} against {})",
                out[i], embedding[i]
            )],
        }),
    }
}

/// Checks `dict` against the parameter `shapes` of a model and returns every parameter's values
/// converted to `T`, or the complete list of what does not fit.
pub(super) fn checked_values<T: Scalar>(
    shapes: &[(String, (usize, usize))],
    dict: &StateDict,
    strict: bool,
) -> Result<Vec<(String, Vec<T>)>> {
    let (mut missing, mut mismatched, mut values) = (vec![], vec![], vec![]);
    for (name, (rows, cols)) in shapes {
        let Some(tensor) = dict.get(name) else {
            missing.push(name.clone());
            continue;
        };
        let is_bias = *rows == 1 && is_bias(name);
        let fits = tensor.shape() == [*rows, *cols] || (is_bias && tensor.shape() == [*cols]);
        match (tensor.floats(), fits) {
            (Some(data), true) => values.push((name.clone(), data)),
            (None, _) => mismatched.push(format!(
                "{name}: expected F32 or F64, given {:?}",
                tensor.dtype()
            )),
            (_, false) => {
                let want = if is_bias {
                    format!("[{cols}]")
                } else {
                    format!("[{rows}, {cols}]")
                };
                mismatched.push(format!(
                    "{name}: expected shape {want}, given {:?}",
                    tensor.shape()
                ));
            }
        }
    }
    let unexpected: Vec<String> = match strict {
        true => dict
            .names()
            .filter(|n| !shapes.iter().any(|(k, _)| k == n))
            .map(str::to_string)
            .collect(),
        false => vec![],
    };
    if !(missing.is_empty() && unexpected.is_empty() && mismatched.is_empty()) {
        return Err(Error::StateDict {
            missing,
            unexpected,
            mismatched,
        });
    }
    values
        .into_iter()
        .map(|(name, data)| {
            let converted: Vec<T> = data.iter().map(|&v| T::of(v)).collect();
            match converted.iter().all(|v| v.is_finite()) {
                true => Ok((name, converted)),
                false => Err(Error::NonFinite {
                    what: format!("tensor {name}"),
                }),
            }
        })
        .collect()
}
