//! bf16 GEMM: every tier against `gemm_bf16f32_reference` within `bf16_gemm::TOLERANCE` of
//! `Σ|a·b|`, over XNNPACK-style edges (rows around the 4-row block, columns around the
//! 16-column panel and the 32-column pair, odd and even depths), overwriting and
//! accumulating; and the reference against f64 sums of the bf16-rounded operands.

use slimdet_kernels::bf16::{bf16_to_f32_exact, f32_to_bf16_rne};
use slimdet_kernels::bf16_gemm::{
    PackedBf16B, TOLERANCE, gemm_bf16f32, gemm_bf16f32_at, gemm_bf16f32_at_reference,
    gemm_bf16f32_reference, kernel_id, pack_a, pack_a_t,
};
use slimdet_kernels::dispatch;

use crate::common::Rng;

const ROWS: [usize; 6] = [1, 3, 4, 5, 8, 9];
const COLS: [usize; 8] = [1, 15, 16, 17, 31, 32, 33, 49];
const DEPTHS: [usize; 8] = [1, 2, 3, 31, 32, 33, 64, 97];

/// `Σ_p |a_p · b_p|` per output, from the bf16 operands, and the exact (f64) sums.
fn magnitudes(a: &[u16], b: &[f32], m: usize, n: usize, k: usize) -> (Vec<f64>, Vec<f64>) {
    let kp2 = k.div_ceil(2) * 2;
    let bq: Vec<f64> = b
        .iter()
        .map(|&x| bf16_to_f32_exact(slimdet_kernels::bf16::f32_to_bf16_rne(x)) as f64)
        .collect();
    let mut mag = vec![0.0; m * n];
    let mut exact = vec![0.0; m * n];
    for i in 0..m {
        for j in 0..n {
            for d in 0..k {
                let p = bf16_to_f32_exact(a[i * kp2 + d]) as f64 * bq[d * n + j];
                mag[i * n + j] += p.abs();
                exact[i * n + j] += p;
            }
        }
    }
    (mag, exact)
}

#[test]
fn bf16_gemm_tiers_match_the_reference_over_the_edge_grid() {
    let mut rng = Rng::new(21);
    let mut checked = 0;
    for &m in &ROWS {
        for &n in &COLS {
            for &k in &DEPTHS {
                let a32: Vec<f32> = rng.vec(m * k);
                let b32: Vec<f32> = rng.vec(k * n);
                let a = pack_a(dispatch::tier(), &a32, m, k);
                let b = PackedBf16B::from_f32(dispatch::tier(), &b32, k, n);
                let (mag, exact) = magnitudes(&a, &b32, m, n, k);
                let c0: Vec<f32> = rng.vec(m * n);
                for accumulate in [false, true] {
                    let mut want = c0.clone();
                    gemm_bf16f32_reference(m, &a, &b, &mut want, accumulate);
                    for (o, &w) in want.iter().enumerate() {
                        let e = exact[o] + if accumulate { c0[o] as f64 } else { 0.0 };
                        let tol = TOLERANCE as f64 * (mag[o] + c0[o].abs() as f64) + 1e-30;
                        assert!(
                            (w as f64 - e).abs() <= tol,
                            "reference m{m} n{n} k{k} [{o}]"
                        );
                    }
                    for tier in dispatch::available() {
                        let mut got = c0.clone();
                        gemm_bf16f32(tier, m, &a, &b, &mut got, accumulate);
                        for (o, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            let tol = TOLERANCE * (mag[o] as f32 + c0[o].abs()) + 1e-30;
                            assert!(
                                (g - w).abs() <= tol,
                                "{} m{m} n{n} k{k} acc {accumulate} [{o}]: {g} vs {w}",
                                kernel_id(tier)
                            );
                        }
                        checked += 1;
                    }
                }
            }
        }
    }
    assert!(checked >= ROWS.len() * COLS.len() * DEPTHS.len() * 2);
}

#[test]
fn pack_a_t_interleaves_row_pairs_bit_for_bit() {
    let mut rng = Rng::new(22);
    for &m in &ROWS {
        for &k in &DEPTHS {
            let a: Vec<f32> = rng.vec(k * m);
            for tier in dispatch::available() {
                let got = pack_a_t(tier, &a, k, m);
                assert_eq!(got.len(), k.div_ceil(2) * m * 2, "m{m} k{k}");
                for (at, &h) in got.iter().enumerate() {
                    let (p, i, half) = (at / (2 * m), (at / 2) % m, at % 2);
                    let d = 2 * p + half;
                    let want = if d < k {
                        f32_to_bf16_rne(a[d * m + i])
                    } else {
                        0
                    };
                    assert_eq!(h, want, "{tier:?} m{m} k{k} pair {p} row {i} half {half}");
                }
            }
        }
    }
}

/// Row-major packing of `A`: bf16 of each value, zero padding, on every tier.
#[test]
fn pack_a_layout_bit_for_bit() {
    let mut rng = Rng::new(25);
    for &m in &ROWS {
        for &k in &DEPTHS {
            let a: Vec<f32> = rng.vec(m * k);
            let kp2 = k.div_ceil(2) * 2;
            for tier in dispatch::available() {
                let got = pack_a(tier, &a, m, k);
                assert_eq!(got.len(), m * kp2);
                for (at, &h) in got.iter().enumerate() {
                    let (i, d) = (at / kp2, at % kp2);
                    let want = if d < k {
                        f32_to_bf16_rne(a[i * k + d])
                    } else {
                        0
                    };
                    assert_eq!(h, want, "{tier:?} m{m} k{k} at {at}");
                }
            }
        }
    }
}

/// The transposed-A product equals the row-major one on the transposed matrix: the
/// reference exactly (same sums in the same order), every tier within the tolerance.
#[test]
fn bf16_gemm_at_matches_the_row_major_product_of_the_transpose() {
    let mut rng = Rng::new(23);
    for &m in &ROWS {
        for &n in &COLS {
            for &k in &DEPTHS {
                let a_km: Vec<f32> = rng.vec(k * m);
                let mut a_mk = vec![0.0f32; m * k];
                for d in 0..k {
                    for i in 0..m {
                        a_mk[i * k + d] = a_km[d * m + i];
                    }
                }
                let b32: Vec<f32> = rng.vec(k * n);
                let t = dispatch::tier();
                let b = PackedBf16B::from_f32(t, &b32, k, n);
                let (a, at) = (pack_a(t, &a_mk, m, k), pack_a_t(t, &a_km, k, m));
                let (mag, _) = magnitudes(&a, &b32, m, n, k);
                let c0: Vec<f32> = rng.vec(m * n);
                for accumulate in [false, true] {
                    let mut want = c0.clone();
                    gemm_bf16f32_reference(m, &a, &b, &mut want, accumulate);
                    let mut got = c0.clone();
                    gemm_bf16f32_at_reference(m, &at, &b, &mut got, accumulate);
                    assert_eq!(got, want, "reference m{m} n{n} k{k}");
                    for tier in dispatch::available() {
                        let mut got = c0.clone();
                        gemm_bf16f32_at(tier, m, &at, &b, &mut got, accumulate);
                        for (o, (&g, &w)) in got.iter().zip(&want).enumerate() {
                            let tol = TOLERANCE * (mag[o] as f32 + c0[o].abs()) + 1e-30;
                            assert!(
                                (g - w).abs() <= tol,
                                "{} (Aᵀ) m{m} n{n} k{k} acc {accumulate} [{o}]: {g} vs {w}",
                                kernel_id(tier)
                            );
                        }
                    }
                }
            }
        }
    }
}

/// The packed `B` holds bf16(b[d, j]) at its documented position and zeros in the padding.
#[test]
fn packed_b_layout_bit_for_bit() {
    let mut rng = Rng::new(24);
    for &n in &COLS {
        for &k in &DEPTHS {
            let b32: Vec<f32> = rng.vec(k * n);
            let kp = k.div_ceil(2);
            for tier in dispatch::available() {
                let b = PackedBf16B::from_f32(tier, &b32, k, n);
                let data = b.as_slice();
                assert_eq!(data.len(), n.div_ceil(16) * kp * 32);
                for (at, &h) in data.iter().enumerate() {
                    let (panel, rest) = (at / (kp * 32), at % (kp * 32));
                    let (p, col, half) = (rest / 32, (rest / 2) % 16, rest % 2);
                    let (d, j) = (2 * p + half, panel * 16 + col);
                    let want = if d < k && j < n {
                        f32_to_bf16_rne(b32[d * n + j])
                    } else {
                        0
                    };
                    assert_eq!(h, want, "{tier:?} n{n} k{k} at {at}");
                }
            }
        }
    }
}
