//! `f32 ↔ bf16` conversion of whole tensors, the first step of mixed-precision
//! (bf16-operand, f32-accumulate) kernels.
//!
//! bf16 is the upper half of an IEEE f32 (sign, 8 exponent bits, 7 mantissa bits), so
//! `bf16 → f32` is exact (a 16-bit shift). `f32 → bf16` rounds to nearest, ties to even,
//! on the bit pattern: `(bits + 0x7FFF + lsb) >> 16` with `lsb` the lowest kept bit.
//! That is exact for every finite value, subnormals included (no flush to zero); finite
//! values that round past the largest bf16 become ±∞ as IEEE rounding does; ±∞ stay ±∞;
//! a NaN stays a NaN with its sign and top payload bits, made quiet (`| 0x0040`) so that
//! truncating its payload can never turn it into an infinity.
//!
//! The kernels are one integer loop, compiled per tier with [`multiversion!`] (the
//! compiler vectorises it; AVX-512 BF16's `vcvtneps2bf16` is not used because it flushes
//! subnormals to zero), so every tier returns the bits of [`f32_to_bf16_rne`].

use crate::bn_train::multiversion;
#[cfg(target_arch = "x86_64")]
use crate::bn_train::{Isa, isa};
use crate::dispatch::Tier;

/// The reference: one f32 to bf16 bits, round to nearest even, NaN kept a quiet NaN.
#[inline(always)]
pub fn f32_to_bf16_rne(x: f32) -> u16 {
    let b = x.to_bits();
    let rounded = (b.wrapping_add(0x7FFF + ((b >> 16) & 1)) >> 16) as u16;
    let quiet_nan = ((b >> 16) | 0x0040) as u16;
    if b & 0x7FFF_FFFF > 0x7F80_0000 {
        quiet_nan
    } else {
        rounded
    }
}

/// bf16 bits to f32 (exact).
#[inline(always)]
pub fn bf16_to_f32_exact(h: u16) -> f32 {
    f32::from_bits((h as u32) << 16)
}

#[inline(always)]
fn to_bf16_body(xs: &[f32], out: &mut [u16]) {
    assert_eq!(xs.len(), out.len(), "f32_to_bf16: lengths");
    for (o, &x) in out.iter_mut().zip(xs) {
        *o = f32_to_bf16_rne(x);
    }
}

#[inline(always)]
fn to_f32_body(hs: &[u16], out: &mut [f32]) {
    assert_eq!(hs.len(), out.len(), "bf16_to_f32: lengths");
    for (o, &h) in out.iter_mut().zip(hs) {
        *o = bf16_to_f32_exact(h);
    }
}

multiversion!(
    /// Rounds `xs` to bf16 bits in `out` (equal lengths), as [`f32_to_bf16_rne`].
    ///
    /// # Panics
    /// If the lengths differ (a programmer error).
    f32_to_bf16 => to_bf16_body(xs: &[f32], out: &mut [u16])
);

multiversion!(
    /// Widens bf16 bits `hs` to f32 in `out` (equal lengths), exactly.
    ///
    /// # Panics
    /// If the lengths differ (a programmer error).
    bf16_to_f32 => to_f32_body(hs: &[u16], out: &mut [f32])
);

#[cfg(test)]
mod tests {
    use super::*;

    /// Round to nearest even computed in f64 from the value (finite inputs): the nearer of
    /// the two bf16 neighbours, the even one on a tie.
    fn rne_by_value(x: f32) -> u16 {
        let b = x.to_bits();
        let (lo, hi) = ((b >> 16) as u16, ((b >> 16) + 1) as u16);
        let (vl, vh) = (
            bf16_to_f32_exact(lo) as f64,
            if hi & 0x7FFF == 0x7F80 {
                // Rounding up past the largest finite bf16 reaches infinity: weigh it as
                // the next power of two, as IEEE rounding does.
                2f64.powi(128).copysign(x as f64)
            } else {
                bf16_to_f32_exact(hi) as f64
            },
        );
        let (dl, dh) = (((x as f64) - vl).abs(), ((x as f64) - vh).abs());
        if dl < dh || (dl == dh && lo & 1 == 0) {
            lo
        } else {
            hi
        }
    }

    fn bits(seed: u64, n: usize) -> Vec<u32> {
        let mut s = seed;
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 7;
                s ^= s << 17;
                s as u32
            })
            .collect()
    }

    #[test]
    fn rounding_is_nearest_even_and_nan_stays_nan() {
        for b in bits(1, 200_000) {
            let x = f32::from_bits(b);
            let h = f32_to_bf16_rne(x);
            if x.is_nan() {
                assert!(bf16_to_f32_exact(h).is_nan(), "{b:#x} -> {h:#x}");
                assert_eq!(h & 0x8000, (b >> 16) as u16 & 0x8000, "sign of {b:#x}");
            } else {
                assert_eq!(h, rne_by_value(x), "{x:e} ({b:#x})");
            }
        }
        // Ties: 1 + 2^-8 is halfway between 1 and 1 + 2^-7: to even (1.0); the next tie
        // up rounds up to the even neighbour.
        assert_eq!(f32_to_bf16_rne(1.0 + 2f32.powi(-8)), 0x3F80);
        assert_eq!(f32_to_bf16_rne(1.0 + 3.0 * 2f32.powi(-8)), 0x3F82);
        assert_eq!(f32_to_bf16_rne(f32::MAX), 0x7F80, "rounds to +inf");
        assert_eq!(f32_to_bf16_rne(f32::NEG_INFINITY), 0xFF80);
        assert_eq!(
            f32_to_bf16_rne(f32::from_bits(1)),
            0x0000,
            "smallest subnormal"
        );
        assert_eq!(
            f32_to_bf16_rne(f32::from_bits(0x0000_8000)),
            0x0000,
            "tie to even 0"
        );
        assert_eq!(
            f32_to_bf16_rne(f32::from_bits(0x0001_8000)),
            0x0002,
            "tie to even 2"
        );
        // A signalling NaN whose payload lies only in the low bits stays a NaN.
        assert_eq!(f32_to_bf16_rne(f32::from_bits(0x7F80_0001)), 0x7FC0);
    }

    #[test]
    fn every_tier_gives_the_reference_bits_on_every_length() {
        let mut xs: Vec<f32> = bits(2, 1000).into_iter().map(f32::from_bits).collect();
        xs.extend([
            0.0,
            -0.0,
            f32::INFINITY,
            f32::NAN,
            1.0 + 2f32.powi(-8),
            f32::MIN_POSITIVE,
        ]);
        let want: Vec<u16> = xs.iter().map(|&x| f32_to_bf16_rne(x)).collect();
        for tier in crate::dispatch::available() {
            for len in [0, 1, 15, 16, 17, 31, 32, 33, 63, 64, 65, xs.len()] {
                let mut got = vec![0u16; len];
                f32_to_bf16(tier, &xs[..len], &mut got);
                assert_eq!(got, want[..len], "{tier:?} {len}");
                let mut back = vec![0f32; len];
                bf16_to_f32(tier, &got, &mut back);
                for (b, &h) in back.iter().zip(&got) {
                    assert_eq!(b.to_bits(), (h as u32) << 16, "{tier:?}");
                }
            }
        }
    }
}
