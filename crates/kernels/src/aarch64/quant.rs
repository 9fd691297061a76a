//! Safe entry points to the NEON int8 GEMM kernels.
//!
//! The kernels produce each tile's `i32` sums; the output stage then runs per element
//! through the same functions as the reference ([`Requant::apply`], [`QAddParams::apply`],
//! [`Dequant::apply`]), so every result is bit-identical to the scalar reference and to the
//! x86 engines, which implement the same single-rounding arithmetic.

use std::ops::Range;

use crate::dispatch::Tier;
use crate::quant::qgemm::{Dequant, PackedB, QGemmShape};
use crate::quant::{QAddParams, Requant};
use crate::reference::ConvGeom;

/// What one product writes.
#[cfg_attr(not(target_arch = "aarch64"), allow(dead_code))]
pub(crate) enum Stage<'a> {
    /// Requantized codes, with the residual add fused when given.
    U8 {
        rq: &'a Requant,
        res: Option<(&'a [u8], &'a QAddParams)>,
        c: &'a mut [u8],
    },
    /// Dequantized values.
    F32 { dq: &'a Dequant, c: &'a mut [f32] },
}

/// Kernel id of the int8 depthwise convolution on `tier`, if a NEON kernel runs it.
pub(crate) fn qdwconv_id(tier: Tier) -> Option<&'static str> {
    super::isa(tier).map(|_| "aarch64/neon/qdwconv_u8i8_requant_c8")
}

/// Depthwise convolution on NEON; `false` when `tier` or the CPU has no NEON path. The
/// public caller checked every length and the stage (`qdwconv::check`).
#[allow(clippy::too_many_arguments)]
pub(crate) fn qdwconv(
    tier: Tier,
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) -> bool {
    #[cfg(target_arch = "aarch64")]
    if super::isa(tier).is_some() {
        // SAFETY: NEON confirmed; `qdwconv::check` validated the slices for `g`, `rows`.
        unsafe { super::neon::qdwconv_u8i8_c8(g, x, x_zp, w, rq, rows, out) };
        return true;
    }
    let _ = (tier, g, x, x_zp, w, rq, rows, out);
    false
}

/// Requantized add on NEON; `false` when `tier` or the CPU has no NEON path. The public
/// caller checked equal lengths and `p`.
pub(crate) fn qadd(tier: Tier, a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) -> bool {
    #[cfg(target_arch = "aarch64")]
    if super::isa(tier).is_some() {
        let vec = out.len() / 8 * 8;
        for i in (0..vec).step_by(8) {
            // SAFETY: NEON confirmed; 8 elements from i exist in all three slices.
            unsafe { super::neon::qadd_u8x8(&a[i..], &b[i..], p, &mut out[i..]) };
        }
        for i in vec..out.len() {
            out[i] = p.apply(a[i], b[i]);
        }
        return true;
    }
    let _ = (tier, a, b, p, out);
    false
}

/// Kernel id of the int8 GEMM on `tier`, if a NEON kernel runs it.
pub(crate) fn qgemm_id(tier: Tier) -> Option<&'static str> {
    Some(match super::isa(tier)? {
        super::Isa::NeonDot => "aarch64/neondot/qgemm_u8i8_i32_requant_4x16",
        super::Isa::Neon => "aarch64/neon/qgemm_u8i8_i32_requant_2x16",
    })
}

/// Runs the product on NEON; `false` (nothing written) when `tier` or the CPU has no NEON
/// path. The public caller in [`crate::quant::qgemm`] has checked every length and stage.
pub(crate) fn qgemm(tier: Tier, s: QGemmShape, a: &[u8], b: &PackedB, stage: Stage) -> bool {
    #[cfg(target_arch = "aarch64")]
    if let Some(isa) = super::isa(tier) {
        run(isa, s, a, b, stage);
        return true;
    }
    let _ = (tier, s, a, b, stage);
    false
}

#[cfg(target_arch = "aarch64")]
fn run(isa: super::Isa, s: QGemmShape, a: &[u8], b: &PackedB, mut stage: Stage) {
    use crate::quant::qgemm::{KR, NR};
    let (k, n) = (b.k(), b.n());
    let kb = k.div_ceil(KR);
    let block = kb * NR * KR;
    // 128 · Σ_p B[p, j]: what shifting A by −128 took away.
    let fix: Vec<i32> = b.col_sums().iter().map(|s| s.wrapping_mul(128)).collect();
    let rows = if isa == super::Isa::NeonDot { 4 } else { 2 };
    let mut ap = vec![0i8; rows * kb * KR];
    let mut i0 = 0;
    while i0 < s.m {
        let r = rows.min(s.m - i0);
        ap.fill(0);
        for (dst, i) in ap.chunks_exact_mut(kb * KR).zip(i0..i0 + r) {
            for (d, &v) in dst.iter_mut().zip(&a[i * s.lda..i * s.lda + k]) {
                *d = (v ^ 0x80) as i8;
            }
        }
        for jb in 0..n.div_ceil(NR) {
            let bb = &b.as_slice()[jb * block..(jb + 1) * block];
            let mut acc = [[0i32; NR]; 4];
            tile(isa, r, &ap, kb, bb, &mut acc);
            let cols = NR.min(n - jb * NR);
            for (dr, row) in acc.iter_mut().enumerate().take(r) {
                let j0 = jb * NR;
                for (v, f) in row.iter_mut().zip(&fix[j0..j0 + cols]) {
                    *v = v.wrapping_add(*f);
                }
                store(&mut stage, (i0 + dr) * s.ldc + j0, j0, &row[..cols]);
            }
        }
        i0 += r;
    }
}

/// Writes the output stage of `sums` (columns `j0..`) at `c[at..]`: 8 columns at a time on
/// NEON, the rest through the reference's scalar functions.
#[cfg(target_arch = "aarch64")]
fn store(stage: &mut Stage, at: usize, j0: usize, sums: &[i32]) {
    use core::arch::aarch64::vld1q_s32;

    use super::neon::{RequantLanes, qadd_u8x8, requant_u8x8};
    let vec = if matches!(stage, Stage::U8 { .. }) {
        sums.len() / 8 * 8
    } else {
        0
    };
    if let Stage::U8 { rq, res, c } = stage {
        for q in (0..vec).step_by(8) {
            let j = j0 + q;
            let lanes = RequantLanes {
                bias: &rq.bias[j..],
                mul: &rq.multiplier[j..],
                shift: &rq.shift[j..],
                zp: rq.zero_point,
                qmin: rq.qmin as i32,
                qmax: rq.qmax as i32,
            };
            let dst = &mut c[at + q..at + q + 8];
            // SAFETY: NEON is present (the caller's `isa`); 8 sums from q exist; the
            // kernels check their slice lengths.
            unsafe {
                let acc = [
                    vld1q_s32(sums.as_ptr().add(q)),
                    vld1q_s32(sums.as_ptr().add(q + 4)),
                ];
                match res {
                    None => requant_u8x8(acc, &lanes, dst),
                    Some((rr, add)) => {
                        let mut codes = [0u8; 8];
                        requant_u8x8(acc, &lanes, &mut codes);
                        qadd_u8x8(&codes, &rr[at + q..at + q + 8], add, dst);
                    }
                }
            }
        }
    }
    for (q, &sum) in sums.iter().enumerate().skip(vec) {
        let (j, at) = (j0 + q, at + q);
        match stage {
            Stage::U8 { rq, res: None, c } => c[at] = rq.apply(sum, j),
            Stage::U8 {
                rq,
                res: Some((rr, add)),
                c,
            } => c[at] = add.apply(rq.apply(sum, j), rr[at]),
            Stage::F32 { dq, c } => c[at] = dq.apply(sum, j),
        }
    }
}

/// The first `r` rows of `acc` from the first `r` rows of `ap` (`r ≤` the ISA's tile).
#[cfg(target_arch = "aarch64")]
fn tile(isa: super::Isa, r: usize, ap: &[i8], kb: usize, b: &[i8], acc: &mut [[i32; 16]; 4]) {
    use super::Isa;
    use super::neon::{qgemm_tile_dot, qgemm_tile_mull};
    match (isa, r) {
        // SAFETY: `isa` confirmed NEON and dotprod on this CPU; the kernel asserts the
        // lengths of `ap` (4 rows) and `b` (one block).
        (Isa::NeonDot, 4) => unsafe { qgemm_tile_dot::<4>(ap, kb, b, acc) },
        (Isa::NeonDot, _) => {
            for (t, row) in acc.iter_mut().enumerate().take(r) {
                // SAFETY: as above, one row at a time.
                unsafe {
                    qgemm_tile_dot::<1>(&ap[t * 4 * kb..], kb, b, core::array::from_mut(row))
                };
            }
        }
        (Isa::Neon, 2) => {
            let two: &mut [[i32; 16]; 2] = (&mut acc[..2]).try_into().expect("two rows");
            // SAFETY: `isa` confirmed NEON on this CPU; the kernel asserts its lengths.
            unsafe { qgemm_tile_mull::<2>(ap, kb, b, two) };
        }
        (Isa::Neon, _) => {
            // SAFETY: as above, one row.
            unsafe { qgemm_tile_mull::<1>(ap, kb, b, core::array::from_mut(&mut acc[0])) };
        }
    }
}
