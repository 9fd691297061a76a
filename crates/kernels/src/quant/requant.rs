//! Requantization, defined once: an `i32` accumulator scaled by a real multiplier `M`
//! and rounded back to 8 bits with a fixed-point multiplier and shift, as TFLite does.
//!
//! `M` is stored as a Q31 fixed-point `multiplier` in `[2^30, 2^31)` and a power-of-two
//! `shift` (`M ≈ multiplier · 2^(shift − 31)`, TFLite's `QuantizeMultiplier`). Scaling is
//! TFLite's single-rounding `MultiplyByQuantizedMultiplier` (the `TFLITE_SINGLE_ROUNDING`
//! build, also CMSIS-NN's): `(x · multiplier + 2^(t − 1)) >> t` with `t = 31 − shift`,
//! exact in 64 bits, so the result is `x · M` rounded once, halves upward. gemmlowp's
//! older double rounding (a rounding doubling high multiply, then a rounding shift) rounds
//! twice; the single rounding is at least as accurate and takes about half the vector
//! instructions, which matters because every int8 kernel ends with it. Every SIMD path
//! must match these functions bit for bit.

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

    /// Total right shift `31 − shift`, in `1..=62` for a valid multiplier.
    #[inline]
    pub fn total_shift(self) -> u32 {
        (31 - self.shift) as u32
    }

    /// `x · M` rounded to the nearest integer, halves upward, computed exactly in 64
    /// bits: `(x · multiplier + 2^(t − 1)) >> t` with `t = 31 − shift` (TFLite's
    /// single-rounding `MultiplyByQuantizedMultiplier`). `|x · multiplier| < 2^62`, so the
    /// sum never overflows.
    #[inline]
    pub fn apply_i64(self, x: i32) -> i64 {
        let t = self.total_shift();
        (x as i64 * self.multiplier as i64 + (1i64 << (t - 1))) >> t
    }

    /// The same multiplier with total shift 32 (`shift = −1`, `multiplier ≈ M · 2^32`),
    /// when `M < 0.5`: the layout of the fast SIMD epilogue, which then takes the high
    /// dword of each 64-bit product instead of shifting per lane. The mantissa is rounded
    /// to fewer bits for small `M`; the scaled value moves by at most `|x| · 2^-33`, a
    /// quarter of a code for the largest accumulators. `None` when `M ≥ 0.5`.
    pub fn to_q32(self) -> Option<QMul> {
        let t = self.total_shift();
        if !self.is_valid() || t < 32 {
            return None;
        }
        let d = t - 32;
        let m = self.multiplier as i64;
        let m = if d == 0 { m } else { (m + (1 << (d - 1))) >> d };
        Some(QMul {
            multiplier: m as i32,
            shift: -1,
        })
    }

    /// [`QMul::apply_i64`] saturated to `i32` (it only saturates for multipliers ≥ 1 on
    /// large inputs).
    #[inline]
    pub fn apply(self, x: i32) -> i32 {
        self.apply_i64(x).clamp(i32::MIN as i64, i32::MAX as i64) as i32
    }
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
    ///
    /// When every multiplier is below 0.5 (the usual case for convolutions) they are
    /// stored with total shift 32 ([`QMul::to_q32`]), so that the kernels take their fast
    /// epilogue ([`Requant::is_q32`]); the scalar reference applies whatever is stored.
    pub fn new(bias: Vec<i32>, muls: &[QMul], zero_point: i32, qmin: u8, qmax: u8) -> Requant {
        let n = bias.len();
        let q32: Option<Vec<QMul>> = muls.iter().map(|m| m.to_q32()).collect();
        let muls = q32.as_deref().unwrap_or(muls);
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

    /// Whether every channel has total shift 32 (see [`QMul::to_q32`]): the kernels then
    /// take the high dword of each product and clamp in 32 bits.
    pub fn is_q32(&self) -> bool {
        self.shift.iter().all(|&s| s == -1)
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

    /// Requantizes one accumulator of channel `n`: the bias is added in wrapping `i32`
    /// (as the SIMD lanes accumulate), the scaling, zero point and clamp are exact.
    #[inline]
    pub fn apply(&self, acc: i32, n: usize) -> u8 {
        let m = QMul {
            multiplier: self.multiplier[n],
            shift: self.shift[n],
        };
        let v = m.apply_i64(acc.wrapping_add(self.bias[n])) + self.zero_point as i64;
        v.clamp(self.qmin as i64, self.qmax as i64) as u8
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rounding definition checked against exact rational arithmetic: `x · M` to the
    /// nearest integer, halves toward +inf, for every shift and boundary inputs.
    #[test]
    fn single_rounding_is_exact() {
        let xs = [
            i32::MIN,
            i32::MIN + 1,
            -(1 << 30) - 1,
            -(1 << 30),
            -1000,
            -3,
            -1,
            0,
            1,
            2,
            1001,
            (1 << 30) + 1,
            i32::MAX - 1,
            i32::MAX,
        ];
        for shift in -31..=30 {
            for multiplier in [0, 1 << 30, (1 << 30) + 12_345, i32::MAX] {
                let m = QMul { multiplier, shift };
                assert!(m.is_valid());
                let t = m.total_shift();
                for &x in &xs {
                    // floor((x·multiplier + 2^(t−1)) / 2^t) in i128: the exact value.
                    let num = x as i128 * multiplier as i128 + (1i128 << (t - 1));
                    let want = num.div_euclid(1i128 << t);
                    assert_eq!(m.apply_i64(x) as i128, want, "{x} {m:?}");
                    let sat = want.clamp(i32::MIN as i128, i32::MAX as i128);
                    assert_eq!(m.apply(x) as i128, sat, "{x} {m:?}");
                }
            }
        }
        // Halves round up: 3 · 0.5 = 1.5 -> 2, −3 · 0.5 = −1.5 -> −1.
        let half = QMul::from_real(0.5);
        assert_eq!(half.apply(3), 2);
        assert_eq!(half.apply(-3), -1);
        assert_eq!(half.apply(-1), 0);
        // Multiplier 0 gives 0 for every input.
        assert_eq!(QMul::default().apply(i32::MAX), 0);
        assert_eq!(QMul::default().apply(i32::MIN), 0);
    }

    #[test]
    fn q32_layout_keeps_the_multiplier() {
        for &r in &[1e-9, 2.3e-5, 0.001, 0.0123, 0.25, 0.4999] {
            let q = QMul::from_real(r).to_q32().expect("below 0.5");
            assert_eq!(q.shift, -1);
            assert!(
                (q.to_real() - r).abs() <= 2f64.powi(-33) + r * 1e-9,
                "{r}: {q:?}"
            );
            for x in [-(1 << 24), -999, 0, 77, 1 << 24] {
                let exact = x as f64 * r;
                assert!((q.apply(x) as f64 - exact).abs() <= 0.5 + 1e-6, "{x}·{r}");
            }
        }
        assert_eq!(QMul::from_real(0.5).to_q32(), None);
        assert_eq!(QMul::from_real(3.0).to_q32(), None);
        let rq = Requant::new(vec![0; 3], &[QMul::from_real(0.01)], 0, 0, 255);
        assert!(rq.is_q32());
        let rq = Requant::new(
            vec![0; 2],
            &[QMul::from_real(0.01), QMul::from_real(0.7)],
            0,
            0,
            255,
        );
        assert!(!rq.is_q32());
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
        // The bias add wraps (as the SIMD lanes do), never a panic.
        assert_eq!(rq.apply(i32::MAX, 0), 100);
        // Large multipliers clamp instead of wrapping.
        let big = Requant::new(vec![0], &[QMul::from_real(300.0)], 0, 0, 255);
        assert_eq!(big.apply(i32::MAX, 0), 255);
        assert_eq!(big.apply(i32::MIN, 0), 0);
    }
}
