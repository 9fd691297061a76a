//! `qdwconv_u8i8_requant_avx512_c16`: int8 depthwise convolution, sixteen channels per
//! zmm (masked for the channel tail). Each tap widens 16 input bytes and 16 weights to
//! `i32`, subtracts the input zero point and multiply-adds in `i32`: exact.

use core::arch::x86_64::*;
use std::ops::Range;

use super::requant_u8::{mulv, to_u8};
use crate::quant::Requant;
use crate::quant::qdwconv::tap_pos;
use crate::reference::ConvGeom;

/// Depthwise output rows `rows` of one image.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL; the arguments passed `crate::quant::qdwconv::check`
/// (`x` is `[in_h, in_w, C]`, `w` is `[kh·kw, C]`, `out` is `[rows, out_w, C]`, `rq` has
/// `C` valid channels).
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(in crate::x86_64) unsafe fn qdwconv_u8i8_c16(
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
    let (zpo, lo, hi) = (
        _mm512_set1_epi32(rq.zero_point),
        _mm512_set1_epi32(rq.qmin as i32),
        _mm512_set1_epi32(rq.qmax as i32),
    );
    let (xp, wp, op) = (x.as_ptr(), w.as_ptr(), out.as_mut_ptr());
    let mut c0 = 0;
    while c0 < c {
        let valid = (c - c0).min(16);
        let mask: __mmask16 = if valid == 16 {
            0xFFFF
        } else {
            (1u16 << valid) - 1
        };
        // SAFETY: masked loads touch only channels c0..c0 + valid < C of `rq`.
        let (bias, m) = unsafe {
            (
                _mm512_maskz_loadu_epi32(mask, rq.bias.as_ptr().add(c0)),
                mulv(
                    _mm512_maskz_loadu_epi32(mask, rq.multiplier.as_ptr().add(c0)),
                    _mm512_maskz_loadu_epi32(mask, rq.shift.as_ptr().add(c0)),
                ),
            )
        };
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
                let bytes = to_u8(_mm512_add_epi32(acc, bias), m, zpo, lo, hi);
                // SAFETY: r < rows.len(), ox < out_w, channels < C: inside `out`.
                unsafe { _mm_mask_storeu_epi8(op.add((r * ow + ox) * c + c0).cast(), mask, bytes) };
            }
        }
        c0 += 16;
    }
}
