//! `aarch64/neon` requantization: the single-rounding fixed-point scaling of
//! [`crate::quant::QMul::apply_i64`] on four `i32` lanes at a time, exact in 64-bit lanes,
//! and the stages built on it: [`requant_u8x8`] ([`crate::quant::Requant::apply`] on eight
//! accumulators) and [`qadd_u8x8`] ([`crate::quant::QAddParams::apply`] on eight pairs).
//! Every lane computes what the scalar functions compute, so results are bit-identical.

use core::arch::aarch64::*;

use crate::quant::qadd::ADD_LEFT_SHIFT;
use crate::quant::{QAddParams, QMul};

/// `(x·m + 2^(t − 1)) >> t` per lane, exactly (`|x·m| < 2^62`, `t` in `1..=62`): lanes 0–1
/// and 2–3 as `i64`.
///
/// # Safety
/// NEON is available.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn mul_round(x: int32x4_t, m: int32x4_t, t: int32x4_t) -> (int64x2_t, int64x2_t) {
    let one = vdupq_n_s64(1);
    let (t0, t1) = (vmovl_s32(vget_low_s32(t)), vmovl_high_s32(t));
    let r0 = vshlq_s64(one, vsubq_s64(t0, one));
    let r1 = vshlq_s64(one, vsubq_s64(t1, one));
    let p0 = vaddq_s64(vmull_s32(vget_low_s32(x), vget_low_s32(m)), r0);
    let p1 = vaddq_s64(vmull_high_s32(x, m), r1);
    // SSHL by a negative amount is an arithmetic right shift.
    (vshlq_s64(p0, vnegq_s64(t0)), vshlq_s64(p1, vnegq_s64(t1)))
}

/// `clamp(v + zp, lo, hi)` of two `i64` pairs as four `i32` lanes (`lo..=hi` inside `i32`,
/// so saturating to `i32` before the clamp changes nothing).
#[inline]
#[target_feature(enable = "neon")]
unsafe fn add_clamp(v: (int64x2_t, int64x2_t), zp: i32, lo: i32, hi: i32) -> int32x4_t {
    let z = vdupq_n_s64(zp as i64);
    let s = vcombine_s32(vqmovn_s64(vaddq_s64(v.0, z)), vqmovn_s64(vaddq_s64(v.1, z)));
    vminq_s32(vmaxq_s32(s, vdupq_n_s32(lo)), vdupq_n_s32(hi))
}

/// Four lanes in `0..=255` and four more to eight bytes.
#[inline]
#[target_feature(enable = "neon")]
unsafe fn narrow_u8(a: int32x4_t, b: int32x4_t) -> uint8x8_t {
    vqmovun_s16(vcombine_s16(vmovn_s32(a), vmovn_s32(b)))
}

/// Per-channel stage vectors of a [`crate::quant::Requant`] at the 8 channels of a call.
pub(in crate::aarch64) struct RequantLanes<'a> {
    pub bias: &'a [i32],
    pub mul: &'a [i32],
    pub shift: &'a [i32],
    pub zp: i32,
    pub qmin: i32,
    pub qmax: i32,
}

/// `Requant::apply` of the 8 accumulators `acc` (channels of the stage slices' first 8
/// entries) into `out`.
///
/// # Safety
/// NEON is available.
///
/// # Panics
/// If a stage slice holds fewer than 8 entries or `out` fewer than 8 bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::aarch64) unsafe fn requant_u8x8(
    acc: [int32x4_t; 2],
    s: &RequantLanes,
    out: &mut [u8],
) {
    let (bias, mul, shift) = (&s.bias[..8], &s.mul[..8], &s.shift[..8]);
    let out = &mut out[..8];
    let mut lanes = [vdupq_n_s32(0); 2];
    for (h, lane) in lanes.iter_mut().enumerate() {
        // SAFETY: 4 lanes at 4h of 8-entry slices.
        let (b, m, sh) = unsafe {
            (
                vld1q_s32(bias.as_ptr().add(4 * h)),
                vld1q_s32(mul.as_ptr().add(4 * h)),
                vld1q_s32(shift.as_ptr().add(4 * h)),
            )
        };
        let t = vsubq_s32(vdupq_n_s32(31), sh);
        let x = vaddq_s32(acc[h], b);
        // SAFETY: NEON (this function's contract).
        *lane = unsafe { add_clamp(mul_round(x, m, t), s.zp, s.qmin, s.qmax) };
    }
    // SAFETY: `out` holds 8 bytes.
    unsafe { vst1_u8(out.as_mut_ptr(), narrow_u8(lanes[0], lanes[1])) };
}

/// `QAddParams::apply` of 8 pairs `a[i]`, `b[i]` into `out[i]`.
///
/// # Safety
/// NEON is available.
///
/// # Panics
/// If a slice holds fewer than 8 bytes.
#[inline]
#[target_feature(enable = "neon")]
pub(in crate::aarch64) unsafe fn qadd_u8x8(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    let (a, b, out) = (&a[..8], &b[..8], &mut out[..8]);
    let splat = |q: QMul| {
        (
            vdupq_n_s32(q.multiplier),
            vdupq_n_s32(q.total_shift() as i32),
        )
    };
    let rescale = |v: uint8x8_t, zp: i32, q: QMul| -> [int32x4_t; 2] {
        let w = vreinterpretq_s16_u16(vmovl_u8(v));
        let (m, t) = splat(q);
        let z = vdupq_n_s32(zp);
        [vmovl_s16(vget_low_s16(w)), vmovl_high_s16(w)].map(|x| {
            let x = vshlq_n_s32::<ADD_LEFT_SHIFT>(vsubq_s32(x, z));
            // SAFETY: NEON (this function's contract).
            let r = unsafe { mul_round(x, m, t) };
            // QMul::apply saturates to i32.
            vcombine_s32(vqmovn_s64(r.0), vqmovn_s64(r.1))
        })
    };
    // SAFETY: 8 bytes of each slice.
    let (va, vb) = unsafe { (vld1_u8(a.as_ptr()), vld1_u8(b.as_ptr())) };
    let (sa, sb) = (rescale(va, p.a_zp, p.a_mul), rescale(vb, p.b_zp, p.b_mul));
    let (m, t) = splat(p.out_mul);
    let lanes = [0, 1].map(|h| {
        let sum = vaddq_s32(sa[h], sb[h]);
        // SAFETY: NEON (this function's contract).
        unsafe { add_clamp(mul_round(sum, m, t), p.out_zp, p.qmin as i32, p.qmax as i32) }
    });
    // SAFETY: `out` holds 8 bytes.
    unsafe { vst1_u8(out.as_mut_ptr(), narrow_u8(lanes[0], lanes[1])) };
}
