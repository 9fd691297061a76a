//! AVX2 + FMA kernels: 8 f32 lanes per ymm, scalar code for channel tails.

mod dwconv3x3_f32;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c8;
