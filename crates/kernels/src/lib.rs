//! Compute kernels for slimdet: slices in, slices out.
//!
//! This is the only crate allowed to use `unsafe`. Every SIMD kernel lives under
//! `x86_64/<isa>/` or `aarch64/neon/`, is reached only through a safe wrapper, and is tested against the
//! plain-loop reference in [`reference`](mod@reference), which is the specification.
//!
//! Layouts: activations are NHWC (`[H, W, C]` per image, channels contiguous), weights are
//! packed by the caller into the layout each kernel documents.
//!
//! # Kernel names
//!
//! A kernel is named by where it runs and what it does, the same id in logs, `slimdet info`,
//! benches and CSV rows:
//!
//! ```text
//! <place>/<op>_<dtype>[_<fused>][_<tile>]
//! place  = <arch>/<isa>       x86_64/avx2, x86_64/avx512, x86_64/avx512vnni, x86_64/avx512bf16,
//!                             x86_64/amx, aarch64/neon, aarch64/neondot: the SIMD kernel and the
//!                             instruction set it needs (its file lives under <arch>/<register
//!                             family>/, so AMX and VNNI kernels sit in x86_64/avx512/)
//!        | reference          the plain-loop specification (the scalar tier)
//!        | portable           portable loops the compiler vectorises, used where no SIMD
//!                             kernel applies (any tier)
//!        | gemm+portable      the `gemm` crate's product with a portable epilogue
//! op     = gemm | pointwise | dwconv3x3 | dwconv | spmm | qgemm | qdwconv | qadd ...
//! dtype  = f32 | bf16f32 (bf16 operands, f32 sums) | u8i8 (u8 activations, i8 weights) | u8
//! fused  = what the epilogue does: relu, relu6, i32_requant (i32 sums requantized), requant
//! tile   = <rows>x<cols> of the register tile, or c<lanes> for channel-vectorised kernels
//! ```
//!
//! For example `x86_64/avx512/dwconv3x3_f32_relu6_c16`,
//! `x86_64/avx512vnni/qgemm_u8i8_i32_requant_6x64`, `aarch64/neondot/qgemm_u8i8_i32_requant_4x16`,
//! `reference/qdwconv_u8i8_requant`.

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
