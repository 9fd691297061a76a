//! AVX2 lanes of [`crate::quant::requant`]: eight `i32` accumulators at a time,
//! bit-exact against the scalar definitions (see the AVX-512 twin).

use core::arch::x86_64::*;

/// Per-lane [`crate::quant::QMul`] as the vectors the kernels use: multipliers, total
/// shifts and rounding constants of the even lanes and of the odd lanes (qwords).
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct MulV {
    mul_even: __m256i,
    mul_odd: __m256i,
    shift_even: __m256i,
    shift_odd: __m256i,
    round_even: __m256i,
    round_odd: __m256i,
}

/// Builds the lanes from `i32` multipliers and shifts (`M ≈ mul · 2^(shift − 31)`).
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn mulv(mul: __m256i, shift: __m256i) -> MulV {
    let low = _mm256_set1_epi64x(0xFFFF_FFFF);
    let t = _mm256_sub_epi32(_mm256_set1_epi32(31), shift);
    let shift_even = _mm256_and_si256(t, low);
    let shift_odd = _mm256_srli_epi64::<32>(t);
    let one = _mm256_set1_epi64x(1);
    let half = |s: __m256i| _mm256_sllv_epi64(one, _mm256_sub_epi64(s, one));
    MulV {
        mul_even: mul,
        mul_odd: _mm256_srli_epi64::<32>(mul),
        shift_even,
        shift_odd,
        round_even: half(shift_even),
        round_odd: half(shift_odd),
    }
}

/// Arithmetic right shift of signed qwords by per-lane counts in `1..=62` (AVX2 only
/// shifts qwords logically): bias by `2^63`, shift, remove the shifted bias.
#[inline]
#[target_feature(enable = "avx2")]
fn srav64(v: __m256i, s: __m256i) -> __m256i {
    let sign = _mm256_set1_epi64x(i64::MIN);
    _mm256_sub_epi64(
        _mm256_srlv_epi64(_mm256_xor_si256(v, sign), s),
        _mm256_srlv_epi64(sign, s),
    )
}

/// The rounded, shifted 64-bit products of the even and the odd lanes.
#[inline]
#[target_feature(enable = "avx2")]
fn scaled64(x: __m256i, m: MulV) -> (__m256i, __m256i) {
    let even = _mm256_add_epi64(_mm256_mul_epi32(x, m.mul_even), m.round_even);
    let odd = _mm256_add_epi64(
        _mm256_mul_epi32(_mm256_srli_epi64::<32>(x), m.mul_odd),
        m.round_odd,
    );
    (srav64(even, m.shift_even), srav64(odd, m.shift_odd))
}

/// Odd qwords' low dwords moved into the odd dword lanes of `even`.
#[inline]
#[target_feature(enable = "avx2")]
fn merge(even: __m256i, odd: __m256i) -> __m256i {
    _mm256_blend_epi32::<0b1010_1010>(even, _mm256_slli_epi64::<32>(odd))
}

/// `QMul::apply` without the saturation, for inputs whose scaled value fits in `i32`
/// (multipliers below 1): the residual add's input rescaling.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn apply_small(x: __m256i, m: MulV) -> __m256i {
    let (even, odd) = scaled64(x, m);
    merge(even, odd)
}

/// The output stage's constants: zero point and the clamp `[qmin − zp, qmax − zp]`
/// (qwords) applied before the zero point is added.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct OutQ {
    zp: __m256i,
    lo: __m256i,
    hi: __m256i,
}

/// Output stage for zero point `zp` and activation clamp `qmin..=qmax`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn outq(zp: i32, qmin: i32, qmax: i32) -> OutQ {
    OutQ {
        zp: _mm256_set1_epi32(zp),
        lo: _mm256_set1_epi64x((qmin - zp) as i64),
        hi: _mm256_set1_epi64x((qmax - zp) as i64),
    }
}

/// Signed qword clamp (AVX2 has no qword min/max).
#[inline]
#[target_feature(enable = "avx2")]
fn clamp64(v: __m256i, lo: __m256i, hi: __m256i) -> __m256i {
    let v = _mm256_blendv_epi8(v, lo, _mm256_cmpgt_epi64(lo, v));
    _mm256_blendv_epi8(v, hi, _mm256_cmpgt_epi64(v, hi))
}

/// `clamp(zp + apply_i64(x), qmin, qmax)` as eight `i32` lanes in `0..=255`.
#[inline]
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) fn clamp_q(x: __m256i, m: MulV, o: OutQ) -> __m256i {
    let (even, odd) = scaled64(x, m);
    let v = merge(clamp64(even, o.lo, o.hi), clamp64(odd, o.lo, o.hi));
    _mm256_add_epi32(v, o.zp)
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
