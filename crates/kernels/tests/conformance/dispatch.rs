//! Tier parsing, ordering and the `SLIMDET_KERNELS` override.

use std::process::Command;

use slimdet_kernels::{Tier, dispatch};

#[test]
fn tier_parse_accepts_names_in_any_case() {
    assert_eq!(Tier::parse("scalar"), Some(Tier::Scalar));
    assert_eq!(Tier::parse("avx2"), Some(Tier::Avx2));
    assert_eq!(Tier::parse("avx512"), Some(Tier::Avx512));
    assert_eq!(Tier::parse(" AVX512\n"), Some(Tier::Avx512));
    assert_eq!(Tier::parse("Scalar"), Some(Tier::Scalar));
    assert_eq!(Tier::parse("neon"), Some(Tier::Neon));
    assert_eq!(Tier::parse("NEON-DOTPROD"), Some(Tier::NeonDot));
    for bad in [
        "",
        "sse",
        "avx",
        "avx-512",
        "dotprod",
        "neon-dot",
        "scalar,avx2",
    ] {
        assert_eq!(Tier::parse(bad), None, "{bad:?}");
    }
    for t in [
        Tier::Scalar,
        Tier::Avx2,
        Tier::Avx512,
        Tier::Neon,
        Tier::NeonDot,
    ] {
        assert_eq!(Tier::parse(t.name()), Some(t));
    }
}

#[test]
fn available_tiers_are_ordered_and_bounded_by_the_cpu() {
    let tiers = dispatch::available();
    assert_eq!(tiers.first(), Some(&Tier::Scalar));
    assert!(tiers.windows(2).all(|w| w[0] < w[1]));
    let aarch64 = cfg!(target_arch = "aarch64");
    assert!(
        tiers[1..].iter().all(|t| t.is_aarch64() == aarch64),
        "{tiers:?}"
    );
    assert_eq!(tiers.last(), Some(&dispatch::detected()));
    assert!(tiers.contains(&slimdet_kernels::tier()));
}

/// Expected process tier when `SLIMDET_KERNELS` is `forced`.
fn expected(forced: &str) -> Tier {
    Tier::parse(forced).map_or(dispatch::detected(), |t| {
        dispatch::resolve(t, dispatch::detected())
    })
}

#[test]
fn forcing_resolves_within_the_architecture() {
    use dispatch::resolve;
    assert_eq!(resolve(Tier::Avx512, Tier::Avx2), Tier::Avx2);
    assert_eq!(resolve(Tier::Avx2, Tier::Avx512), Tier::Avx2);
    assert_eq!(resolve(Tier::NeonDot, Tier::Neon), Tier::Neon);
    assert_eq!(resolve(Tier::Neon, Tier::NeonDot), Tier::Neon);
    assert_eq!(resolve(Tier::Neon, Tier::Avx512), Tier::Scalar);
    assert_eq!(resolve(Tier::Avx2, Tier::NeonDot), Tier::Scalar);
    assert_eq!(resolve(Tier::Avx2, Tier::Scalar), Tier::Scalar);
    assert_eq!(resolve(Tier::Scalar, Tier::NeonDot), Tier::Scalar);
}

/// Runs [`tier_probe`] in a child process with `SLIMDET_KERNELS` set: `tier()` is chosen once
/// per process, so each setting needs its own process.
#[test]
fn slimdet_kernels_env_forces_the_tier() {
    let exe = std::env::current_exe().expect("test binary path");
    for forced in ["scalar", "AVX2", "avx512", "neon", "neon-dotprod", "bogus"] {
        let want = expected(forced);
        let child = Command::new(&exe)
            .args([
                "dispatch::tier_probe",
                "--exact",
                "--ignored",
                "--test-threads=1",
            ])
            .env("SLIMDET_KERNELS", forced)
            .env("SLIMDET_EXPECT_TIER", want.name())
            .output()
            .expect("spawn test binary");
        let stdout = String::from_utf8_lossy(&child.stdout);
        assert!(
            child.status.success() && stdout.contains("1 passed"),
            "SLIMDET_KERNELS={forced}: expected tier {}\n{stdout}{}",
            want.name(),
            String::from_utf8_lossy(&child.stderr)
        );
    }
}

/// Helper for [`slimdet_kernels_env_forces_the_tier`]; does nothing unless that test set
/// `SLIMDET_EXPECT_TIER`.
#[test]
#[ignore = "run in a child process by slimdet_kernels_env_forces_the_tier"]
fn tier_probe() {
    if let Ok(want) = std::env::var("SLIMDET_EXPECT_TIER") {
        assert_eq!(slimdet_kernels::tier().name(), want);
    }
}
