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
    max_pool_impl(p, x, shape, out_shape, out, None);
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
    max_pool_impl(p, x, shape, out_shape, out, Some(argmax));
}

fn max_pool_impl<T: Copy + PartialOrd>(
    p: &crate::ops::Pool2d,
    x: &[T],
    shape: &[usize],
    out_shape: &[usize],
    out: &mut [T],
    mut argmax: Option<&mut [usize]>,
) {
    let [n, h, w, c] = [shape[0], shape[1], shape[2], shape[3]];
    let [oh, ow] = [out_shape[1], out_shape[2]];
    // The window's rows (or columns) inside the input; never empty for shapes that
    // `Pool2d::out_size` accepts.
    let window = |o: usize, a: usize, len: usize| {
        let start = (o * p.stride[a]) as isize - p.pad[a] as isize;
        let end = (start + p.kernel[a] as isize).min(len as isize);
        (start.max(0) as usize, end.max(0) as usize)
    };
    for b in 0..n {
        for oy in 0..oh {
            let (y0, y1) = window(oy, 0, h);
            for ox in 0..ow {
                let (x0, x1) = window(ox, 1, w);
                let o = ((b * oh + oy) * ow + ox) * c;
                for ch in 0..c {
                    let mut at = ((b * h + y0) * w + x0) * c + ch;
                    let mut best = x[at];
                    for iy in y0..y1 {
                        for ix in x0..x1 {
                            let i = ((b * h + iy) * w + ix) * c + ch;
                            #[allow(clippy::eq_op)] // `v != v`: NaN
                            if x[i] > best || (x[i] != x[i] && best == best) {
                                best = x[i];
                                at = i;
                            }
                        }
                    }
                    out[o + ch] = best;
                    if let Some(a) = argmax.as_deref_mut() {
                        a[o + ch] = at;
                    }
                }
            }
        }
    }
}

pub(super) fn transpose(x: &[f32], shape: &[usize], perm: &[usize], out: &mut [f32]) {
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
