//! safetensors read and atomic write.
//!
//! Reading validates the file with the `safetensors` crate and returns the
//! tensors in data-offset order (for files this crate writes, that is the
//! state dict's order) plus the `__metadata__` map. Writing is done here
//! rather than by `safetensors::serialize`, which reorders tensors by dtype
//! and name: we lay data out in state-dict order so a round trip keeps it.
//! The file is written to a temporary file in the target directory, fsynced,
//! then renamed over the target, so readers never see a partial file.

use std::collections::BTreeMap;
use std::io::Write;
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors};
use serde_json::{Map, Value as Json, json};

use crate::convert::{ElemType, decode};
use crate::error::{FormatError, Result};
use crate::{NamedTensor, StateDict, TensorData, read_file};

pub(crate) fn st_err(path: &Path, reason: impl Into<String>) -> FormatError {
    FormatError::Safetensors {
        path: path.to_path_buf(),
        reason: reason.into(),
        source: None,
    }
}

/// Checks that `t`'s shape holds exactly its values (shared by the dense and the sparse
/// writers).
pub(crate) fn check_shape(path: &Path, t: &NamedTensor) -> Result<()> {
    let expected = t.shape.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
    if expected != Some(t.numel()) {
        return Err(st_err(
            path,
            format!(
                "tensor `{}`: shape {:?} != {} elements",
                t.name,
                t.shape,
                t.numel()
            ),
        ));
    }
    Ok(())
}

/// Loads a safetensors file: tensors (in data order) and `__metadata__`.
pub fn load_safetensors(path: &Path) -> Result<(StateDict, BTreeMap<String, String>)> {
    let bytes = read_file(path)?;
    load_safetensors_at(&bytes, path)
}

fn elem_type(dtype: Dtype) -> Option<ElemType> {
    Some(match dtype {
        Dtype::F32 => ElemType::F32,
        Dtype::F64 => ElemType::F64,
        Dtype::F16 => ElemType::F16,
        Dtype::BF16 => ElemType::BF16,
        Dtype::I64 => ElemType::I64,
        Dtype::I32 => ElemType::I32,
        Dtype::I16 => ElemType::I16,
        Dtype::I8 => ElemType::I8,
        Dtype::U8 => ElemType::U8,
        Dtype::U16 => ElemType::U16,
        Dtype::U32 => ElemType::U32,
        Dtype::U64 => ElemType::U64,
        Dtype::BOOL => ElemType::Bool,
        _ => return None,
    })
}

pub(crate) fn load_safetensors_at(
    bytes: &[u8],
    path: &Path,
) -> Result<(StateDict, BTreeMap<String, String>)> {
    let (header_len, meta) =
        SafeTensors::read_metadata(bytes).map_err(|e| FormatError::Safetensors {
            path: path.to_path_buf(),
            reason: "invalid file".into(),
            source: Some(e),
        })?;
    let data = header_len
        .checked_add(8)
        .and_then(|start| bytes.get(start..))
        .ok_or_else(|| st_err(path, "header length exceeds the file"))?;
    let mut sd = StateDict::default();
    for name in meta.offset_keys() {
        let info = meta
            .info(&name)
            .ok_or_else(|| st_err(path, format!("tensor `{name}` vanished")))?;
        let ty = elem_type(info.dtype).ok_or_else(|| {
            st_err(
                path,
                format!("tensor `{name}`: dtype {:?} is not supported", info.dtype),
            )
        })?;
        let (b, e) = info.data_offsets;
        let raw = data
            .get(b..e)
            .ok_or_else(|| st_err(path, format!("tensor `{name}`: bad data offsets")))?;
        let tensor_data =
            decode(ty, raw, false).map_err(|r| st_err(path, format!("tensor `{name}`: {r}")))?;
        if tensor_data.len() != info.shape.iter().product::<usize>() {
            return Err(st_err(
                path,
                format!("tensor `{name}`: data size does not match shape"),
            ));
        }
        sd.push(NamedTensor {
            name,
            shape: info.shape.clone(),
            data: tensor_data,
        });
    }
    let mut metadata = meta
        .metadata()
        .clone()
        .unwrap_or_default()
        .into_iter()
        .collect();
    crate::sparse::expand(&mut sd, &mut metadata, path)?;
    Ok((sd, metadata))
}

fn io_err<'a>(path: &'a Path, op: &'static str) -> impl FnOnce(std::io::Error) -> FormatError + 'a {
    move |source| FormatError::Io {
        path: path.to_path_buf(),
        op,
        source,
    }
}

/// Builds the JSON header, padded with spaces to a multiple of 8 bytes.
fn header(path: &Path, sd: &StateDict, metadata: &BTreeMap<String, String>) -> Result<Vec<u8>> {
    let mut map = Map::new();
    if !metadata.is_empty() {
        map.insert("__metadata__".into(), json!(metadata));
    }
    let mut offset = 0usize;
    for t in sd.iter() {
        if t.name == "__metadata__" || map.contains_key(&t.name) {
            return Err(st_err(
                path,
                format!("tensor name `{}` is reserved or duplicated", t.name),
            ));
        }
        check_shape(path, t)?;
        let dtype = match t.data {
            TensorData::F32(_) => "F32",
            TensorData::I64(_) => "I64",
        };
        let end = t
            .numel()
            .checked_mul(elem_bytes(t))
            .and_then(|n| offset.checked_add(n));
        let end = end.ok_or_else(|| st_err(path, "tensor data too large"))?;
        map.insert(
            t.name.clone(),
            json!({"dtype": dtype, "shape": t.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut h =
        serde_json::to_vec(&Json::Object(map)).map_err(|e| st_err(path, format!("header: {e}")))?;
    while !h.len().is_multiple_of(8) {
        h.push(b' ');
    }
    Ok(h)
}

fn elem_bytes(t: &NamedTensor) -> usize {
    match t.data {
        TensorData::F32(_) => 4,
        TensorData::I64(_) => 8,
    }
}

fn write_body(w: &mut impl Write, header: &[u8], sd: &StateDict) -> std::io::Result<()> {
    w.write_all(&(header.len() as u64).to_le_bytes())?;
    w.write_all(header)?;
    let mut buf = Vec::new();
    for t in sd.iter() {
        buf.clear();
        match &t.data {
            TensorData::F32(v) => buf.extend(v.iter().flat_map(|x| x.to_le_bytes())),
            TensorData::I64(v) => buf.extend(v.iter().flat_map(|x| x.to_le_bytes())),
        }
        w.write_all(&buf)?;
    }
    w.flush()
}

/// Writes `sd` (F32 tensors as `F32`, I64 as `I64`) and `metadata` as a
/// safetensors file, in state-dict order. Atomic: the data goes to a temp file
/// in the same directory, is fsynced, then renamed onto `path`; on any error
/// the temp file is removed and `path` is untouched.
pub fn save_safetensors(
    path: &Path,
    sd: &StateDict,
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    let header = header(path, sd, metadata)?;
    slimdet_atomic::write_with(path, |mut w| write_body(&mut w, &header, sd))
        .map_err(io_err(path, "writing"))
}
