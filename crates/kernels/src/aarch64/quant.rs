//! Safe entry points to the NEON int8 GEMM kernels.
//!
//! The kernels produce each tile's `i32` sums; the output stage then runs per element
//! through the same functions as the reference ([`Requant::apply`], [`QAddParams::apply`],
//! [`Dequant::apply`]), so every result is bit-identical to the scalar reference and to the
//! x86 engines, which implement the same single-rounding arithmetic.

use crate::dispatch::Tier;
use crate::quant::qgemm::{Dequant, PackedB, QGemmShape};
use crate::quant::{QAddParams, Requant};

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

/// Kernel id of the int8 GEMM on `tier`, if a NEON kernel runs it.
pub(crate) fn qgemm_id(tier: Tier) -> Option<&'static str> {
    Some(match super::isa(tier)? {
        super::Isa::NeonDot => "qgemm_u8i8_i32_requant_neondot_4x16",
        super::Isa::Neon => "qgemm_u8i8_i32_requant_neon_2x16",
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
    let fix: Vec<i32> = (0..n)
        .map(|j| {
            (0..k)
                .map(|p| b.get(p, j) as i32)
                .sum::<i32>()
                .wrapping_mul(128)
        })
        .collect();
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
            for (dr, row) in acc.iter().enumerate().take(r) {
                let i = i0 + dr;
                for (jj, &v) in row.iter().enumerate().take(NR.min(n - jb * NR)) {
                    let j = jb * NR + jj;
                    let sum = v.wrapping_add(fix[j]);
                    let at = i * s.ldc + j;
                    match &mut stage {
                        Stage::U8 { rq, res: None, c } => c[at] = rq.apply(sum, j),
                        Stage::U8 {
                            rq,
                            res: Some((rr, add)),
                            c,
                        } => {
                            c[at] = add.apply(rq.apply(sum, j), rr[at]);
                        }
                        Stage::F32 { dq, c } => c[at] = dq.apply(sum, j),
                    }
                }
            }
        }
        i0 += r;
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
