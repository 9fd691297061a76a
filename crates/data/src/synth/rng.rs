//! The generator's randomness and the few transcendental functions it needs,
//! written out so that the output depends on nothing but IEEE-754 `+ - * /`
//! and `sqrt`.
//!
//! Why not `f64::sin` and friends: their precision is unspecified and they
//! call the platform's libm, so one ulp of difference on another machine
//! could flip a pixel on a shape's edge and change the dataset. These
//! versions use only correctly rounded operations, so the same seed gives
//! the same bytes everywhere.
//!
//! The generator is SplitMix64 (Steele, Lea and Flood 2014): one `u64` of
//! state, passes BigCrush, and any image's stream can be started directly
//! from `(seed, index)`.

use std::f64::consts::{FRAC_PI_2, LN_2, PI};

/// SplitMix64's increment (the golden ratio in 64-bit fixed point).
const GOLDEN: u64 = 0x9E37_79B9_7F4A_7C15;

/// SplitMix64's output function: a bijective mix of all 64 bits.
fn mix(mut z: u64) -> u64 {
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// A SplitMix64 stream.
#[derive(Clone, Debug)]
pub(crate) struct Rng(u64);

impl Rng {
    /// The stream of image `index` of the dataset with `seed`: independent
    /// of every other image, so images can be rendered in any order.
    pub(crate) fn for_image(seed: u64, index: u64) -> Self {
        Rng(mix(seed ^ mix(index.wrapping_add(1).wrapping_mul(GOLDEN))))
    }

    /// The next 64 random bits.
    pub(crate) fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(GOLDEN);
        mix(self.0)
    }

    /// Uniform in `[0, 1)` with 53 random bits.
    pub(crate) fn unit(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 * (1.0 / (1u64 << 53) as f64)
    }

    /// Uniform in `[lo, hi)`.
    pub(crate) fn range(&mut self, lo: f64, hi: f64) -> f64 {
        lo + (hi - lo) * self.unit()
    }

    /// Uniform integer in `[0, n)`; 0 when `n == 0`.
    pub(crate) fn below(&mut self, n: usize) -> usize {
        ((u128::from(self.next_u64()) * n as u128) >> 64) as usize
    }

    /// True with probability `p`.
    pub(crate) fn chance(&mut self, p: f64) -> bool {
        self.unit() < p
    }

    /// Log-uniform in `[lo, hi)` (both > 0): every scale octave equally likely.
    pub(crate) fn log_uniform(&mut self, lo: f64, hi: f64) -> f64 {
        let u = self.unit();
        if !(lo > 0.0 && hi > lo) {
            return lo;
        }
        lo * exp(u * ln(hi / lo))
    }

    /// An angle in radians, uniform in `[-deg, deg]` degrees around `base_deg`.
    pub(crate) fn angle(&mut self, base_deg: f64, deg: f64) -> f64 {
        (base_deg + self.range(-deg, deg)) * (PI / 180.0)
    }

    /// Approximately standard normal: the scaled sum of four uniform
    /// 16-bit integers (Irwin-Hall), all from one draw. Bounded by ±3.46,
    /// which is all photometric noise needs.
    pub(crate) fn gauss(&mut self) -> f32 {
        let r = self.next_u64();
        let s: i64 = (0..4).map(|i| ((r >> (16 * i)) & 0xFFFF) as i64).sum();
        // Mean 4 * 32767.5, variance 4 * (65536^2 - 1) / 12.
        (s - 131_070) as f32 * (1.732_050_8 / 65_536.0)
    }
}

/// `(sin a, cos a)` to within a couple of ulps, for any finite `a`.
pub(crate) fn sin_cos(a: f64) -> (f64, f64) {
    // Reduce to r in [-pi/4, pi/4] and a quadrant q: a = q * pi/2 + r.
    // Cody-Waite: pi/2 split in two so that q * PIO2_HI is exact (33 bits).
    const PIO2_HI: f64 = 1.570_796_326_734_125_6;
    const PIO2_LO: f64 = 6.077_100_506_506_192e-11;
    let q = (a / FRAC_PI_2).round();
    let r = (a - q * PIO2_HI) - q * PIO2_LO;
    let r2 = r * r;
    // Taylor series; the first omitted terms are below 1e-17 for |r| <= pi/4.
    let mut s = 0.0;
    let mut c = 0.0;
    for k in (0..10).rev() {
        let (n1, n2) = ((2 * k + 2) as f64, (2 * k + 3) as f64);
        s = 1.0 - r2 / (n1 * n2) * s;
        let (m1, m2) = ((2 * k + 1) as f64, (2 * k + 2) as f64);
        c = 1.0 - r2 / (m1 * m2) * c;
    }
    let s = r * s;
    match (q.rem_euclid(4.0)) as u8 {
        0 => (s, c),
        1 => (c, -s),
        2 => (-s, -c),
        _ => (-c, s),
    }
}

/// `e^x` for `|x| < 700`.
pub(crate) fn exp(x: f64) -> f64 {
    let k = (x / LN_2).round();
    let r = x - k * LN_2;
    let mut e = 1.0;
    for n in (1..=16).rev() {
        e = 1.0 + r / n as f64 * e;
    }
    // 2^k by building the exponent bits; k is within the normal range.
    let scale = f64::from_bits(((k as i64 + 1023) as u64) << 52);
    e * scale
}

/// Natural logarithm of a positive, normal `x`.
pub(crate) fn ln(x: f64) -> f64 {
    // x = m * 2^e with m in [1, 2), then m moved into [sqrt(1/2), sqrt(2)).
    let bits = x.to_bits();
    let mut e = ((bits >> 52) & 0x7FF) as i64 - 1023;
    let mut m = f64::from_bits((bits & ((1u64 << 52) - 1)) | (1023u64 << 52));
    if m > std::f64::consts::SQRT_2 {
        m *= 0.5;
        e += 1;
    }
    // ln m = 2 atanh(s), s = (m - 1) / (m + 1), |s| < 0.172.
    let s = (m - 1.0) / (m + 1.0);
    let s2 = s * s;
    let mut t = 0.0;
    for k in (0..14).rev() {
        t = 1.0 / (2 * k + 1) as f64 + s2 * t;
    }
    2.0 * s * t + e as f64 * LN_2
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sin_cos_matches_std() {
        for i in -2000..2000 {
            let a = i as f64 * 0.0137;
            let (s, c) = sin_cos(a);
            assert!((s - a.sin()).abs() < 1e-15, "sin {a}");
            assert!((c - a.cos()).abs() < 1e-15, "cos {a}");
        }
    }

    #[test]
    fn exp_ln_match_std() {
        for i in -400..400 {
            let x = i as f64 * 0.0173;
            assert!((exp(x) / x.exp() - 1.0).abs() < 1e-14, "exp {x}");
            let y = exp(x * 3.0);
            assert!((ln(y) - y.ln()).abs() < 1e-13, "ln {y}");
        }
    }

    #[test]
    fn streams_are_uniform_and_independent() {
        let mut a = Rng::for_image(0, 0);
        let mut b = Rng::for_image(0, 1);
        assert_ne!(a.next_u64(), b.next_u64());
        let mut counts = [0usize; 10];
        let mut g2 = 0.0f64;
        for _ in 0..100_000 {
            counts[a.below(10)] += 1;
            g2 += f64::from(a.gauss()).powi(2);
        }
        assert!(
            counts.iter().all(|&c| (9_000..11_000).contains(&c)),
            "{counts:?}"
        );
        assert!((g2 / 100_000.0 - 1.0).abs() < 0.03, "{}", g2 / 100_000.0);
    }
}
