//! NEON kernels (see the parent module).

mod dwconv3x3_f32;
mod qdwconv_u8i8;
mod qgemm_u8i8;
mod requant_u8;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c4;
pub(super) use qdwconv_u8i8::qdwconv_u8i8_c8;
pub(super) use qgemm_u8i8::{qgemm_tile_dot, qgemm_tile_mull};
pub(super) use requant_u8::{RequantLanes, qadd_u8x8, requant_u8x8};
