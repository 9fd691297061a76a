//! Run-time CPU dispatch: the kernel tier is chosen once per process.
//!
//! The tier is the best the CPU supports, unless `SLIMDET_KERNELS=scalar|avx2|avx512`
//! forces one (for tests and triage). Forcing a tier the CPU lacks falls back to the best
//! available lower tier, so a forced run can never execute an unsupported instruction.

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
}

impl Tier {
    /// Name used in logs, benches and CSV rows.
    pub fn name(self) -> &'static str {
        match self {
            Tier::Scalar => "scalar",
            Tier::Avx2 => "avx2",
            Tier::Avx512 => "avx512",
        }
    }

    /// Parses `scalar`, `avx2` or `avx512`.
    pub fn parse(s: &str) -> Option<Tier> {
        match s.trim().to_ascii_lowercase().as_str() {
            "scalar" => Some(Tier::Scalar),
            "avx2" => Some(Tier::Avx2),
            "avx512" => Some(Tier::Avx512),
            _ => None,
        }
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
    Tier::Scalar
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
            Some(forced) => forced.min(best),
            None => best,
        }
    })
}

/// All tiers this CPU can run, lowest first; tests loop over them.
pub fn available() -> Vec<Tier> {
    let best = detected();
    [Tier::Scalar, Tier::Avx2, Tier::Avx512]
        .into_iter()
        .filter(|t| *t <= best)
        .collect()
}
