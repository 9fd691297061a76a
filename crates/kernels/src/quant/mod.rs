//! Int8 kernels: `u8` asymmetric activations, `i8` symmetric weights, `i32` accumulators.
//!
//! - [`requant`]: the fixed-point requantization every kernel ends with (TFLite's single
//!   rounding).
//! - [`qgemm`]: `u8 × i8` GEMM with fused requantization or dequantization (pointwise
//!   convolutions, and dense convolutions after [`im2col`]).
//! - [`qdwconv`]: depthwise convolution.
//! - [`qadd`]: residual add of two differently scaled tensors.
//! - [`quantize`]: `f32 → u8` quantization of a tensor.
//!
//! The scalar functions named `*_reference` are the specification; the AVX-512 VNNI and
//! AVX2 paths (chosen at run time from the [`crate::Tier`]) match them bit for bit.

pub mod im2col;
pub mod qadd;
pub mod qdwconv;
pub mod qgemm;
pub mod quantize;
pub mod requant;

pub use im2col::im2col_u8_rows;
pub use qadd::{QAddParams, qadd_u8_requant};
pub use qdwconv::qdwconv_u8i8_requant_rows;
pub use qgemm::{
    Dequant, PackedB, QGemmShape, qgemm_u8i8_f32_dequant, qgemm_u8i8_i32_requant,
    qgemm_u8i8_requant_add,
};
pub use quantize::{QuantizeParams, quantize_f32_u8};
pub use requant::{QMul, Requant};
