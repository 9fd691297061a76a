//! Run-time CPU dispatch: the kernel tier is chosen once per process.
//!
//! The tier is the best the CPU supports, unless `SLIMDET_KERNELS=scalar|avx2|avx512`
//! (x86-64) or `SLIMDET_KERNELS=scalar|neon|neon-dotprod` (aarch64) forces one (for tests
//! and triage). Forcing a tier the CPU lacks falls back to the best available lower tier
//! of the same architecture, and a tier of the other architecture to `scalar`, so a forced
//! run can never execute an unsupported instruction.

use std::sync::OnceLock;

/// A family of kernels, from the portable reference to the widest SIMD.
#[derive(Clone, Copy, Debug, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub enum Tier {
    /// Plain Rust loops; runs everywhere.
    Scalar,
    /// AVX2 + FMA (x86-64-v3).
    Avx2,
    /// AVX-512 F/BW/DQ/VL (x86-64-v4); VNNI is detected separately for int8.
    Avx512,
    /// aarch64 Advanced SIMD (every ARMv8-A core: Raspberry Pi 4's Cortex-A72).
    Neon,
    /// NEON with the ARMv8.2 dot-product instructions `sdot`/`udot` (Raspberry Pi 5's
    /// Cortex-A76).
    NeonDot,
}

impl Tier {
    /// Name used in logs, benches and CSV rows.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Scalar => "scalar",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
            Tier::Neon => "neon",
            Tier::NeonDot => "neon-dotprod",
        }
    }

    /// Parses `scalar`, `avx2`, `avx512`, `neon` or `neon-dotprod`.
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Tier::Scalar),
            "avx2" => Some(Tier::Avx2),
            "avx512" => Some(Tier::Avx512),
            "neon" => Some(Tier::Neon),
            "neon-dotprod" => Some(Tier::NeonDot),
            _ => None,
        }
    }

    /// Whether this is an aarch64 tier (the x86 tiers compare among themselves only).
    pub fn is_aarch64(self) -> bool {
        matches!(self, Tier::Neon | Tier::NeonDot)
    }
}

/// The best tier this CPU supports.
pub fn detected() -> Tier {
    #[cfg(target_arch = "x86_64")]
    {
        if std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512dq")
            && std::arch::is_x86_feature_detected!("avx512vl")
            && std::arch::is_x86_feature_detected!("fma")
        {
            return Tier::Avx512;
        }
        if std::arch::is_x86_feature_detected!("avx2") && std::arch::is_x86_feature_detected!("fma")
        {
            return Tier::Avx2;
        }
    }
    #[cfg(target_arch = "aarch64")]
    {
        if std::arch::is_aarch64_feature_detected!("dotprod") {
            return Tier::NeonDot;
        }
        if std::arch::is_aarch64_feature_detected!("neon") {
            return Tier::Neon;
        }
    }
    Tier::Scalar
}

/// The tier a forced `SLIMDET_KERNELS` value resolves to on a CPU whose best tier is
/// `best`: itself when available, else the best lower tier of its architecture, else
/// `scalar`.
pub fn resolve(forced: Tier, best: Tier) -> Tier {
    if forced == Tier::Scalar || best == Tier::Scalar || forced.is_aarch64() != best.is_aarch64() {
        return Tier::Scalar;
    }
    forced.min(best)
}

/// Whether the CPU has AVX-512 VNNI (int8 dot products).
pub fn has_vnni() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        std::arch::is_x86_feature_detected!("avx512vnni")
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// The tier in use: chosen once per process from the CPU and `SLIMDET_KERNELS`.
pub fn tier() -> Tier {
    static TIER: OnceLock<Tier> = OnceLock::new();
    *TIER.get_or_init(|| {
        let best = detected();
        match std::env::var("SLIMDET_KERNELS")
            .ok()
            .as_deref()
            .and_then(Tier::parse)
        {
            Some(forced) => resolve(forced, best),
            None => best,
        }
    })
}

/// All tiers this CPU can run, lowest first; tests loop over them.
pub fn available() -> Vec<Tier> {
    let best = detected();
    [
        Tier::Scalar,
        Tier::Avx2,
        Tier::Avx512,
        Tier::Neon,
        Tier::NeonDot,
    ]
    .into_iter()
    .filter(|t| *t == Tier::Scalar || (t.is_aarch64() == best.is_aarch64() && *t <= best))
    .collect()
}
