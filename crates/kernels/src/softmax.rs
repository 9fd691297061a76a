//! Row-wise softmax of `[rows, k]` scores (the SSD class logits, `k` = 21 for VOC),
//! vectorised for each tier.
//!
//! `exp` is evaluated in plain arithmetic the compiler vectorises (a libm call does not):
//! `x = n·ln 2 + r` with `n` rounded to nearest (the `1.5·2^23` trick) and `ln 2` split
//! in two parts (Cody–Waite), `e^r` by Cephes' degree-7 `expf` polynomial on
//! `|r| ≤ ln 2 / 2`, and `2^n` built in the exponent bits. Relative error below 2e-7
//! against `f64` (tested), over the inputs a softmax sees after subtracting the row
//! maximum (`x ≤ 0`, clamped at −87 where `e^x` is below `f32`'s normal range). The same
//! IEEE operations run on every tier and the row sum is accumulated in order, so every
//! tier gives identical results.

use crate::bn_train::multiversion;
#[cfg(target_arch = "x86_64")]
use crate::bn_train::{Isa, isa};
use crate::dispatch::Tier;

/// `e^x` for `x ≤ 88` (see the module documentation); inputs below −87 give `e^−87`.
#[inline(always)]
pub fn exp_f32(x: f32) -> f32 {
    const LOG2E: f32 = std::f32::consts::LOG2_E;
    const LN2_HI: f32 = 0.693_359_4;
    const LN2_LO: f32 = -2.121_944_4e-4;
    const MAGIC: f32 = 12_582_912.0;
    let x = x.clamp(-87.0, 88.0);
    let n = (x * LOG2E + MAGIC) - MAGIC;
    let r = x - n * LN2_HI - n * LN2_LO;
    let p = 1.987_569_1e-4;
    let p = p * r + 1.398_199_9e-3;
    let p = p * r + 8.333_452e-3;
    let p = p * r + 4.166_579_6e-2;
    let p = p * r + 1.666_666_5e-1;
    let p = p * r + 0.5;
    let e = p * r * r + r + 1.0;
    e * f32::from_bits(((n as i32 + 127) << 23) as u32)
}

/// Softmax of one row, max-subtracted for stability.
#[inline(always)]
pub fn softmax_row(x: &[f32], out: &mut [f32]) {
    let m = x.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    for (o, v) in out.iter_mut().zip(x) {
        *o = exp_f32(v - m);
    }
    let sum: f32 = out.iter().sum();
    let inv = 1.0 / sum;
    for o in out.iter_mut() {
        *o *= inv;
    }
}

#[inline(always)]
fn softmax_rows_body(x: &[f32], k: usize, out: &mut [f32]) {
    assert!(
        k > 0 && x.len() == out.len() && x.len().is_multiple_of(k),
        "softmax_rows: {} values in rows of {k} into {}",
        x.len(),
        out.len()
    );
    for (o, r) in out.chunks_exact_mut(k).zip(x.chunks_exact(k)) {
        softmax_row(r, o);
    }
}

multiversion!(
    /// Softmax of every row of `x` `[rows, k]` into `out` (same shape).
    ///
    /// # Panics
    /// If `k` is 0 or the lengths are not whole rows (programmer errors).
    softmax_rows => softmax_rows_body(x: &[f32], k: usize, out: &mut [f32])
);

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn exp_is_within_2e7_relative_of_f64() {
        let mut worst = 0f64;
        let mut x = -87.0f32;
        while x <= 10.0 {
            let want = (x as f64).exp();
            let got = exp_f32(x) as f64;
            worst = worst.max(((got - want) / want).abs());
            x += 0.000_37;
        }
        assert!(worst < 2e-7, "worst relative error {worst:e}");
        assert_eq!(exp_f32(0.0), 1.0);
        assert!(exp_f32(-1000.0) > 0.0 && exp_f32(-1000.0) < 2e-38);
    }

    #[test]
    fn every_tier_gives_the_portable_rows() {
        for k in [1, 2, 15, 16, 17, 21] {
            let x: Vec<f32> = (0..k * 37)
                .map(|i| ((i * 7919 % 1013) as f32 - 500.0) * 0.037)
                .collect();
            let mut want = vec![0f32; x.len()];
            softmax_rows(Tier::Scalar, &x, k, &mut want);
            for (r, w) in x.chunks(k).zip(want.chunks(k)) {
                let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
                let s: f64 = r.iter().map(|&v| (v as f64 - m).exp()).sum();
                for (&v, &p) in r.iter().zip(w) {
                    let exact = (v as f64 - m).exp() / s;
                    assert!(
                        (p as f64 - exact).abs() <= 1e-6 * exact + 1e-12,
                        "{p} {exact}"
                    );
                }
            }
            for tier in crate::dispatch::available() {
                let mut got = vec![0f32; x.len()];
                softmax_rows(tier, &x, k, &mut got);
                assert!(
                    got.iter()
                        .zip(&want)
                        .all(|(a, b)| a.to_bits() == b.to_bits()),
                    "{tier:?} k {k}"
                );
            }
        }
    }
}
