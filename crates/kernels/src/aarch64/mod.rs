//! aarch64 SIMD kernels (Raspberry Pi 4 and 5), reached only through the safe wrappers here
//! and in [`quant`].
//!
//! As in `x86_64`, each ISA function is a private `#[target_feature] unsafe fn` under
//! `neon/`; the wrappers check the requested [`Tier`], re-check the CPU features (cached
//! once per process) and validate every slice length first. Tiers: `neon` (ARMv8.0
//! Advanced SIMD, every aarch64 core: Cortex-A72 of the Pi 4) and `neon-dotprod` (ARMv8.2
//! `sdot`: Cortex-A76 of the Pi 5).
//!
//! What runs where on aarch64: f32 GEMMs (the 1x1 convolutions, im2col convolutions,
//! training products) go to the `gemm` crate's NEON kernels on any NEON tier; the int8
//! GEMM runs the kernels here; everything else runs the portable code, which the compiler
//! vectorises with NEON (baseline on aarch64).
//!
//! On other architectures the wrappers exist but always decline.

#[cfg(target_arch = "aarch64")]
mod neon;
pub(crate) mod quant;

use crate::dispatch::Tier;

/// The aarch64 instruction set a call may use.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) enum Isa {
    /// Advanced SIMD only (widening multiplies, pairwise adds).
    Neon,
    /// Advanced SIMD with `sdot`.
    NeonDot,
}

/// The widest aarch64 ISA that both `tier` and the CPU allow.
pub(crate) fn isa(tier: Tier) -> Option<Isa> {
    #[cfg(target_arch = "aarch64")]
    {
        static F: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
        let (neon, dot) = *F.get_or_init(|| {
            let neon = std::arch::is_aarch64_feature_detected!("neon");
            (
                neon,
                neon && std::arch::is_aarch64_feature_detected!("dotprod"),
            )
        });
        match tier {
            Tier::NeonDot if dot => return Some(Isa::NeonDot),
            Tier::Neon | Tier::NeonDot if neon => return Some(Isa::Neon),
            _ => {}
        }
    }
    let _ = tier;
    None
}
