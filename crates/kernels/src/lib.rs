//! Compute kernels for slimdet: slices in, slices out.
//!
//! This is the only crate allowed to use `unsafe`. Every SIMD kernel lives under
//! `x86_64/<isa>/` or `aarch64/neon/`, is reached only through a safe wrapper, and is tested against the
//! plain-loop reference in [`reference`](mod@reference), which is the specification.
//!
//! Layouts: activations are NHWC (`[H, W, C]` per image, channels contiguous), weights are
//! packed by the caller into the layout each kernel documents.

mod aarch64;
pub mod act;
pub mod bf16;
pub mod bf16_gemm;
pub mod bn_train;
pub mod dispatch;
pub mod dw_backward;
mod dw_plan;
pub mod dwconv;
pub mod im2col;
pub mod pointwise;
pub mod quant;
pub mod reference;
pub mod sgemm;
pub mod sgemm_t;
pub mod softmax;
pub mod sparse;
mod x86_64;

pub use act::Act;
pub use dispatch::{Tier, tier};
