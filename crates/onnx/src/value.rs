//! Tensors as the interpreter sees them (f32 or i64, any rank, row-major in ONNX axis
//! order), and their conversion from and to `TensorProto`.
//!
//! Decoding checks every size before allocating: a dimension list from a corrupt file
//! must produce an error, never a multi-gigabyte allocation or an overflow.

use crate::proto::{TensorProto, data_type};

/// Largest number of elements accepted in one tensor (1 GiB of f32).
pub const MAX_ELEMENTS: usize = 1 << 28;

/// Element storage. Integer types of ONNX are widened to i64, floating types narrowed to
/// f32 (constants only: the engine computes in f32).
#[derive(Clone, Debug, PartialEq)]
pub enum Data {
    /// 32-bit floats.
    F32(Vec<f32>),
    /// 64-bit integers (shape arithmetic, indices).
    I64(Vec<i64>),
}

/// A dense tensor in ONNX axis order.
#[derive(Clone, Debug, PartialEq)]
pub struct Value {
    /// Shape (empty = scalar).
    pub shape: Vec<usize>,
    /// Values, row-major; `shape.iter().product()` of them.
    pub data: Data,
}

/// Element count of `shape`, or an error when it overflows or exceeds [`MAX_ELEMENTS`].
pub fn numel(shape: &[usize]) -> Result<usize, String> {
    shape
        .iter()
        .try_fold(1usize, |acc, &d| acc.checked_mul(d))
        .filter(|&n| n <= MAX_ELEMENTS)
        .ok_or_else(|| format!("shape {shape:?} has more than {MAX_ELEMENTS} elements"))
}

impl Value {
    /// An f32 tensor (the caller guarantees the length).
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: Data::F32(data),
        }
    }

    /// An i64 tensor (the caller guarantees the length).
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        debug_assert_eq!(shape.iter().product::<usize>(), data.len());
        Self {
            shape,
            data: Data::I64(data),
        }
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        match &self.data {
            Data::F32(v) => v.len(),
            Data::I64(v) => v.len(),
        }
    }

    /// The f32 values, if this is a float tensor.
    pub fn as_f32(&self) -> Option<&[f32]> {
        match &self.data {
            Data::F32(v) => Some(v),
            Data::I64(_) => None,
        }
    }

    /// The values as integers (floats must be integral), e.g. for shape or axis inputs.
    pub fn to_i64s(&self) -> Result<Vec<i64>, String> {
        match &self.data {
            Data::I64(v) => Ok(v.clone()),
            Data::F32(v) => v
                .iter()
                .map(|&x| {
                    if x.fract() == 0.0 && x.abs() < 9.0e15 {
                        Ok(x as i64)
                    } else {
                        Err(format!("expected integer values, got {x}"))
                    }
                })
                .collect(),
        }
    }

    /// The single value of a one-element tensor as f32.
    pub fn scalar_f32(&self) -> Result<f32, String> {
        if self.numel() != 1 {
            return Err(format!("expected a scalar, got shape {:?}", self.shape));
        }
        Ok(match &self.data {
            Data::F32(v) => v[0],
            Data::I64(v) => v[0] as f32,
        })
    }
}

fn le_chunks<const N: usize>(raw: &[u8]) -> impl Iterator<Item = [u8; N]> + '_ {
    raw.chunks_exact(N).map(|c| {
        let mut a = [0u8; N];
        a.copy_from_slice(c);
        a
    })
}

/// Decodes a `TensorProto` into a [`Value`], checking dims, element type and data length.
pub fn from_proto(t: &TensorProto) -> Result<Value, String> {
    let name = &t.name;
    if t.data_location == 1 || !t.external_data.is_empty() {
        return Err(format!(
            "tensor `{name}` keeps its data in an external file, which is not supported"
        ));
    }
    let shape = t
        .dims
        .iter()
        .map(|&d| usize::try_from(d).map_err(|_| format!("tensor `{name}` has dimension {d}")))
        .collect::<Result<Vec<usize>, String>>()?;
    let n = numel(&shape).map_err(|e| format!("tensor `{name}`: {e}"))?;
    let raw = &t.raw_data;
    let check = |got: usize| {
        if got == n {
            Ok(())
        } else {
            Err(format!(
                "tensor `{name}` of shape {shape:?} holds {got} values instead of {n}"
            ))
        }
    };
    let size = match t.data_type {
        data_type::FLOAT | data_type::INT32 => 4,
        data_type::DOUBLE | data_type::INT64 => 8,
        data_type::INT8 | data_type::UINT8 | data_type::BOOL => 1,
        other => {
            return Err(format!(
                "tensor `{name}` has unsupported element type {other}"
            ));
        }
    };
    if !raw.is_empty() {
        if !raw.len().is_multiple_of(size) {
            return Err(format!(
                "tensor `{name}`: raw_data has {} bytes, not a multiple of {size}",
                raw.len()
            ));
        }
        check(raw.len() / size)?;
    }
    let data = match (t.data_type, raw.is_empty()) {
        (data_type::FLOAT, false) => {
            Data::F32(le_chunks::<4>(raw).map(f32::from_le_bytes).collect())
        }
        (data_type::FLOAT, true) => {
            check(t.float_data.len())?;
            Data::F32(t.float_data.clone())
        }
        (data_type::DOUBLE, false) => Data::F32(
            le_chunks::<8>(raw)
                .map(|b| f64::from_le_bytes(b) as f32)
                .collect(),
        ),
        (data_type::DOUBLE, true) => {
            check(t.double_data.len())?;
            Data::F32(t.double_data.iter().map(|&v| v as f32).collect())
        }
        (data_type::INT64, false) => {
            Data::I64(le_chunks::<8>(raw).map(i64::from_le_bytes).collect())
        }
        (data_type::INT64, true) => {
            check(t.int64_data.len())?;
            Data::I64(t.int64_data.clone())
        }
        (data_type::INT32, false) => Data::I64(
            le_chunks::<4>(raw)
                .map(|b| i32::from_le_bytes(b) as i64)
                .collect(),
        ),
        (data_type::INT8, false) => Data::I64(raw.iter().map(|&b| b as i8 as i64).collect()),
        (data_type::UINT8 | data_type::BOOL, false) => {
            Data::I64(raw.iter().map(|&b| b as i64).collect())
        }
        (_, true) => {
            check(t.int32_data.len())?;
            Data::I64(t.int32_data.iter().map(|&v| v as i64).collect())
        }
        (other, false) => {
            return Err(format!(
                "tensor `{name}` has unsupported element type {other}"
            ));
        }
    };
    Ok(Value { shape, data })
}

/// Encodes a [`Value`] as a `TensorProto` named `name` with little-endian `raw_data`.
pub fn to_proto(name: &str, v: &Value) -> TensorProto {
    let (data_type, raw_data) = match &v.data {
        Data::F32(x) => (
            data_type::FLOAT,
            x.iter().flat_map(|f| f.to_le_bytes()).collect(),
        ),
        Data::I64(x) => (
            data_type::INT64,
            x.iter().flat_map(|i| i.to_le_bytes()).collect(),
        ),
    };
    TensorProto {
        dims: v.shape.iter().map(|&d| d as i64).collect(),
        data_type,
        name: name.to_string(),
        raw_data,
        ..TensorProto::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trip_and_bad_lengths() {
        let v = Value::f32(vec![2, 1], vec![1.5, -2.0]);
        assert_eq!(from_proto(&to_proto("x", &v)).unwrap(), v);
        let i = Value::i64(vec![3], vec![1, -1, 7]);
        assert_eq!(from_proto(&to_proto("i", &i)).unwrap(), i);
        let mut t = to_proto("x", &v);
        t.raw_data.pop();
        assert!(from_proto(&t).is_err());
        t.raw_data.truncate(4);
        assert!(from_proto(&t).unwrap_err().contains("holds 1 values"));
        t.dims = vec![i64::MAX, 4];
        assert!(from_proto(&t).is_err());
        t.dims = vec![-1];
        assert!(from_proto(&t).is_err());
    }
}
