//! im2col for `u8` NHWC images: the dense k×k int8 convolution as one int8 GEMM.
//!
//! Row `p` of the column matrix holds output pixel `p`'s input patch in `[kh, kw, in_c]`
//! order. Taps in the padding are filled with the input zero point (the real value 0),
//! so the GEMM's folded zero-point term stays exact.

use std::ops::Range;

use crate::reference::ConvGeom;

/// Fills the column matrix for output rows `rows`.
///
/// - `input`: `[in_h, in_w, in_c]` with zero point `zp`
/// - `cols`: `[rows.len() · out_w, ld]` with `ld ≥ kh·kw·in_c`; the `ld − kh·kw·in_c`
///   bytes at the end of each row are set to `zp` (pair them with zero weight rows, e.g.
///   [`super::PackedB::from_oihw_padded`], to give the GEMM a depth that is a multiple of
///   4)
///
/// # Panics
/// If `cols` has the wrong length or `ld` is too small (programmer errors).
pub fn im2col_u8_rows(
    g: &ConvGeom,
    input: &[u8],
    zp: u8,
    rows: Range<usize>,
    ld: usize,
    cols: &mut [u8],
) {
    let c = g.in_c;
    let ow = g.out_w();
    let k = g.kh * g.kw * c;
    assert!(ld >= k, "im2col_u8_rows: ld {ld} < {k}");
    assert_eq!(
        cols.len(),
        rows.len() * ow * ld,
        "im2col_u8_rows: cols length"
    );
    // Interior columns: every tap of the kernel row inside the image.
    let ox_lo = g.pad_w.div_ceil(g.stride_w).min(ow);
    let span = (g.kw - 1) * g.dil_w + 1;
    let ox_hi = if g.in_w + g.pad_w >= span {
        ((g.in_w + g.pad_w - span) / g.stride_w + 1).clamp(ox_lo, ow)
    } else {
        ox_lo
    };
    // The first layer's shape (3x3 taps of 3 channels, rows padded to 28 bytes): whole
    // interior rows with fixed-size copies.
    let first_layer = g.kh == 3 && g.kw == 3 && c == 3 && g.dil_w == 1 && g.dil_h == 1 && ld == 28;
    for (r, oy) in rows.enumerate() {
        let iy0 = (oy * g.stride_h) as isize - g.pad_h as isize;
        let row_inside = iy0 >= 0 && iy0 as usize + 2 < g.in_h;
        if first_layer && row_inside && ox_lo < ox_hi {
            let iy0 = iy0 as usize;
            let row_len = g.in_w * c;
            let src = &input[iy0 * row_len..(iy0 + 3) * row_len];
            let out = &mut cols[(r * ow + ox_lo) * ld..(r * ow + ox_hi) * ld];
            for (i, dst) in out.chunks_exact_mut(28).enumerate() {
                let base = ((ox_lo + i) * g.stride_w - g.pad_w) * c;
                let dst: &mut [u8; 28] = dst.try_into().expect("28-byte rows");
                for ky in 0..3 {
                    let s: &[u8; 9] = src[ky * row_len + base..ky * row_len + base + 9]
                        .try_into()
                        .expect("9-byte taps");
                    dst[9 * ky..9 * ky + 9].copy_from_slice(s);
                }
                dst[27] = zp;
            }
        }
        for ox in 0..ow {
            if first_layer && row_inside && (ox_lo..ox_hi).contains(&ox) {
                continue;
            }
            let dst = &mut cols[(r * ow + ox) * ld..(r * ow + ox + 1) * ld];
            for b in &mut dst[k..] {
                *b = zp;
            }
            let ix0 = (ox * g.stride_w) as isize - g.pad_w as isize;
            let ix_last = ix0 + ((g.kw - 1) * g.dil_w) as isize;
            let row_inside = ix0 >= 0 && ix_last < g.in_w as isize && g.dil_w == 1;
            for ky in 0..g.kh {
                let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                let d = &mut dst[ky * g.kw * c..(ky + 1) * g.kw * c];
                if iy < 0 || iy >= g.in_h as isize {
                    d.fill(zp);
                    continue;
                }
                if row_inside {
                    // The kw taps of this kernel row are contiguous in the input.
                    let base = (iy as usize * g.in_w + ix0 as usize) * c;
                    copy_short(d, &input[base..base + g.kw * c]);
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = ix0 + (kx * g.dil_w) as isize;
                    let t = &mut d[kx * c..(kx + 1) * c];
                    if ix < 0 || ix >= g.in_w as isize {
                        t.fill(zp);
                    } else {
                        let base = (iy as usize * g.in_w + ix as usize) * c;
                        t.copy_from_slice(&input[base..base + c]);
                    }
                }
            }
        }
    }
}

/// `d.copy_from_slice(s)` for the short runs of a first layer (3x3 taps of 3 channels
/// are 9 bytes): two overlapping fixed 8-byte copies compile to two loads and two
/// stores, where a variable-length copy is a `memcpy` call.
#[inline(always)]
fn copy_short(d: &mut [u8], s: &[u8]) {
    let n = d.len();
    if (8..=16).contains(&n) && s.len() == n {
        d[..8].copy_from_slice(&s[..8]);
        d[n - 8..].copy_from_slice(&s[n - 8..]);
    } else {
        d.copy_from_slice(s);
    }
}

/// Reference dense int8 convolution (`groups == 1`) of one image, for tests of the
/// im2col + GEMM path: `out[oy, ox, o] = rq(Σ (x − zp) · w[o, ci, ky, kx], o)` with
/// `w` in OIHW.
pub fn qconv_reference(
    g: &ConvGeom,
    x: &[u8],
    zp: i32,
    w_oihw: &[i8],
    rq: &super::Requant,
    out: &mut [u8],
) {
    let (oh, ow, oc, ic) = (g.out_h(), g.out_w(), g.out_c, g.in_c);
    assert_eq!(out.len(), oh * ow * oc, "qconv_reference: output length");
    for oy in 0..oh {
        for ox in 0..ow {
            for o in 0..oc {
                let mut acc = 0i32;
                for ky in 0..g.kh {
                    let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                    for kx in 0..g.kw {
                        let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
                        if iy < 0 || iy >= g.in_h as isize || ix < 0 || ix >= g.in_w as isize {
                            continue;
                        }
                        for ci in 0..ic {
                            let xv = x[(iy as usize * g.in_w + ix as usize) * ic + ci] as i32 - zp;
                            let wv = w_oihw[((o * ic + ci) * g.kh + ky) * g.kw + kx] as i32;
                            acc = acc.wrapping_add(xv * wv);
                        }
                    }
                }
                out[(oy * ow + ox) * oc + o] = rq.apply(acc, o);
            }
        }
    }
}
