//! The ten object classes: what each looks like (an inside test on a unit
//! shape) and how its instances are drawn from the random stream (scale,
//! aspect, rotation, contrast).
//!
//! The classes are built to differ in difficulty, so per-class AP says
//! something: `star` is small-only, `hexagon` is low-contrast, `bar` is
//! thin, and `square`/`diamond`, `circle`/`ring`/`hexagon` are confusable
//! pairs that only a few pixels tell apart when small.

use super::rng::{Rng, sin_cos};

/// The class names, in class-index order (index 0, the background, is not
/// listed: class `i` of the dataset is `SYNTH_CLASSES[i - 1]`).
pub const SYNTH_CLASSES: [&str; 10] = [
    "circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon", "bar", "heart",
];

/// The shape of a class, in the order of [`SYNTH_CLASSES`].
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum Kind {
    Circle,
    Square,
    Triangle,
    Star,
    Cross,
    Ring,
    Diamond,
    Hexagon,
    Bar,
    Heart,
}

const KINDS: [Kind; 10] = [
    Kind::Circle,
    Kind::Square,
    Kind::Triangle,
    Kind::Star,
    Kind::Cross,
    Kind::Ring,
    Kind::Diamond,
    Kind::Hexagon,
    Kind::Bar,
    Kind::Heart,
];

/// How instances of a class are drawn. Sizes are the long side of the
/// unrotated shape in pixels of a 300-pixel image (scaled with the image).
struct Spec {
    /// Long side range, log-uniform.
    size: (f64, f64),
    /// Short side / long side range.
    thinness: (f64, f64),
    /// Rotation: base angle and ± jitter, degrees.
    rotation: (f64, f64),
    /// Drawn in a colour close to what lies under it.
    low_contrast: bool,
}

impl Kind {
    /// The kind of 1-based class index `class_index` (1..=10).
    pub(crate) fn from_class(class_index: usize) -> Kind {
        KINDS[class_index - 1]
    }

    /// The 1-based class index.
    pub(crate) fn class_index(self) -> usize {
        self as usize + 1
    }

    fn spec(self) -> Spec {
        let s = |size, thinness, rotation| Spec {
            size,
            thinness,
            rotation,
            low_contrast: false,
        };
        match self {
            Kind::Circle => s((14.0, 150.0), (0.8, 1.0), (0.0, 90.0)),
            Kind::Square => s((14.0, 150.0), (0.85, 1.0), (0.0, 15.0)),
            Kind::Triangle => s((14.0, 150.0), (0.7, 1.0), (0.0, 180.0)),
            // Small-only: at 8-40 px a star is a handful of pixels.
            Kind::Star => s((8.0, 40.0), (0.9, 1.0), (0.0, 180.0)),
            Kind::Cross => s((14.0, 150.0), (0.8, 1.0), (0.0, 20.0)),
            Kind::Ring => s((16.0, 150.0), (0.8, 1.0), (0.0, 90.0)),
            // A square turned 30-60 degrees, possibly squashed (a rhombus).
            Kind::Diamond => s((14.0, 150.0), (0.6, 1.0), (0.0, 15.0)),
            Kind::Hexagon => Spec {
                low_contrast: true,
                ..s((16.0, 150.0), (0.85, 1.0), (0.0, 180.0))
            },
            // Thin: 6-25 % as wide as long, at least 3 px.
            Kind::Bar => s((24.0, 160.0), (0.06, 0.25), (0.0, 180.0)),
            Kind::Heart => s((14.0, 150.0), (0.85, 1.0), (0.0, 25.0)),
        }
    }

    /// Whether instances are drawn in a colour close to their surroundings.
    pub(crate) fn low_contrast(self) -> bool {
        self.spec().low_contrast
    }
}

/// One placed instance: a unit shape in `[-1, 1]^2`, scaled by `(hx, hy)`,
/// rotated by the angle whose cosine and sine are `(cos, sin)`, centred on
/// `(cx, cy)` (pixel units, pixel `(x, y)` covers `[x, x+1) x [y, y+1)`).
#[derive(Clone, Debug)]
pub(crate) struct Shape {
    pub(crate) kind: Kind,
    pub(crate) cx: f64,
    pub(crate) cy: f64,
    hx: f64,
    hy: f64,
    cos: f64,
    sin: f64,
    /// Ring: inner radius; cross: arm half-thickness; unused otherwise.
    param: f64,
    /// Polygon vertices in unit coordinates (triangle, star, hexagon).
    poly: [[f64; 2]; 10],
    n_poly: usize,
}

impl Shape {
    /// Draws an instance of `kind` for an image of side `side`, with its
    /// long side in pixels and centre chosen here (up to 40 % of the shape
    /// may leave the image).
    pub(crate) fn sample(kind: Kind, side: f64, rng: &mut Rng) -> Shape {
        let spec = kind.spec();
        let k = side / 300.0;
        let long = rng.log_uniform(spec.size.0 * k, spec.size.1 * k).max(2.0);
        let short = (long * rng.range(spec.thinness.0, spec.thinness.1)).max(3.0f64.min(long));
        let (hx, hy) = if rng.chance(0.5) {
            (long / 2.0, short / 2.0)
        } else {
            (short / 2.0, long / 2.0)
        };
        let (sin, cos) = sin_cos(rng.angle(spec.rotation.0, spec.rotation.1));
        let param = match kind {
            Kind::Ring => rng.range(0.45, 0.75),
            Kind::Cross => rng.range(0.2, 0.38),
            Kind::Star => rng.range(0.38, 0.5),
            _ => 0.0,
        };
        let mut shape = Shape {
            kind,
            cx: 0.0,
            cy: 0.0,
            hx,
            hy,
            cos,
            sin,
            param,
            poly: [[0.0; 2]; 10],
            n_poly: 0,
        };
        shape.build_polygon();
        let (ex, ey) = shape.half_extent();
        let place = |rng: &mut Rng, e: f64| {
            let (lo, hi) = (0.2 * e, side - 0.2 * e);
            if lo < hi {
                rng.range(lo, hi)
            } else {
                side / 2.0
            }
        };
        shape.cx = place(rng, ex);
        shape.cy = place(rng, ey);
        shape
    }

    /// Moves the shape next to `other` so that the two overlap: the centre
    /// goes 30-100 % of the way from `other`'s centre to where the two
    /// bounding boxes would just touch, in a random direction, kept inside
    /// the image of side `side`.
    pub(crate) fn move_near(&mut self, other: &Shape, side: f64, rng: &mut Rng) {
        let (ox, oy) = other.half_extent();
        let (ex, ey) = self.half_extent();
        let (s, c) = sin_cos(rng.range(0.0, 2.0 * std::f64::consts::PI));
        let f = rng.range(0.3, 1.0);
        self.cx = (other.cx + c * f * (ox + ex)).clamp(0.0, side);
        self.cy = (other.cy + s * f * (oy + ey)).clamp(0.0, side);
    }

    fn build_polygon(&mut self) {
        let mut put = |i: usize, deg: f64, r: f64| {
            let (s, c) = sin_cos(deg.to_radians());
            self.poly[i] = [r * c, r * s];
        };
        self.n_poly = match self.kind {
            Kind::Triangle => {
                // Apex up, base at the bottom: isoceles in the unit square.
                self.poly[..3].copy_from_slice(&[[0.0, -1.0], [1.0, 1.0], [-1.0, 1.0]]);
                3
            }
            Kind::Hexagon => {
                for i in 0..6 {
                    put(i, 60.0 * i as f64, 1.0);
                }
                6
            }
            Kind::Star => {
                let inner = self.param;
                for i in 0..10 {
                    let r = if i % 2 == 0 { 1.0 } else { inner };
                    put(i, -90.0 + 36.0 * i as f64, r);
                }
                10
            }
            _ => 0,
        };
    }

    /// Half width and half height of the rotated shape's bounding box.
    pub(crate) fn half_extent(&self) -> (f64, f64) {
        let (c, s) = (self.cos.abs(), self.sin.abs());
        (self.hx * c + self.hy * s, self.hx * s + self.hy * c)
    }

    /// The pixel rectangle `[x0, x1) x [y0, y1)` (possibly outside the
    /// image) that holds every pixel of the shape.
    pub(crate) fn pixel_bounds(&self) -> (i64, i64, i64, i64) {
        let (ex, ey) = self.half_extent();
        (
            (self.cx - ex).floor() as i64 - 1,
            (self.cy - ey).floor() as i64 - 1,
            (self.cx + ex).ceil() as i64 + 1,
            (self.cy + ey).ceil() as i64 + 1,
        )
    }

    /// Whether the centre of pixel `(x, y)` lies inside the shape.
    pub(crate) fn contains(&self, x: i64, y: i64) -> bool {
        let dx = x as f64 + 0.5 - self.cx;
        let dy = y as f64 + 0.5 - self.cy;
        let u = (dx * self.cos + dy * self.sin) / self.hx;
        let v = (dy * self.cos - dx * self.sin) / self.hy;
        if u.abs() > 1.0 || v.abs() > 1.0 {
            return false;
        }
        unit_contains(self, u, v)
    }

    /// Shape coordinates `(u, v)` of a pixel centre scaled to pixels but
    /// not rotated back: used to orient textures with the object.
    pub(crate) fn local(&self, x: i64, y: i64) -> (f64, f64) {
        let dx = x as f64 + 0.5 - self.cx;
        let dy = y as f64 + 0.5 - self.cy;
        (dx * self.cos + dy * self.sin, dy * self.cos - dx * self.sin)
    }
}

/// The unit shapes, `(u, v)` in `[-1, 1]^2`, `v` pointing down.
fn unit_contains(s: &Shape, u: f64, v: f64) -> bool {
    match s.kind {
        Kind::Circle => u * u + v * v <= 1.0,
        Kind::Ring => {
            let r2 = u * u + v * v;
            r2 <= 1.0 && r2 >= s.param * s.param
        }
        Kind::Square | Kind::Bar => true,
        Kind::Diamond => u.abs() + v.abs() <= 1.0,
        Kind::Cross => u.abs() <= s.param || v.abs() <= s.param,
        Kind::Triangle | Kind::Hexagon | Kind::Star => in_polygon(&s.poly[..s.n_poly], u, v),
        Kind::Heart => {
            // (X^2 + Y^2 - 1)^3 <= X^2 Y^3, lobes up; X in [-1.14, 1.14],
            // Y in [-1, 1.24] mapped onto the unit square.
            let x = u * 1.14;
            let y = 0.12 - v * 1.12;
            let a = x * x + y * y - 1.0;
            a * a * a <= x * x * y * y * y
        }
    }
}

/// Even-odd crossing test.
fn in_polygon(poly: &[[f64; 2]], u: f64, v: f64) -> bool {
    let mut inside = false;
    let mut j = poly.len() - 1;
    for i in 0..poly.len() {
        let ([xi, yi], [xj, yj]) = (poly[i], poly[j]);
        if (yi > v) != (yj > v) && u < (xj - xi) * (v - yi) / (yj - yi) + xi {
            inside = !inside;
        }
        j = i;
    }
    inside
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fixed(kind: Kind, param: f64) -> Shape {
        let mut s = Shape {
            kind,
            cx: 50.0,
            cy: 50.0,
            hx: 40.0,
            hy: 40.0,
            cos: 1.0,
            sin: 0.0,
            param,
            poly: [[0.0; 2]; 10],
            n_poly: 0,
        };
        s.build_polygon();
        s
    }

    fn area(s: &Shape) -> usize {
        (0..100)
            .flat_map(|y| (0..100).map(move |x| (x, y)))
            .filter(|&(x, y)| s.contains(x, y))
            .count()
    }

    #[test]
    fn unit_shape_areas() {
        let full = 80.0 * 80.0;
        let cases = [
            (Kind::Circle, 0.0, std::f64::consts::PI / 4.0),
            (Kind::Square, 0.0, 1.0),
            (Kind::Diamond, 0.0, 0.5),
            (Kind::Triangle, 0.0, 0.5),
            (Kind::Hexagon, 0.0, 3.0 * 3f64.sqrt() / 8.0),
            (Kind::Ring, 0.5, std::f64::consts::PI / 4.0 * 0.75),
            (
                Kind::Cross,
                0.25,
                (2.0 * 0.25 * 2.0 * 2.0 - 0.25 * 0.25 * 4.0) / 4.0,
            ),
        ];
        for (kind, param, frac) in cases {
            let got = area(&fixed(kind, param)) as f64 / full;
            assert!((got - frac).abs() < 0.02, "{kind:?}: {got} vs {frac}");
        }
        for kind in [Kind::Star, Kind::Heart] {
            let got = area(&fixed(kind, 0.45)) as f64 / full;
            assert!((0.2..0.8).contains(&got), "{kind:?}: {got}");
        }
    }

    #[test]
    fn ring_has_a_hole_and_star_has_points() {
        let ring = fixed(Kind::Ring, 0.5);
        assert!(!ring.contains(50, 50) && ring.contains(50, 15));
        let star = fixed(Kind::Star, 0.4);
        assert!(star.contains(50, 50) && star.contains(50, 12));
        // Between two points at the top, outside.
        assert!(!star.contains(70, 15));
    }
}
