//! bf16 GEMM: every tier against `gemm_bf16f32_reference` within `bf16_gemm::TOLERANCE` of
//! `Σ|a·b|`, over XNNPACK-style edges (rows around the 4-row block, columns around the
//! 16-column panel and the 32-column pair, odd and even depths), overwriting and
//! accumulating; and the reference against f64 sums of the bf16-rounded operands.

use slimdet_kernels::bf16::bf16_to_f32_exact;
use slimdet_kernels::bf16_gemm::{
    PackedBf16B, TOLERANCE, gemm_bf16f32, gemm_bf16f32_reference, kernel_id, pack_a,
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
                let a = pack_a(&a32, m, k);
                let b = PackedBf16B::from_f32(&b32, k, n);
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
