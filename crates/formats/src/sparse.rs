//! Sparse storage of mostly-zero f32 tensors inside a safetensors file (`bitmap-v1`).
//!
//! A pruned model keeps its dense shapes, but most of its conv weights are zero. Saved
//! densely the file does not shrink; saved here it does, while staying a valid safetensors
//! file that any reader can open. A tensor `<name>` of shape `S` with `n` values, `k` of
//! them non-zero, is stored as two tensors placed where `<name>` would be:
//!
//! | tensor | dtype, shape | content |
//! |---|---|---|
//! | `<name>::bitmap` | `U8 [ceil(n/8)]` | bit `i % 8` (LSB first) of byte `i / 8` is 1 iff value `i` is stored; trailing bits 0 |
//! | `<name>::values` | `F32 [k]` | the stored values in row-major order |
//!
//! and the file's `__metadata__` gets `slimdet.sparse` =
//! `{"format":"bitmap-v1","tensors":{"<name>":S,...}}`. "Zero" means the bit pattern of
//! `+0.0`: `-0.0`, NaNs and denormals are stored as values, so loading gives back the very
//! same bits. A tensor is encoded only when that is smaller (`n/8 + 4k < 4n`, i.e.
//! sparsity above 1/32); everything else is written densely as usual. Size per weight:
//! `1/8 + 4·(1 − sparsity)` bytes instead of 4, e.g. 23% of dense at 80% sparsity.
//!
//! Loading is transparent: [`crate::load_safetensors`] (and so [`crate::load_state_dict`])
//! expands encoded tensors back to dense `F32` at their original position and removes the
//! `slimdet.sparse` entry from the returned metadata.

use std::collections::BTreeMap;

use std::path::Path;

use serde_json::{Map, Value as Json, json};

use crate::error::{FormatError, Result};
use crate::safetensors_io::{check_shape, st_err};
use crate::{NamedTensor, StateDict, TensorData};

/// Metadata key holding the sparse tensor index.
pub const SPARSE_META_KEY: &str = "slimdet.sparse";
/// The encoding's name in the index.
pub const SPARSE_FORMAT: &str = "bitmap-v1";
const BITMAP_SUFFIX: &str = "::bitmap";
const VALUES_SUFFIX: &str = "::values";

/// What [`save_safetensors_sparse`] wrote.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct SparseSaveReport {
    /// Names of the tensors stored as bitmap + values.
    pub encoded: Vec<String>,
    /// Bytes the tensor data would take densely.
    pub dense_data_bytes: usize,
    /// Bytes the tensor data takes as written.
    pub data_bytes: usize,
}

/// Whether a value is dropped by the encoding (exactly `+0.0`).
fn is_dropped(v: f32) -> bool {
    v.to_bits() == 0
}

/// Bitmap and stored values of `v`.
pub fn encode(v: &[f32]) -> (Vec<u8>, Vec<f32>) {
    let mut bitmap = vec![0u8; v.len().div_ceil(8)];
    let mut values = Vec::new();
    for (i, &x) in v.iter().enumerate() {
        if !is_dropped(x) {
            bitmap[i / 8] |= 1 << (i % 8);
            values.push(x);
        }
    }
    (bitmap, values)
}

/// Dense values of length `n` from a bitmap and stored values; `None` when they disagree
/// (wrong bitmap length, set trailing bits, or a value count different from the popcount).
pub fn decode(n: usize, bitmap: &[u8], values: &[f32]) -> Option<Vec<f32>> {
    if bitmap.len() != n.div_ceil(8) {
        return None;
    }
    let ones: usize = bitmap.iter().map(|b| b.count_ones() as usize).sum();
    if ones != values.len() {
        return None;
    }
    if !n.is_multiple_of(8) && bitmap[n / 8] >> (n % 8) != 0 {
        return None;
    }
    let mut out = vec![0.0f32; n];
    let mut it = values.iter();
    for (i, o) in out.iter_mut().enumerate() {
        if bitmap[i / 8] >> (i % 8) & 1 == 1 {
            *o = *it.next()?;
        }
    }
    Some(out)
}

/// One tensor as written: name, safetensors dtype (`"F32"`, `"I8"`, ...), shape,
/// little-endian bytes.
pub struct RawTensor {
    /// Tensor name.
    pub name: String,
    /// safetensors dtype name.
    pub dtype: &'static str,
    /// Shape.
    pub shape: Vec<usize>,
    /// Little-endian element bytes.
    pub bytes: Vec<u8>,
}

type Raw = RawTensor;

/// Writes `tensors` in the given order as a safetensors file with `metadata`, atomically
/// (temp file, then rename). The header's keys are in a fixed order, so equal inputs give
/// byte-identical files.
pub fn save_raw_safetensors(
    path: &Path,
    tensors: &[RawTensor],
    metadata: &BTreeMap<String, String>,
) -> Result<()> {
    write_raw(path, tensors, metadata)
}

fn dense_raw(t: &NamedTensor) -> Raw {
    let (dtype, bytes) = match &t.data {
        TensorData::F32(v) => ("F32", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
        TensorData::I64(v) => ("I64", v.iter().flat_map(|x| x.to_le_bytes()).collect()),
    };
    Raw {
        name: t.name.clone(),
        dtype,
        shape: t.shape.clone(),
        bytes,
    }
}

/// Writes `sd` like [`crate::save_safetensors`] (state-dict order, atomic), storing every
/// F32 tensor that gets smaller as `bitmap-v1` (see the module docs).
pub fn save_safetensors_sparse(
    path: &Path,
    sd: &StateDict,
    metadata: &BTreeMap<String, String>,
) -> Result<SparseSaveReport> {
    let mut raws = Vec::new();
    let mut index = Map::new();
    let mut report = SparseSaveReport::default();
    for t in sd.iter() {
        if t.name.ends_with(BITMAP_SUFFIX) || t.name.ends_with(VALUES_SUFFIX) {
            return Err(st_err(
                path,
                format!("tensor name `{}` is reserved for sparse storage", t.name),
            ));
        }
        check_shape(path, t)?;
        let dense = dense_raw(t);
        report.dense_data_bytes += dense.bytes.len();
        let TensorData::F32(v) = &t.data else {
            raws.push(dense);
            continue;
        };
        let kept = v.iter().filter(|x| !is_dropped(**x)).count();
        if v.len().div_ceil(8) + 4 * kept >= 4 * v.len() {
            raws.push(dense);
            continue;
        }
        let (bitmap, values) = encode(v);
        index.insert(t.name.clone(), json!(t.shape));
        report.encoded.push(t.name.clone());
        raws.push(Raw {
            name: format!("{}{BITMAP_SUFFIX}", t.name),
            dtype: "U8",
            shape: vec![bitmap.len()],
            bytes: bitmap,
        });
        raws.push(Raw {
            name: format!("{}{VALUES_SUFFIX}", t.name),
            dtype: "F32",
            shape: vec![values.len()],
            bytes: values.iter().flat_map(|x| x.to_le_bytes()).collect(),
        });
    }
    report.data_bytes = raws.iter().map(|r| r.bytes.len()).sum();
    let mut meta = metadata.clone();
    meta.remove(SPARSE_META_KEY);
    if !index.is_empty() {
        let v = json!({"format": SPARSE_FORMAT, "tensors": Json::Object(index)});
        meta.insert(SPARSE_META_KEY.into(), v.to_string());
    }
    write_raw(path, &raws, &meta)?;
    Ok(report)
}

fn write_raw(path: &Path, raws: &[Raw], meta: &BTreeMap<String, String>) -> Result<()> {
    let mut map = Map::new();
    if !meta.is_empty() {
        map.insert("__metadata__".into(), json!(meta));
    }
    let mut offset = 0usize;
    for r in raws {
        if r.name == "__metadata__" || map.contains_key(&r.name) {
            return Err(st_err(
                path,
                format!("tensor name `{}` is reserved or duplicated", r.name),
            ));
        }
        let end = offset + r.bytes.len();
        map.insert(
            r.name.clone(),
            json!({"dtype": r.dtype, "shape": r.shape, "data_offsets": [offset, end]}),
        );
        offset = end;
    }
    let mut header =
        serde_json::to_vec(&Json::Object(map)).map_err(|e| st_err(path, format!("header: {e}")))?;
    while !header.len().is_multiple_of(8) {
        header.push(b' ');
    }
    slimdet_atomic::write_with(path, |w| {
        w.write_all(&(header.len() as u64).to_le_bytes())?;
        w.write_all(&header)?;
        for r in raws {
            w.write_all(&r.bytes)?;
        }
        Ok(())
    })
    .map_err(|source| FormatError::Io {
        path: path.to_path_buf(),
        op: "writing",
        source,
    })
}

/// Replaces every `bitmap-v1` pair listed in `meta[slimdet.sparse]` by its dense tensor,
/// at the pair's position, and removes the index from `meta`. A file without the index is
/// left as is.
pub(crate) fn expand(
    sd: &mut StateDict,
    meta: &mut BTreeMap<String, String>,
    path: &Path,
) -> Result<()> {
    let Some(index) = meta.remove(SPARSE_META_KEY) else {
        return Ok(());
    };
    let index: Json = serde_json::from_str(&index)
        .map_err(|e| st_err(path, format!("{SPARSE_META_KEY}: invalid JSON: {e}")))?;
    if index.get("format").and_then(Json::as_str) != Some(SPARSE_FORMAT) {
        return Err(st_err(
            path,
            format!("{SPARSE_META_KEY}: unsupported sparse format (expected {SPARSE_FORMAT})"),
        ));
    }
    let Some(tensors) = index.get("tensors").and_then(Json::as_object) else {
        return Err(st_err(path, format!("{SPARSE_META_KEY}: no `tensors` map")));
    };
    for (name, shape) in tensors {
        let shape: Vec<usize> = shape
            .as_array()
            .and_then(|a| a.iter().map(|d| d.as_u64().map(|d| d as usize)).collect())
            .ok_or_else(|| st_err(path, format!("sparse tensor `{name}`: bad shape")))?;
        let bad = |why: &str| st_err(path, format!("sparse tensor `{name}`: {why}"));
        let bname = format!("{name}{BITMAP_SUFFIX}");
        let vname = format!("{name}{VALUES_SUFFIX}");
        let bpos = sd.tensors.iter().position(|t| t.name == bname);
        let vpos = sd.tensors.iter().position(|t| t.name == vname);
        let (Some(bpos), Some(vpos)) = (bpos, vpos) else {
            return Err(bad("bitmap or values tensor missing"));
        };
        let bitmap: Vec<u8> = match &sd.tensors[bpos].data {
            TensorData::I64(v) => v
                .iter()
                .map(|&b| u8::try_from(b))
                .collect::<std::result::Result<_, _>>()
                .map_err(|_| bad("bitmap is not bytes"))?,
            TensorData::F32(_) => return Err(bad("bitmap is not U8")),
        };
        let TensorData::F32(values) = &sd.tensors[vpos].data else {
            return Err(bad("values are not F32"));
        };
        let n = shape
            .iter()
            .try_fold(1usize, |a, &d| a.checked_mul(d))
            .ok_or_else(|| bad("shape overflows"))?;
        let dense = decode(n, &bitmap, values)
            .ok_or_else(|| bad("bitmap and values do not agree with the shape"))?;
        let first = bpos.min(vpos);
        sd.tensors[first] = NamedTensor {
            name: name.clone(),
            shape,
            data: TensorData::F32(dense),
        };
        sd.tensors.remove(bpos.max(vpos));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_decode_keeps_bits() {
        let v = [
            0.0,
            -0.0,
            1.0,
            f32::from_bits(0x7fc0_0001),
            0.0,
            1e-42,
            0.0,
            0.0,
            2.0,
        ];
        let (b, vals) = encode(&v);
        assert_eq!(b.len(), 2);
        assert_eq!(vals.len(), 5);
        let d = decode(v.len(), &b, &vals).unwrap();
        let bits = |x: &[f32]| x.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
        assert_eq!(bits(&d), bits(&v));
    }

    #[test]
    fn decode_rejects_inconsistent_input() {
        assert!(decode(9, &[0xff], &[1.0; 8]).is_none());
        assert!(decode(9, &[0xff, 0x01], &[1.0; 8]).is_none());
        assert!(decode(9, &[0xff, 0x02], &[1.0; 9]).is_none());
        assert!(decode(0, &[], &[]).is_some());
    }
}
