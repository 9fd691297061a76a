//! Requantization, defined once: an `i32` accumulator scaled by a real multiplier `M`
//! and rounded back to 8 bits, exactly as TFLite and gemmlowp do it.
//!
//! `M` is stored as a Q31 fixed-point `multiplier` in `[2^30, 2^31)` and a power-of-two
//! `shift` (`M ≈ multiplier · 2^(shift − 31)`). Scaling is
//! `RoundingDivideByPOT(SaturatingRoundingDoublingHighMul(x · 2^left, multiplier), right)`
//! with `left = max(shift, 0)`, `right = max(−shift, 0)`: the reference definitions of
//! gemmlowp's `fixedpoint.h`. Every SIMD path must match these functions bit for bit.

/// A real multiplier in fixed point: `M ≈ multiplier · 2^(shift − 31)`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default)]
pub struct QMul {
    /// Q31 mantissa in `[2^30, 2^31)`, or 0 for `M = 0`.
    pub multiplier: i32,
    /// Power-of-two exponent in `[-31, 30]`; positive shifts left before the high
    /// multiply, negative shifts right (rounding) after it.
    pub shift: i32,
}

impl QMul {
    /// Converts a non-negative real multiplier (TFLite's `QuantizeMultiplier`).
    ///
    /// Multipliers below `2^-32` (which would need a right shift over 31) become 0, and
    /// multipliers of `2^30` or more saturate to the largest representable value;
    /// negative, NaN or infinite inputs give 0.
    pub fn from_real(real: f64) -> QMul {
        if !(real.is_finite() && real > 0.0) {
            return QMul::default();
        }
        // real = q · 2^e with q in [0.5, 1).
        let mut e = real.log2().floor() as i32 + 1;
        let mut q = real / 2f64.powi(e);
        // Guard the floating-point log against landing one off.
        while q >= 1.0 {
            q /= 2.0;
            e += 1;
        }
        while q < 0.5 {
            q *= 2.0;
            e -= 1;
        }
        let mut q_fixed = (q * (1u64 << 31) as f64).round() as i64;
        if q_fixed == 1i64 << 31 {
            q_fixed /= 2;
            e += 1;
        }
        if e < -31 {
            return QMul::default();
        }
        if e > 30 {
            return QMul {
                multiplier: i32::MAX,
                shift: 30,
            };
        }
        QMul {
            multiplier: q_fixed as i32,
            shift: e,
        }
    }

    /// The real value this multiplier stands for.
    pub fn to_real(self) -> f64 {
        self.multiplier as f64 * 2f64.powi(self.shift - 31)
    }

    /// Whether the SIMD kernels accept it: multiplier not negative (so never `i32::MIN`)
    /// and shift in `[-31, 30]`.
    pub fn is_valid(self) -> bool {
        self.multiplier >= 0 && (-31..=30).contains(&self.shift)
    }

    /// Applies the multiplier to `x` (TFLite's `MultiplyByQuantizedMultiplier`). The left
    /// shift wraps as two's-complement `int32` arithmetic does.
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        let left = self.shift.max(0) as u32;
        let right = (-self.shift).max(0);
        rounding_divide_by_pot(
            saturating_rounding_doubling_high_mul(x.wrapping_shl(left), self.multiplier),
            right,
        )
    }
}

/// gemmlowp's `SaturatingRoundingDoublingHighMul`: the high 32 bits of `2·a·b`, rounded
/// (nudge `2^30` for non-negative products, `1 − 2^30` for negative ones, then division
/// truncating toward zero), saturating the single overflow case `a = b = i32::MIN`.
#[inline]
pub fn saturating_rounding_doubling_high_mul(a: i32, b: i32) -> i32 {
    if a == b && a == i32::MIN {
        return i32::MAX;
    }
    let ab = a as i64 * b as i64;
    let nudge: i64 = if ab >= 0 { 1 << 30 } else { 1 - (1 << 30) };
    ((ab + nudge) / (1i64 << 31)) as i32
}

/// gemmlowp's `RoundingDivideByPOT`: `x / 2^exponent` rounded to nearest, ties away
/// from zero. `exponent` in `0..=31`.
#[inline]
pub fn rounding_divide_by_pot(x: i32, exponent: i32) -> i32 {
    debug_assert!((0..=31).contains(&exponent));
    let mask = ((1i64 << exponent) - 1) as i32;
    let remainder = x & mask;
    let threshold = (mask >> 1) + i32::from(x < 0);
    (x >> exponent) + i32::from(remainder > threshold)
}

/// Per-output-channel requantization of `i32` accumulators to `u8`:
/// `out[n] = clamp(zero_point + mul[n].apply(acc + bias[n]), qmin, qmax)`.
///
/// `bias` already contains every constant term (the conv bias in accumulator units and
/// `−a_zp · Σ_k w[k, n]`), so kernels only add it. `qmin..=qmax` is the fused activation
/// clamp (ReLU6 becomes `[zp, zp + round(6 / scale)]`).
#[derive(Clone, Debug, PartialEq)]
pub struct Requant {
    /// `[N]` constant added to each accumulator.
    pub bias: Vec<i32>,
    /// `[N]` Q31 multipliers.
    pub multiplier: Vec<i32>,
    /// `[N]` shifts (see [`QMul`]).
    pub shift: Vec<i32>,
    /// Output zero point, 0..=255.
    pub zero_point: i32,
    /// Lowest output value.
    pub qmin: u8,
    /// Highest output value.
    pub qmax: u8,
}

impl Requant {
    /// A stage from per-channel multipliers (`muls.len()` = 1 broadcasts one multiplier).
    pub fn new(bias: Vec<i32>, muls: &[QMul], zero_point: i32, qmin: u8, qmax: u8) -> Requant {
        let n = bias.len();
        let pick = |i: usize| muls[if muls.len() == 1 { 0 } else { i }];
        Requant {
            multiplier: (0..n).map(|i| pick(i).multiplier).collect(),
            shift: (0..n).map(|i| pick(i).shift).collect(),
            bias,
            zero_point,
            qmin,
            qmax,
        }
    }

    /// Output channels.
    pub fn channels(&self) -> usize {
        self.bias.len()
    }

    /// Whether every field is in the range the SIMD kernels require.
    pub fn is_valid(&self) -> bool {
        let n = self.bias.len();
        self.multiplier.len() == n
            && self.shift.len() == n
            && (0..=255).contains(&self.zero_point)
            && self.qmin <= self.qmax
            && self.multiplier.iter().zip(&self.shift).all(|(&m, &s)| {
                QMul {
                    multiplier: m,
                    shift: s,
                }
                .is_valid()
            })
    }

    /// Requantizes one accumulator of channel `n` (the bias is added here).
    #[inline]
    pub fn apply(&self, acc: i32, n: usize) -> u8 {
        let m = QMul {
            multiplier: self.multiplier[n],
            shift: self.shift[n],
        };
        let v = m
            .apply(acc.wrapping_add(self.bias[n]))
            .wrapping_add(self.zero_point);
        v.clamp(self.qmin as i32, self.qmax as i32) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// gemmlowp's SRDHM transcribed literally (including its truncating division).
    fn srdhm_literal(a: i32, b: i32) -> i32 {
        let overflow = a == b && a == i32::MIN;
        let a_64 = a as i64;
        let b_64 = b as i64;
        let ab_64 = a_64 * b_64;
        let nudge = if ab_64 >= 0 { 1 << 30 } else { 1 - (1 << 30) };
        let ab_x2_high32 = ((ab_64 + nudge) / (1i64 << 31)) as i32;
        if overflow { i32::MAX } else { ab_x2_high32 }
    }

    #[test]
    fn srdhm_boundaries() {
        let m = i32::MAX;
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MIN, i32::MIN),
            i32::MAX
        );
        assert_eq!(
            saturating_rounding_doubling_high_mul(i32::MAX, i32::MAX),
            i32::MAX - 1
        );
        assert_eq!(saturating_rounding_doubling_high_mul(i32::MIN, m), -m);
        assert_eq!(saturating_rounding_doubling_high_mul(0, m), 0);
        // 2·a·b/2^32 with a = 1 << 30 and b = 3: exactly 1.5 -> rounds to 2 (half up).
        assert_eq!(saturating_rounding_doubling_high_mul(1 << 30, 3), 2);
        // -1.5 -> -1: gemmlowp's nudge makes negative ties round toward +inf.
        assert_eq!(saturating_rounding_doubling_high_mul(-(1 << 30), 3), -1);
        // -0.5 -> 0.
        assert_eq!(saturating_rounding_doubling_high_mul(-(1 << 30), 1), 0);
        let vals = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30) - 1,
            -(1 << 30),
            -3,
            -1,
            0,
            1,
            2,
            (1 << 30) + 1,
            i32::MAX - 1,
            i32::MAX,
        ];
        for &a in &vals {
            for &b in &vals {
                assert_eq!(
                    saturating_rounding_doubling_high_mul(a, b),
                    srdhm_literal(a, b),
                    "{a} {b}"
                );
            }
        }
    }

    #[test]
    fn rdivpot_rounds_half_away_from_zero() {
        assert_eq!(rounding_divide_by_pot(5, 1), 3);
        assert_eq!(rounding_divide_by_pot(-5, 1), -3);
        assert_eq!(rounding_divide_by_pot(4, 1), 2);
        assert_eq!(rounding_divide_by_pot(-4, 1), -2);
        assert_eq!(rounding_divide_by_pot(3, 2), 1);
        assert_eq!(rounding_divide_by_pot(-3, 2), -1);
        assert_eq!(rounding_divide_by_pot(6, 2), 2);
        assert_eq!(rounding_divide_by_pot(-6, 2), -2);
        assert_eq!(rounding_divide_by_pot(7, 0), 7);
        assert_eq!(rounding_divide_by_pot(i32::MAX, 31), 1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 31), -1);
        assert_eq!(rounding_divide_by_pot(i32::MIN, 1), -(1 << 30));
        assert_eq!(rounding_divide_by_pot(i32::MAX, 1), 1 << 30);
        // Matches the f64 definition for small values and all exponents.
        for e in 0..=31 {
            for x in -300..=300 {
                let want = (x as f64 / 2f64.powi(e)).abs() + 0.5;
                let want = want.floor() * (x as f64).signum();
                assert_eq!(rounding_divide_by_pot(x, e) as f64, want, "{x} >> {e}");
            }
        }
    }

    #[test]
    fn quantize_multiplier_round_trips() {
        for &r in &[
            1e-9,
            2.3e-5,
            0.001,
            0.0123,
            0.25,
            0.5,
            0.75,
            0.999_999_999_9,
            1.0,
            1.7,
            300.0,
        ] {
            let q = QMul::from_real(r);
            assert!(q.is_valid(), "{r}: {q:?}");
            assert!((1 << 30..=i32::MAX).contains(&q.multiplier), "{r}: {q:?}");
            assert!((q.to_real() - r).abs() <= r * 1e-9, "{r}: {q:?}");
        }
        assert_eq!(QMul::from_real(0.0), QMul::default());
        assert_eq!(QMul::from_real(-1.0), QMul::default());
        assert_eq!(QMul::from_real(f64::NAN), QMul::default());
        assert_eq!(QMul::from_real(1e-12), QMul::default());
        assert_eq!(
            QMul::from_real(0.5),
            QMul {
                multiplier: 1 << 30,
                shift: 0
            }
        );
        // 1 − 2^-40 rounds up to exactly 1.0: mantissa renormalised.
        assert_eq!(
            QMul::from_real(1.0 - 2f64.powi(-40)),
            QMul {
                multiplier: 1 << 30,
                shift: 1
            }
        );
    }

    #[test]
    fn apply_matches_real_scaling() {
        for &r in &[0.0003, 0.01, 0.1, 0.5, 0.9, 2.0, 5.5] {
            let q = QMul::from_real(r);
            for x in [-100_000, -1234, -3, -1, 0, 1, 7, 999, 65_536, 1 << 20] {
                let want = x as f64 * r;
                let got = q.apply(x) as f64;
                assert!(
                    (got - want).abs() <= 0.5 + want.abs() * 1e-8,
                    "{x}·{r}: {got} vs {want}"
                );
            }
        }
    }

    #[test]
    fn requant_clamps_and_offsets() {
        let rq = Requant::new(vec![10, -10], &[QMul::from_real(0.5)], 128, 100, 200);
        assert!(rq.is_valid());
        assert_eq!(rq.apply(0, 0), 133); // (0 + 10)·0.5 + 128
        assert_eq!(rq.apply(0, 1), 123);
        assert_eq!(rq.apply(1_000_000, 0), 200);
        assert_eq!(rq.apply(-1_000_000, 0), 100);
        assert_eq!(rq.apply(i32::MAX - 10, 0), 200);
        // Wrapping (as the SIMD lanes do), never a panic.
        let _ = rq.apply(i32::MAX, 0);
    }
}
