//! `f32 → u8` affine quantization of a whole tensor (the network input, and the output
//! of a layer kept in float), vectorised for each tier.
//!
//! `out[i] = clamp(round_half_even(x[i] · inv_scale) + zp, qmin, 255)`, computed as
//! `min(max(x · inv_scale, qmin − zp), 255 − zp) + 1.5·2^23` and the low byte of the
//! result's bits minus the bits of `1.5·2^23 − zp` (the magic-number rounding: exact for
//! |v| < 2^22, and the clamp keeps |v| ≤ 255). The same IEEE operations run on every
//! tier, so all tiers give identical bytes; NaN inputs become `qmin` on every tier
//! (`max` ignores a NaN operand).

use crate::bn_train::multiversion;
#[cfg(target_arch = "x86_64")]
use crate::bn_train::{Isa, isa};
use crate::dispatch::Tier;

/// Parameters of [`quantize_f32_u8`].
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QuantizeParams {
    /// `1 / scale`.
    pub inv_scale: f32,
    /// Zero point, `0..=255`.
    pub zero_point: i32,
    /// Lowest code (0, or 1 for symmetric int8 ranges), `≤ 255`.
    pub qmin: i32,
}

#[inline(always)]
fn quantize_body(xs: &[f32], p: QuantizeParams, out: &mut [u8]) {
    assert_eq!(xs.len(), out.len(), "quantize_f32_u8: lengths");
    const MAGIC: f32 = 12_582_912.0;
    let (lo, hi) = ((p.qmin - p.zero_point) as f32, (255 - p.zero_point) as f32);
    let bias = 0x4B40_0000i32.wrapping_sub(p.zero_point);
    for (o, &x) in out.iter_mut().zip(xs) {
        let v = (x * p.inv_scale).max(lo).min(hi);
        *o = ((v + MAGIC).to_bits() as i32).wrapping_sub(bias) as u8;
    }
}

multiversion!(
    /// Quantizes `xs` into `out` (equal lengths) with `p`.
    ///
    /// # Panics
    /// If the lengths differ (a programmer error).
    quantize_f32_u8 => quantize_body(xs: &[f32], p: QuantizeParams, out: &mut [u8])
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_tier_matches_the_portable_loop_and_rounds_half_to_even() {
        let p = QuantizeParams {
            inv_scale: 1.0 / 0.05,
            zero_point: 17,
            qmin: 1,
        };
        let mut xs: Vec<f32> = (0..1037).map(|i| (i as f32 - 500.0) * 0.0137).collect();
        xs.extend([
            f32::NAN,
            f32::INFINITY,
            f32::NEG_INFINITY,
            0.025,
            0.075,
            -0.025,
        ]);
        let mut want = vec![0u8; xs.len()];
        quantize_f32_u8(Tier::Scalar, &xs, p, &mut want);
        for (&x, &q) in xs.iter().zip(&want).take(1037) {
            let exact = (x * p.inv_scale).round_ties_even() as i32 + 17;
            assert_eq!(q as i32, exact.clamp(1, 255), "{x}");
        }
        let n = xs.len();
        // NaN -> qmin, +inf -> 255, -inf -> qmin, halves to even: 0.5 -> 0, 1.5 -> 2, -0.5 -> 0.
        assert_eq!(&want[n - 6..], &[1, 255, 1, 17, 19, 17]);
        for tier in crate::dispatch::available() {
            for len in [0, 1, 15, 16, 17, 63, 64, 65, n] {
                let mut got = vec![0u8; len];
                quantize_f32_u8(tier, &xs[..len], p, &mut got);
                assert_eq!(got, want[..len], "{tier:?} {len}");
            }
        }
    }
}
