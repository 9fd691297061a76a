//! AVX-512F kernels: 16 f32 lanes per zmm, masked loads and stores for channel tails.

mod dwconv3x3_f32;
mod gemm_bf16f32;
mod pointwise_f32;
mod qadd_u8;
mod qdwconv3x3_vnni;
mod qdwconv_u8i8;
mod qgemm_u8i8_amx;
mod qgemm_u8i8_vnni;
mod requant_u8;
mod spmm_f32;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c16;
pub(super) use gemm_bf16f32::{AStrides, gemm_bf16f32};
pub(super) use pointwise_f32::pointwise_f32;
pub(super) use qadd_u8::qadd_u8;
pub(super) use qdwconv_u8i8::qdwconv_u8i8_c16;
pub(super) use qgemm_u8i8_amx::qgemm_u8i8_amx;
pub(super) use qgemm_u8i8_vnni::qgemm_u8i8_vnni;
pub(super) use spmm_f32::{spmm_f32_32x1, spmm_f32_64x1};
