//! Sparse 1x1 (SpMM) conformance: every tier against a dense f64 reference, over the
//! XNNPACK-style edge grid (channels 1, tile − 1, tile, tile + 1, odd sizes; pixel counts
//! around the tile and the 64-pixel work item), with and without a BN scale, with ReLU6,
//! on 1 and 2 threads.

use slimdet_kernels::sparse::{SparseWeights, spmm, spmm_reference};
use slimdet_kernels::{Act, Tier, dispatch};

/// Named tolerance: outputs are O(1) (weights scaled by 1/√I), so 1e-5 absolute.
const SPMM_ABS: f32 = 1e-5;

struct Rng(u64);
impl Rng {
    fn f32(&mut self) -> f32 {
        self.0 ^= self.0 << 13;
        self.0 ^= self.0 >> 7;
        self.0 ^= self.0 << 17;
        ((self.0 >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }
}

/// Dense `[O, I]` weights with a fraction `sparsity` of exact zeros.
fn weights(rng: &mut Rng, o: usize, i: usize, sparsity: f32) -> Vec<f32> {
    let s = 1.0 / (i as f32).sqrt();
    (0..o * i)
        .map(|_| {
            let keep = (rng.f32() + 1.0) / 2.0 >= sparsity;
            let v = rng.f32() * s;
            if keep { v } else { 0.0 }
        })
        .collect()
}

fn dense_f64(
    w: &[f32],
    x: &[f32],
    o: usize,
    i: usize,
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
) -> Vec<f32> {
    let p = x.len() / i.max(1);
    let (lo, hi) = act.bounds();
    let mut out = vec![0.0; p * o];
    for pi in 0..p {
        for oi in 0..o {
            let mut acc = 0.0f64;
            for ii in 0..i {
                acc += w[oi * i + ii] as f64 * x[pi * i + ii] as f64;
            }
            let s = scale.map_or(1.0, |s| s[oi] as f64);
            out[pi * o + oi] = ((acc * s + bias[oi] as f64) as f32).max(lo).min(hi);
        }
    }
    out
}

fn max_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

#[test]
fn spmm_matches_dense_on_edge_grid() {
    let mut rng = Rng(0x1234_5678);
    let chans = [1, 7, 8, 9, 15, 16, 17, 33, 49];
    let pixels = [1, 7, 15, 16, 17, 63, 64, 65, 131];
    let mut cases = 0;
    for tier in dispatch::available() {
        for &i in &chans {
            for &o in &chans {
                for (k, &sp) in [0.0, 0.5, 0.9, 1.0].iter().enumerate() {
                    let p = pixels[(i + o + k) % pixels.len()];
                    let w = weights(&mut rng, o, i, sp);
                    let x: Vec<f32> = (0..p * i).map(|_| rng.f32()).collect();
                    let bias: Vec<f32> = (0..o).map(|_| rng.f32()).collect();
                    let scale: Vec<f32> = (0..o).map(|_| rng.f32() * 2.0).collect();
                    let sw = SparseWeights::from_dense(&w, o, i).unwrap();
                    for (sc, act) in [(None, Act::None), (Some(&scale[..]), Act::Relu6)] {
                        let want = dense_f64(&w, &x, o, i, sc, &bias, act);
                        let mut r = vec![f32::NAN; p * o];
                        spmm_reference(&sw, &x, sc, &bias, act, &mut r);
                        assert!(max_diff(&r, &want) <= SPMM_ABS, "reference {i}x{o} p{p}");
                        for threads in [1, 2] {
                            let mut got = vec![f32::NAN; p * o];
                            spmm(tier, &sw, &x, sc, &bias, act, &mut got, threads);
                            let d = max_diff(&got, &want);
                            assert!(
                                d <= SPMM_ABS,
                                "{tier:?} I={i} O={o} P={p} sparsity {sp} act {act:?} threads {threads}: {d}"
                            );
                        }
                        cases += 1;
                    }
                }
            }
        }
    }
    assert!(cases >= 2 * 81 * 4);
}

#[test]
fn large_layers_match_dense() {
    // A MobileNetV2 expansion shape (96 -> 576) on 19x19 pixels, and input widths on both
    // sides of the AVX-512 wide-tile limit (192), with odd outputs and pixel tails.
    let mut rng = Rng(99);
    for (i, o, p) in [(96, 576, 361), (192, 33, 97), (193, 17, 45), (577, 40, 70)] {
        let w = weights(&mut rng, o, i, 0.8);
        let x: Vec<f32> = (0..p * i).map(|_| rng.f32()).collect();
        let bias: Vec<f32> = (0..o).map(|_| rng.f32()).collect();
        let scale: Vec<f32> = (0..o).map(|_| rng.f32()).collect();
        let sw = SparseWeights::from_dense(&w, o, i).unwrap();
        assert!((sw.sparsity() - 0.8).abs() < 0.05);
        let want = dense_f64(&w, &x, o, i, Some(&scale), &bias, Act::Relu6);
        for tier in dispatch::available() {
            for threads in [1, 2] {
                let mut got = vec![0.0; p * o];
                spmm(
                    tier,
                    &sw,
                    &x,
                    Some(&scale),
                    &bias,
                    Act::Relu6,
                    &mut got,
                    threads,
                );
                let d = max_diff(&got, &want);
                assert!(d <= SPMM_ABS, "{tier:?} {i}x{o} P={p}: {d}");
            }
        }
    }
}

#[test]
fn csr_construction() {
    let w = [0.0, 1.0, -0.0, 2.0, 0.0, 0.0];
    let sw = SparseWeights::from_dense(&w, 2, 3).unwrap();
    assert_eq!(sw.nnz(), 2);
    assert!((sw.sparsity() - 4.0 / 6.0).abs() < 1e-12);
    assert!(SparseWeights::from_dense(&w, 4, 2).is_none());
    assert!(format!("{sw:?}").contains("nnz 2"));
    let _ = Tier::Scalar;
}
