//! The plan's element-wise, pooling and layout steps (also used by the autograd and the
//! quantized engines, so every executor computes them the same way).

/// Mean over H and W of `x` `[N, H, W, C]` into `out` `[N, C]`: per channel, the sum in
/// row-major pixel order, then one division by `H·W` (as PyTorch's `AdaptiveAvgPool2d(1)`).
pub fn global_avg_pool(x: &[f32], shape: &[usize], out: &mut [f32]) {
    let (hw, c) = (shape[1] * shape[2], shape[3]);
    for (o, img) in out.chunks_mut(c).zip(x.chunks(hw * c)) {
        o.fill(0.0);
        for px in img.chunks(c) {
            for j in 0..c {
                o[j] += px[j];
            }
        }
        for v in o.iter_mut() {
            *v /= hw as f32;
        }
    }
}

/// `x · scale + shift` per channel (the last axis, `scale.len()` wide) into `out`: a batch
/// norm that was not folded into a convolution.
pub fn scale_channels(x: &[f32], scale: &[f32], shift: &[f32], out: &mut [f32]) {
    let c = scale.len();
    for (o, x) in out.chunks_mut(c).zip(x.chunks(c)) {
        for j in 0..c {
            o[j] = x[j] * scale[j] + shift[j];
        }
    }
}

/// `x · s` for `x` of `shape` `[N, H, W, C]` and `s` `[N, C]` (broadcast over H and W)
/// into `out`.
pub fn channel_mul(x: &[f32], s: &[f32], shape: &[usize], out: &mut [f32]) {
    let c = shape[3];
    let per_image = shape[1] * shape[2] * c;
    for ((o, x), s) in out
        .chunks_mut(per_image)
        .zip(x.chunks(per_image))
        .zip(s.chunks(c))
    {
        for (o, x) in o.chunks_mut(c).zip(x.chunks(c)) {
            for j in 0..c {
                o[j] = x[j] * s[j];
            }
        }
    }
}

/// Max pooling of `x` `[N, H, W, C]` into `out` of shape `out_shape`: per output pixel
/// and channel, the maximum over the window's positions inside the input (padding never
/// wins), scanned row by row; a NaN wins. Generic so that the int8 engine pools `u8`
/// codes with the same loop (quantization is monotone, so the max commutes with it).
pub fn max_pool<T: Copy + PartialOrd>(
    p: &crate::ops::Pool2d,
    x: &[T],
    shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
) {
    // Channels innermost: each window pixel is a contiguous run of `c` values, maxed into
    // the output pixel in one pass (the scan order per channel is the same as
    // [`max_pool_argmax`]'s, so the result is too).
    let [n, h, w, c] = [shape[0], shape[1], shape[2], shape[3]];
    let [oh, ow] = [out_shape[1], out_shape[2]];
    for b in 0..n {
        for oy in 0..oh {
            let (y0, y1) = window(p, oy, 0, h);
            for ox in 0..ow {
                let (x0, x1) = window(p, ox, 1, w);
                let o = &mut out[((b * oh + oy) * ow + ox) * c..][..c];
                let first = ((b * h + y0) * w + x0) * c;
                o.copy_from_slice(&x[first..first + c]);
                for iy in y0..y1 {
                    for ix in x0..x1 {
                        let px = &x[((b * h + iy) * w + ix) * c..][..c];
                        for (m, &v) in o.iter_mut().zip(px) {
                            // Branch-free (non-short-circuit `|`, `&`) so it vectorises.
                            #[allow(clippy::eq_op)] // `v != v`: NaN
                            let take = (v > *m) | ((v != v) & (*m == *m));
                            *m = if take { v } else { *m };
                        }
                    }
                }
            }
        }
    }
}

/// The rows (or columns, `a` = 1) of output position `o`'s window inside an input of
/// `len`; never empty for shapes that `Pool2d::out_size` accepts.
fn window(p: &crate::ops::Pool2d, o: usize, a: usize, len: usize) -> (usize, usize) {
    let start = (o * p.stride[a]) as isize - p.pad[a] as isize;
    let end = (start + p.kernel[a] as isize).min(len as isize);
    (start.max(0) as usize, end.max(0) as usize)
}

/// [`max_pool`] that also records, per output element, the flat input index of the
/// first maximum in scan order (PyTorch's choice, where the gradient goes).
pub fn max_pool_argmax(
    p: &crate::ops::Pool2d,
    x: &[f32],
    shape: &[usize],
    out_shape: &[usize],
    out: &mut [f32],
    argmax: &mut [usize],
) {
    let [n, h, w, c] = [shape[0], shape[1], shape[2], shape[3]];
    let [oh, ow] = [out_shape[1], out_shape[2]];
    for b in 0..n {
        for oy in 0..oh {
            let (y0, y1) = window(p, oy, 0, h);
            for ox in 0..ow {
                let (x0, x1) = window(p, ox, 1, w);
                let o = ((b * oh + oy) * ow + ox) * c;
                for ch in 0..c {
                    let mut at = ((b * h + y0) * w + x0) * c + ch;
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            let i = ((b * h + iy) * w + ix) * c + ch;
                            #[allow(clippy::eq_op)] // `v != v`: NaN
                            if x[i] > x[at] || (x[i] != x[i] && x[at] == x[at]) {
                                at = i;
                            }
                        }
                    }
                    out[o + ch] = x[at];
                    argmax[o + ch] = at;
                }
            }
        }
    }
}

/// Axis permutation of `x` of `shape` into `out`: output axis `i` is input axis `perm[i]`.
pub fn transpose(x: &[f32], shape: &[usize], perm: &[usize], out: &mut [f32]) {
    let rank = shape.len();
    let mut in_strides = vec![1; rank];
    for a in (0..rank.saturating_sub(1)).rev() {
        in_strides[a] = in_strides[a + 1] * shape[a + 1];
    }
    let out_shape: Vec<usize> = perm.iter().map(|&p| shape[p]).collect();
    let mut idx = vec![0usize; rank];
    for o in out.iter_mut() {
        let src: usize = (0..rank).map(|a| idx[a] * in_strides[perm[a]]).sum();
        *o = x[src];
        for a in (0..rank).rev() {
            idx[a] += 1;
            if idx[a] < out_shape[a] {
                break;
            }
            idx[a] = 0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::ops::Pool2d;

    /// The vectorised pool equals the per-channel scan (which the autograd uses and which
    /// spells out PyTorch's rule) on odd shapes, ceil mode, padding and NaNs.
    #[test]
    fn max_pool_equals_the_per_channel_scan() {
        let mut seed = 7u32;
        for (shape, k, s, pad, ceil) in [
            ([1, 7, 9, 5], 3, 2, 1, true),
            ([2, 6, 6, 3], 2, 2, 0, true),
            ([1, 5, 4, 17], 3, 1, 1, false),
            ([1, 149, 3, 2], 3, 2, 0, false),
        ] {
            let p = Pool2d {
                kernel: [k, k],
                stride: [s, s],
                pad: [pad, pad],
                ceil,
            };
            let x: Vec<f32> = (0..shape.iter().product::<usize>())
                .map(|i| {
                    seed = seed.wrapping_mul(1_103_515_245).wrapping_add(12_345);
                    if i % 23 == 5 {
                        f32::NAN
                    } else {
                        (seed >> 8) as f32 / 65536.0 - 128.0
                    }
                })
                .collect();
            let out_shape = [
                shape[0],
                p.out_size(0, shape[1]).unwrap(),
                p.out_size(1, shape[2]).unwrap(),
                shape[3],
            ];
            let len = out_shape.iter().product();
            let (mut a, mut b, mut at) = (vec![0.0; len], vec![0.0; len], vec![0; len]);
            max_pool(&p, &x, &shape, &out_shape, &mut a);
            max_pool_argmax(&p, &x, &shape, &out_shape, &mut b, &mut at);
            let bits = |v: &[f32]| v.iter().map(|f| f.to_bits()).collect::<Vec<_>>();
            assert_eq!(bits(&a), bits(&b), "{shape:?} k{k} s{s} p{pad} ceil {ceil}");
            assert!(a.iter().any(|v| v.is_nan()) && a.iter().any(|v| !v.is_nan()));
        }
    }
}
