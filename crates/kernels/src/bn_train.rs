//! Row kernels of training-mode batch normalisation with a fused clamp activation, over
//! NHWC data viewed as `[rows, C]` (channels contiguous).
//!
//! Each kernel is one plain loop over rows and channels (the specification, run as is on
//! the scalar tier) that is also compiled inside `#[target_feature]` functions for AVX2
//! and AVX-512 ([`multiversion!`]), where the compiler vectorises it across channels. The loops never mix
//! lanes (every channel accumulates its rows in row order) and Rust never contracts
//! `a·b + c` into an FMA, so every tier returns bit-identical results.
//!
//! The activation is `Act::None`, `Relu` or `Relu6`; its derivative follows PyTorch at the
//! kinks: the gradient passes where `lo < z < hi` for the pre-activation `z`.

use crate::act::Act;
use crate::dispatch::Tier;

/// The widest ISA that both `tier` and the CPU allow.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Isa {
    /// AVX-512F.
    Avx512,
    /// AVX2 + FMA.
    Avx2,
    /// Plain code.
    Portable,
}

/// Picks the ISA for `tier` (CPU features detected once per process).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) fn isa(tier: Tier) -> Isa {
    #[cfg(target_arch = "x86_64")]
    {
        static FEATURES: std::sync::OnceLock<(bool, bool)> = std::sync::OnceLock::new();
        let (has512, has2) = *FEATURES.get_or_init(|| {
            (
                std::arch::is_x86_feature_detected!("avx512f"),
                std::arch::is_x86_feature_detected!("avx2")
                    && std::arch::is_x86_feature_detected!("fma"),
            )
        });
        if tier >= Tier::Avx512 && has512 {
            return Isa::Avx512;
        }
        if tier >= Tier::Avx2 && has2 {
            return Isa::Avx2;
        }
    }
    let _ = tier;
    Isa::Portable
}

/// Defines `pub fn $name(tier, args)` that runs the `#[inline(always)]` body `$body`
/// compiled for AVX-512, for AVX2 or as plain code, as [`isa`] picks, so that the compiler
/// vectorises the body's loops for that ISA.
macro_rules! multiversion {
    ($(#[$m:meta])* $name:ident => $body:ident ($($a:ident : $t:ty),* $(,)?)) => {
        $(#[$m])*
        pub fn $name(tier: Tier, $($a: $t),*) {
            #[cfg(target_arch = "x86_64")]
            {
                #[target_feature(enable = "avx512f")]
                unsafe fn v512($($a: $t),*) {
                    $body($($a),*)
                }
                #[target_feature(enable = "avx2,fma")]
                unsafe fn v2($($a: $t),*) {
                    $body($($a),*)
                }
                match isa(tier) {
                    // SAFETY: `isa` returns Avx512 only when the CPU has AVX-512F; the body
                    // is safe code whose slice accesses are all checked.
                    Isa::Avx512 => return unsafe { v512($($a),*) },
                    // SAFETY: `isa` returns Avx2 only when the CPU has AVX2 and FMA; the
                    // body is safe code.
                    Isa::Avx2 => return unsafe { v2($($a),*) },
                    Isa::Portable => {}
                }
            }
            let _ = tier;
            $body($($a),*)
        }
    };
}
pub(crate) use multiversion;

fn check_rows(what: &str, x: usize, c: usize) {
    assert!(
        c > 0 && x.is_multiple_of(c),
        "{what}: {x} values are not rows of {c} channels"
    );
}

#[inline(always)]
fn sum_rows_body(x: &[f32], acc: &mut [f32]) {
    let c = acc.len();
    check_rows("sum_rows", x.len(), c);
    for xr in x.chunks_exact(c) {
        for (a, v) in acc.iter_mut().zip(xr) {
            *a += v;
        }
    }
}

multiversion!(
    /// `acc[j] += Σ_r x[r, j]` over the rows of `x` `[rows, C]`, `acc` `[C]`.
    ///
    /// # Panics
    /// If `x` is not whole rows of `acc.len()` channels.
    sum_rows => sum_rows_body(x: &[f32], acc: &mut [f32])
);

#[inline(always)]
fn sq_dev_rows_body(x: &[f32], mean: &[f32], acc: &mut [f32]) {
    let c = acc.len();
    check_rows("sq_dev_rows", x.len(), c);
    assert_eq!(mean.len(), c, "sq_dev_rows: mean length");
    for xr in x.chunks_exact(c) {
        for ((a, v), m) in acc.iter_mut().zip(xr).zip(mean) {
            let d = v - m;
            *a += d * d;
        }
    }
}

multiversion!(
    /// `acc[j] += Σ_r (x[r, j] − mean[j])²`.
    ///
    /// # Panics
    /// If `x` is not whole rows of `acc.len()` channels or `mean` is not `[C]`.
    sq_dev_rows => sq_dev_rows_body(x: &[f32], mean: &[f32], acc: &mut [f32])
);

#[inline(always)]
fn affine_act_body(x: &[f32], scale: &[f32], shift: &[f32], act: Act, y: &mut [f32]) {
    let c = scale.len();
    check_rows("affine_act", x.len(), c);
    assert_eq!(shift.len(), c, "affine_act: shift length");
    assert_eq!(x.len(), y.len(), "affine_act: output length");
    let (lo, hi) = act.bounds();
    for (yr, xr) in y.chunks_exact_mut(c).zip(x.chunks_exact(c)) {
        let it = yr.iter_mut().zip(xr).zip(scale).zip(shift);
        if act == Act::None {
            for (((o, v), s), b) in it {
                *o = v * s + b;
            }
        } else {
            for (((o, v), s), b) in it {
                *o = (v * s + b).max(lo).min(hi);
            }
        }
    }
}

multiversion!(
    /// `y[r, j] = act(x[r, j]·scale[j] + shift[j])`.
    ///
    /// # Panics
    /// If `x` and `y` differ in length, are not whole rows, or `shift` is not `[C]`.
    affine_act => affine_act_body(x: &[f32], scale: &[f32], shift: &[f32], act: Act, y: &mut [f32])
);

/// The per-channel coefficients of one batch norm's backward.
#[derive(Clone, Copy, Debug)]
pub struct BnBackward<'a> {
    /// The forward's `scale` `[C]` (pre-activation `z = x·scale + shift`).
    pub scale: &'a [f32],
    /// The forward's `shift` `[C]`.
    pub shift: &'a [f32],
    /// The mean the input is centred on `[C]`.
    pub mean: &'a [f32],
    /// The activation after the batch norm.
    pub act: Act,
}

impl BnBackward<'_> {
    fn check(&self, what: &str, c: usize) {
        assert!(
            self.scale.len() == c && self.shift.len() == c && self.mean.len() == c,
            "{what}: coefficient lengths"
        );
    }
}

#[inline(always)]
fn backward_sums_body(x: &[f32], dy: &[f32], p: BnBackward<'_>, sg: &mut [f32], sgx: &mut [f32]) {
    let c = sg.len();
    check_rows("backward_sums", x.len(), c);
    assert_eq!(x.len(), dy.len(), "backward_sums: dy length");
    assert_eq!(sgx.len(), c, "backward_sums: sgx length");
    p.check("backward_sums", c);
    let (lo, hi) = p.act.bounds();
    let (scale, shift, mean) = (&p.scale[..c], &p.shift[..c], &p.mean[..c]);
    for (xr, gr) in x.chunks_exact(c).zip(dy.chunks_exact(c)) {
        for j in 0..c {
            let v = xr[j];
            let z = v * scale[j] + shift[j];
            let g = if (z > lo) & (z < hi) { gr[j] } else { 0.0 };
            sg[j] += g;
            sgx[j] += g * (v - mean[j]);
        }
    }
}

multiversion!(
    /// With `g = dy` where `lo < z < hi` (else 0): `sg[j] += Σ_r g`,
    /// `sgx[j] += Σ_r g·(x − mean)`.
    ///
    /// # Panics
    /// If `x` and `dy` differ in length or are not whole rows of `sg.len()` channels, or a
    /// coefficient or `sgx` is not `[C]`.
    backward_sums => backward_sums_body(
        x: &[f32],
        dy: &[f32],
        p: BnBackward<'_>,
        sg: &mut [f32],
        sgx: &mut [f32],
    )
);

#[inline(always)]
fn backward_dx_body(
    x: &[f32],
    dy: &mut [f32],
    p: BnBackward<'_>,
    a: &[f32],
    bx: &[f32],
    k: &[f32],
) {
    let c = a.len();
    check_rows("backward_dx", x.len(), c);
    assert_eq!(x.len(), dy.len(), "backward_dx: dy length");
    assert!(
        bx.len() == c && k.len() == c,
        "backward_dx: coefficient lengths"
    );
    p.check("backward_dx", c);
    let (lo, hi) = p.act.bounds();
    let (scale, shift) = (&p.scale[..c], &p.shift[..c]);
    for (xr, gr) in x.chunks_exact(c).zip(dy.chunks_exact_mut(c)) {
        for j in 0..c {
            let v = xr[j];
            let z = v * scale[j] + shift[j];
            let gm = if (z > lo) & (z < hi) { gr[j] } else { 0.0 };
            gr[j] = a[j] * gm + bx[j] * v + k[j];
        }
    }
}

multiversion!(
    /// In place: `dy[r, j] ← a[j]·g + bx[j]·x[r, j] + k[j]`, with `g` masked as in
    /// [`backward_sums`].
    ///
    /// # Panics
    /// If `x` and `dy` differ in length or are not whole rows, or a coefficient is not `[C]`.
    backward_dx => backward_dx_body(
        x: &[f32],
        dy: &mut [f32],
        p: BnBackward<'_>,
        a: &[f32],
        bx: &[f32],
        k: &[f32],
    )
);

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 20001) as f32 / 1000.0 - 10.0
            })
            .collect()
    }

    const TIERS: [Tier; 3] = [Tier::Scalar, Tier::Avx2, Tier::Avx512];

    /// Every kernel against a plain indexed loop, on channel counts around the vector
    /// widths and with values on both clamps, for every tier; results must be identical.
    #[test]
    fn kernels_match_plain_loops_on_every_tier() {
        for c in [1, 3, 7, 8, 15, 16, 17, 33, 96] {
            let rows = 37;
            let x = data(rows * c, c as u32);
            let dy = data(rows * c, 7 + c as u32);
            let scale = data(c, 3).iter().map(|v| v * 0.3).collect::<Vec<_>>();
            let shift = data(c, 4).iter().map(|v| v * 0.3 + 3.0).collect::<Vec<_>>();
            let mean = data(c, 5);
            let (a, bx, k) = (data(c, 6), data(c, 8), data(c, 9));
            for act in [Act::None, Act::Relu, Act::Relu6] {
                let (lo, hi) = act.bounds();
                let mut want = (
                    vec![0.0f32; c],
                    vec![0.0f32; c],
                    vec![0.0f32; rows * c],
                    vec![0.0f32; c],
                    vec![0.0f32; c],
                    dy.clone(),
                );
                for r in 0..rows {
                    for j in 0..c {
                        let v = x[r * c + j];
                        want.0[j] += v;
                        want.1[j] += (v - mean[j]) * (v - mean[j]);
                        let z = v * scale[j] + shift[j];
                        want.2[r * c + j] = if act == Act::None {
                            z
                        } else {
                            z.max(lo).min(hi)
                        };
                        let g = if z > lo && z < hi { dy[r * c + j] } else { 0.0 };
                        want.3[j] += g;
                        want.4[j] += g * (v - mean[j]);
                        want.5[r * c + j] = a[j] * g + bx[j] * v + k[j];
                    }
                }
                let p = BnBackward {
                    scale: &scale,
                    shift: &shift,
                    mean: &mean,
                    act,
                };
                for t in TIERS {
                    let mut s = vec![0.0f32; c];
                    sum_rows(t, &x, &mut s);
                    assert_eq!(s, want.0, "sum_rows c={c} {t:?}");
                    let mut s = vec![0.0f32; c];
                    sq_dev_rows(t, &x, &mean, &mut s);
                    assert_eq!(s, want.1, "sq_dev_rows c={c} {t:?}");
                    let mut y = vec![0.0f32; rows * c];
                    affine_act(t, &x, &scale, &shift, act, &mut y);
                    assert_eq!(y, want.2, "affine_act c={c} {act:?} {t:?}");
                    let (mut sg, mut sgx) = (vec![0.0f32; c], vec![0.0f32; c]);
                    backward_sums(t, &x, &dy, p, &mut sg, &mut sgx);
                    assert_eq!((&sg, &sgx), (&want.3, &want.4), "sums c={c} {act:?} {t:?}");
                    let mut d = dy.clone();
                    backward_dx(t, &x, &mut d, p, &a, &bx, &k);
                    assert_eq!(d, want.5, "dx c={c} {act:?} {t:?}");
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "not rows")]
    fn ragged_rows_are_refused() {
        sum_rows(Tier::Scalar, &[1.0; 7], &mut [0.0; 2]);
    }
}
