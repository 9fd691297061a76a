//! x86-64 SIMD kernels, reached only through the safe wrappers here.
//!
//! Each ISA function is a private `#[target_feature] unsafe fn` in `<isa>/<kernel>.rs`. The
//! wrappers below are the only callers: they check the requested [`Tier`], re-check the CPU
//! features (cached once per process) and validate every slice length before entering an
//! ISA function, so a safe caller can never reach an unsupported instruction or an
//! out-of-bounds access, whatever tier it passes.
//!
//! On other architectures the wrappers exist but always decline, and callers take the
//! portable paths.

use std::ops::Range;

use crate::act::Act;
use crate::dispatch::Tier;
pub(crate) use crate::dw_plan::Plan;
use crate::reference::ConvGeom;

#[cfg(target_arch = "x86_64")]
mod avx2;
#[cfg(target_arch = "x86_64")]
mod avx512;
pub(crate) mod quant;
pub(crate) mod sparse;

/// CPU features the kernels here need, detected once per process.
#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct Features {
    /// AVX-512F: every AVX-512 kernel here uses only the foundation subset.
    avx512f: bool,
    /// AVX2 and FMA.
    avx2_fma: bool,
    /// AVX512-BF16 (with AVX-512F): `vdpbf16ps`.
    avx512bf16: bool,
}

#[cfg(target_arch = "x86_64")]
fn features() -> Features {
    static FEATURES: std::sync::OnceLock<Features> = std::sync::OnceLock::new();
    *FEATURES.get_or_init(|| Features {
        avx512f: std::arch::is_x86_feature_detected!("avx512f"),
        avx2_fma: std::arch::is_x86_feature_detected!("avx2")
            && std::arch::is_x86_feature_detected!("fma"),
        avx512bf16: std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bf16"),
    })
}

/// The ISA a 3x3 depthwise call would run on, if any.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum Isa {
    Avx512,
    Avx2,
}

/// Picks the widest ISA allowed by both `tier` and the CPU.
fn isa_for(tier: Tier) -> Option<Isa> {
    #[cfg(target_arch = "x86_64")]
    {
        let f = features();
        if tier >= Tier::Avx512 && f.avx512f {
            return Some(Isa::Avx512);
        }
        if tier >= Tier::Avx2 && f.avx2_fma {
            return Some(Isa::Avx2);
        }
    }
    let _ = tier;
    None
}

/// Runs a 3x3 depthwise SIMD kernel when `tier` and the geometry allow it.
/// Returns false (and writes nothing) when the caller must use the portable path.
///
/// `input` holds image rows `row0..row0 + input.len() / (in_w·c)`, which must include
/// every row that output rows `rows` read; other shapes are as in
/// [`crate::dwconv::dwconv_rows`]. They are re-checked here, so this wrapper is sound on
/// its own.
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
    let Some(isa) = isa_for(tier) else {
        return false;
    };
    let Some(plan) = Plan::for_call(g, act, input, row0, weight, scale, bias, &rows, out.len())
    else {
        return false;
    };
    if rows.is_empty() || plan.out_w == 0 {
        return true; // nothing to write (and an empty image row would divide by zero below)
    }
    run(isa, &plan, input, weight, scale, bias, rows, out);
    true
}

#[cfg(target_arch = "x86_64")]
#[allow(clippy::too_many_arguments)]
fn run(
    isa: Isa,
    plan: &Plan,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    match isa {
        // SAFETY: `isa_for` returned Avx512 only after `features()` detected AVX-512F on
        // this CPU, and the caller checked every slice length against `plan` and `rows`.
        Isa::Avx512 => unsafe {
            avx512::dwconv3x3_f32_c16(plan, input, weight, scale, bias, rows, out);
        },
        // SAFETY: `isa_for` returned Avx2 only after `features()` detected AVX2 and FMA on
        // this CPU, and the caller checked every slice length against `plan` and `rows`.
        Isa::Avx2 => unsafe {
            avx2::dwconv3x3_f32_c8(plan, input, weight, scale, bias, rows, out);
        },
    }
}

#[cfg(not(target_arch = "x86_64"))]
#[allow(clippy::too_many_arguments)]
fn run(
    _: Isa,
    _: &Plan,
    _: &[f32],
    _: &[f32],
    _: Option<&[f32]>,
    _: &[f32],
    _: Range<usize>,
    _: &mut [f32],
) {
    unreachable!("no SIMD ISA is ever selected off x86-64")
}

/// Id of the kernel `dwconv3x3_rows` would run for `tier`, `g` and `act`, or `None` when it
/// would decline. Used in logs, benches and CSV rows.
pub(crate) fn dwconv3x3_id(tier: Tier, g: &ConvGeom, act: Act) -> Option<&'static str> {
    Plan::new(g, act)?;
    Some(match (isa_for(tier)?, act) {
        (Isa::Avx512, Act::None) => "x86_64/avx512/dwconv3x3_f32_c16",
        (Isa::Avx512, Act::Relu) => "x86_64/avx512/dwconv3x3_f32_relu_c16",
        (Isa::Avx512, Act::Relu6) => "x86_64/avx512/dwconv3x3_f32_relu6_c16",
        (Isa::Avx2, Act::None) => "x86_64/avx2/dwconv3x3_f32_c8",
        (Isa::Avx2, Act::Relu) => "x86_64/avx2/dwconv3x3_f32_relu_c8",
        (Isa::Avx2, Act::Relu6) => "x86_64/avx2/dwconv3x3_f32_relu6_c8",
    })
}

/// Runs the AVX-512 pointwise kernel when `tier` and the CPU allow it. Returns false (and
/// writes nothing) when the caller must take another path.
///
/// `panels`: the weight packed as `[ceil(n / PANEL)][k][PANEL]` (see
/// [`crate::pointwise::PwWeights`]); the other shapes are as in
/// [`crate::pointwise::pointwise`]. They are re-checked here, so this wrapper is sound on
/// its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn pointwise_f32(
    tier: Tier,
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    panels: &[f32],
    epi: &crate::pointwise::PwEpilogue,
    out: &mut [f32],
) -> bool {
    use crate::pointwise::PANEL;
    if isa_for(tier) != Some(Isa::Avx512) {
        return false;
    }
    assert_eq!(x.len(), m * k, "pointwise_f32: input length");
    assert_eq!(
        panels.len(),
        n.div_ceil(PANEL) * k * PANEL,
        "pointwise_f32: weight length"
    );
    assert_eq!(epi.bias.len(), n, "pointwise_f32: bias length");
    assert!(epi.scale.is_none_or(|s| s.len() == n));
    assert!(epi.residual.is_none_or(|r| r.len() == m * n));
    assert_eq!(out.len(), m * n, "pointwise_f32: output length");
    if m == 0 || n == 0 {
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    // SAFETY: `isa_for` returned Avx512 only after `features()` detected AVX-512F on this
    // CPU; `m` and `n` are positive and every slice length was checked above.
    unsafe {
        avx512::pointwise_f32(m, k, n, x, panels, epi, out);
    }
    true
}

/// Whether the AVX512-BF16 GEMM may run for `tier`.
fn bf16_gemm_ready(tier: Tier) -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        tier >= Tier::Avx512 && features().avx512bf16
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = tier;
        false
    }
}

/// `C (+)= A · B` in bf16 on AVX512-BF16 (see [`crate::bf16_gemm`]); returns `false`
/// (doing nothing) when `tier` or the CPU does not allow it. Lengths are re-checked here,
/// so this wrapper is sound on its own.
#[allow(clippy::too_many_arguments)]
pub(crate) fn gemm_bf16f32(
    tier: Tier,
    m: usize,
    a: &[u16],
    a_pair_major: bool,
    n: usize,
    kp: usize,
    b: &[u16],
    c: &mut [f32],
    accumulate: bool,
) -> bool {
    if !bf16_gemm_ready(tier) {
        return false;
    }
    use crate::bf16_gemm::PANEL;
    assert_eq!(a.len(), m * kp * 2, "gemm_bf16f32: A length");
    assert_eq!(
        b.len(),
        n.div_ceil(PANEL) * kp * PANEL * 2,
        "gemm_bf16f32: B length"
    );
    assert_eq!(c.len(), m * n, "gemm_bf16f32: C length");
    if m == 0 || n == 0 {
        return true;
    }
    #[cfg(target_arch = "x86_64")]
    {
        let sa = if a_pair_major {
            avx512::AStrides { row: 1, pair: m }
        } else {
            avx512::AStrides { row: kp, pair: 1 }
        };
        // SAFETY: `bf16_gemm_ready` confirmed AVX-512F and AVX512-BF16 on this CPU; `n > 0`,
        // the three lengths were checked above and `sa` is one of the two layouts of an
        // `a` of m·kp pairs.
        unsafe {
            avx512::gemm_bf16f32(m, a, sa, n, kp, b, c, accumulate);
        }
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = (a_pair_major, accumulate);
    true
}

/// Id of the kernel `gemm_bf16f32` would run for `tier`, or `None` when it would decline.
pub(crate) fn gemm_bf16f32_id(tier: Tier) -> Option<&'static str> {
    bf16_gemm_ready(tier).then_some("x86_64/avx512bf16/gemm_bf16f32_4x32")
}

/// Id of the kernel `pointwise_f32` would run for `tier`, or `None` when it would decline.
pub(crate) fn pointwise_id(tier: Tier) -> Option<&'static str> {
    (isa_for(tier) == Some(Isa::Avx512)).then_some("x86_64/avx512/pointwise_f32")
}

#[cfg(test)]
mod tests {
    use super::*;

    fn geom(h: usize, w: usize, s: usize, p: usize) -> ConvGeom {
        ConvGeom {
            in_h: h,
            in_w: w,
            in_c: 3,
            out_c: 3,
            kh: 3,
            kw: 3,
            stride_h: s,
            stride_w: s,
            pad_h: p,
            pad_w: p,
            pad_h_end: p,
            pad_w_end: p,
            dil_h: 1,
            dil_w: 1,
            groups: 3,
        }
    }

    /// The interior column range and the per-row taps agree with the definition: a tap is
    /// used exactly when its input row and column are inside the image.
    #[test]
    fn plan_matches_the_definition() {
        for (h, w) in (1..12).flat_map(|h| (1..12).map(move |w| (h, w))) {
            for (s, p) in [(1, 0), (1, 1), (2, 0), (2, 1)] {
                let plan = Plan::new(&geom(h, w, s, p), Act::None).unwrap();
                let inside = |i: isize, n: usize| i >= 0 && i < n as isize;
                for ox in 0..plan.out_w {
                    let ix0 = (ox * s) as isize - p as isize;
                    let interior = (0..3).all(|kx| inside(ix0 + kx, w));
                    assert_eq!(
                        interior,
                        (plan.ox_lo..plan.ox_hi).contains(&ox),
                        "{h}x{w} s{s} p{p} ox {ox}"
                    );
                    for kx in 0..3 {
                        let want =
                            inside(ix0 + kx as isize, w).then_some((ix0 + kx as isize) as usize);
                        assert_eq!(plan.tap_col(ox, kx), want);
                    }
                }
                for oy in 0..plan.out_h {
                    let t = plan.taps(oy);
                    let iy0 = (oy * s) as isize - p as isize;
                    let used: Vec<usize> =
                        (0..3).filter(|&ky| inside(iy0 + ky as isize, h)).collect();
                    assert_eq!(
                        used,
                        (t.ky0..t.ky0 + t.n).collect::<Vec<_>>(),
                        "{h}x{w} s{s} p{p} oy {oy}"
                    );
                    assert_eq!(t.iy0 as isize, iy0 + t.ky0 as isize);
                }
            }
        }
    }

    #[test]
    fn channel_groups_cover_the_channels_in_whole_blocks() {
        for (w, c) in [(1, 1), (10, 960), (19, 576), (40, 75), (75, 144), (150, 96)] {
            let plan = Plan::new(
                &ConvGeom {
                    in_c: c,
                    out_c: c,
                    groups: c,
                    ..geom(5, w, 1, 1)
                },
                Act::None,
            )
            .unwrap();
            for lanes in [8, 16] {
                let groups: Vec<_> = plan.channel_groups(lanes).collect();
                assert_eq!(groups.first().map(|g| g.start), Some(0));
                assert_eq!(groups.last().map(|g| g.end), Some(c));
                for pair in groups.windows(2) {
                    assert_eq!(pair[0].end, pair[1].start);
                    assert_eq!(pair[0].end % lanes, 0, "groups split channel blocks");
                }
            }
        }
    }

    #[test]
    fn unsupported_geometries_have_no_plan() {
        let ok = geom(8, 8, 1, 1);
        assert!(Plan::new(&ok, Act::Relu).is_some());
        for bad in [
            ConvGeom { kh: 5, kw: 5, ..ok },
            ConvGeom { dil_h: 2, ..ok },
            ConvGeom { stride_w: 3, ..ok },
            ConvGeom { pad_h: 2, ..ok },
            ConvGeom { pad_w_end: 2, ..ok },
            ConvGeom { groups: 1, ..ok },
            ConvGeom { out_c: 6, ..ok },
        ] {
            assert!(Plan::new(&bad, Act::None).is_none(), "{bad:?}");
        }
    }
}
