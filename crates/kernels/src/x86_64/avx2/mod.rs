//! AVX2 + FMA kernels: 8 f32 lanes per ymm, scalar code for channel tails.

mod dwconv3x3_f32;
mod qadd_u8;
mod qdwconv_u8i8;
mod qgemm_u8i8;
mod requant_u8;
mod spmm_f32;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c8;
pub(super) use qadd_u8::qadd_u8;
pub(super) use qdwconv_u8i8::qdwconv_u8i8_c8;
pub(super) use qgemm_u8i8::qgemm_u8i8_avx2;
pub(super) use spmm_f32::spmm_f32_8x1;
