//! `PhotometricDistort` of ssd.pytorch (as used by pytorch-ssd, spec §8 step 2) on a float
//! RGB image, with OpenCV's float RGB↔HSV conversions (H in degrees, S in [0, 1], V
//! unscaled). Nothing is clipped to [0, 255], as in the reference.
//!
//! The reference calls `cv2.COLOR_BGR2HSV` on RGB data, which mirrors the hue circle; the
//! hue shift is symmetric (U(−18, 18)), so converting as RGB gives the same distribution.

use super::FImage;
use crate::rng::Rng;

/// `RandomBrightness`: with p 0.5 add U(−32, 32) to every value.
fn brightness(img: &mut FImage, rng: &mut Rng) {
    if rng.coin() {
        let d = rng.uniform(-32.0, 32.0) as f32;
        img.data.iter_mut().for_each(|v| *v += d);
    }
}

/// `RandomContrast`: with p 0.5 multiply every value by U(0.5, 1.5).
fn contrast(img: &mut FImage, rng: &mut Rng) {
    if rng.coin() {
        let a = rng.uniform(0.5, 1.5) as f32;
        img.data.iter_mut().for_each(|v| *v *= a);
    }
}

/// `RandomSaturation` on an HSV image: with p 0.5 multiply S by U(0.5, 1.5).
fn saturation(hsv: &mut FImage, rng: &mut Rng) {
    if rng.coin() {
        let a = rng.uniform(0.5, 1.5) as f32;
        hsv.data.chunks_mut(3).for_each(|p| p[1] *= a);
    }
}

/// `RandomHue` on an HSV image: with p 0.5 add U(−18, 18) to H, then values above 360
/// lose 360 and values below 0 gain 360 (once, as the reference).
fn hue(hsv: &mut FImage, rng: &mut Rng) {
    if rng.coin() {
        let d = rng.uniform(-18.0, 18.0) as f32;
        for p in hsv.data.chunks_mut(3) {
            p[0] += d;
            if p[0] > 360.0 {
                p[0] -= 360.0;
            }
            if p[0] < 0.0 {
                p[0] += 360.0;
            }
        }
    }
}

/// `RandomLightingNoise`: with p 0.5 permute the channels by one of the 6 permutations
/// (identity included).
fn lighting_noise(img: &mut FImage, rng: &mut Rng) {
    const PERMS: [[usize; 3]; 6] = [
        [0, 1, 2],
        [0, 2, 1],
        [1, 0, 2],
        [1, 2, 0],
        [2, 0, 1],
        [2, 1, 0],
    ];
    if rng.coin() {
        let perm = PERMS[rng.below(6)];
        for p in img.data.chunks_mut(3) {
            let q = [p[0], p[1], p[2]];
            for c in 0..3 {
                p[c] = q[perm[c]];
            }
        }
    }
}

/// OpenCV's float RGB→HSV of one pixel.
pub fn rgb_to_hsv(r: f32, g: f32, b: f32) -> [f32; 3] {
    let v = r.max(g).max(b);
    let vmin = r.min(g).min(b);
    let diff = v - vmin;
    let s = diff / (v.abs() + f32::EPSILON);
    let k = 60.0 / (diff + f32::EPSILON);
    let mut h = if v == r {
        (g - b) * k
    } else if v == g {
        (b - r) * k + 120.0
    } else {
        (r - g) * k + 240.0
    };
    if h < 0.0 {
        h += 360.0;
    }
    [h, s, v]
}

/// OpenCV's float HSV→RGB of one pixel (hue wrapped into [0, 360) first).
pub fn hsv_to_rgb(h: f32, s: f32, v: f32) -> [f32; 3] {
    if s == 0.0 {
        return [v, v, v];
    }
    // (b, g, r) indices into tab for each sector, as OpenCV's `sector_data`.
    const SECTOR: [[usize; 3]; 6] = [
        [1, 3, 0],
        [1, 0, 2],
        [3, 0, 1],
        [0, 2, 1],
        [0, 1, 3],
        [2, 1, 0],
    ];
    let mut h = h * (1.0 / 60.0);
    while h < 0.0 {
        h += 6.0;
    }
    while h >= 6.0 {
        h -= 6.0;
    }
    let mut sector = h.floor() as usize;
    h -= sector as f32;
    if sector >= 6 {
        sector = 0;
        h = 0.0;
    }
    let tab = [
        v,
        v * (1.0 - s),
        v * (1.0 - s * h),
        v * (1.0 - s * (1.0 - h)),
    ];
    let [bi, gi, ri] = SECTOR[sector];
    [tab[ri], tab[gi], tab[bi]]
}

fn to_hsv(img: &mut FImage) {
    for p in img.data.chunks_mut(3) {
        p.copy_from_slice(&rgb_to_hsv(p[0], p[1], p[2]));
    }
}

fn to_rgb(img: &mut FImage) {
    for p in img.data.chunks_mut(3) {
        p.copy_from_slice(&hsv_to_rgb(p[0], p[1], p[2]));
    }
}

/// `PhotometricDistort`: brightness; then with p 0.5 [contrast, HSV, saturation, hue,
/// RGB] else [HSV, saturation, hue, RGB, contrast]; then lighting noise.
pub fn distort(img: &mut FImage, rng: &mut Rng) {
    brightness(img, rng);
    let contrast_first = rng.coin();
    if contrast_first {
        contrast(img, rng);
    }
    to_hsv(img);
    saturation(img, rng);
    hue(img, rng);
    to_rgb(img);
    if !contrast_first {
        contrast(img, rng);
    }
    lighting_noise(img, rng);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn hsv_round_trips_and_matches_known_values() {
        let [h, s, v] = rgb_to_hsv(255.0, 0.0, 0.0);
        assert!(h.abs() < 1e-4 && (s - 1.0).abs() < 1e-6 && v == 255.0);
        let [h, _, _] = rgb_to_hsv(0.0, 0.0, 200.0);
        assert!((h - 240.0).abs() < 1e-3);
        let [h, s, _] = rgb_to_hsv(100.0, 200.0, 50.0);
        assert!((h - 100.0).abs() < 1e-3 && (s - 0.75).abs() < 1e-5);
        for rgb in [
            [10.0f32, 20.0, 30.0],
            [250.0, 3.0, 100.0],
            [7.0, 7.0, 7.0],
            [0.0, 90.0, 80.0],
        ] {
            let [h, s, v] = rgb_to_hsv(rgb[0], rgb[1], rgb[2]);
            let back = hsv_to_rgb(h, s, v);
            for c in 0..3 {
                assert!((back[c] - rgb[c]).abs() < 1e-3, "{rgb:?} -> {back:?}");
            }
        }
    }
}
