//! `aarch64/neon/dwconv3x3_f32_c4`: 3x3 depthwise convolution over NHWC with the fused
//! bias (or BN scale and shift) and activation, 4 channels per q register.
//!
//! Per output pixel the in-image taps are listed once (row-major, the padding taps left
//! out); each 4-channel block then accumulates them with one `fmla` each in registers and
//! is stored once. Every output element accumulates bias (or 0), then the taps in `(ky, kx)`
//! order, then `acc · scale + bias` when scaled, then the clamp: the arithmetic of the
//! portable path, so the two agree within float tolerance whatever the channel count. The
//! last `c % 4` channels run the same operations in scalar code.

use core::arch::aarch64::*;
use std::ops::Range;

use crate::act::Act;
use crate::dw_plan::Plan;

/// Computes output rows `rows` of a 3x3 depthwise convolution into `out`.
///
/// # Safety
/// NEON is available, and `plan` came from [`Plan::for_call`] for these slices and rows
/// (which checked that `input` holds the rows read, `weight` `[9, c]`, `bias` and `scale`
/// `[c]`, `out` `rows.len()·out_w·c`).
#[target_feature(enable = "neon")]
pub(in crate::aarch64) unsafe fn dwconv3x3_f32_c4(
    plan: &Plan,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let c = plan.c;
    let vec_c = c - c % 4;
    let (lo, hi) = plan.act.bounds();
    let clamp = plan.act != Act::None;
    let (vlo, vhi) = (vdupq_n_f32(lo), vdupq_n_f32(hi));
    for (r, oy) in rows.enumerate() {
        let t = plan.taps(oy);
        for ox in 0..plan.out_w {
            // (input offset, weight offset) of each in-image tap, row-major.
            let mut taps = [(0usize, 0usize); 9];
            let mut n = 0;
            for dy in 0..t.n {
                let (iy, ky) = (t.iy0 + dy - plan.row0, t.ky0 + dy);
                for kx in 0..3 {
                    if let Some(ix) = plan.tap_col(ox, kx) {
                        taps[n] = ((iy * plan.in_w + ix) * c, (ky * 3 + kx) * c);
                        n += 1;
                    }
                }
            }
            let taps = &taps[..n];
            let dst = &mut out[(r * plan.out_w + ox) * c..(r * plan.out_w + ox + 1) * c];
            let mut ch = 0;
            while ch < vec_c {
                // SAFETY: ch + 4 ≤ c; every tap offset is an in-image pixel of a row
                // `input` holds and a tap row of `weight` (checked by `Plan::for_call`), so
                // the 4 lanes at offset + ch are inside `input`, `weight`, `bias`,
                // `scale` and `dst`.
                unsafe {
                    let b = vld1q_f32(bias.as_ptr().add(ch));
                    let mut acc = if scale.is_some() { vdupq_n_f32(0.0) } else { b };
                    for &(xo, wo) in taps {
                        let x = vld1q_f32(input.as_ptr().add(xo + ch));
                        let w = vld1q_f32(weight.as_ptr().add(wo + ch));
                        acc = vfmaq_f32(acc, x, w);
                    }
                    if let Some(s) = scale {
                        acc = vfmaq_f32(b, acc, vld1q_f32(s.as_ptr().add(ch)));
                    }
                    if clamp {
                        // maxNum/minNum: a NaN becomes the bound, as `f32::max`/`min` do.
                        acc = vminnmq_f32(vmaxnmq_f32(acc, vlo), vhi);
                    }
                    vst1q_f32(dst.as_mut_ptr().add(ch), acc);
                }
                ch += 4;
            }
            for ch in vec_c..c {
                let mut acc = if scale.is_some() { 0.0 } else { bias[ch] };
                for &(xo, wo) in taps {
                    acc = input[xo + ch].mul_add(weight[wo + ch], acc);
                }
                if let Some(s) = scale {
                    acc = acc.mul_add(s[ch], bias[ch]);
                }
                dst[ch] = if clamp { acc.max(lo).min(hi) } else { acc };
            }
        }
    }
}
