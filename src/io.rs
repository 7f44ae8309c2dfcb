//! Weight exchange with PyTorch through `safetensors` files.
//!
//! A file holds a `state_dict()`: `nn.RNN` / `nn.LSTM` / `nn.GRU` parameters under their PyTorch
//! names (`weight_ih_l0`, `bias_hh_l1_reverse`, ...) and, optionally, an output `nn.Linear` called
//! `out` (`out.weight`, `out.bias`), in `f32` or `f64`. Export from PyTorch with
//! `safetensors.torch.save_file(model.state_dict(), "model.safetensors")`.
//!
//! Reading never trusts the file: the header is parsed by the `safetensors` crate (its size is
//! bounded and every offset checked against the file), names, shapes and dtypes are checked
//! against the model before anything changes, and an error says exactly which tensors are
//! missing, unexpected or mis-shaped. Writing goes to a temporary file in the same directory,
//! synced to disk, then renamed over the target, so a crash never leaves a torn file.

use crate::backend::Backend;
use crate::error::{Error, Result};
use crate::model::{Rnn, RnnConfig};
use safetensors::{Dtype as FileDtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

mod atomic;
pub(crate) mod checkpoint_layout;
mod model;

use model::checked_values;
pub(crate) use model::{dtype_of, is_bias, regularisers_from_metadata, torch_shape};

pub(crate) use atomic::write_atomic;

/// The element types this crate reads and writes. Non-exhaustive: `F16` and `BF16` files may be
/// read one day.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[non_exhaustive]
pub enum Dtype {
    /// 32-bit float.
    F32,
    /// 64-bit float.
    F64,
    /// 64-bit signed integer (token ids, targets, lengths).
    I64,
}

impl Dtype {
    fn width(self) -> usize {
        match self {
            Dtype::F32 => 4,
            Dtype::F64 | Dtype::I64 => 8,
        }
    }

    fn to_file(self) -> FileDtype {
        match self {
            Dtype::F32 => FileDtype::F32,
            Dtype::F64 => FileDtype::F64,
            Dtype::I64 => FileDtype::I64,
        }
    }
}

/// One named array of a [`StateDict`]: a dtype, a shape and its row-major values.
#[derive(Debug, Clone, PartialEq)]
pub struct Tensor {
    dtype: Dtype,
    shape: Vec<usize>,
    data: TensorData,
}

#[derive(Debug, Clone, PartialEq)]
enum TensorData {
    Float(Vec<f64>),
    Int(Vec<i64>),
}

impl Tensor {
    /// A float tensor stored as `dtype` (`F32` values are rounded to `f32` when written).
    ///
    /// # Errors
    /// [`Error::Shape`] if `data` does not hold `shape`'s element count; [`Error::Config`] for
    /// `dtype = I64`.
    pub fn float(dtype: Dtype, shape: Vec<usize>, data: Vec<f64>) -> Result<Self> {
        if dtype == Dtype::I64 {
            return Err(Error::config("a float tensor needs dtype F32 or F64"));
        }
        check_count(&shape, data.len())?;
        Ok(Tensor {
            dtype,
            shape,
            data: TensorData::Float(data),
        })
    }

    /// An `I64` tensor.
    ///
    /// # Errors
    /// [`Error::Shape`] if `data` does not hold `shape`'s element count.
    pub fn int(shape: Vec<usize>, data: Vec<i64>) -> Result<Self> {
        check_count(&shape, data.len())?;
        Ok(Tensor {
            dtype: Dtype::I64,
            shape,
            data: TensorData::Int(data),
        })
    }

    /// The stored element type.
    pub fn dtype(&self) -> Dtype {
        self.dtype
    }

    /// The shape, as PyTorch reports it (a bias is `[n]`, a scalar `[]`).
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values of a float tensor, widened to `f64` (exact for `F32`).
    pub fn floats(&self) -> Option<&[f64]> {
        match &self.data {
            TensorData::Float(v) => Some(v),
            TensorData::Int(_) => None,
        }
    }

    /// The values of an `I64` tensor.
    pub fn ints(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::Int(v) => Some(v),
            TensorData::Float(_) => None,
        }
    }

    fn bytes(&self) -> Vec<u8> {
        match &self.data {
            TensorData::Float(v) if self.dtype == Dtype::F32 => {
                v.iter().flat_map(|&x| (x as f32).to_le_bytes()).collect()
            }
            TensorData::Float(v) => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
            TensorData::Int(v) => v.iter().flat_map(|&x| x.to_le_bytes()).collect(),
        }
    }
}

fn check_count(shape: &[usize], len: usize) -> Result<()> {
    let count = shape.iter().try_fold(1usize, |n, &d| n.checked_mul(d));
    match count {
        Some(n) if n == len => Ok(()),
        _ => Err(Error::Shape {
            what: format!("tensor data for shape {shape:?}"),
            expected: count.map_or("more elements than memory holds".to_string(), |n| {
                n.to_string()
            }),
            given: len.to_string(),
        }),
    }
}

/// A `safetensors` file written without metadata, with `metadata` put first in its header, the
/// keys in sorted order.
///
/// `safetensors::serialize` takes the metadata as a `HashMap`, whose order changes from one map
/// to the next, so the same state dict gave different bytes at every save. Here the same state
/// dict always gives the same bytes: a checkpoint can be hashed or compared with `cmp`.
fn with_metadata(file: Vec<u8>, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    if metadata.is_empty() {
        return Ok(file);
    }
    let malformed = || Error::Format {
        message: "safetensors wrote a header this crate cannot extend".to_string(),
    };
    let (size, rest) = file.split_first_chunk::<8>().ok_or_else(malformed)?;
    let size = usize::try_from(u64::from_le_bytes(*size)).map_err(|_| malformed())?;
    let (header, data) = rest.split_at_checked(size).ok_or_else(malformed)?;
    // The header is a JSON object, padded with spaces to a multiple of 8 bytes.
    let tensors = std::str::from_utf8(header)
        .map_err(|_| malformed())?
        .trim_end();
    let tensors = tensors.strip_prefix('{').ok_or_else(malformed)?;
    let separator = if tensors.starts_with('}') { "" } else { "," };
    let metadata = serde_json::to_string(metadata).map_err(|_| malformed())?;
    let mut header = format!("{{\"__metadata__\":{metadata}{separator}{tensors}");
    header.extend(std::iter::repeat_n(
        ' ',
        header.len().next_multiple_of(8) - header.len(),
    ));
    let mut out = Vec::with_capacity(8 + header.len() + data.len());
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(header.as_bytes());
    out.extend_from_slice(data);
    Ok(out)
}

/// A tensor ready to hand to `safetensors::serialize`.
struct Encoded {
    dtype: FileDtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

impl View for &Encoded {
    fn dtype(&self) -> FileDtype {
        self.dtype
    }

    fn shape(&self) -> &[usize] {
        &self.shape
    }

    fn data(&self) -> Cow<'_, [u8]> {
        Cow::Borrowed(&self.bytes)
    }

    fn data_len(&self) -> usize {
        self.bytes.len()
    }
}

/// Named tensors and string metadata: the contents of a `safetensors` file, as PyTorch's
/// `state_dict()` plus the file's `__metadata__`.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct StateDict {
    tensors: BTreeMap<String, Tensor>,
    metadata: BTreeMap<String, String>,
}

impl StateDict {
    /// An empty state dict.
    pub fn new() -> Self {
        Self::default()
    }

    /// Parses the bytes of a `safetensors` file. `F32`, `F64` and `I64` tensors are read; a
    /// tensor of any other dtype is an error naming it.
    ///
    /// # Errors
    /// [`Error::Format`] for a malformed file (truncated, a header that lies about offsets or
    /// sizes, an unsupported dtype).
    pub fn from_bytes(bytes: &[u8]) -> Result<Self> {
        let format = |e: safetensors::SafeTensorError| Error::Format {
            message: format!("not a valid safetensors file: {e}"),
        };
        let (_, header) = SafeTensors::read_metadata(bytes).map_err(format)?;
        let file = SafeTensors::deserialize(bytes).map_err(format)?;
        let mut dict = StateDict::new();
        if let Some(meta) = header.metadata() {
            dict.metadata = meta.iter().map(|(k, v)| (k.clone(), v.clone())).collect();
        }
        for (name, view) in file.iter() {
            let raw = view.data();
            let dtype = match view.dtype() {
                FileDtype::F32 => Dtype::F32,
                FileDtype::F64 => Dtype::F64,
                FileDtype::I64 => Dtype::I64,
                other => {
                    return Err(Error::Format {
                        message: format!(
                            "tensor {name}: dtype {other:?} is not supported (F32, F64, I64 are)"
                        ),
                    });
                }
            };
            let words = raw.chunks_exact(dtype.width());
            let data = match dtype {
                Dtype::F32 => TensorData::Float(
                    words
                        .map(|w| f32::from_le_bytes(w.try_into().expect("4 bytes")) as f64)
                        .collect(),
                ),
                Dtype::F64 => TensorData::Float(
                    words
                        .map(|w| f64::from_le_bytes(w.try_into().expect("8 bytes")))
                        .collect(),
                ),
                Dtype::I64 => TensorData::Int(
                    words
                        .map(|w| i64::from_le_bytes(w.try_into().expect("8 bytes")))
                        .collect(),
                ),
            };
            let tensor = Tensor {
                dtype,
                shape: view.shape().to_vec(),
                data,
            };
            dict.tensors.insert(name.to_string(), tensor);
        }
        Ok(dict)
    }

    /// Reads a `safetensors` file.
    ///
    /// # Errors
    /// [`Error::Io`] if the file cannot be read, [`Error::Format`] as for
    /// [`from_bytes`](StateDict::from_bytes).
    pub fn read(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref();
        let bytes = fs::read(path).map_err(|e| Error::io(path, e))?;
        Self::from_bytes(&bytes)
    }

    /// The file's bytes.
    ///
    /// # Errors
    /// [`Error::Format`] if the header would exceed the format's limit.
    pub fn to_bytes(&self) -> Result<Vec<u8>> {
        let encoded: Vec<(String, Encoded)> = self
            .tensors
            .iter()
            .map(|(name, t)| {
                let e = Encoded {
                    dtype: t.dtype.to_file(),
                    shape: t.shape.clone(),
                    bytes: t.bytes(),
                };
                (name.clone(), e)
            })
            .collect();
        let bytes = safetensors::serialize(encoded.iter().map(|(n, e)| (n.as_str(), e)), None)
            .map_err(|e| Error::Format {
                message: format!("cannot encode safetensors: {e}"),
            })?;
        with_metadata(bytes, &self.metadata)
    }

    /// Writes the file atomically: to a temporary file beside `path`, synced, then renamed over
    /// `path`. On any error the previous file at `path`, if one exists, is untouched.
    ///
    /// # Errors
    /// [`Error::Io`] naming the path, [`Error::Format`] as for [`to_bytes`](StateDict::to_bytes).
    pub fn write(&self, path: impl AsRef<Path>) -> Result<()> {
        write_atomic(path.as_ref(), &self.to_bytes()?)
    }

    /// The tensor called `name`.
    pub fn get(&self, name: &str) -> Option<&Tensor> {
        self.tensors.get(name)
    }

    /// Adds or replaces the tensor called `name`.
    pub fn insert(&mut self, name: impl Into<String>, tensor: Tensor) {
        self.tensors.insert(name.into(), tensor);
    }

    /// The tensor names, sorted.
    pub fn names(&self) -> impl Iterator<Item = &str> {
        self.tensors.keys().map(String::as_str)
    }

    /// The file's string metadata (`__metadata__`).
    pub fn metadata(&self) -> &BTreeMap<String, String> {
        &self.metadata
    }

    /// Sets one metadata entry.
    pub fn set_metadata(&mut self, key: impl Into<String>, value: impl Into<String>) {
        self.metadata.insert(key.into(), value.into());
    }
}

/// Saves `rnn`'s parameters to `path` as a PyTorch-compatible `state_dict` in the model's
/// scalar type, with the configuration in the metadata. Atomic (see [`StateDict::write`]).
///
/// ```
/// use recurrent::prelude::*;
///
/// let config = RnnConfig::lstm(3, 4).layers(2).output(3);
/// let rnn = Rnn::new(Cpu::<f32>::default(), config, &mut StdRng::seed_from_u64(0))?;
/// let path = std::env::temp_dir().join("recurrent_io_save_doc.safetensors");
/// recurrent::io::save(&rnn, &path)?;
/// // `load` reads the configuration from the names, shapes and metadata.
/// let loaded = recurrent::io::load(Cpu::<f32>::default(), &path)?;
/// assert_eq!(loaded.config(), rnn.config());
/// assert_eq!(loaded.state_dict(), rnn.state_dict()); // every weight, bit for bit
/// std::fs::remove_file(&path).ok();
/// // In PyTorch: safetensors.torch.load_file(path) has `weight_ih_l0`, ..., `out.weight`.
/// # Ok::<(), recurrent::Error>(())
/// ```
///
/// # Errors
/// [`Error::Io`] or [`Error::Format`].
pub fn save<B: Backend>(rnn: &Rnn<B>, path: impl AsRef<Path>) -> Result<()> {
    rnn.state_dict().write(path)
}

/// Loads a model from a `safetensors` state dict, inferring its configuration from the names
/// and shapes (see [`RnnConfig::from_state_dict`]). Strict: a tensor the model does not have is
/// an error, except in a training checkpoint ([`Checkpoint`](crate::Checkpoint)), whose
/// optimiser (`optim.*`) and state (`state.*`) tensors are passed over: the model's weights are
/// read and the rest of the checkpoint is left alone.
///
/// ```
/// use recurrent::{Error, NaiveCpu};
///
/// let missing = std::env::temp_dir().join("recurrent_no_such_file.safetensors");
/// let err = recurrent::io::load(NaiveCpu::<f64>::default(), &missing).unwrap_err();
/// assert!(matches!(err, Error::Io { .. }), "{err}");
/// assert!(err.to_string().starts_with(&missing.display().to_string()));
/// ```
///
/// A model saved by [`save`] loads back unchanged (see its example).
///
/// # Errors
/// [`Error::Io`], [`Error::Format`], or [`Error::StateDict`] when the tensors do not form a
/// model.
pub fn load<B: Backend>(backend: B, path: impl AsRef<Path>) -> Result<Rnn<B>> {
    let path = path.as_ref();
    from_bytes(backend, &fs::read(path).map_err(|e| Error::io(path, e))?)
}

/// [`load`] from the bytes of a file already in memory (downloaded, embedded with
/// `include_bytes!`, or read by the caller). Any bytes are safe to pass: a malformed or hostile
/// file is an `Err`, never a panic, and the model's shapes come from the file's tensors, so the
/// memory taken is a small multiple of the file's size (at most 6 times: see `SECURITY.md`).
///
/// # Errors
/// As [`load`], without [`Error::Io`].
pub fn from_bytes<B: Backend>(backend: B, bytes: &[u8]) -> Result<Rnn<B>> {
    let mut dict = StateDict::from_bytes(bytes)?;
    if checkpoint_layout::is_checkpoint(&dict) {
        dict = checkpoint_layout::model_part(&dict);
    }
    let config = RnnConfig::from_state_dict(&dict)?;
    let values = checked_values::<B::Scalar>(&config.parameter_shapes()?, &dict, true)?;
    // Freed before the model is allocated: the file's values and the model's are never held
    // together with the converted ones.
    drop(dict);
    Rnn::from_values(backend, config, values)
}
