//! AVX-512 lanes of [`crate::quant::requant`]: sixteen `i32` accumulators at a time,
//! bit-exact against the scalar definitions.

use core::arch::x86_64::*;

/// Per-lane [`crate::quant::QMul`] split into the vectors the kernels use.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct MulV {
    pub mul: __m512i,
    pub left: __m512i,
    pub right: __m512i,
}

/// Builds the lanes from multipliers and shifts (`shift > 0` shifts left).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn mulv(mul: __m512i, shift: __m512i) -> MulV {
    let zero = _mm512_setzero_si512();
    MulV {
        mul,
        left: _mm512_max_epi32(shift, zero),
        right: _mm512_max_epi32(_mm512_sub_epi32(zero, shift), zero),
    }
}

/// `SaturatingRoundingDoublingHighMul(x, m)` for `m ≠ i32::MIN`: the high half of the
/// 64-bit product plus `2^30`, which equals gemmlowp's nudge-and-truncate for every
/// product (for negative products the truncating division adds `2^31 − 1`, which turns
/// the nudge `1 − 2^30` into `2^30`).
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn srdhm(x: __m512i, m: __m512i) -> __m512i {
    let nudge = _mm512_set1_epi64(1 << 30);
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, m), nudge);
    let odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), _mm512_srli_epi64::<32>(m)),
        nudge,
    );
    // Bits 31..62 of each sum: the low dword of `>> 31`; odd lanes move to the high dword.
    let even = _mm512_srli_epi64::<31>(even);
    let odd = _mm512_slli_epi64::<1>(odd);
    _mm512_mask_blend_epi32(0xAAAA, even, odd)
}

/// `RoundingDivideByPOT(x, e)` with a per-lane exponent in `0..=31`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn rdivpot(x: __m512i, e: __m512i) -> __m512i {
    let one = _mm512_set1_epi32(1);
    let mask = _mm512_sub_epi32(_mm512_sllv_epi32(one, e), one);
    let rem = _mm512_and_si512(x, mask);
    let thr = _mm512_sub_epi32(_mm512_srli_epi32::<1>(mask), _mm512_srai_epi32::<31>(x));
    let q = _mm512_srav_epi32(x, e);
    let up = _mm512_cmpgt_epi32_mask(rem, thr);
    _mm512_mask_add_epi32(q, up, q, one)
}

/// `QMul::apply` on sixteen lanes.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn apply(x: __m512i, m: MulV) -> __m512i {
    rdivpot(srdhm(_mm512_sllv_epi32(x, m.left), m.mul), m.right)
}

/// `clamp(apply(x) + zp, lo, hi)` narrowed to sixteen bytes.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn to_u8(
    x: __m512i,
    m: MulV,
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
) -> __m128i {
    let v = _mm512_add_epi32(apply(x, m), zp);
    _mm512_cvtepi32_epi8(_mm512_min_epi32(_mm512_max_epi32(v, lo), hi))
}
