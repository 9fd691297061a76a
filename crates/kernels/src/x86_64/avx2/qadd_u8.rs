//! `qadd_u8_requant_avx2`: the quantized residual add on eight lanes, as a kernel of its
//! own and as the epilogue of a GEMM whose output it consumes.

use core::arch::x86_64::*;

use super::requant_u8::{MulV, OutQ, apply_small, clamp_q, mulv, outq, store_u8};
use crate::quant::QAddParams;
use crate::quant::qadd::ADD_LEFT_SHIFT;

#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn load8(s: &[u8]) -> __m256i {
    let mut t = [0u8; 16];
    t[..s.len()].copy_from_slice(s);
    // SAFETY: `t` is 16 bytes; 8 are read.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(t.as_ptr().cast()) })
}

/// [`QAddParams`] as vectors.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct AddV {
    za: __m256i,
    zb: __m256i,
    ma: MulV,
    mb: MulV,
    mo: MulV,
    o: OutQ,
}

/// Splats `p`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn addv(p: &QAddParams) -> AddV {
    let mv = |m: crate::quant::QMul| -> MulV {
        mulv(_mm256_set1_epi32(m.multiplier), _mm256_set1_epi32(m.shift))
    };
    AddV {
        za: _mm256_set1_epi32(p.a_zp),
        zb: _mm256_set1_epi32(p.b_zp),
        ma: mv(p.a_mul),
        mb: mv(p.b_mul),
        mo: mv(p.out_mul),
        o: outq(p.out_zp, p.qmin as i32, p.qmax as i32),
    }
}

/// `a ⊕ b` for eight codes of each input held as `i32` lanes; the result as `i32` lanes
/// in `0..=255`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn add_codes(a: __m256i, b: __m256i, k: AddV) -> __m256i {
    let a = _mm256_slli_epi32::<{ ADD_LEFT_SHIFT }>(_mm256_sub_epi32(a, k.za));
    let b = _mm256_slli_epi32::<{ ADD_LEFT_SHIFT }>(_mm256_sub_epi32(b, k.zb));
    // Both rescaled inputs fit in i32: the multipliers are below 1 (`p.is_valid()`).
    let s = _mm256_add_epi32(apply_small(a, k.ma), apply_small(b, k.mb));
    clamp_q(s, k.mo, k.o)
}

/// `out = a ⊕ b`.
///
/// # Safety
/// The CPU has AVX2; `a`, `b` and `out` have equal lengths; `p` is valid.
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) unsafe fn qadd_u8(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    let k = addv(p);
    let n = out.len();
    let mut i = 0;
    while i < n {
        let v = (n - i).min(8);
        let q = add_codes(load8(&a[i..i + v]), load8(&b[i..i + v]), k);
        store_u8(q, &mut out[i..i + v]);
        i += 8;
    }
}
