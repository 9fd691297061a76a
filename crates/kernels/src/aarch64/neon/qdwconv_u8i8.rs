//! `aarch64/neon/qdwconv_u8i8_requant_c8`: int8 depthwise convolution (any k×k, stride, padding
//! and dilation) with the requantization fused, 8 channels at a time.
//!
//! Per output pixel the in-image taps are listed once; each 8-channel block widens
//! `x − x_zp` and the weights to `i16` and accumulates `smlal` products in two `i32x4`
//! (wrapping, as the reference), then [`requant_u8x8`] writes the codes. The last `c % 8`
//! channels run the reference's scalar loop.

use core::arch::aarch64::*;
use std::ops::Range;

use super::requant_u8::{RequantLanes, requant_u8x8};
use crate::quant::Requant;
use crate::quant::qdwconv::tap_pos;
use crate::reference::ConvGeom;

/// Output rows `rows` of one image; arguments as `qdwconv_reference`.
///
/// # Safety
/// NEON is available and the slices passed `qdwconv::check` for `g` and `rows`.
#[allow(clippy::too_many_arguments)]
#[target_feature(enable = "neon")]
pub(in crate::aarch64) unsafe fn qdwconv_u8i8_c8(
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let (c, ow) = (g.in_c, g.out_w());
    let vec_c = c - c % 8;
    let zp = vdupq_n_s16(x_zp as i16);
    let mut taps = vec![(0usize, 0usize); g.kh * g.kw];
    for (r, oy) in rows.enumerate() {
        for ox in 0..ow {
            let mut n = 0;
            for ky in 0..g.kh {
                let Some(iy) = tap_pos(oy, ky, g.stride_h, g.dil_h, g.pad_h, g.in_h) else {
                    continue;
                };
                for kx in 0..g.kw {
                    if let Some(ix) = tap_pos(ox, kx, g.stride_w, g.dil_w, g.pad_w, g.in_w) {
                        taps[n] = ((iy * g.in_w + ix) * c, (ky * g.kw + kx) * c);
                        n += 1;
                    }
                }
            }
            let taps = &taps[..n];
            let dst = &mut out[(r * ow + ox) * c..(r * ow + ox + 1) * c];
            let mut ch = 0;
            while ch < vec_c {
                let mut acc = [vdupq_n_s32(0); 2];
                for &(xo, wo) in taps {
                    // SAFETY: ch + 8 ≤ c, and every tap is an in-image pixel of `x` and a
                    // tap row of `w` (lengths checked by `qdwconv::check`).
                    let (xv, wv) = unsafe {
                        (
                            vld1_u8(x.as_ptr().add(xo + ch)),
                            vld1_s8(w.as_ptr().add(wo + ch)),
                        )
                    };
                    let xs = vsubq_s16(vreinterpretq_s16_u16(vmovl_u8(xv)), zp);
                    let ws = vmovl_s8(wv);
                    acc[0] = vmlal_s16(acc[0], vget_low_s16(xs), vget_low_s16(ws));
                    acc[1] = vmlal_high_s16(acc[1], xs, ws);
                }
                let lanes = RequantLanes {
                    bias: &rq.bias[ch..],
                    mul: &rq.multiplier[ch..],
                    shift: &rq.shift[ch..],
                    zp: rq.zero_point,
                    qmin: rq.qmin as i32,
                    qmax: rq.qmax as i32,
                };
                // SAFETY: NEON (contract); 8 channels from `ch` exist in every slice.
                unsafe { requant_u8x8(acc, &lanes, &mut dst[ch..]) };
                ch += 8;
            }
            for ch in vec_c..c {
                let mut acc = 0i32;
                for &(xo, wo) in taps {
                    let xv = x[xo + ch] as i32 - x_zp;
                    acc = acc.wrapping_add(xv * w[wo + ch] as i32);
                }
                dst[ch] = rq.apply(acc, ch);
            }
        }
    }
}
