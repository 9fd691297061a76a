//! The cluttered background: things that are *not* class shapes (smooth
//! gradients, value noise, lumpy translucent blobs, thin scribbles), so the
//! detector has to learn the shapes rather than "anything that is not
//! flat". Scribbles are also drawn over the objects as thin occluders.

use super::paint::{Canvas, Rgb, lerp, random_colour};
use super::rng::{Rng, sin_cos};

/// Paints the cluttered background: a two-colour or four-corner gradient,
/// one or two octaves of value noise, 0-4 translucent lumpy blobs and 1-6
/// thin scribbles.
pub(crate) fn background(cv: &mut Canvas, rng: &mut Rng) {
    let n = cv.side as f64;
    let k = n / 300.0;
    let corners = [0; 4].map(|_| random_colour(rng));
    let four = rng.chance(0.3);
    let (gs, gc) = sin_cos(rng.range(0.0, 2.0 * std::f64::consts::PI));
    for y in 0..cv.side {
        for x in 0..cv.side {
            let (fx, fy) = ((x as f64 + 0.5) / n, (y as f64 + 0.5) / n);
            cv.px[y * cv.side + x] = if four {
                let top = lerp(corners[0], corners[1], fx as f32);
                let bottom = lerp(corners[2], corners[3], fx as f32);
                lerp(top, bottom, fy as f32)
            } else {
                let t = ((fx - 0.5) * gc + (fy - 0.5) * gs) * 0.7 + 0.5;
                lerp(corners[0], corners[1], t as f32)
            };
        }
    }
    let octaves = 1 + rng.below(2);
    let mut cell = rng.range(12.0, 60.0) * k;
    let mut amp = rng.range(0.0, 40.0) as f32;
    for _ in 0..octaves {
        value_noise(cv, rng, cell.max(2.0), amp);
        cell /= 2.0;
        amp /= 2.0;
    }
    for _ in 0..rng.below(5) {
        let r = rng.range(8.0, 60.0) * k;
        blob(cv, rng, r);
    }
    for _ in 0..1 + rng.below(6) {
        let colour = random_colour(rng);
        scribble(cv, rng, colour, |_| {});
    }
}

/// Adds smooth noise of amplitude `amp` with lattice spacing `cell`, tinted.
fn value_noise(cv: &mut Canvas, rng: &mut Rng, cell: f64, amp: f32) {
    let g = (cv.side as f64 / cell).ceil() as usize + 2;
    let grid: Vec<f32> = (0..g * g).map(|_| rng.range(-1.0, 1.0) as f32).collect();
    let tint = [0; 3].map(|_| amp * rng.range(0.5, 1.0) as f32);
    let smooth = |t: f32| t * t * (3.0 - 2.0 * t);
    for y in 0..cv.side {
        let gy = y as f64 / cell;
        let (iy, ty) = (gy.floor() as usize, smooth((gy - gy.floor()) as f32));
        for x in 0..cv.side {
            let gx = x as f64 / cell;
            let (ix, tx) = (gx.floor() as usize, smooth((gx - gx.floor()) as f32));
            let top = grid[iy * g + ix] + (grid[iy * g + ix + 1] - grid[iy * g + ix]) * tx;
            let bot = grid[(iy + 1) * g + ix]
                + (grid[(iy + 1) * g + ix + 1] - grid[(iy + 1) * g + ix]) * tx;
            let v = top + (bot - top) * ty;
            let p = &mut cv.px[y * cv.side + x];
            (0..3).for_each(|c| p[c] += v * tint[c]);
        }
    }
}

/// A translucent lumpy blob: radius `r * (1 + sum a_k cos(k theta - phi_k))`
/// for k = 2..4, lumpy enough (amplitudes summing to 0.35-0.6) not to pass
/// for a circle.
fn blob(cv: &mut Canvas, rng: &mut Rng, r: f64) {
    let n = cv.side as f64;
    let (cx, cy) = (rng.range(0.0, n), rng.range(0.0, n));
    let total = rng.range(0.35, 0.6);
    let w = [0; 3].map(|_| rng.range(0.2, 1.0));
    let sum: f64 = w.iter().sum();
    let harm = w.map(|wi| {
        let (s, c) = sin_cos(rng.range(0.0, 2.0 * std::f64::consts::PI));
        (total * wi / sum, c, s)
    });
    let colour = random_colour(rng);
    let alpha = rng.range(0.25, 0.65) as f32;
    let reach = r * (1.0 + total);
    let (x0, x1) = ((cx - reach).floor() as i64, (cx + reach).ceil() as i64);
    let (y0, y1) = ((cy - reach).floor() as i64, (cy + reach).ceil() as i64);
    for y in y0..=y1 {
        for x in x0..=x1 {
            let Some(i) = cv.at(x, y) else { continue };
            let (dx, dy) = (x as f64 + 0.5 - cx, y as f64 + 0.5 - cy);
            let d = (dx * dx + dy * dy).sqrt();
            if d > reach {
                continue;
            }
            let (c1, s1) = if d > 0.0 {
                (dx / d, dy / d)
            } else {
                (1.0, 0.0)
            };
            // cos/sin of 2, 3, 4 theta by the angle-addition recurrence.
            let (mut ck, mut sk) = (c1, s1);
            let mut edge = 1.0;
            for &(a, pc, ps) in &harm {
                (ck, sk) = (ck * c1 - sk * s1, sk * c1 + ck * s1);
                edge += a * (ck * pc + sk * ps);
            }
            if d <= r * edge {
                cv.px[i] = lerp(cv.px[i], colour, alpha);
            }
        }
    }
}

/// A thin polyline of 2-6 segments, 1-2.5 px wide, each turning by up to
/// 60 degrees. `on_pixel` is called with the index of every pixel painted.
pub(crate) fn scribble(
    cv: &mut Canvas,
    rng: &mut Rng,
    colour: Rgb,
    mut on_pixel: impl FnMut(usize),
) {
    let n = cv.side as f64;
    let k = n / 300.0;
    let half_w = rng.range(0.5, 1.25);
    let (mut x, mut y) = (rng.range(0.0, n), rng.range(0.0, n));
    let mut heading = rng.range(0.0, 2.0 * std::f64::consts::PI);
    for _ in 0..2 + rng.below(5) {
        let len = rng.range(10.0, 80.0) * k;
        heading += rng.range(-1.05, 1.05);
        let (s, c) = sin_cos(heading);
        let (x2, y2) = (x + c * len, y + s * len);
        let (bx0, bx1) = (
            (x.min(x2) - half_w).floor() as i64,
            (x.max(x2) + half_w).ceil() as i64,
        );
        let (by0, by1) = (
            (y.min(y2) - half_w).floor() as i64,
            (y.max(y2) + half_w).ceil() as i64,
        );
        for py in by0..=by1 {
            for px in bx0..=bx1 {
                let Some(i) = cv.at(px, py) else { continue };
                // Distance from the pixel centre to the segment.
                let (qx, qy) = (px as f64 + 0.5 - x, py as f64 + 0.5 - y);
                let t = ((qx * c + qy * s) / len.max(1e-9)).clamp(0.0, 1.0) * len;
                let (ex, ey) = (qx - t * c, qy - t * s);
                if ex * ex + ey * ey <= half_w * half_w {
                    cv.px[i] = colour;
                    on_pixel(i);
                }
            }
        }
        (x, y) = (x2, y2);
    }
}
