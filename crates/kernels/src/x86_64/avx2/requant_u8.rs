//! AVX2 lanes of [`crate::quant::requant`]: eight `i32` accumulators at a time,
//! bit-exact against the scalar definitions (see the AVX-512 twin for the derivation).

use core::arch::x86_64::*;

/// Per-lane multiplier, left and right shifts.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct MulV {
    pub mul: __m256i,
    pub left: __m256i,
    pub right: __m256i,
}

/// Builds the lanes from multipliers and shifts (`shift > 0` shifts left).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn mulv(mul: __m256i, shift: __m256i) -> MulV {
    let zero = _mm256_setzero_si256();
    MulV {
        mul,
        left: _mm256_max_epi32(shift, zero),
        right: _mm256_max_epi32(_mm256_sub_epi32(zero, shift), zero),
    }
}

/// `SaturatingRoundingDoublingHighMul(x, m)` for `m ≠ i32::MIN`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn srdhm(x: __m256i, m: __m256i) -> __m256i {
    let nudge = _mm256_set1_epi64x(1 << 30);
    let even = _mm256_add_epi64(_mm256_mul_epi32(x, m), nudge);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), _mm256_srli_epi64::<32>(m)),
        nudge,
    );
    let even = _mm256_srli_epi64::<31>(even);
    let odd = _mm256_slli_epi64::<1>(odd);
    _mm256_blend_epi32::<0b1010_1010>(even, odd)
}

/// `RoundingDivideByPOT(x, e)` with a per-lane exponent in `0..=31`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn rdivpot(x: __m256i, e: __m256i) -> __m256i {
    let one = _mm256_set1_epi32(1);
    let mask = _mm256_sub_epi32(_mm256_sllv_epi32(one, e), one);
    let rem = _mm256_and_si256(x, mask);
    let thr = _mm256_sub_epi32(_mm256_srli_epi32::<1>(mask), _mm256_srai_epi32::<31>(x));
    let q = _mm256_srav_epi32(x, e);
    // cmpgt gives −1 where the remainder rounds up.
    _mm256_sub_epi32(q, _mm256_cmpgt_epi32(rem, thr))
}

/// `QMul::apply` on eight lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn apply(x: __m256i, m: MulV) -> __m256i {
    rdivpot(srdhm(_mm256_sllv_epi32(x, m.left), m.mul), m.right)
}

/// `clamp(apply(x) + zp, lo, hi)` as eight `i32` lanes in `0..=255`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn clamp_q(
    x: __m256i,
    m: MulV,
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
) -> __m256i {
    let v = _mm256_add_epi32(apply(x, m), zp);
    _mm256_min_epi32(_mm256_max_epi32(v, lo), hi)
}

/// Loads `n ≤ 8` lanes of `src`, zero beyond.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn load_i32(src: &[i32]) -> __m256i {
    let mut t = [0i32; 8];
    t[..src.len()].copy_from_slice(src);
    // SAFETY: `t` is 8 i32 = 32 bytes.
    unsafe { _mm256_loadu_si256(t.as_ptr().cast()) }
}

/// Stores the low byte of the first `dst.len() ≤ 8` lanes.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn store_u8(v: __m256i, dst: &mut [u8]) {
    let mut t = [0i32; 8];
    // SAFETY: `t` is 8 i32 = 32 bytes.
    unsafe { _mm256_storeu_si256(t.as_mut_ptr().cast(), v) };
    for (d, s) in dst.iter_mut().zip(t) {
        *d = s as u8;
    }
}
