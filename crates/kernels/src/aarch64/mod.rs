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

use std::ops::Range;

use crate::act::Act;
use crate::dispatch::Tier;
use crate::dw_plan::Plan;
use crate::reference::ConvGeom;

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

/// Runs the NEON 3x3 depthwise kernel when `tier` and the geometry allow it; `false` (and
/// nothing written) when the caller must take the portable path. Arguments as
/// `crate::x86_64::dwconv3x3_rows`; every length is re-checked here.
#[allow(clippy::too_many_arguments)]
pub(crate) fn dwconv3x3_rows(
    tier: Tier,
    g: &ConvGeom,
    input: &[f32],
    row0: usize,
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) -> bool {
    if isa(tier).is_none() {
        return false;
    }
    let Some(plan) = Plan::for_call(g, act, input, row0, weight, scale, bias, &rows, out.len())
    else {
        return false;
    };
    #[cfg(target_arch = "aarch64")]
    // SAFETY: `isa` confirmed NEON on this CPU and `Plan::for_call` checked every slice
    // against the plan and `rows`.
    unsafe {
        neon::dwconv3x3_f32_c4(&plan, input, weight, scale, bias, rows, out);
    }
    #[cfg(not(target_arch = "aarch64"))]
    let _ = (plan, rows, out);
    true
}

/// Id of the kernel [`dwconv3x3_rows`] would run, or `None` when it would decline.
pub(crate) fn dwconv3x3_id(tier: Tier, g: &ConvGeom, act: Act) -> Option<&'static str> {
    isa(tier)?;
    Plan::new(g, act)?;
    Some(match act {
        Act::None => "aarch64/neon/dwconv3x3_f32_c4",
        Act::Relu => "aarch64/neon/dwconv3x3_f32_relu_c4",
        Act::Relu6 => "aarch64/neon/dwconv3x3_f32_relu6_c4",
    })
}
