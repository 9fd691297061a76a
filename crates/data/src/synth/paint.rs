//! Pixels: the float canvas, colours, object fill textures and the
//! camera-like photometric pass. Everything is drawn from the image's own
//! random stream.

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
        if n == 0.0 {
            [128.0; 3]
        } else {
            sum.map(|v| v / n)
        }
    }

    /// Rounds and clamps to 8 bits, `[side, side, 3]` interleaved.
    pub(crate) fn to_u8(&self) -> Vec<u8> {
        self.px
            .iter()
            .flat_map(|p| p.map(|v| v.round().clamp(0.0, 255.0) as u8))
            .collect()
    }
}

pub(crate) fn lerp(a: Rgb, b: Rgb, t: f32) -> Rgb {
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
    Stripes {
        a: Rgb,
        b: Rgb,
        c: f64,
        s: f64,
        period: f64,
        duty: f64,
    },
    Checker {
        a: Rgb,
        b: Rgb,
        period: f64,
    },
    /// `b` discs of `radius` on an `a` ground, on a square grid.
    Dots {
        a: Rgb,
        b: Rgb,
        period: f64,
        radius: f64,
    },
    /// From `a` to `b` along `(c, s)` over `[-half, half]`.
    Gradient {
        a: Rgb,
        b: Rgb,
        c: f64,
        s: f64,
        half: f64,
    },
}

impl Fill {
    /// A random fill for an object whose long side is `long` pixels, with
    /// main colour `a` and second colour `b`; `plain` allows only solid
    /// and gradient fills.
    pub(crate) fn sample(rng: &mut Rng, a: Rgb, b: Rgb, long: f64, plain: bool) -> Fill {
        let period = rng.range(3.0, (long / 3.0).max(4.0)).max(3.0);
        let (s, c) = sin_cos(rng.range(0.0, std::f64::consts::PI));
        let pick = if plain {
            [0, 4][rng.below(2)]
        } else {
            rng.below(6)
        };
        match pick {
            1 => Fill::Stripes {
                a,
                b,
                c,
                s,
                period,
                duty: rng.range(0.3, 0.7),
            },
            2 => Fill::Checker { a, b, period },
            3 => Fill::Dots {
                a,
                b,
                period,
                radius: period * rng.range(0.2, 0.4),
            },
            4 => Fill::Gradient {
                a,
                b,
                c,
                s,
                half: long / 2.0,
            },
            // Solid twice as likely as each texture.
            _ => Fill::Solid(a),
        }
    }

    /// The colour at object coordinates `(u, v)`.
    pub(crate) fn colour(&self, u: f64, v: f64) -> Rgb {
        match *self {
            Fill::Solid(a) => a,
            Fill::Stripes {
                a,
                b,
                c,
                s,
                period,
                duty,
            } => {
                let t = (u * c + v * s) / period;
                if t - t.floor() < duty { a } else { b }
            }
            Fill::Checker { a, b, period } => {
                let (i, j) = ((u / period).floor() as i64, (v / period).floor() as i64);
                if (i + j) % 2 == 0 { a } else { b }
            }
            Fill::Dots {
                a,
                b,
                period,
                radius,
            } => {
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
