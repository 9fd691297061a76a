//! `qadd_u8_requant_avx512`: the quantized residual add on sixteen lanes, as a kernel of
//! its own and as the epilogue of a GEMM whose output it consumes.

use core::arch::x86_64::*;

use super::requant_u8::{MulV, OutQ, apply_small, mulv, outq, to_u8};
use crate::quant::qadd::ADD_LEFT_SHIFT;
use crate::quant::{QAddParams, QMul};

const ADD_LEFT_SHIFT_U: u32 = ADD_LEFT_SHIFT as u32;

/// [`QAddParams`] as vectors.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct AddV {
    za: __m512i,
    zb: __m512i,
    ma: MulV,
    mb: MulV,
    mo: MulV,
    o: OutQ,
}

/// Splats `p`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn addv(p: &QAddParams) -> AddV {
    let mv = |m: QMul| {
        mulv(
            _mm512_set1_epi32(m.multiplier),
            _mm512_set1_epi32(m.shift),
            false,
        )
    };
    AddV {
        za: _mm512_set1_epi32(p.a_zp),
        zb: _mm512_set1_epi32(p.b_zp),
        ma: mv(p.a_mul),
        mb: mv(p.b_mul),
        mo: mv(p.out_mul),
        o: outq(p.out_zp, p.qmin as i32, p.qmax as i32),
    }
}

/// `a ⊕ b` for sixteen codes of each input held as `i32` lanes.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn add_codes(a: __m512i, b: __m512i, k: AddV) -> __m128i {
    let a = _mm512_slli_epi32::<ADD_LEFT_SHIFT_U>(_mm512_sub_epi32(a, k.za));
    let b = _mm512_slli_epi32::<ADD_LEFT_SHIFT_U>(_mm512_sub_epi32(b, k.zb));
    // Both rescaled inputs fit in i32: the multipliers are below 1 (`p.is_valid()`).
    let s = _mm512_add_epi32(apply_small(a, k.ma), apply_small(b, k.mb));
    to_u8(s, k.mo, k.o)
}

/// `out = a ⊕ b`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL; `a`, `b` and `out` have equal lengths; `p` is valid.
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(in crate::x86_64) unsafe fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    let k = addv(p);
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
        let v = add_codes(_mm512_cvtepu8_epi32(av), _mm512_cvtepu8_epi32(bv), k);
        // SAFETY: as for the loads.
        unsafe { _mm_mask_storeu_epi8(out.as_mut_ptr().add(i).cast(), mask, v) };
        i += 16;
    }
}
