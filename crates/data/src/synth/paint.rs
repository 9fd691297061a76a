//! Pixels: the float canvas, colours, object fill textures, the cluttered
//! background and the camera-like photometric pass.
//!
//! The background is made of things that are *not* class shapes (smooth
//! gradients, value noise, lumpy translucent blobs, thin scribbles), so the
//! detector has to learn the shapes rather than "anything that is not
//! flat". Everything is drawn from the image's own random stream.

use super::rng::{Rng, sin_cos};

/// An RGB colour, channels in `[0, 255]` (unclamped while painting).
pub(crate) type Rgb = [f32; 3];

/// A square float image `[side, side, 3]`, row-major.
pub(crate) struct Canvas {
    pub(crate) side: usize,
    pub(crate) px: Vec<Rgb>,
}

impl Canvas {
    pub(crate) fn new(side: usize) -> Self {
        Canvas {
            side,
            px: vec![[0.0; 3]; side * side],
        }
    }

    /// Index of `(x, y)` if it lies in the image.
    pub(crate) fn at(&self, x: i64, y: i64) -> Option<usize> {
        let s = self.side as i64;
        (x >= 0 && y >= 0 && x < s && y < s).then(|| (y * s + x) as usize)
    }

    /// Mean colour of the `(2r+1)^2` window around `(x, y)`, clipped to the image.
    pub(crate) fn mean_around(&self, x: i64, y: i64, r: i64) -> Rgb {
        let mut sum = [0.0f32; 3];
        let mut n = 0.0f32;
        for yy in y - r..=y + r {
            for xx in x - r..=x + r {
                if let Some(i) = self.at(xx, yy) {
                    (0..3).for_each(|c| sum[c] += self.px[i][c]);
                    n += 1.0;
                }
            }
        }
        if n == 0.0 { [128.0; 3] } else { sum.map(|v| v / n) }
    }

    /// Rounds and clamps to 8 bits, `[side, side, 3]` interleaved.
    pub(crate) fn to_u8(&self) -> Vec<u8> {
        self.px
            .iter()
            .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}

fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
    [0, 1, 2].map(|c| a[c] + (b[c] - a[c]) * t)
}

/// Sum of absolute channel differences.
pub(crate) fn distance(a: Rgb, b: Rgb) -> f32 {
    (0..3).map(|c| (a[c] - b[c]).abs()).sum()
}

/// A random colour from hue, saturation and value (no trig: the hexcone).
pub(crate) fn random_colour(rng: &mut Rng) -> Rgb {
    let h = rng.range(0.0, 6.0);
    let s = rng.range(0.0, 1.0) as f32;
    let v = rng.range(20.0, 255.0) as f32;
    let f = (h - h.floor()) as f32;
    let (p, q, t) = (v * (1.0 - s), v * (1.0 - s * f), v * (1.0 - s * (1.0 - f)));
    match h as u8 {
        0 => [v, t, p],
        1 => [q, v, p],
        2 => [p, v, t],
        3 => [p, q, v],
        4 => [t, p, v],
        _ => [v, p, q],
    }
}

/// A random colour at least `min_dist` (see [`distance`]) from `other`;
/// the farthest of 24 tries if none is.
pub(crate) fn colour_away_from(rng: &mut Rng, other: Rgb, min_dist: f32) -> Rgb {
    let mut best = random_colour(rng);
    for _ in 0..24 {
        if distance(best, other) >= min_dist {
            break;
        }
        let c = random_colour(rng);
        if distance(c, other) > distance(best, other) {
            best = c;
        }
    }
    best
}

/// A colour 22-40 levels brighter or darker than `under`, hue nearly kept.
pub(crate) fn colour_near(rng: &mut Rng, under: Rgb) -> Rgb {
    let lum = (under[0] + under[1] + under[2]) / 3.0;
    let up = if lum < 60.0 {
        true
    } else if lum > 195.0 {
        false
    } else {
        rng.chance(0.5)
    };
    let d = rng.range(22.0, 40.0) as f32 * if up { 1.0 } else { -1.0 };
    under.map(|v| (v + d + rng.range(-8.0, 8.0) as f32).clamp(0.0, 255.0))
}

/// An object's fill, evaluated in object coordinates (pixels, rotated
/// with the object) so that textures turn with it.
#[derive(Clone, Debug)]
pub(crate) enum Fill {
    Solid(Rgb),
    /// Bands of `a` and `b` across direction `(c, s)`, `a` for `duty` of each period.
    Stripes { a: Rgb, b: Rgb, c: f64, s: f64, period: f64, duty: f64 },
    Checker { a: Rgb, b: Rgb, period: f64 },
    /// `b` discs of `radius` on an `a` ground, on a square grid.
    Dots { a: Rgb, b: Rgb, period: f64, radius: f64 },
    /// From `a` to `b` along `(c, s)` over `[-half, half]`.
    Gradient { a: Rgb, b: Rgb, c: f64, s: f64, half: f64 },
}

impl Fill {
    /// A random fill for an object whose long side is `long` pixels, with
    /// main colour `a` and second colour `b`; `plain` allows only solid
    /// and gradient fills.
    pub(crate) fn sample(rng: &mut Rng, a: Rgb, b: Rgb, long: f64, plain: bool) -> Fill {
        let period = rng.range(3.0, (long / 3.0).max(4.0)).max(3.0);
        let (s, c) = sin_cos(rng.range(0.0, std::f64::consts::PI));
        let pick = if plain { [0, 4][rng.below(2)] } else { rng.below(6) };
        match pick {
            1 => Fill::Stripes { a, b, c, s, period, duty: rng.range(0.3, 0.7) },
            2 => Fill::Checker { a, b, period },
            3 => Fill::Dots { a, b, period, radius: period * rng.range(0.2, 0.4) },
            4 => Fill::Gradient { a, b, c, s, half: long / 2.0 },
            // Solid twice as likely as each texture.
            _ => Fill::Solid(a),
        }
    }

    /// The colour at object coordinates `(u, v)`.
    pub(crate) fn colour(&self, u: f64, v: f64) -> Rgb {
        match *self {
            Fill::Solid(a) => a,
            Fill::Stripes { a, b, c, s, period, duty } => {
                let t = (u * c + v * s) / period;
                if t - t.floor() < duty { a } else { b }
            }
            Fill::Checker { a, b, period } => {
                let (i, j) = ((u / period).floor() as i64, (v / period).floor() as i64);
                if (i + j) % 2 == 0 { a } else { b }
            }
            Fill::Dots { a, b, period, radius } => {
                let fu = u / period - (u / period).round();
                let fv = v / period - (v / period).round();
                let r = radius / period;
                if fu * fu + fv * fv <= r * r { b } else { a }
            }
            Fill::Gradient { a, b, c, s, half } => {
                let t = ((u * c + v * s) / (2.0 * half) + 0.5).clamp(0.0, 1.0);
                lerp(a, b, t as f32)
            }
        }
    }
}

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
        blob(cv, rng, rng.range(8.0, 60.0) * k);
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
/// for k = 2..4, lumpy enough (amplitudes summing to 0.3-0.5) not to pass
/// for a circle.
fn blob(cv: &mut Canvas, rng: &mut Rng, r: f64) {
    let n = cv.side as f64;
    let (cx, cy) = (rng.range(0.0, n), rng.range(0.0, n));
    let total = rng.range(0.3, 0.5);
    let w = [0; 3].map(|_| rng.range(0.2, 1.0));
    let sum: f64 = w.iter().sum();
    let harm = w.map(|wi| {
        let (s, c) = sin_cos(rng.range(0.0, 2.0 * std::f64::consts::PI));
        (total * wi / sum, c, s)
    });
    let colour = random_colour(rng);
    let alpha = rng.range(0.3, 0.75) as f32;
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
            let (c1, s1) = if d > 0.0 { (dx / d, dy / d) } else { (1.0, 0.0) };
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
pub(crate) fn scribble(cv: &mut Canvas, rng: &mut Rng, colour: Rgb, mut on_pixel: impl FnMut(usize)) {
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
        let (bx0, bx1) = ((x.min(x2) - half_w).floor() as i64, (x.max(x2) + half_w).ceil() as i64);
        let (by0, by1) = ((y.min(y2) - half_w).floor() as i64, (y.max(y2) + half_w).ceil() as i64);
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

/// The camera: contrast and brightness jitter with a slight colour cast,
/// a [1 2 1] blur in 30 % of images, then gaussian-like noise of sigma 1-9.
pub(crate) fn photometric(cv: &mut Canvas, rng: &mut Rng) {
    let contrast = rng.range(0.75, 1.2) as f32;
    let bright = rng.range(-25.0, 25.0) as f32;
    let cast = [0; 3].map(|_| rng.range(-8.0, 8.0) as f32);
    for p in &mut cv.px {
        for c in 0..3 {
            p[c] = (p[c] - 128.0) * contrast + 128.0 + bright + cast[c];
        }
    }
    if rng.chance(0.3) {
        blur121(cv);
    }
    let sigma = rng.range(1.0, 9.0) as f32;
    for p in &mut cv.px {
        for v in p.iter_mut() {
            *v += sigma * rng.gauss();
        }
    }
}

/// Separable [1 2 1] / 4 blur, edges replicated.
fn blur121(cv: &mut Canvas) {
    let s = cv.side;
    if s < 2 {
        return;
    }
    let mut tmp = cv.px.clone();
    for pass in 0..2 {
        let src = &cv.px;
        for y in 0..s {
            for x in 0..s {
                let (a, b) = if pass == 0 {
                    ((y * s + x.saturating_sub(1)), (y * s + (x + 1).min(s - 1)))
                } else {
                    ((y.saturating_sub(1) * s + x), ((y + 1).min(s - 1) * s + x))
                };
                let m = y * s + x;
                tmp[m] = [0, 1, 2].map(|c| (src[a][c] + 2.0 * src[m][c] + src[b][c]) * 0.25);
            }
        }
        std::mem::swap(&mut cv.px, &mut tmp);
    }
}
