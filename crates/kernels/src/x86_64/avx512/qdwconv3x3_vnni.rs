//! `x86_64/avx512vnni/qdwconv_u8i8_requant_c16`: the 3x3 (dilation 1) int8 depthwise
//! convolution with VNNI and VBMI, sixteen channels per zmm.
//!
//! Four taps of sixteen channels are gathered into one zmm (`[t0 | t1 | t2 | t3]`,
//! 16 bytes each) and transposed with `vpermb` so that each `i32` lane holds one
//! channel's four taps; `vpdpbusd` multiplies them with the matching weight quads
//! (`u8 × i8`, exact). Raw `u8` inputs are used and the zero-point term
//! `−zp · Σ w` is folded into the bias; taps in the padding read the zero point itself
//! (the real value 0), so border pixels take the same path as interior ones:
//! `bias − zp·Σ_all w + Σ_valid x·w + Σ_pad zp·w = bias + Σ_valid (x − zp)·w` exactly, in
//! wrapping `i32`.
//!
//! At stride 1, two neighbouring pixels read input columns `ix0..ix0 + 3`: one
//! transposed window per kernel row serves both, against the weight quads
//! `[w0, w1, w2, 0]` (left pixel) and `[0, w0, w1, w2]` (right pixel). Weights are
//! transposed the same way, with vector instructions, once per call and channel group.

use core::arch::x86_64::*;
use std::ops::Range;

use super::requant_u8::{MulV, OutQ, to_u8};
use crate::reference::ConvGeom;

/// Byte `4·ch + j` of a transposed vector comes from byte `16·j + ch`.
const TRANSPOSE: [u8; 64] = {
    let mut a = [0u8; 64];
    let mut i = 0;
    while i < 64 {
        a[i] = ((i % 4) * 16 + i / 4) as u8;
        i += 1;
    }
    a
};

/// `[a | b | c | d]` transposed: lane `ch` holds `a[ch], b[ch], c[ch], d[ch]`.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vbmi")]
fn transpose4(idx: __m512i, a: __m128i, b: __m128i, c: __m128i, d: __m128i) -> __m512i {
    let z = _mm512_zextsi128_si512(a);
    let z = _mm512_inserti32x4::<1>(z, b);
    let z = _mm512_inserti32x4::<2>(z, c);
    _mm512_permutexvar_epi8(idx, _mm512_inserti32x4::<3>(z, d))
}

/// Output rows `rows` of one image for channels `c0..c0 + 16` (masked by `mask`).
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/VBMI/VNNI; `g` is a 3x3, dilation-1 depthwise geometry
/// whose arguments passed `crate::quant::qdwconv::check` (`xp` points at
/// `[in_h, in_w, C]` bytes, `wp` at `[9, C]` weights, `op` at `[rows, out_w, C]` bytes);
/// `mask` keeps channels `c0..` below C; `bias` holds the stage's `i32` bias.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vbmi,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(super) unsafe fn rows3x3_vnni(
    g: &ConvGeom,
    xp: *const u8,
    op: *mut u8,
    mask: __mmask16,
    c0: usize,
    bias: __m512i,
    zp: i32,
    m: MulV,
    oq: OutQ,
    wp: *const i8,
    rows: Range<usize>,
) {
    let (c, ow, in_w) = (g.in_c, g.out_w(), g.in_w);
    // SAFETY: the table holds 64 bytes.
    let idx = unsafe { _mm512_loadu_si512(TRANSPOSE.as_ptr().cast()) };
    let zero = _mm_setzero_si128();
    // SAFETY: tap t < 9 and the mask keeps channels below C: inside the weights.
    let w = |t: usize| unsafe { _mm_maskz_loadu_epi8(mask, wp.add(t * c + c0)) };
    let quads = [
        transpose4(idx, w(0), w(1), w(2), w(3)),
        transpose4(idx, w(4), w(5), w(6), w(7)),
        transpose4(idx, w(8), zero, zero, zero),
    ];
    let left = [0, 1, 2].map(|ky| transpose4(idx, w(3 * ky), w(3 * ky + 1), w(3 * ky + 2), zero));
    let right = [0, 1, 2].map(|ky| transpose4(idx, zero, w(3 * ky), w(3 * ky + 1), w(3 * ky + 2)));
    // Σ_t w_t per channel, from the quads and a vector of ones.
    let ones = _mm512_set1_epi8(1);
    let wsum = quads.iter().fold(_mm512_setzero_si512(), |s, &q| {
        _mm512_dpbusd_epi32(s, ones, q)
    });
    let bias = _mm512_sub_epi32(bias, _mm512_mullo_epi32(_mm512_set1_epi32(zp), wsum));
    let zpv = _mm_set1_epi8(zp as i8);
    for (r, oy) in rows.enumerate() {
        let iy = [0, 1, 2].map(|ky| {
            let i = (oy * g.stride_h + ky) as isize - g.pad_h as isize;
            (i >= 0 && (i as usize) < g.in_h).then_some(i as usize)
        });
        let all_rows = iy.iter().all(Option::is_some);
        // Sixteen channels of input pixel (row of kernel row ky, column ix), or the zero
        // point in the padding.
        let tap = |ky: usize, ix: isize| -> __m128i {
            match iy[ky] {
                // SAFETY: row iy < in_h and column 0 ≤ ix < in_w are inside the image; the
                // mask keeps channels below C.
                Some(y) if ix >= 0 && (ix as usize) < in_w => unsafe {
                    _mm_maskz_loadu_epi8(mask, xp.add((y * in_w + ix as usize) * c + c0).cast())
                },
                _ => zpv,
            }
        };
        let mut ox = 0;
        while ox < ow {
            let ix0 = (ox * g.stride_w) as isize - g.pad_w as isize;
            if g.stride_w == 1 && ox + 1 < ow {
                let (mut a, mut b) = (bias, bias);
                let inside = all_rows && ix0 >= 0 && ix0 as usize + 3 < in_w;
                for ky in 0..3 {
                    let win = if inside {
                        let base = (iy[ky].unwrap_or(0) * in_w + ix0 as usize) * c + c0;
                        // SAFETY: every row is inside and columns ix0..ix0 + 3 < in_w; the
                        // mask keeps channels below C.
                        let col = |k: usize| unsafe {
                            _mm_maskz_loadu_epi8(mask, xp.add(base + k * c).cast())
                        };
                        transpose4(idx, col(0), col(1), col(2), col(3))
                    } else {
                        let col = |k: isize| tap(ky, ix0 + k);
                        transpose4(idx, col(0), col(1), col(2), col(3))
                    };
                    a = _mm512_dpbusd_epi32(a, win, left[ky]);
                    b = _mm512_dpbusd_epi32(b, win, right[ky]);
                }
                for (k, acc) in [a, b].into_iter().enumerate() {
                    let bytes = to_u8(acc, m, oq);
                    // SAFETY: r < rows.len(), ox + k < out_w, masked channels < C.
                    unsafe {
                        _mm_mask_storeu_epi8(op.add((r * ow + ox + k) * c + c0).cast(), mask, bytes)
                    };
                }
                ox += 2;
                continue;
            }
            // One pixel (stride 2, or the last column): taps 0-3, 4-7 and 8.
            let t: [__m128i; 9] = if all_rows && ix0 >= 0 && ix0 as usize + 2 < in_w {
                let base = [0, 1, 2].map(|ky| (iy[ky].unwrap_or(0) * in_w + ix0 as usize) * c + c0);
                // SAFETY: every row is inside and columns ix0..ix0 + 2 < in_w; the mask
                // keeps channels below C.
                std::array::from_fn(|k| unsafe {
                    _mm_maskz_loadu_epi8(mask, xp.add(base[k / 3] + (k % 3) * c).cast())
                })
            } else {
                std::array::from_fn(|k| tap(k / 3, ix0 + (k % 3) as isize))
            };
            let mut acc =
                _mm512_dpbusd_epi32(bias, transpose4(idx, t[0], t[1], t[2], t[3]), quads[0]);
            acc = _mm512_dpbusd_epi32(acc, transpose4(idx, t[4], t[5], t[6], t[7]), quads[1]);
            acc = _mm512_dpbusd_epi32(acc, transpose4(idx, t[8], zero, zero, zero), quads[2]);
            let bytes = to_u8(acc, m, oq);
            // SAFETY: r < rows.len(), ox < out_w, masked channels < C: inside `out`.
            unsafe { _mm_mask_storeu_epi8(op.add((r * ow + ox) * c + c0).cast(), mask, bytes) };
            ox += 1;
        }
    }
}
