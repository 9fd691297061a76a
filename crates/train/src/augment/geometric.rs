//! The geometric steps of `TrainAugmentation` (spec §8 steps 3–6): `Expand`,
//! `RandomSampleCrop`, `RandomMirror`, and the float bilinear resize. Boxes are corner form
//! `[x1, y1, x2, y2]` in pixels of the current image.

use super::FImage;
use crate::rng::Rng;

/// `Expand(mean)`: with p 0.5, `ratio = U(1, 4)`, the image is pasted at
/// `(int(top), int(left))` (each drawn in `[0, side·ratio − side)`) on an
/// `int(h·ratio) × int(w·ratio)` canvas filled with `fill`; boxes shift by the same ints.
pub fn expand(img: &mut FImage, boxes: &mut [[f32; 4]], fill: [f32; 3], rng: &mut Rng) {
    if !rng.coin() {
        return;
    }
    let (w, h) = (img.width as f64, img.height as f64);
    let ratio = rng.uniform(1.0, 4.0);
    let left = rng.uniform(0.0, w * ratio - w) as usize;
    let top = rng.uniform(0.0, h * ratio - h) as usize;
    let (nw, nh) = ((w * ratio) as usize, (h * ratio) as usize);
    // int(left) + w ≤ int(w·ratio) always holds, as int(a) + n = int(a + n) for a ≥ 0.
    let mut data = fill.repeat(nw * nh);
    let row = img.width * 3;
    for y in 0..img.height {
        let dst = ((top + y) * nw + left) * 3;
        data[dst..dst + row].copy_from_slice(&img.data[y * row..(y + 1) * row]);
    }
    *img = FImage {
        width: nw,
        height: nh,
        data,
    };
    for b in boxes.iter_mut() {
        b[0] += left as f32;
        b[1] += top as f32;
        b[2] += left as f32;
        b[3] += top as f32;
    }
}

/// Mode draws before `RandomSampleCrop` gives up and returns the sample unchanged (the
/// reference loops forever; with the "no crop" mode drawn 1 time in 6 this is never
/// reached in practice).
const MAX_MODES: usize = 1000;

/// `RandomSampleCrop`: picks one of 6 modes uniformly; "none" keeps the sample; the five
/// others try up to 50 crops: `w = U(0.3W, W)`, `h = U(0.3H, H)`, rejected unless
/// `0.5 ≤ h/w ≤ 2`; `left = uniform(W − w)`, `top = uniform(H − h)` — numpy's
/// `uniform(low)` is `U(low, 1.0)`, so the offset lies between 1 and `W − w` (inherited
/// quirk, kept); `rect = [int(left), int(top), int(left + w), int(top + h)]`. The modes'
/// minimum-IoU constraint is never enforced by the reference (its test needs
/// `max_iou < overlap.max()` with `max_iou = +inf`), so it is not computed here. Boxes
/// whose centre lies strictly inside the rect are kept, clipped to it and shifted; a crop
/// keeping none is retried. After 50 failures a new mode is drawn.
pub fn random_sample_crop(
    img: &mut FImage,
    boxes: &mut Vec<[f32; 4]>,
    labels: &mut Vec<usize>,
    rng: &mut Rng,
) {
    let (wf, hf) = (img.width as f64, img.height as f64);
    for _ in 0..MAX_MODES {
        if rng.below(6) == 0 {
            return;
        }
        for _ in 0..50 {
            let w = rng.uniform(0.3 * wf, wf);
            let h = rng.uniform(0.3 * hf, hf);
            if h / w < 0.5 || h / w > 2.0 {
                continue;
            }
            let left = rng.uniform(wf - w, 1.0);
            let top = rng.uniform(hf - h, 1.0);
            let rect = [left as i64, top as i64, (left + w) as i64, (top + h) as i64];
            let r = rect.map(|v| v as f32);
            let keep: Vec<usize> = (0..boxes.len())
                .filter(|&i| {
                    let b = boxes[i];
                    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
                    r[0] < cx && r[1] < cy && r[2] > cx && r[3] > cy
                })
                .collect();
            if keep.is_empty() {
                continue;
            }
            *boxes = keep
                .iter()
                .map(|&i| {
                    let b = boxes[i];
                    [
                        b[0].max(r[0]) - r[0],
                        b[1].max(r[1]) - r[1],
                        b[2].min(r[2]) - r[0],
                        b[3].min(r[3]) - r[1],
                    ]
                })
                .collect();
            *labels = keep.iter().map(|&i| labels[i]).collect();
            crop(img, rect);
            return;
        }
    }
}

/// `image[top:bottom, left:right]` with numpy's slice clamping.
fn crop(img: &mut FImage, rect: [i64; 4]) {
    let clamp = |v: i64, hi: usize| v.clamp(0, hi as i64) as usize;
    let (x0, x1) = (clamp(rect[0], img.width), clamp(rect[2], img.width));
    let (y0, y1) = (clamp(rect[1], img.height), clamp(rect[3], img.height));
    let (nw, nh) = (x1.saturating_sub(x0), y1.saturating_sub(y0));
    let mut data = Vec::with_capacity(nw * nh * 3);
    for y in y0..y0 + nh {
        let s = (y * img.width + x0) * 3;
        data.extend_from_slice(&img.data[s..s + nw * 3]);
    }
    *img = FImage {
        width: nw,
        height: nh,
        data,
    };
}

/// `RandomMirror`: with p 0.5 flip horizontally; `x1' = W − x2`, `x2' = W − x1`.
pub fn mirror(img: &mut FImage, boxes: &mut [[f32; 4]], rng: &mut Rng) {
    if !rng.coin() {
        return;
    }
    let w = img.width;
    for row in img.data.chunks_mut(w * 3) {
        for x in 0..w / 2 {
            for c in 0..3 {
                row.swap(x * 3 + c, (w - 1 - x) * 3 + c);
            }
        }
    }
    let wf = w as f32;
    for b in boxes.iter_mut() {
        let (x1, x2) = (b[0], b[2]);
        b[0] = wf - x2;
        b[2] = wf - x1;
    }
}

/// Source index and weight of each destination index along one axis, OpenCV
/// INTER_LINEAR style: `f = (d + 0.5)·S/D − 0.5`, `s = floor(f)`. With `clamp_edges`
/// (horizontal axis) `s < 0` → `(0, 0)` and `s ≥ S − 1` → `(S − 1, 0)`.
fn axis_taps(src: usize, dst: usize, clamp_edges: bool) -> Vec<(usize, usize, f32)> {
    let scale = src as f64 / dst as f64;
    (0..dst)
        .map(|d| {
            let f = ((d as f64 + 0.5) * scale - 0.5) as f32;
            let mut s = f.floor() as i64;
            let mut w = f - s as f32;
            if clamp_edges {
                if s < 0 {
                    s = 0;
                    w = 0.0;
                }
                if s >= src as i64 - 1 {
                    s = src as i64 - 1;
                    w = 0.0;
                }
            }
            let c = |v: i64| v.clamp(0, src as i64 - 1) as usize;
            (c(s), c(s + 1), w)
        })
        .collect()
}

/// Bilinear resize of a float image to `w × h` with OpenCV's INTER_LINEAR coordinate
/// mapping, computed in f32 without OpenCV's fixed-point weights (the reference resizes
/// float32 here, so no rounding to integers happens either; differences are in the last
/// bits).
pub fn resize(img: &FImage, w: usize, h: usize) -> FImage {
    let xs = axis_taps(img.width, w, true);
    let ys = axis_taps(img.height, h, false);
    let mut data = vec![0.0f32; w * h * 3];
    let sw = img.width * 3;
    for (dy, &(y0, y1, fy)) in ys.iter().enumerate() {
        let (r0, r1) = (
            &img.data[y0 * sw..(y0 + 1) * sw],
            &img.data[y1 * sw..(y1 + 1) * sw],
        );
        for (dx, &(x0, x1, fx)) in xs.iter().enumerate() {
            for c in 0..3 {
                let top = r0[x0 * 3 + c] * (1.0 - fx) + r0[x1 * 3 + c] * fx;
                let bot = r1[x0 * 3 + c] * (1.0 - fx) + r1[x1 * 3 + c] * fx;
                data[(dy * w + dx) * 3 + c] = top * (1.0 - fy) + bot * fy;
            }
        }
    }
    FImage {
        width: w,
        height: h,
        data,
    }
}
