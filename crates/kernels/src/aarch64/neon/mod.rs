//! NEON kernels (see the parent module).

mod qgemm_u8i8;

pub(super) use qgemm_u8i8::{qgemm_tile_dot, qgemm_tile_mull};
