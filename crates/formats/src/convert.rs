//! Raw element bytes to typed tensor data, and strided views to contiguous copies.
//!
//! Both `.pth` storages and safetensors buffers are flat byte arrays. This
//! module decodes them in bulk (`chunks_exact` + `from_le_bytes`, no
//! per-element allocation) into the two in-memory dtypes the toolkit uses,
//! and gathers strided tensor views into contiguous row-major copies after
//! checking every index against the storage.

use std::borrow::Cow;
use std::path::Path;

use crate::TensorData;
use crate::error::{FormatError, Result};
use crate::pickle::value::{StorageKind, TensorRef};

/// On-disk element types across `.pth` and safetensors.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum ElemType {
    F32,
    F64,
    F16,
    BF16,
    I64,
    I32,
    I16,
    I8,
    U8,
    U16,
    U32,
    U64,
    Bool,
}

impl ElemType {
    pub(crate) fn size(self) -> usize {
        match self {
            Self::F64 | Self::I64 | Self::U64 => 8,
            Self::F32 | Self::I32 | Self::U32 => 4,
            Self::F16 | Self::BF16 | Self::I16 | Self::U16 => 2,
            Self::I8 | Self::U8 | Self::Bool => 1,
        }
    }
}

impl From<StorageKind> for ElemType {
    fn from(k: StorageKind) -> Self {
        match k {
            StorageKind::F32 => Self::F32,
            StorageKind::F64 => Self::F64,
            StorageKind::F16 => Self::F16,
            StorageKind::BF16 => Self::BF16,
            StorageKind::I64 => Self::I64,
            StorageKind::I32 => Self::I32,
            StorageKind::I16 => Self::I16,
            StorageKind::I8 => Self::I8,
            StorageKind::U8 => Self::U8,
            StorageKind::Bool => Self::Bool,
        }
    }
}

/// Decodes fixed-size elements; `big_endian` flips each element first.
fn elems<const N: usize, T>(bytes: &[u8], big_endian: bool, f: impl Fn([u8; N]) -> T) -> Vec<T> {
    bytes
        .chunks_exact(N)
        .map(|c| {
            let mut a = [0u8; N];
            a.copy_from_slice(c);
            if big_endian {
                a.reverse();
            }
            f(a)
        })
        .collect()
}

/// IEEE half to single precision (exact).
pub(crate) fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h & 0x8000) << 16;
    let exp = u32::from((h >> 10) & 0x1f);
    let man = u32::from(h & 0x3ff);
    match exp {
        0 => {
            // zero or subnormal: man * 2^-24, exact in f32
            let v = man as f32 * f32::from_bits(0x3380_0000);
            if sign != 0 { -v } else { v }
        }
        0x1f => f32::from_bits(sign | 0x7f80_0000 | (man << 13)),
        _ => f32::from_bits(sign | ((exp + 112) << 23) | (man << 13)),
    }
}

/// Decodes `bytes` (whole elements only) into F32 or I64 data.
/// Fails only for `U64` values above `i64::MAX`.
pub(crate) fn decode(
    ty: ElemType,
    bytes: &[u8],
    be: bool,
) -> std::result::Result<TensorData, String> {
    Ok(match ty {
        ElemType::F32 => TensorData::F32(elems(bytes, be, f32::from_le_bytes)),
        ElemType::F64 => TensorData::F32(elems(bytes, be, |a| f64::from_le_bytes(a) as f32)),
        ElemType::F16 => TensorData::F32(elems(bytes, be, |a| f16_to_f32(u16::from_le_bytes(a)))),
        ElemType::BF16 => TensorData::F32(elems(bytes, be, |a| {
            f32::from_bits(u32::from(u16::from_le_bytes(a)) << 16)
        })),
        ElemType::I64 => TensorData::I64(elems(bytes, be, i64::from_le_bytes)),
        ElemType::I32 => TensorData::I64(elems(bytes, be, |a| i64::from(i32::from_le_bytes(a)))),
        ElemType::I16 => TensorData::I64(elems(bytes, be, |a| i64::from(i16::from_le_bytes(a)))),
        ElemType::U16 => TensorData::I64(elems(bytes, be, |a| i64::from(u16::from_le_bytes(a)))),
        ElemType::U32 => TensorData::I64(elems(bytes, be, |a| i64::from(u32::from_le_bytes(a)))),
        ElemType::I8 => TensorData::I64(bytes.iter().map(|&b| i64::from(b as i8)).collect()),
        ElemType::U8 => TensorData::I64(bytes.iter().map(|&b| i64::from(b)).collect()),
        ElemType::Bool => TensorData::I64(bytes.iter().map(|&b| i64::from(b != 0)).collect()),
        ElemType::U64 => {
            let v = elems(bytes, be, u64::from_le_bytes);
            let v: std::result::Result<Vec<i64>, _> = v.into_iter().map(i64::try_from).collect();
            TensorData::I64(v.map_err(|_| "U64 value does not fit in i64".to_string())?)
        }
    })
}

/// Builds the contiguous row-major data of tensor `name` described by `t`,
/// reading from `storage` (the bytes of its storage, or of its legacy view).
/// Returns the shape and the data.
pub(crate) fn materialize(
    path: &Path,
    name: &str,
    t: &TensorRef,
    storage: &[u8],
    big_endian: bool,
) -> Result<(Vec<usize>, TensorData)> {
    let oob = |detail: String| FormatError::OutOfBounds {
        path: path.to_path_buf(),
        tensor: name.to_string(),
        detail,
    };
    let ty = ElemType::from(t.storage.kind);
    let es = ty.size();
    if !storage.len().is_multiple_of(es) {
        return Err(oob(format!(
            "storage has {} bytes, not a multiple of {es}",
            storage.len()
        )));
    }
    let storage_numel = (storage.len() / es) as u64;
    let shape: Vec<usize> = t
        .size
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| oob(format!("dimension {d} too large"))))
        .collect::<Result<_>>()?;
    let numel = t.size.iter().try_fold(1u64, |acc, &d| acc.checked_mul(d));
    let numel = numel.ok_or_else(|| oob(format!("size {:?} overflows", t.size)))?;
    if numel == 0 {
        let data = decode(ty, &[], big_endian).map_err(oob)?;
        return Ok((shape, data));
    }
    // Highest element index touched: offset + sum((size_i - 1) * stride_i).
    let last = t
        .size
        .iter()
        .zip(&t.stride)
        .try_fold(t.offset, |acc, (&d, &s)| {
            (d - 1).checked_mul(s).and_then(|x| acc.checked_add(x))
        });
    let last = last.ok_or_else(|| oob("offset/stride arithmetic overflows".into()))?;
    if last >= storage_numel {
        return Err(oob(format!(
            "offset {} size {:?} stride {:?} reaches element {last}, storage has {storage_numel}",
            t.offset, t.size, t.stride
        )));
    }
    if numel > last - t.offset + 1 {
        return Err(oob(format!(
            "{numel} elements from a {}-element window: overlapping strides are not supported",
            last - t.offset + 1
        )));
    }
    // Both bounds are now below storage.len() / es, so usize arithmetic cannot overflow.
    let (offset, count) = (t.offset as usize, numel as usize);
    let bytes: Cow<[u8]> = if is_contiguous(&t.size, &t.stride) {
        let window = storage.get(offset * es..(offset + count) * es);
        Cow::Borrowed(window.ok_or_else(|| oob("contiguous window outside storage".into()))?)
    } else {
        Cow::Owned(gather(storage, es, offset, &shape, &t.stride))
    };
    let data = decode(ty, &bytes, big_endian).map_err(oob)?;
    Ok((shape, data))
}

/// Row-major contiguity, ignoring the stride of size-1 dimensions.
fn is_contiguous(size: &[u64], stride: &[u64]) -> bool {
    let mut expected = 1u64;
    for (&d, &s) in size.iter().zip(stride).rev() {
        if d != 1 && s != expected {
            return false;
        }
        expected = expected.saturating_mul(d);
    }
    true
}

/// Copies elements of a strided view (all indices already bounds-checked) in row-major order.
fn gather(storage: &[u8], es: usize, offset: usize, shape: &[usize], stride: &[u64]) -> Vec<u8> {
    let numel: usize = shape.iter().product();
    let mut out = Vec::with_capacity(numel * es);
    let mut idx = vec![0usize; shape.len()];
    let stride: Vec<usize> = stride.iter().map(|&s| s as usize).collect();
    for _ in 0..numel {
        let e: usize = offset + idx.iter().zip(&stride).map(|(i, s)| i * s).sum::<usize>();
        out.extend_from_slice(storage.get(e * es..(e + 1) * es).unwrap_or(&[]));
        for d in (0..shape.len()).rev() {
            idx[d] += 1;
            if idx[d] < shape[d] {
                break;
            }
            idx[d] = 0;
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::pickle::value::StorageRef;
    use std::rc::Rc;

    fn tref(offset: u64, size: &[u64], stride: &[u64]) -> TensorRef {
        let storage = Rc::new(StorageRef {
            kind: StorageKind::F32,
            key: "0".into(),
            numel: 6,
            view: None,
        });
        TensorRef {
            storage,
            offset,
            size: size.to_vec(),
            stride: stride.to_vec(),
        }
    }

    fn storage() -> Vec<u8> {
        (0..6).flat_map(|i| (i as f32).to_le_bytes()).collect()
    }

    #[test]
    fn transposed_view_is_gathered() {
        let p = Path::new("x.pth");
        let (shape, data) =
            materialize(p, "t", &tref(0, &[3, 2], &[1, 3]), &storage(), false).unwrap();
        assert_eq!(shape, vec![3, 2]);
        assert_eq!(data, TensorData::F32(vec![0.0, 3.0, 1.0, 4.0, 2.0, 5.0]));
    }

    #[test]
    fn offset_is_honoured_and_bounds_checked() {
        let p = Path::new("x.pth");
        let (_, data) = materialize(p, "t", &tref(4, &[2], &[1]), &storage(), false).unwrap();
        assert_eq!(data, TensorData::F32(vec![4.0, 5.0]));
        let err = materialize(p, "t", &tref(5, &[2], &[1]), &storage(), false).unwrap_err();
        assert!(matches!(err, FormatError::OutOfBounds { .. }), "{err}");
        let err = materialize(p, "t", &tref(0, &[4], &[0]), &storage(), false).unwrap_err();
        assert!(err.to_string().contains("overlapping"), "{err}");
    }

    #[test]
    fn half_and_bfloat_conversions_are_exact() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x0001), 5.960_464_5e-8);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(f16_to_f32(0xfc00), f32::NEG_INFINITY);
        let d = decode(ElemType::BF16, &[0x80, 0x3f], false).unwrap();
        assert_eq!(d, TensorData::F32(vec![1.0]));
        let d = decode(ElemType::I32, &[0, 0, 0, 5], true).unwrap();
        assert_eq!(d, TensorData::I64(vec![5]));
    }
}
