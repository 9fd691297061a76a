//! `resize_linear_u8` against a per-pixel scalar transcription of OpenCV's
//! fixed-point INTER_LINEAR (spec section 8), over a grid of edge cases:
//! 1-pixel sources, upscales, downscales, odd sizes, 1/3/4 channels; plus
//! properties that hold for OpenCV independently of the formula.

use slimdet_data::{RgbImage, resize_linear_u8, resize_rgb};

/// Deterministic pseudo-random bytes (64-bit LCG).
fn noise(n: usize, seed: u64) -> Vec<u8> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            (s >> 56) as u8
        })
        .collect()
}

/// (source index, fraction) of destination index `d` on one axis.
fn coord(d: usize, src: usize, dst: usize, clamp: bool) -> (i64, f32) {
    let scale = 1.0 / (dst as f64 / src as f64);
    let mut f = ((d as f64 + 0.5) * scale - 0.5) as f32;
    let mut s = f.floor() as i64;
    f -= s as f32;
    if clamp && s < 0 {
        s = 0;
        f = 0.0;
    }
    if clamp && s >= src as i64 - 1 {
        s = src as i64 - 1;
        f = 0.0;
    }
    (s, f)
}

fn weights(f: f32) -> (i32, i32) {
    (
        ((1.0 - f) * 2048.0).round_ties_even() as i32,
        (f * 2048.0).round_ties_even() as i32,
    )
}

/// One output value at a time, straight from the spec.
fn reference(src: &[u8], sw: usize, sh: usize, ch: usize, dw: usize, dh: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(dw * dh * ch);
    let px = |x: usize, y: usize, c: usize| i32::from(src[(y * sw + x) * ch + c]);
    for dy in 0..dh {
        let (sy, fy) = coord(dy, sh, dh, false);
        let (cy0, cy1) = weights(fy);
        let y0 = sy.clamp(0, sh as i64 - 1) as usize;
        let y1 = (sy + 1).clamp(0, sh as i64 - 1) as usize;
        for dx in 0..dw {
            let (sx, fx) = coord(dx, sw, dw, true);
            let (cx0, cx1) = weights(fx);
            let x0 = sx as usize;
            let x1 = (x0 + 1).min(sw - 1);
            for c in 0..ch {
                let h0 = px(x0, y0, c) * cx0 + px(x1, y0, c) * cx1;
                let h1 = px(x0, y1, c) * cx0 + px(x1, y1, c) * cx1;
                let v = ((cy0 * (h0 >> 4)) >> 16) + ((cy1 * (h1 >> 4)) >> 16);
                out.push(((v + 2) >> 2).clamp(0, 255) as u8);
            }
        }
    }
    out
}

fn check(sw: usize, sh: usize, ch: usize, dw: usize, dh: usize, seed: u64) {
    let src = noise(sw * sh * ch, seed);
    let got = resize_linear_u8(&src, sw, sh, ch, dw, dh);
    let want = reference(&src, sw, sh, ch, dw, dh);
    assert_eq!(got.len(), dw * dh * ch);
    assert!(
        got == want,
        "{sw}x{sh}x{ch} -> {dw}x{dh}: {} values differ",
        got.iter().zip(&want).filter(|(a, b)| a != b).count()
    );
}

#[test]
fn small_grid_matches_reference() {
    let sizes = [1usize, 2, 3, 5, 8, 13];
    let dsts = [1usize, 2, 3, 4, 7, 10, 21];
    let mut seed = 1;
    for ch in [1usize, 3, 4] {
        for &sw in &sizes {
            for &sh in &sizes {
                for &dw in &dsts {
                    for &dh in &dsts {
                        check(sw, sh, ch, dw, dh, seed);
                        seed += 1;
                    }
                }
            }
        }
    }
}

#[test]
fn model_sizes_match_reference() {
    for (sw, sh, dw, dh) in [
        (500, 375, 300, 300),
        (353, 500, 300, 300),
        (37, 23, 300, 300),
        (640, 480, 320, 240),
        (299, 301, 300, 300),
        (700, 2, 3, 700),
        (1, 1, 300, 300),
        (1, 50, 300, 300),
        (50, 1, 300, 300),
    ] {
        for ch in [1, 3] {
            check(sw, sh, ch, dw, dh, (sw * 1000 + sh) as u64);
        }
    }
}

#[test]
fn one_pixel_source_is_constant() {
    for ch in [1usize, 3] {
        let src: Vec<u8> = (0..ch).map(|c| 10 + 100 * c as u8).collect();
        let out = resize_linear_u8(&src, 1, 1, ch, 7, 5);
        for px in out.chunks(ch) {
            assert_eq!(px, &src[..]);
        }
    }
}

#[test]
fn same_size_is_identity() {
    let src = noise(17 * 11 * 3, 9);
    assert_eq!(resize_linear_u8(&src, 17, 11, 3, 17, 11), src);
}

#[test]
fn exact_halving_is_rounded_2x2_mean() {
    // OpenCV switches to INTER_AREA for exact 2x downscales, which gives
    // (a + b + c + d + 2) >> 2; the linear path must agree.
    let (w, h) = (16, 10);
    let src = noise(w * h, 3);
    let out = resize_linear_u8(&src, w, h, 1, w / 2, h / 2);
    for y in 0..h / 2 {
        for x in 0..w / 2 {
            let p = |dx: usize, dy: usize| u32::from(src[(2 * y + dy) * w + 2 * x + dx]);
            let want = (p(0, 0) + p(1, 0) + p(0, 1) + p(1, 1) + 2) >> 2;
            assert_eq!(u32::from(out[y * w / 2 + x]), want, "({x},{y})");
        }
    }
}

#[test]
fn constant_image_stays_constant() {
    for v in [0u8, 1, 127, 254, 255] {
        let src = vec![v; 23 * 19 * 3];
        let out = resize_linear_u8(&src, 23, 19, 3, 300, 300);
        assert!(out.iter().all(|&o| o == v), "value {v}");
        let out = resize_linear_u8(&src, 23, 19, 3, 4, 7);
        assert!(out.iter().all(|&o| o == v), "value {v}");
    }
}

#[test]
fn degenerate_sizes_do_not_panic() {
    assert!(resize_linear_u8(&[], 0, 0, 3, 0, 0).is_empty());
    assert!(resize_linear_u8(&[1, 2, 3], 1, 1, 3, 0, 5).is_empty());
    assert_eq!(resize_linear_u8(&[], 0, 4, 3, 2, 2), vec![0; 12]);
}

#[test]
fn resize_rgb_sets_dimensions() {
    let img = RgbImage {
        width: 5,
        height: 3,
        data: noise(45, 4),
    };
    let out = resize_rgb(&img, 8, 2);
    assert_eq!((out.width, out.height, out.data.len()), (8, 2, 48));
    assert_eq!(out.data, resize_linear_u8(&img.data, 5, 3, 3, 8, 2));
}
