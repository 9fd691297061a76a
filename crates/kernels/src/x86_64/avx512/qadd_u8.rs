//! `qadd_u8_requant_avx512`: the quantized residual add on sixteen lanes.

use core::arch::x86_64::*;

use super::requant_u8::{MulV, apply_small, mulv, outq, to_u8};
use crate::quant::QAddParams;
use crate::quant::qadd::ADD_LEFT_SHIFT;

fn splat(m: crate::quant::QMul) -> (i32, i32) {
    (m.multiplier, m.shift)
}

/// `out = a ⊕ b`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL; `a`, `b` and `out` have equal lengths; `p` is valid.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(in crate::x86_64) unsafe fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    let mv = |m: crate::quant::QMul| -> MulV {
        let (mm, s) = splat(m);
        mulv(_mm512_set1_epi32(mm), _mm512_set1_epi32(s), false)
    };
    let (ma, mb, mo) = (mv(p.a_mul), mv(p.b_mul), mv(p.out_mul));
    let (za, zb) = (_mm512_set1_epi32(p.a_zp), _mm512_set1_epi32(p.b_zp));
    let o = outq(p.out_zp, p.qmin as i32, p.qmax as i32);
    let n = out.len();
    let mut i = 0;
    while i < n {
        let valid = (n - i).min(16);
        let mask: __mmask16 = if valid == 16 {
            0xFFFF
        } else {
            (1u16 << valid) - 1
        };
        // SAFETY: the mask keeps lanes i..i + valid < n of the equal-length slices.
        let (av, bv) = unsafe {
            (
                _mm_maskz_loadu_epi8(mask, a.as_ptr().add(i).cast()),
                _mm_maskz_loadu_epi8(mask, b.as_ptr().add(i).cast()),
            )
        };
        let av =
            _mm512_slli_epi32::<ADD_LEFT_SHIFT_U>(_mm512_sub_epi32(_mm512_cvtepu8_epi32(av), za));
        let bv =
            _mm512_slli_epi32::<ADD_LEFT_SHIFT_U>(_mm512_sub_epi32(_mm512_cvtepu8_epi32(bv), zb));
        // Both rescaled inputs fit in i32: the multipliers are below 1 (`p.is_valid()`).
        let s = _mm512_add_epi32(apply_small(av, ma), apply_small(bv, mb));
        let v = to_u8(s, mo, o);
        // SAFETY: as for the loads.
        unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().add(i).cast(), mask, v) };
        i += 16;
    }
}

const ADD_LEFT_SHIFT_U: u32 = ADD_LEFT_SHIFT as u32;
