//! AVX-512F kernels: 16 f32 lanes per zmm, masked loads and stores for channel tails.

mod dwconv3x3_f32;

pub(super) use dwconv3x3_f32::dwconv3x3_f32_c16;
