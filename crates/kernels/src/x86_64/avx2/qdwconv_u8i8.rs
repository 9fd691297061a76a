//! `x86_64/avx2/qdwconv_u8i8_requant_c8`: int8 depthwise convolution, eight channels per ymm;
//! the channel tail goes through the same lanes via small zero-padded copies.

use core::arch::x86_64::*;
use std::ops::Range;

use super::requant_u8::{clamp_q, load_i32, mulv, outq, store_u8};
use crate::quant::Requant;
use crate::quant::qdwconv::tap_pos;
use crate::reference::ConvGeom;

#[inline]
#[target_feature(enable = "avx2")]
fn load8_u8(s: &[u8]) -> __m256i {
    let mut t = [0u8; 16];
    t[..s.len()].copy_from_slice(s);
    // SAFETY: `t` is 16 bytes; 8 are read.
    _mm256_cvtepu8_epi32(unsafe { _mm_loadl_epi64(t.as_ptr().cast()) })
}

#[inline]
#[target_feature(enable = "avx2")]
fn load8_i8(s: &[i8]) -> __m256i {
    let mut t = [0i8; 16];
    t[..s.len()].copy_from_slice(s);
    // SAFETY: `t` is 16 bytes; 8 are read.
    _mm256_cvtepi8_epi32(unsafe { _mm_loadl_epi64(t.as_ptr().cast()) })
}

/// Depthwise output rows `rows` of one image.
///
/// # Safety
/// The CPU has AVX2; the arguments passed `crate::quant::qdwconv::check`.
#[target_feature(enable = "avx2")]
pub(in crate::x86_64) unsafe fn qdwconv_u8i8_c8(
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) {
    let (c, ow) = (g.in_c, g.out_w());
    let zpx = _mm256_set1_epi32(x_zp);
    let oq = outq(rq.zero_point, rq.qmin as i32, rq.qmax as i32);
    let mut c0 = 0;
    while c0 < c {
        let v = (c - c0).min(8);
        let bias = load_i32(&rq.bias[c0..c0 + v]);
        let m = mulv(
            load_i32(&rq.multiplier[c0..c0 + v]),
            load_i32(&rq.shift[c0..c0 + v]),
        );
        for (r, oy) in rows.clone().enumerate() {
            for ox in 0..ow {
                let mut acc = _mm256_setzero_si256();
                for ky in 0..g.kh {
                    let Some(iy) = tap_pos(oy, ky, g.stride_h, g.dil_h, g.pad_h, g.in_h) else {
                        continue;
                    };
                    for kx in 0..g.kw {
                        let Some(ix) = tap_pos(ox, kx, g.stride_w, g.dil_w, g.pad_w, g.in_w) else {
                            continue;
                        };
                        let xo = (iy * g.in_w + ix) * c + c0;
                        let wo = (ky * g.kw + kx) * c + c0;
                        let xv = _mm256_sub_epi32(load8_u8(&x[xo..xo + v]), zpx);
                        let wv = load8_i8(&w[wo..wo + v]);
                        acc = _mm256_add_epi32(acc, _mm256_mullo_epi32(xv, wv));
                    }
                }
                let q = clamp_q(_mm256_add_epi32(acc, bias), m, oq);
                let o = (r * ow + ox) * c + c0;
                store_u8(q, &mut out[o..o + v]);
            }
        }
        c0 += 8;
    }
}
