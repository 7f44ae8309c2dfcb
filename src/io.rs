//! Weight exchange with PyTorch: [`StateDict`], and `safetensors` files.
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
//!
//! The files need the cargo feature `formats` (on by default): [`save`], [`load`],
//! [`from_bytes`], and [`StateDict`]'s `read`, `write`, `from_bytes` and `to_bytes`. Without it
//! [`StateDict`] and [`Tensor`] remain, in memory: `Rnn::state_dict`, `load_state_dict` and the
//! optimisers' state dicts work on them as before.

use crate::error::{Error, Result};
use std::collections::BTreeMap;
#[cfg(feature = "formats")]
use {
    crate::backend::Backend,
    crate::model::{Rnn, RnnConfig},
    model::checked_values,
    std::{fs, path::Path},
};

#[cfg(feature = "formats")]
mod atomic;
pub(crate) mod checkpoint_layout;
#[cfg(feature = "formats")]
mod file;
mod model;

pub(crate) use model::{dtype_of, is_bias, regularisers_from_metadata, torch_shape};

#[cfg(feature = "formats")]
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

#[cfg(feature = "formats")]
#[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
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

#[cfg(feature = "formats")]
#[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
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

#[cfg(feature = "formats")]
#[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
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
