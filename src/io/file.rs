//! The `safetensors` file format (cargo feature `formats`): a [`StateDict`] to and from a
//! file's bytes, and the files themselves, written atomically.

use super::{Dtype, StateDict, Tensor, TensorData, write_atomic};
use crate::error::{Error, Result};
use safetensors::{Dtype as FileDtype, SafeTensors, View};
use std::borrow::Cow;
use std::collections::BTreeMap;
use std::fs;
use std::path::Path;

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

impl Tensor {
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

#[cfg_attr(docsrs, doc(cfg(feature = "formats")))]
impl StateDict {
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
}
