//! NEON kernels (see the parent module).

mod dwconv3x3_f32;
mod qgemm_u8i8;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c4;
pub(super) use qgemm_u8i8::{qgemm_tile_dot, qgemm_tile_mull};
