//! `qadd_u8_requant_avx2`: the quantized residual add on eight lanes.

use core::arch::x86_64::*;

use super::requant_u8::{MulV, apply_small, clamp_q, mulv, outq, store_u8};
use crate::quant::QAddParams;
use crate::quant::qadd::ADD_LEFT_SHIFT;

#[inline]
#[target_feature(enable = "avx2")]
fn load8(s: &[u8]) -> __m256i {
    let mut t = [0u8; 16];
    t[..s.len()].copy_from_slice(s);
    // SAFETY: `t` is 16 bytes; 8 are read.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(t.as_ptr().cast()) })
}

/// `out = a ⊕ b`.
///
/// # Safety
/// The CPU has AVX2; `a`, `b` and `out` have equal lengths; `p` is valid.
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) unsafe fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    let mv = |m: crate::quant::QMul| -> MulV {
        mulv(_mm256_set1_epi32(m.multiplier), _mm256_set1_epi32(m.shift))
    };
    let (ma, mb, mo) = (mv(p.a_mul), mv(p.b_mul), mv(p.out_mul));
    let (za, zb) = (_mm256_set1_epi32(p.a_zp), _mm256_set1_epi32(p.b_zp));
    let o = outq(p.out_zp, p.qmin as i32, p.qmax as i32);
    let n = out.len();
    let mut i = 0;
    while i < n {
        let v = (n - i).min(8);
        let av = _mm256_slli_epi32::<{ ADD_LEFT_SHIFT }>(_mm256_sub_epi32(load8(&a[i..i + v]), za));
        let bv = _mm256_slli_epi32::<{ ADD_LEFT_SHIFT }>(_mm256_sub_epi32(load8(&b[i..i + v]), zb));
        // Both rescaled inputs fit in i32: the multipliers are below 1 (`p.is_valid()`).
        let s = _mm256_add_epi32(apply_small(av, ma), apply_small(bv, mb));
        let q = clamp_q(s, mo, o);
        store_u8(q, &mut out[i..i + v]);
        i += 8;
    }
}
