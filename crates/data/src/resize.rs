//! Bilinear resize of 8-bit images, bit-exact with OpenCV's
//! `cv2.resize(img, (w, h))` (INTER_LINEAR on uint8), which pytorch-ssd
//! applies before every forward pass (spec section 8).
//!
//! OpenCV works in fixed point: 11-bit weights (sum ≈ 2048), a horizontal
//! pass into `i32`, then a vertical pass that drops 4 bits from each row,
//! multiplies by the row weight, drops 16 bits and rounds the last 2 bits.
//! The float formula with round-half-up is off by one on ~12 % of outputs,
//! which is why this module copies the integer recipe step by step.

use crate::RgbImage;

/// Fixed-point weight scale: 1 << 11.
const COEF_SCALE: f32 = 2048.0;

/// One output coordinate along an axis: the first source index and the
/// fixed-point weights of source `s` and `s + 1`.
#[derive(Clone, Copy, Debug)]
struct Tap {
    s: isize,
    c0: i32,
    c1: i32,
}

/// The taps of one axis. `clamp_edges` is OpenCV's horizontal-axis rule:
/// a tap left of the first or at/after the last source sample snaps onto that
/// sample with weight (2048, 0). The vertical axis keeps its fraction and
/// clamps the two row indices instead (done by the caller).
fn axis_taps(src: usize, dst: usize, clamp_edges: bool) -> Vec<Tap> {
    // `scale = 1.0 / (D / S)` in f64, exactly as OpenCV (`1./inv_scale`).
    let scale = 1.0 / (dst as f64 / src as f64);
    let last = src as isize - 1;
    (0..dst)
        .map(|d| {
            let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let fl = f.floor();
            let mut s = fl as isize;
            f -= fl;
            if clamp_edges {
                if s < 0 {
                    s = 0;
                    f = 0.0;
                }
                if s >= last {
                    s = last;
                    f = 0.0;
                }
            }
            Tap {
                s,
                c0: ((1.0 - f) * COEF_SCALE).round_ties_even() as i32,
                c1: (f * COEF_SCALE).round_ties_even() as i32,
            }
        })
        .collect()
}

/// Horizontal pass of one source row: `out[x*ch + c] = P[s]*c0 + P[s+1]*c1`
/// with `s + 1` clamped to the last column.
fn horizontal(row: &[u8], channels: usize, src_w: usize, taps: &[Tap], out: &mut [i32]) {
    let last = src_w - 1;
    for (x, t) in taps.iter().enumerate() {
        let s0 = t.s as usize; // clamped into [0, last] by axis_taps
        let s1 = (s0 + 1).min(last);
        for c in 0..channels {
            let p0 = i32::from(row[s0 * channels + c]);
            let p1 = i32::from(row[s1 * channels + c]);
            out[x * channels + c] = p0 * t.c0 + p1 * t.c1;
        }
    }
}

/// Resizes an 8-bit image with OpenCV's INTER_LINEAR fixed-point arithmetic.
///
/// `src` is `[src_h, src_w, channels]` interleaved; the result is
/// `[dst_h, dst_w, channels]`. Any channel count works (1 and 3 are tested).
/// Equal sizes give an exact copy, as in OpenCV.
///
/// Degenerate input never panics in release builds: a zero destination side
/// (or sizes whose product overflows `usize`) gives an empty vector; a zero source side or a `src` shorter than
/// `src_h * src_w * channels` (a caller bug, asserted in debug builds) gives
/// a zero-filled result.
pub fn resize_linear_u8(
    src: &[u8],
    src_w: usize,
    src_h: usize,
    channels: usize,
    dst_w: usize,
    dst_h: usize,
) -> Vec<u8> {
    let len = |w: usize, h: usize| w.checked_mul(h).and_then(|v| v.checked_mul(channels));
    let (Some(out_len), Some(src_len)) = (len(dst_w, dst_h), len(src_w, src_h)) else {
        return Vec::new();
    };
    let mut out = vec![0u8; out_len];
    debug_assert!(src.len() >= src_len, "resize_linear_u8: src too short");
    if out_len == 0 || src_len == 0 || src.len() < src_len {
        return out;
    }
    let xtaps = axis_taps(src_w, dst_w, true);
    let ytaps = axis_taps(src_h, dst_h, false);
    let row_len = src_w * channels;
    let hlen = dst_w * channels;
    let last_row = src_h as isize - 1;

    // Slot 0 holds the top source row of the current output row, slot 1 the
    // bottom one, each tagged with its source index. Rows are requested in
    // non-decreasing order, so each source row is filtered at most once or twice.
    let mut cache: [(isize, Vec<i32>); 2] = [(-1, vec![0; hlen]), (-1, vec![0; hlen])];
    let hrow = |y: isize, out: &mut [i32]| {
        let start = y as usize * row_len;
        horizontal(&src[start..start + row_len], channels, src_w, &xtaps, out);
    };

    for (dy, t) in ytaps.iter().enumerate() {
        let y0 = t.s.clamp(0, last_row);
        let y1 = (t.s + 1).clamp(0, last_row);
        if cache[0].0 != y0 {
            if cache[1].0 == y0 {
                cache.swap(0, 1);
            } else {
                hrow(y0, &mut cache[0].1);
                cache[0].0 = y0;
            }
        }
        if cache[1].0 != y1 {
            let (top, bottom) = cache.split_at_mut(1);
            if y1 == y0 {
                bottom[0].1.copy_from_slice(&top[0].1);
            } else {
                hrow(y1, &mut bottom[0].1);
            }
            bottom[0].0 = y1;
        }
        let (top, bottom) = (&cache[0].1, &cache[1].1);
        let dst_row = &mut out[dy * hlen..(dy + 1) * hlen];
        for ((o, &h0), &h1) in dst_row.iter_mut().zip(top).zip(bottom) {
            let v = ((t.c0 * (h0 >> 4)) >> 16) + ((t.c1 * (h1 >> 4)) >> 16);
            *o = ((v + 2) >> 2).clamp(0, 255) as u8;
        }
    }
    out
}

/// [`resize_linear_u8`] on an [`RgbImage`]: the result is `w x h`, `[h, w, 3]`.
pub fn resize_rgb(img: &RgbImage, w: usize, h: usize) -> RgbImage {
    RgbImage {
        width: w,
        height: h,
        data: resize_linear_u8(&img.data, img.width, img.height, 3, w, h),
    }
}

/// How an image is brought to the network input size.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resize {
    /// OpenCV's `INTER_LINEAR` on `u8` (half-pixel centres, rounded to `u8`), as
    /// pytorch-ssd does: [`resize_rgb`].
    OpenCv,
    /// TensorFlow's legacy `ResizeBilinear` (`align_corners=false`, no half-pixel
    /// centres), in f32 and not rounded, as the TF Object Detection API's preprocessor:
    /// [`resize_rgb_tf_legacy`].
    TfLegacy,
}

/// TensorFlow's legacy bilinear resize of `img` to `w`×`h`, as f32 `[h, w, 3]`: source
/// coordinate `d · (src / dst)` (f32), the two neighbours `floor` and `min(ceil, src − 1)`,
/// and the interpolation `top + (bottom − top)·y_lerp` of
/// `left + (right − left)·x_lerp`, in f32 as `resize_bilinear_op.cc` computes it.
pub fn resize_rgb_tf_legacy(img: &RgbImage, w: usize, h: usize) -> Vec<f32> {
    let taps = |src: usize, dst: usize| -> Vec<(usize, usize, f32)> {
        let scale = src as f32 / dst as f32;
        (0..dst)
            .map(|d| {
                let x = d as f32 * scale;
                let fl = x.floor();
                let lo = (fl as usize).min(src.saturating_sub(1));
                let hi = (x.ceil() as usize).min(src.saturating_sub(1));
                (lo, hi, x - fl)
            })
            .collect()
    };
    let (xs, ys) = (taps(img.width, w), taps(img.height, h));
    let px = |y: usize, x: usize, c: usize| f32::from(img.data[(y * img.width + x) * 3 + c]);
    let mut out = Vec::with_capacity(w * h * 3);
    for &(y0, y1, yl) in &ys {
        for &(x0, x1, xl) in &xs {
            for c in 0..3 {
                let (tl, tr) = (px(y0, x0, c), px(y0, x1, c));
                let (bl, br) = (px(y1, x0, c), px(y1, x1, c));
                let top = tl + (tr - tl) * xl;
                let bottom = bl + (br - bl) * xl;
                out.push(top + (bottom - top) * yl);
            }
        }
    }
    out
}

/// Resizes `img` to `w`×`h` as `kind` says and writes `(v − mean) / std` into `out`
/// (`[h, w, 3]`): the network input of one image.
pub fn preprocess_into(
    img: &RgbImage,
    w: usize,
    h: usize,
    kind: Resize,
    mean: [f32; 3],
    std: f32,
    out: &mut [f32],
) {
    match kind {
        Resize::OpenCv => crate::normalize_into(&resize_rgb(img, w, h), mean, std, out),
        Resize::TfLegacy => {
            let resized = resize_rgb_tf_legacy(img, w, h);
            for (o, px) in out.chunks_exact_mut(3).zip(resized.chunks_exact(3)) {
                for c in 0..3 {
                    o[c] = (px[c] - mean[c]) / std;
                }
            }
        }
    }
}
