//! `x86_64/avx512/qdwconv_u8i8_requant_c16`: int8 depthwise convolution, sixteen channels per
//! zmm (masked for the channel tail). Each tap widens 16 input bytes and 16 weights to
//! `i32`, subtracts the input zero point and multiply-adds in `i32`: exact.

use core::arch::x86_64::*;
use std::ops::Range;

use super::qdwconv3x3_vnni::rows3x3_vnni;
use super::qgemm_u8i8_vnni::col_mask;
use super::requant_u8::{MulV, OutQ, mulv, outq, to_u8};
use crate::quant::Requant;
use crate::quant::qdwconv::tap_pos;
use crate::reference::ConvGeom;

/// Depthwise output rows `rows` of one image.
///
/// `vbmi_vnni` selects the 3x3 path that gathers four taps per channel with `vpermb`
/// and multiplies them with one `vpdpbusd`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL (and VBMI and VNNI when `vbmi_vnni`); the arguments
/// passed `crate::quant::qdwconv::check`
/// (`x` is `[in_h, in_w, C]`, `w` is `[kh·kw, C]`, `out` is `[rows, out_w, C]`, `rq` has
/// `C` valid channels).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn qdwconv_u8i8_c16(
    vbmi_vnni: bool,
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let (c, ow) = (g.in_c, g.out_w());
    let zpx = _mm512_set1_epi32(x_zp);
    let oq = outq(rq.zero_point, rq.qmin as i32, rq.qmax as i32);
    let q32 = rq.is_q32();
    let (xp, wp, op) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    let fast = g.kh == 3 && g.kw == 3 && g.dil_h == 1 && g.dil_w == 1;
    if fast && vbmi_vnni {
        // Bands of output rows outside, channel groups inside: a band's input rows stay
        // in L1 while every group reads them (the 150x150x96 input of the first stride-2
        // layer does not even fit in L2, and group-outer order streamed it once per
        // group). A band holds at least 64 pixels so that the per-group weight
        // transposition stays small against the work.
        let band = 64usize.div_ceil(ow.max(1));
        let mut b0 = rows.start;
        while b0 < rows.end {
            let b1 = (b0 + band).min(rows.end);
            // SAFETY: rows b0..b1 lie inside `rows`, whose output starts at `op`.
            let obase = unsafe { op.add((b0 - rows.start) * ow * c) };
            let mut c0 = 0;
            while c0 < c {
                let (mask, bias, m) = group_stage(rq, c0, q32);
                // SAFETY: forwarded contract (VBMI and VNNI present); the mask keeps
                // channels below C; `obase` holds rows b0..b1 of the output.
                unsafe { rows3x3_vnni(g, xp, obase, mask, c0, bias, x_zp, m, oq, wp, b0..b1) };
                c0 += 16;
            }
            b0 = b1;
        }
        return;
    }
    let mut c0 = 0;
    while c0 < c {
        let (mask, bias, m) = group_stage(rq, c0, q32);
        if fast {
            // SAFETY: forwarded contract; the mask keeps channels below C.
            unsafe { rows3x3(g, xp, op, mask, c0, bias, zpx, m, oq, wp, rows.clone()) };
            c0 += 16;
            continue;
        }
        for (r, oy) in rows.clone().enumerate() {
            for ox in 0..ow {
                let mut acc = _mm512_setzero_si512();
                for ky in 0..g.kh {
                    let Some(iy) = tap_pos(oy, ky, g.stride_h, g.dil_h, g.pad_h, g.in_h) else {
                        continue;
                    };
                    for kx in 0..g.kw {
                        let Some(ix) = tap_pos(ox, kx, g.stride_w, g.dil_w, g.pad_w, g.in_w) else {
                            continue;
                        };
                        // SAFETY: iy < in_h, ix < in_w and the mask keeps channels < C, so
                        // both loads stay inside `x` and `w`.
                        let (xv, wv) = unsafe {
                            (
                                _mm_maskz_loadu_epi8(
                                    mask,
                                    xp.add((iy * g.in_w + ix) * c + c0).cast(),
                                ),
                                _mm_maskz_loadu_epi8(mask, wp.add((ky * g.kw + kx) * c + c0)),
                            )
                        };
                        let xv = _mm512_sub_epi32(_mm512_cvtepu8_epi32(xv), zpx);
                        let wv = _mm512_cvtepi8_epi32(wv);
                        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, wv));
                    }
                }
                let bytes = to_u8(_mm512_add_epi32(acc, bias), m, oq);
                // SAFETY: r < rows.len(), ox < out_w, channels < C: inside `out`.
                unsafe { _mm_mask_storeu_epi8(op.add((r * ow + ox) * c + c0).cast(), mask, bytes) };
            }
        }
        c0 += 16;
    }
}

/// The channel mask of the group `c0..c0 + 16` (cut at C) and its stage: `i32` bias
/// and multipliers (`q32`: every shift is −1).
#[inline]
#[target_feature(enable = "avx512f")]
fn group_stage(rq: &Requant, c0: usize, q32: bool) -> (__mmask16, __m512i, MulV) {
    let mask = col_mask(rq.channels() - c0);
    // SAFETY: masked loads touch only channels c0..c0 + 16 below C of `rq`.
    unsafe {
        (
            mask,
            _mm512_maskz_loadu_epi32(mask, rq.bias.as_ptr().add(c0)),
            mulv(
                _mm512_maskz_loadu_epi32(mask, rq.multiplier.as_ptr().add(c0)),
                _mm512_maskz_loadu_epi32(mask, rq.shift.as_ptr().add(c0)),
                q32,
            ),
        )
    }
}

/// The 3x3 (dilation 1) path for one group of sixteen channels: the nine weight vectors
/// and the zero-point term stay in registers, and interior pixels (all nine taps inside
/// the image) skip both the bounds checks and the per-tap zero-point subtraction:
/// `Σ (x − zp)·w = Σ x·w − zp·Σ w`, exactly, in wrapping `i32`.
///
/// # Safety
/// As [`qdwconv_u8i8_c16`]; `mask` keeps channels `c0..` below C.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
#[allow(clippy::too_many_arguments)]
unsafe fn rows3x3(
    g: &ConvGeom,
    xp: *const u8,
    op: *mut u8,
    mask: __mmask16,
    c0: usize,
    bias: __m512i,
    zpx: __m512i,
    m: MulV,
    oq: OutQ,
    wp: *const i8,
    rows: Range<usize>,
) {
    let (c, ow) = (g.in_c, g.out_w());
    let mut wv = [_mm512_setzero_si512(); 9];
    let mut wsum = _mm512_setzero_si512();
    for (t, v) in wv.iter_mut().enumerate() {
        // SAFETY: tap t < 9 and masked channels < C: inside the packed weights.
        *v = _mm512_cvtepi8_epi32(unsafe { _mm_maskz_loadu_epi8(mask, wp.add(t * c + c0)) });
        wsum = _mm512_add_epi32(wsum, *v);
    }
    let bias_inner = _mm512_sub_epi32(bias, _mm512_mullo_epi32(zpx, wsum));
    // Interior columns: ox·sw − pw ≥ 0 and ox·sw − pw + 2 < in_w.
    let ox_lo = g.pad_w.div_ceil(g.stride_w).min(ow);
    let ox_hi = if g.in_w + g.pad_w >= 3 {
        ((g.in_w + g.pad_w - 3) / g.stride_w + 1).clamp(ox_lo, ow)
    } else {
        ox_lo
    };
    for (r, oy) in rows.enumerate() {
        let row_inside = oy * g.stride_h >= g.pad_h && oy * g.stride_h + 3 <= g.in_h + g.pad_h;
        for ox in 0..ow {
            let acc = if row_inside && ox >= ox_lo && ox < ox_hi {
                let iy0 = oy * g.stride_h - g.pad_h;
                let ix0 = ox * g.stride_w - g.pad_w;
                let mut acc = bias_inner;
                for ky in 0..3 {
                    for kx in 0..3 {
                        // SAFETY: an interior pixel's taps are all inside the image.
                        let xv = unsafe {
                            _mm_maskz_loadu_epi8(
                                mask,
                                xp.add(((iy0 + ky) * g.in_w + ix0 + kx) * c + c0).cast(),
                            )
                        };
                        acc = _mm512_add_epi32(
                            acc,
                            _mm512_mullo_epi32(_mm512_cvtepu8_epi32(xv), wv[ky * 3 + kx]),
                        );
                    }
                }
                acc
            } else {
                let mut acc = bias;
                for ky in 0..3 {
                    let Some(iy) = tap_pos(oy, ky, g.stride_h, 1, g.pad_h, g.in_h) else {
                        continue;
                    };
                    for kx in 0..3 {
                        let Some(ix) = tap_pos(ox, kx, g.stride_w, 1, g.pad_w, g.in_w) else {
                            continue;
                        };
                        // SAFETY: iy < in_h, ix < in_w, masked channels < C.
                        let xv = unsafe {
                            _mm_maskz_loadu_epi8(mask, xp.add((iy * g.in_w + ix) * c + c0).cast())
                        };
                        let xv = _mm512_sub_epi32(_mm512_cvtepu8_epi32(xv), zpx);
                        acc = _mm512_add_epi32(acc, _mm512_mullo_epi32(xv, wv[ky * 3 + kx]));
                    }
                }
                acc
            };
            let bytes = to_u8(acc, m, oq);
            // SAFETY: r < rows.len(), ox < out_w, masked channels < C: inside `out`.
            unsafe { _mm_mask_storeu_epi8(op.add((r * ow + ox) * c + c0).cast(), mask, bytes) };
        }
    }
}
