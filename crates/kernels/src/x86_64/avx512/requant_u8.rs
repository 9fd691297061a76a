//! AVX-512 lanes of [`crate::quant::requant`]: sixteen `i32` accumulators at a time,
//! bit-exact against the scalar definitions.
//!
//! The 64-bit products of the even and the odd lanes are formed separately
//! (`vpmuldq` multiplies the low dword of each qword), rounded, shifted right by the
//! per-lane total shift (`vpsravq`) and clamped in 64 bits, then the odd results are
//! moved back into the high dwords: 15 instructions for sixteen outputs, 10 when every
//! lane has total shift 32.

use core::arch::x86_64::*;

/// Per-lane [`crate::quant::QMul`] split into the vectors the kernels use: multipliers,
/// total shifts and rounding constants of the even lanes (in the low dword / as qwords)
/// and of the odd lanes.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct MulV {
    mul_even: __m512i,
    mul_odd: __m512i,
    shift_even: __m512i,
    shift_odd: __m512i,
    round_even: __m512i,
    round_odd: __m512i,
    /// Every lane has total shift 32 ([`crate::quant::Requant::is_q32`]).
    q32: bool,
}

/// Builds the lanes from `i32` multipliers and shifts (`M ≈ mul · 2^(shift − 31)`);
/// `q32` says that every shift is −1.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn mulv(mul: __m512i, shift: __m512i, q32: bool) -> MulV {
    let low = _mm512_set1_epi64(0xFFFF_FFFF);
    // t = 31 − shift, in 1..=62.
    let t = _mm512_sub_epi32(_mm512_set1_epi32(31), shift);
    let shift_even = _mm512_and_si512(t, low);
    let shift_odd = _mm512_srli_epi64::<32>(t);
    let one = _mm512_set1_epi64(1);
    let half = |s: __m512i| _mm512_sllv_epi64(one, _mm512_sub_epi64(s, one));
    MulV {
        mul_even: mul,
        mul_odd: _mm512_srli_epi64::<32>(mul),
        shift_even,
        shift_odd,
        round_even: half(shift_even),
        round_odd: half(shift_odd),
        q32,
    }
}

/// `QMul::apply_i64(x)` clamped to `[lo, hi]` (qword splats), back in `i32` lanes.
#[inline]
#[target_feature(enable = "avx512f")]
fn scale_clamp(x: __m512i, m: MulV, lo: __m512i, hi: __m512i) -> __m512i {
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, m.mul_even), m.round_even);
    let odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), m.mul_odd),
        m.round_odd,
    );
    let even = _mm512_srav_epi64(even, m.shift_even);
    let odd = _mm512_srav_epi64(odd, m.shift_odd);
    let even = _mm512_min_epi64(_mm512_max_epi64(even, lo), hi);
    let odd = _mm512_min_epi64(_mm512_max_epi64(odd, lo), hi);
    // Dword 2i + 1 takes the low dword of the odd qword i.
    _mm512_mask_shuffle_epi32::<_MM_PERM_CCAA>(even, 0xAAAA, odd)
}

/// `apply_i64(x)` for multipliers with total shift 32, unclamped: `(x · m + 2^31) >> 32`
/// is the high dword of each 64-bit sum, and the odd sums' high dwords are already in
/// place, so one shuffle merges them; `|x · M| < 2^30` for `M < 0.5`, so the result and
/// a clamp in 32 bits are exact.
#[inline]
#[target_feature(enable = "avx512f")]
fn scale_q32(x: __m512i, m: MulV) -> __m512i {
    scale_q32_round(x, m, _mm512_set1_epi64(1 << 31))
}

/// [`scale_q32`] with the rounding constant `round` (`2^31`, plus `zp · 2^32` to add a
/// zero point; `|x · m| < 2^62`, so the 64-bit sums never overflow).
#[inline]
#[target_feature(enable = "avx512f")]
fn scale_q32_round(x: __m512i, m: MulV, round: __m512i) -> __m512i {
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, m.mul_even), round);
    let odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), m.mul_odd),
        round,
    );
    // Dword 2i takes the high dword of the even qword i.
    _mm512_mask_shuffle_epi32::<_MM_PERM_DDBB>(odd, 0x5555, even)
}

/// Dword `4·v + l` of the packed result comes from dword `4·l + v` (`vpackssdw` and
/// `vpackuswb` interleave their inputs per 128-bit lane).
const PACK_ORDER: [i32; 16] = [0, 4, 8, 12, 1, 5, 9, 13, 2, 6, 10, 14, 3, 7, 11, 15];

/// Sixty-four outputs at once, for stages in the total-shift-32 layout: the four
/// vectors' scaled values are narrowed with signed saturation to `i16`, the zero point
/// added with saturation, narrowed with unsigned saturation to bytes (which is the clamp
/// to `0..=255`), put back in order and clamped to `qmin..=qmax` as bytes. Equal to
/// [`to_u8`] on each vector (the values stay within `±2^30`, so every saturation is the
/// clamp), in 4 shuffles and 2 byte clamps instead of 8 and 8.
///
/// # Safety
/// Every `m[v]` is in the total-shift-32 layout (its `q32` flag set).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::x86_64) unsafe fn to_u8_x4(x: [__m512i; 4], m: &[MulV; 4], o: &OutBytes) -> __m512i {
    debug_assert!(m.iter().all(|m| m.q32));
    let v: [__m512i; 4] = std::array::from_fn(|k| scale_q32(x[k], m[k]));
    let ab = _mm512_adds_epi16(_mm512_packs_epi32(v[0], v[1]), o.zp16);
    let cd = _mm512_adds_epi16(_mm512_packs_epi32(v[2], v[3]), o.zp16);
    let bytes = _mm512_permutexvar_epi32(o.order, _mm512_packus_epi16(ab, cd));
    _mm512_min_epu8(_mm512_max_epu8(bytes, o.lo8), o.hi8)
}

/// The constants of [`to_u8_x4`].
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct OutBytes {
    zp16: __m512i,
    lo8: __m512i,
    hi8: __m512i,
    order: __m512i,
}

/// [`OutBytes`] for zero point `zp` and clamp `qmin..=qmax` (all in `0..=255`).
#[inline]
#[target_feature(enable = "avx512f,avx512bw")]
pub(in crate::x86_64) fn out_bytes(zp: i32, qmin: i32, qmax: i32) -> OutBytes {
    OutBytes {
        zp16: _mm512_set1_epi16(zp as i16),
        lo8: _mm512_set1_epi8(qmin as u8 as i8),
        hi8: _mm512_set1_epi8(qmax as u8 as i8),
        // SAFETY: the table holds 16 i32.
        order: unsafe { _mm512_loadu_si512(PACK_ORDER.as_ptr().cast()) },
    }
}

/// `QMul::apply` without the saturation, for inputs whose scaled value is known to fit
/// in `i32` (multipliers below 1): the residual add's input rescaling.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn apply_small(x: __m512i, m: MulV) -> __m512i {
    let even = _mm512_add_epi64(_mm512_mul_epi32(x, m.mul_even), m.round_even);
    let odd = _mm512_add_epi64(
        _mm512_mul_epi32(_mm512_srli_epi64::<32>(x), m.mul_odd),
        m.round_odd,
    );
    let even = _mm512_srav_epi64(even, m.shift_even);
    let odd = _mm512_srav_epi64(odd, m.shift_odd);
    _mm512_mask_shuffle_epi32::<_MM_PERM_CCAA>(even, 0xAAAA, odd)
}

/// The output stage's constants: zero point and the clamp `[qmin − zp, qmax − zp]`
/// applied before the zero point is added.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct OutQ {
    zp: __m512i,
    lo: __m512i,
    hi: __m512i,
    qmin: __m512i,
    qmax: __m512i,
    /// `2^31 + zp · 2^32`: rounding and zero point of the total-shift-32 layout.
    round_zp: __m512i,
}

/// Output stage for zero point `zp` and activation clamp `qmin..=qmax`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn outq(zp: i32, qmin: i32, qmax: i32) -> OutQ {
    OutQ {
        zp: _mm512_set1_epi32(zp),
        lo: _mm512_set1_epi64((qmin - zp) as i64),
        hi: _mm512_set1_epi64((qmax - zp) as i64),
        qmin: _mm512_set1_epi32(qmin),
        qmax: _mm512_set1_epi32(qmax),
        round_zp: _mm512_set1_epi64((1i64 << 31) + ((zp as i64) << 32)),
    }
}

/// `clamp(zp + apply_i64(x), qmin, qmax)` as sixteen `i32` lanes in `0..=255`.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn to_codes(x: __m512i, m: MulV, o: OutQ) -> __m512i {
    if m.q32 {
        // The zero point rides in the rounding constant (`zp · 2^32` moves the high dword
        // by exactly zp), so the clamp is to `qmin..=qmax` directly.
        let v = scale_q32_round(x, m, o.round_zp);
        return _mm512_min_epi32(_mm512_max_epi32(v, o.qmin), o.qmax);
    }
    _mm512_add_epi32(scale_clamp(x, m, o.lo, o.hi), o.zp)
}

/// [`to_codes`] narrowed to sixteen bytes.
#[inline]
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) fn to_u8(x: __m512i, m: MulV, o: OutQ) -> __m128i {
    _mm512_cvtepi32_epi8(to_codes(x, m, o))
}
