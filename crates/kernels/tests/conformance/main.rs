//! Kernel conformance: every dispatch tier this CPU can run is compared with the plain-loop
//! reference in `slimdet_kernels::reference` over a grid of edge cases and random shapes.
//!
//! One integration-test binary (one link) with a module per op family.

mod bf16_gemm;
mod common;
mod dispatch;
mod dwconv;
mod gemm;
mod pointwise;
mod quant;
