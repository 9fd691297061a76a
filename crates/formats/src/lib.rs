//! Weight file formats for slimdet: PyTorch `.pth` (zip and legacy) read
//! through a safe pickle subset, safetensors (read and atomic write), and TensorFlow
//! frozen graphs (`.pb`, see [`tf`]).
//!
//! Everything loads into a [`StateDict`]: named tensors in file order (PyTorch's
//! state-dict order follows module registration, which model builders rely
//! on), each holding either `f32` or `i64` data in contiguous row-major layout.
//! Files are recognised by content, never by extension. No input makes this
//! crate panic or execute code: pickles are interpreted by a VM that only
//! knows an allow-list of globals (see [`pickle`]).

pub mod error;
pub mod pickle;
pub mod sparse;
pub mod tf;

mod convert;
mod pth;
mod safetensors_io;

use std::collections::BTreeMap;
use std::path::Path;

pub use error::{FormatError, Result};
pub use safetensors_io::{load_safetensors, save_safetensors};
pub use sparse::{RawTensor, SparseSaveReport, save_raw_safetensors, save_safetensors_sparse};

/// Element type of a loaded tensor. Storages of f64/f16/bf16 load as `F32`;
/// i32/i16/i8/u8/bool (and safetensors u16/u32/u64) load as `I64`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
pub enum DType {
    F32,
    I64,
}

/// Contiguous row-major tensor elements.
#[derive(Clone, Debug, PartialEq)]
pub enum TensorData {
    F32(Vec<f32>),
    I64(Vec<i64>),
}

impl TensorData {
    /// Number of elements.
    pub fn len(&self) -> usize {
        match self {
            TensorData::F32(v) => v.len(),
            TensorData::I64(v) => v.len(),
        }
    }

    /// True when there are no elements.
    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }
}

/// One named tensor. `data` holds `shape.iter().product()` elements in
/// row-major order (e.g. a conv weight is OIHW `[out, in/groups, kH, kW]`);
/// a scalar has shape `[]` and one element.
#[derive(Clone, Debug, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub data: TensorData,
}

impl NamedTensor {
    /// A one-dimensional f32 tensor `[v.len()]` called `name`.
    pub fn vector(name: impl Into<String>, v: Vec<f32>) -> Self {
        Self {
            name: name.into(),
            shape: vec![v.len()],
            data: TensorData::F32(v),
        }
    }

    /// The element type of `data`.
    pub fn dtype(&self) -> DType {
        match self.data {
            TensorData::F32(_) => DType::F32,
            TensorData::I64(_) => DType::I64,
        }
    }

    /// Number of elements held.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// The data as `f32`, if that is the dtype.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            TensorData::F32(v) => Some(v),
            TensorData::I64(_) => None,
        }
    }

    /// The data as `i64`, if that is the dtype.
    pub fn as_i64(&self) -> Option<&[i64]> {
        match &self.data {
            TensorData::I64(v) => Some(v),
            TensorData::F32(_) => None,
        }
    }
}

/// Tensors in file order (PyTorch's state_dict order is meaningful).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct StateDict {
    pub tensors: Vec<NamedTensor>,
}

impl StateDict {
    /// The tensor called `name` (linear search; state dicts hold hundreds of entries).
    pub fn get(&self, name: &str) -> Option<&NamedTensor> {
        self.tensors.iter().find(|t| t.name == name)
    }

    pub fn len(&self) -> usize {
        self.tensors.len()
    }

    pub fn is_empty(&self) -> bool {
        self.tensors.is_empty()
    }

    /// Tensors in file order.
    pub fn iter(&self) -> impl Iterator<Item = &NamedTensor> {
        self.tensors.iter()
    }

    /// Appends a tensor at the end.
    pub fn push(&mut self, t: NamedTensor) {
        self.tensors.push(t);
    }
}

/// Reads a whole model file; the error names the file.
pub fn read_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| FormatError::Io {
        path: path.to_path_buf(),
        op: "reading",
        source,
    })
}

/// Loads a PyTorch `.pth` file (zip or legacy format, detected by content).
/// A dict wrapping the state dict under `state_dict`, `model` or `net` is unwrapped.
pub fn load_pth(path: &Path) -> Result<StateDict> {
    let bytes = read_file(path)?;
    pth::load_pth_at(&bytes, path)
}

/// Loads a `.pth` from memory; `name_for_errors` is the path reported in errors.
pub fn load_pth_bytes(bytes: &[u8], name_for_errors: &str) -> Result<StateDict> {
    pth::load_pth_at(bytes, Path::new(name_for_errors))
}

/// True if `bytes` start like a safetensors file: a little-endian u64 header
/// length that fits in the file, followed by `{`.
pub fn looks_like_safetensors(bytes: &[u8]) -> bool {
    let Some(len) = bytes.get(..8).and_then(|b| <[u8; 8]>::try_from(b).ok()) else {
        return false;
    };
    let n = u64::from_le_bytes(len);
    bytes.get(8) == Some(&b'{') && n <= (bytes.len() as u64).saturating_sub(8)
}

/// Loads any supported weight file by content: zip `.pth`, legacy `.pth` or
/// safetensors. Returns the tensors and the safetensors `__metadata__`
/// (empty for `.pth`).
pub fn load_state_dict(path: &Path) -> Result<(StateDict, BTreeMap<String, String>)> {
    let bytes = read_file(path)?;
    load_state_dict_at(&bytes, path)
}

/// [`load_state_dict`] on bytes in memory; `name_for_errors` is the path reported in errors.
pub fn load_state_dict_bytes(
    bytes: &[u8],
    name_for_errors: &str,
) -> Result<(StateDict, BTreeMap<String, String>)> {
    load_state_dict_at(bytes, Path::new(name_for_errors))
}

fn load_state_dict_at(bytes: &[u8], path: &Path) -> Result<(StateDict, BTreeMap<String, String>)> {
    if looks_like_safetensors(bytes) {
        safetensors_io::load_safetensors_at(bytes, path)
    } else {
        Ok((pth::load_pth_at(bytes, path)?, BTreeMap::new()))
    }
}
