//! im2col for NHWC images: turns a dense (`groups == 1`) convolution into one GEMM.
//!
//! Row `p` of the column matrix holds, for output pixel `p`, the input patch in
//! `[kh, kw, in_c]` order (zeros where the patch overlaps the padding). Multiplying it by
//! the weight packed as `[kh·kw·in_c, out_c]` (see [`pack_weight`]) gives the output
//! `[out_h·out_w, out_c]`, which is NHWC.

use std::ops::Range;

use crate::reference::ConvGeom;

/// Repacks a PyTorch weight `[out_c, in_c, kh, kw]` to the GEMM right-hand side
/// `[kh·kw·in_c, out_c]`.
pub fn pack_weight(oihw: &[f32], out_c: usize, in_c: usize, kh: usize, kw: usize) -> Vec<f32> {
    let k = kh * kw * in_c;
    let mut packed = vec![0.0; k * out_c];
    for oc in 0..out_c {
        for ci in 0..in_c {
            for ky in 0..kh {
                for kx in 0..kw {
                    let row = (ky * kw + kx) * in_c + ci;
                    packed[row * out_c + oc] = oihw[((oc * in_c + ci) * kh + ky) * kw + kx];
                }
            }
        }
    }
    packed
}

/// Fills the column matrix for output rows `rows` (all output columns of each row).
///
/// - `input`: `[in_h, in_w, in_c]`
/// - `cols`: `[rows.len() · out_w, kh·kw·in_c]`
pub fn im2col_rows(g: &ConvGeom, input: &[f32], rows: Range<usize>, cols: &mut [f32]) {
    let c = g.in_c;
    let ow = g.out_w();
    let k = g.kh * g.kw * c;
    assert_eq!(cols.len(), rows.len() * ow * k, "im2col_rows: cols length");
    let span = g.kw * c;
    for (r, oy) in rows.enumerate() {
        for ox in 0..ow {
            let dst = &mut cols[(r * ow + ox) * k..(r * ow + ox + 1) * k];
            let ix0 = (ox * g.stride_w) as isize - g.pad_w as isize;
            let last = ix0 + ((g.kw - 1) * g.dil_w) as isize;
            let interior = g.dil_w == 1 && ix0 >= 0 && last < g.in_w as isize;
            for ky in 0..g.kh {
                let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                if interior && iy >= 0 && iy < g.in_h as isize {
                    // The kw taps of this kernel row are kw adjacent pixels: one copy of
                    // kw·c contiguous floats (the first layer has c = 3, where per-tap
                    // copies cost more than the GEMM).
                    let base = (iy as usize * g.in_w + ix0 as usize) * c;
                    dst[ky * span..(ky + 1) * span].copy_from_slice(&input[base..base + span]);
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
                    let d = &mut dst[(ky * g.kw + kx) * c..(ky * g.kw + kx + 1) * c];
                    if iy < 0 || iy >= g.in_h as isize || ix < 0 || ix >= g.in_w as isize {
                        d.fill(0.0);
                    } else {
                        let base = (iy as usize * g.in_w + ix as usize) * c;
                        d.copy_from_slice(&input[base..base + c]);
                    }
                }
            }
        }
    }
}
