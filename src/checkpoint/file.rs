//! The checkpoint's file: how each part is laid out in a [`StateDict`], and the checks that
//! what is written reads back and what is read fits the model.

use super::{BEST, EPOCH, FORMAT_VERSION, Progress, SEED, STEP, WINDOW};
use crate::backend::Backend;
use crate::cell::{CellKind, CellState, Nonlinearity};
use crate::error::{Error, Result};
use crate::io::checkpoint_layout::{FORMAT_KEY, OPTIM, STATE};
use crate::io::{StateDict, Tensor, dtype_of, is_bias, torch_shape};
use crate::model::{Rnn, RnnConfig, State};
use crate::scalar::Scalar;
use num_traits::Float;
use std::collections::BTreeMap;

const INPUT_SIZE: &str = "recurrent.input_size";
const HIDDEN_SIZE: &str = "recurrent.hidden_size";
const NUM_LAYERS: &str = "recurrent.num_layers";
const BIDIRECTIONAL: &str = "recurrent.bidirectional";
const BIAS: &str = "recurrent.bias";
const OUTPUT_SIZE: &str = "recurrent.output_size";
const OUTPUT_BIAS: &str = "recurrent.output_bias";
/// The embedding's width; only in files of models with an embedding.
const EMBEDDING_DIM: &str = "recurrent.embedding_dim";
/// Whether the output weight is the embedding's; only in files of models with an embedding.
const TIE_WEIGHTS: &str = "recurrent.tie_weights";

/// The tensors and metadata of `dict` whose names start with `prefix`, without it.
pub(super) fn prefixed(dict: &StateDict, prefix: &str) -> StateDict {
    let mut part = StateDict::new();
    for name in dict.names() {
        if let Some(short) = name.strip_prefix(prefix) {
            part.insert(short, dict.get(name).expect("a listed name").clone());
        }
    }
    for (key, value) in dict.metadata() {
        if let Some(short) = key.strip_prefix(prefix) {
            part.set_metadata(short, value.clone());
        }
    }
    part
}

/// Adds `part`'s tensors and metadata to `dict`, each name with `prefix` in front.
pub(super) fn write_prefixed(part: &StateDict, prefix: &str, dict: &mut StateDict) {
    for name in part.names() {
        let tensor = part.get(name).expect("a listed name").clone();
        dict.insert(format!("{prefix}{name}"), tensor);
    }
    for (key, value) in part.metadata() {
        dict.set_metadata(format!("{prefix}{key}"), value.clone());
    }
}

fn missing_metadata(key: String) -> Error {
    Error::StateDict {
        missing: vec![format!("metadata {key}")],
        unexpected: vec![],
        mismatched: vec![],
    }
}

fn malformed(message: String) -> Error {
    Error::Format {
        message: format!("checkpoint: {message}"),
    }
}

/// Checks that `dict` is a checkpoint of a format version this crate reads.
pub(super) fn check_version(dict: &StateDict) -> Result<()> {
    let Some(text) = dict.metadata().get(FORMAT_KEY) else {
        return Err(malformed(format!(
            "not a checkpoint: the file has no metadata key {FORMAT_KEY:?} (a file of plain \
             weights loads with `io::load`)"
        )));
    };
    match text.parse::<u32>() {
        Ok(v) if (1..=FORMAT_VERSION).contains(&v) => Ok(()),
        Ok(v) if v > FORMAT_VERSION => Err(malformed(format!(
            "format version {v} is newer than this version of recurrent reads \
             ({FORMAT_VERSION}); upgrade recurrent to load it"
        ))),
        _ => Err(malformed(format!(
            "{FORMAT_KEY} = {text:?} is not a format version (1 to {FORMAT_VERSION})"
        ))),
    }
}

/// The value of metadata `key`, parsed.
fn parse<T: std::str::FromStr>(dict: &StateDict, key: &str, kind: &str) -> Result<T> {
    let text = dict
        .metadata()
        .get(key)
        .ok_or_else(|| missing_metadata(key.to_string()))?;
    text.parse()
        .map_err(|_| malformed(format!("metadata {key} = {text:?} is not {kind}")))
}

/// Writes what of `config` the parameters' names and shapes would only imply, so that a
/// missing tensor is reported as missing instead of making another model.
pub(super) fn write_config(config: &RnnConfig, dict: &mut StateDict) {
    let output = config
        .output_size()
        .map_or("none".to_string(), |n| n.to_string());
    let entries = [
        (INPUT_SIZE, config.input_size().to_string()),
        (HIDDEN_SIZE, config.hidden_size().to_string()),
        (NUM_LAYERS, config.num_layers().to_string()),
        (BIDIRECTIONAL, (config.directions() == 2).to_string()),
        (BIAS, config.has_bias().to_string()),
        (OUTPUT_SIZE, output),
        (OUTPUT_BIAS, config.has_output_bias().to_string()),
    ];
    for (key, value) in entries {
        dict.set_metadata(key, value);
    }
    // Only for a model with an embedding: files of other models keep the keys they had.
    if let Some(dim) = config.embedding_dim() {
        dict.set_metadata(EMBEDDING_DIM, dim.to_string());
        dict.set_metadata(TIE_WEIGHTS, config.ties_weights().to_string());
    }
}

/// The configuration in `dict`'s metadata: `cell`, `nonlinearity`, `dropout` and
/// `output_dropout` (absent in files written before it existed: 0) as
/// [`Rnn::state_dict`] writes them, the rest as [`write_config`] does.
pub(super) fn read_config(dict: &StateDict) -> Result<RnnConfig> {
    let meta = dict.metadata();
    let cell: String = parse(dict, "cell", "a cell")?;
    let kind = match (cell.as_str(), meta.get("nonlinearity").map(String::as_str)) {
        ("LSTM", _) => CellKind::Lstm,
        ("GRU", _) => CellKind::Gru,
        ("RNN", Some("tanh")) => CellKind::Rnn(Nonlinearity::Tanh),
        ("RNN", Some("relu")) => CellKind::Rnn(Nonlinearity::Relu),
        ("RNN", None) => return Err(missing_metadata("nonlinearity".to_string())),
        ("RNN", Some(other)) => {
            return Err(malformed(format!(
                "metadata nonlinearity = {other:?} is not tanh or relu"
            )));
        }
        (other, _) => {
            return Err(malformed(format!(
                "metadata cell = {other:?} is not RNN, LSTM or GRU"
            )));
        }
    };
    let (count, boolean) = ("a count", "true or false");
    let output = match meta.get(OUTPUT_SIZE).map(String::as_str) {
        Some("none") => None,
        _ => Some(parse(dict, OUTPUT_SIZE, "a count or none")?),
    };
    let (input, hidden) = (
        parse(dict, INPUT_SIZE, count)?,
        parse(dict, HIDDEN_SIZE, count)?,
    );
    // Each layer has at least two tensors: a count beyond the file's is refused here, before
    // the model's list of parameters is made for it.
    let layers: usize = parse(dict, NUM_LAYERS, count)?;
    let tensors = dict.names().count();
    if layers > tensors / 2 {
        return Err(malformed(format!(
            "metadata {NUM_LAYERS} = {layers}, but the file holds {tensors} tensors, and every \
             layer needs at least 2"
        )));
    }
    let config = RnnConfig::new(kind, input, hidden)
        .layers(layers)
        .bidirectional(parse(dict, BIDIRECTIONAL, boolean)?)
        .bias(parse(dict, BIAS, boolean)?)
        .dropout(parse(dict, "dropout", "a number")?)
        .output_dropout(match meta.get("output_dropout") {
            None => 0.0, // files written before output dropout existed
            Some(_) => parse(dict, "output_dropout", "a number")?,
        })
        .output_bias(parse(dict, OUTPUT_BIAS, boolean)?);
    let config = match output {
        Some(size) => config.output(size),
        None => config,
    };
    read_embedding(dict, config)
}

/// `config` with the embedding and tying in `dict`'s metadata (files of models without an
/// embedding have neither key) and the regularisers the state dict's metadata holds.
fn read_embedding(dict: &StateDict, config: RnnConfig) -> Result<RnnConfig> {
    let meta = dict.metadata();
    let vocab = config.input_size();
    let config = match meta.get(EMBEDDING_DIM) {
        None => config,
        Some(_) => config.embedding(vocab, parse(dict, EMBEDDING_DIM, "a count")?),
    };
    let config = match meta.get(TIE_WEIGHTS) {
        None => config,
        Some(_) => config.tie_weights(parse(dict, TIE_WEIGHTS, "true or false")?),
    };
    crate::io::regularisers_from_metadata(dict, config)
}

/// Writes `progress` into `dict`'s metadata.
pub(super) fn write_progress(progress: &Progress, dict: &mut StateDict) {
    dict.set_metadata(SEED, progress.seed.to_string());
    dict.set_metadata(STEP, progress.step.to_string());
    dict.set_metadata(EPOCH, progress.epoch.to_string());
    dict.set_metadata(WINDOW, progress.window.to_string());
    if let Some(best) = progress.best_val_loss {
        // Debug formatting: the shortest text that parses back to the same f64.
        dict.set_metadata(BEST, format!("{best:?}"));
    }
}

/// The [`Progress`] in `dict`'s metadata.
pub(super) fn read_progress(dict: &StateDict) -> Result<Progress> {
    let best_val_loss = match dict.metadata().get(BEST) {
        None => None,
        Some(_) => Some(parse(dict, BEST, "a number")?),
    };
    Ok(Progress {
        seed: parse(dict, SEED, "a count")?,
        step: parse(dict, STEP, "a count")?,
        epoch: parse(dict, EPOCH, "a count")?,
        window: parse(dict, WINDOW, "a count")?,
        best_val_loss,
    })
}

/// Checks an optimiser state dict against `rnn` as far as it can without knowing the kind of
/// optimiser: its `optimizer` and `step` metadata, and every tensor named
/// `{parameter}.{buffer}` for a parameter of `rnn`, with that parameter's shape, float and
/// finite. The optimiser's own
/// [`load_state_dict`](crate::optim::Optimizer::load_state_dict) checks the rest.
pub(super) fn check_optimizer<B: Backend>(rnn: &Rnn<B>, dict: &StateDict) -> Result<()> {
    let meta = dict.metadata();
    if !meta.contains_key("optimizer") {
        return Err(missing_metadata(format!("{OPTIM}optimizer")));
    }
    let step = meta
        .get("step")
        .ok_or_else(|| missing_metadata(format!("{OPTIM}step")))?;
    if step.parse::<u64>().is_err() {
        return Err(malformed(format!(
            "metadata {OPTIM}step = {step:?} is not a count"
        )));
    }
    let backend = rnn.backend();
    let shapes: BTreeMap<String, (usize, usize)> = rnn
        .parameters()
        .into_iter()
        .map(|(name, m)| (name, backend.shape(m)))
        .collect();
    let (mut unexpected, mut mismatched) = (vec![], vec![]);
    for name in dict.names() {
        let tensor = dict.get(name).expect("a listed name");
        let param = name.rsplit_once('.').map(|(p, _)| p);
        let Some((param, &(rows, cols))) = param.and_then(|p| Some((p, shapes.get(p)?))) else {
            unexpected.push(format!("{OPTIM}{name}"));
            continue;
        };
        let shape = tensor.shape();
        let fits = shape == [rows, cols] || (rows == 1 && is_bias(param) && shape == [cols]);
        match tensor.floats() {
            None => mismatched.push(format!(
                "{OPTIM}{name}: expected F32 or F64, given {:?}",
                tensor.dtype()
            )),
            Some(_) if !fits => mismatched.push(format!(
                "{OPTIM}{name}: expected the shape of {param}, {:?}, given {shape:?}",
                torch_shape(param, (rows, cols))
            )),
            Some(values) if !values.iter().all(|v| v.is_finite()) => {
                return Err(Error::NonFinite {
                    what: format!("optimizer state {name}"),
                });
            }
            Some(_) => {}
        }
    }
    if unexpected.is_empty() && mismatched.is_empty() {
        Ok(())
    } else {
        Err(Error::StateDict {
            missing: vec![],
            unexpected,
            mismatched,
        })
    }
}

/// Checks that `state` fits `rnn` (one state per layer and direction, all `B x H` for one `B`,
/// `c` for the LSTM only) and is finite.
pub(super) fn check_state<B: Backend>(rnn: &Rnn<B>, state: &State<B>) -> Result<()> {
    let (backend, config) = (rnn.backend(), rnn.config());
    let count = config.num_layers() * config.directions();
    if state.layers().len() != count {
        return Err(Error::shape(
            "checkpoint state (layers x directions)",
            count,
            state.layers().len(),
        ));
    }
    let batch = backend.shape(&state.layers()[0].h).0;
    for (index, layer) in state.layers().iter().enumerate() {
        let what = format!("checkpoint state {index}");
        layer.check(backend, &what, config.kind(), batch, config.hidden_size())?;
        for m in std::iter::once(&layer.h).chain(&layer.c) {
            if !backend.to_vec(m).iter().all(|v| v.is_finite()) {
                return Err(Error::NonFinite { what });
            }
        }
    }
    Ok(())
}

/// Adds `state` (checked) to `dict` as `state.h` and `state.c`, `[L*D, B, H]`.
pub(super) fn write_state<B: Backend>(rnn: &Rnn<B>, state: &State<B>, dict: &mut StateDict) {
    let backend = rnn.backend();
    let layers = state.layers();
    let (batch, hidden) = backend.shape(&layers[0].h);
    let shape = vec![layers.len(), batch, hidden];
    let tensor = |data: Vec<f64>| {
        let tensor = Tensor::float(dtype_of::<B::Scalar>(), shape.clone(), data);
        tensor.expect("checked: every layer B x H")
    };
    let (mut h, mut c) = (vec![], vec![]);
    for layer in layers {
        h.extend(backend.to_vec(&layer.h).into_iter().map(Scalar::to_f64));
        if let Some(m) = &layer.c {
            c.extend(backend.to_vec(m).into_iter().map(Scalar::to_f64));
        }
    }
    dict.insert(format!("{STATE}h"), tensor(h));
    if rnn.config().kind().has_cell_state() {
        dict.insert(format!("{STATE}c"), tensor(c));
    }
}

/// The state saved in `dict`, if any, checked against `rnn`.
pub(super) fn read_state<B: Backend>(rnn: &Rnn<B>, dict: &StateDict) -> Result<Option<State<B>>> {
    let Some((batch, tensors)) = state_tensors(rnn, dict)? else {
        return Ok(None);
    };
    let (backend, hidden) = (rnn.backend(), rnn.config().hidden_size());
    // [h, c] or [h]: each split into one B x H matrix per layer and direction.
    let mut parts = Vec::with_capacity(tensors.len());
    for (name, data) in tensors {
        let converted: Vec<B::Scalar> = data.iter().map(|&v| B::Scalar::of(v)).collect();
        if !converted.iter().all(|v| v.is_finite()) {
            return Err(Error::NonFinite {
                what: format!("state tensor {name}"),
            });
        }
        let layers = converted
            .chunks_exact(batch * hidden)
            .map(|chunk| backend.from_vec(batch, hidden, chunk.to_vec()))
            .collect::<Result<Vec<_>>>()?;
        parts.push(layers);
    }
    let mut parts = parts.into_iter();
    let hs = parts.next().expect("h is always saved");
    let mut cs = parts.next().map(Vec::into_iter);
    let layers = hs
        .into_iter()
        .map(|h| CellState {
            h,
            c: cs.as_mut().map(|c| c.next().expect("as many c as h")),
        })
        .collect();
    Ok(Some(State::new(layers)))
}

/// The batch size `B` of a saved state, and the values of `state.h` (then `state.c`) by name.
type StateTensors<'a> = (usize, Vec<(String, &'a [f64])>);

/// The saved state's tensors if `dict` holds a state, after checking their presence (no
/// others), shapes `[L*D, B, H]` with one `B >= 1`, and dtypes.
fn state_tensors<'a, B: Backend>(
    rnn: &Rnn<B>,
    dict: &'a StateDict,
) -> Result<Option<StateTensors<'a>>> {
    let config = rnn.config();
    let given: Vec<&str> = dict.names().filter(|n| n.starts_with(STATE)).collect();
    if given.is_empty() {
        return Ok(None);
    }
    let mut wanted = vec![format!("{STATE}h")];
    if config.kind().has_cell_state() {
        wanted.push(format!("{STATE}c"));
    }
    let (count, hidden) = (
        config.num_layers() * config.directions(),
        config.hidden_size(),
    );
    let batch = match dict.get(&wanted[0]).map(Tensor::shape) {
        Some(&[_, batch, _]) => batch,
        _ => 0,
    };
    let (mut missing, mut mismatched, mut values) = (vec![], vec![], vec![]);
    for name in wanted.iter().cloned() {
        match dict.get(&name) {
            None => missing.push(name),
            Some(t) if t.shape() != [count, batch, hidden] || batch == 0 => {
                mismatched.push(format!(
                    "{name}: expected shape [{count}, B, {hidden}] (layers x directions, batch, \
                     hidden) with B >= 1 and the same for every state tensor, given {:?}",
                    t.shape()
                ));
            }
            Some(t) => match t.floats() {
                Some(data) => values.push((name, data)),
                None => mismatched.push(format!(
                    "{name}: expected F32 or F64, given {:?}",
                    t.dtype()
                )),
            },
        }
    }
    let unexpected: Vec<String> = given
        .into_iter()
        .filter(|n| !wanted.iter().any(|w| w == n))
        .map(str::to_string)
        .collect();
    if missing.is_empty() && unexpected.is_empty() && mismatched.is_empty() {
        Ok(Some((batch, values)))
    } else {
        Err(Error::StateDict {
            missing,
            unexpected,
            mismatched,
        })
    }
}
