//! A dense f32 tensor. Activations are NHWC (`[N, H, W, C]`); convolution weights keep
//! PyTorch's OIHW layout (`[out, in / groups, kh, kw]`) so state_dicts map one to one.

use crate::error::{CoreError, Result};

/// A dense row-major f32 tensor.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Tensor {
    shape: Vec<usize>,
    data: Vec<f32>,
}

impl Tensor {
    /// Builds a tensor, checking that `data` has `shape.iter().product()` values.
    pub fn new(shape: Vec<usize>, data: Vec<f32>) -> Result<Self> {
        let expected = shape.iter().product::<usize>();
        if expected != data.len() {
            return Err(CoreError::DataLength {
                shape,
                expected,
                got: data.len(),
            });
        }
        Ok(Self { shape, data })
    }

    /// A tensor of zeros.
    pub fn zeros(shape: Vec<usize>) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![0.0; n],
        }
    }

    /// A tensor filled with `value`.
    pub fn full(shape: Vec<usize>, value: f32) -> Self {
        let n = shape.iter().product();
        Self {
            shape,
            data: vec![value; n],
        }
    }

    /// The shape.
    pub fn shape(&self) -> &[usize] {
        &self.shape
    }

    /// The values, row-major.
    pub fn data(&self) -> &[f32] {
        &self.data
    }

    /// The values, mutable.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }

    /// Number of elements.
    pub fn numel(&self) -> usize {
        self.data.len()
    }

    /// Number of exactly-zero elements.
    pub fn zeros_count(&self) -> usize {
        self.data.iter().filter(|v| **v == 0.0).count()
    }

    /// Consumes the tensor, returning shape and data.
    pub fn into_parts(self) -> (Vec<usize>, Vec<f32>) {
        (self.shape, self.data)
    }

    /// Reinterprets the data with a new shape of the same element count.
    pub fn reshaped(mut self, shape: Vec<usize>) -> Result<Self> {
        let expected = shape.iter().product::<usize>();
        if expected != self.data.len() {
            return Err(CoreError::DataLength {
                shape,
                expected,
                got: self.data.len(),
            });
        }
        self.shape = shape;
        Ok(self)
    }
}
