//! `pointwise::pointwise` (1x1 convolution with fused epilogue and residual) under every
//! tier vs `reference::pointwise`, over tile edges: pixels around the 8- and 12-row tiles
//! and the 48-pixel block, channels around the 16/32/48-lane tiles, with and without scale
//! and residual, every activation, unaligned slices, and a sentinel after the output.

use slimdet_kernels::pointwise::{self, PwEpilogue, PwWeights};
use slimdet_kernels::{Act, dispatch, reference};

use crate::common::{GEMM, Rng, Unaligned, assert_close};

/// Value written after the output; a kernel that writes past `m·n` changes it.
const SENTINEL: f32 = 1234.5;

const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::Relu6];

#[allow(clippy::too_many_arguments)]
fn check(
    rng: &mut Rng,
    m: usize,
    k: usize,
    n: usize,
    scaled: bool,
    res: bool,
    act: Act,
    res_act: Act,
) {
    // Inputs up to ±3 so that ReLU6 clamps on both sides.
    let x: Vec<f32> = rng.vec(m * k).into_iter().map(|v| 3.0 * v).collect();
    let w = rng.vec(k * n);
    let bias = rng.vec(n);
    let scale: Vec<f32> = rng.vec(n).into_iter().map(|v| 2.0 * v).collect();
    let residual: Vec<f32> = rng.vec(m * n).into_iter().map(|v| 4.0 * v).collect();
    let (xu, ru) = (Unaligned::new(&x), Unaligned::new(&residual));
    let epi = PwEpilogue {
        scale: scaled.then_some(scale.as_slice()),
        bias: &bias,
        act,
        residual: res.then_some(ru.get()),
        res_act,
    };
    let mut want = vec![f32::NAN; m * n];
    reference::pointwise(m, k, n, &x, &w, &epi, &mut want);
    for tier in dispatch::available() {
        let mut buf = Unaligned::new(&vec![SENTINEL; m * n + 17]);
        let got = buf.get_mut();
        let pw = PwWeights::pack(tier, &w, k, n);
        pointwise::pointwise(tier, m, xu.get(), &pw, &epi, &mut got[..m * n]);
        let what = format!(
            "pointwise {} m{m} k{k} n{n} scaled={scaled} residual={res} act={} res_act={}",
            pointwise::kernel_id(tier),
            act.name(),
            res_act.name()
        );
        assert_close(&got[..m * n], &want, GEMM, &what);
        assert!(
            got[m * n..].iter().all(|&v| v == SENTINEL),
            "{what}: wrote past the output"
        );
    }
}

#[test]
fn pointwise_tile_edges_match_reference() {
    let mut rng = Rng::new(40);
    for m in [1, 7, 8, 9, 11, 12, 13, 47, 48, 49, 97] {
        for n in [1, 15, 16, 17, 31, 32, 33, 47, 48, 49, 96, 126] {
            for k in [1, 3, 16, 27] {
                let act = rng.pick(&ACTS);
                let (scaled, res) = (rng.range(0, 1) == 1, rng.range(0, 1) == 1);
                check(&mut rng, m, k, n, scaled, res, act, Act::None);
            }
        }
    }
}

#[test]
fn pointwise_epilogues_match_reference() {
    let mut rng = Rng::new(41);
    for scaled in [false, true] {
        for res in [false, true] {
            for act in ACTS {
                for res_act in ACTS {
                    check(&mut rng, 29, 24, 50, scaled, res, act, res_act);
                }
            }
        }
    }
}

#[test]
fn pointwise_random_shapes_match_reference() {
    let mut rng = Rng::new(42);
    for _ in 0..150 {
        let (m, k, n) = (rng.range(1, 130), rng.range(0, 200), rng.range(1, 170));
        let (act, res_act) = (rng.pick(&ACTS), rng.pick(&ACTS));
        let (scaled, res) = (rng.range(0, 1) == 1, rng.range(0, 1) == 1);
        check(&mut rng, m, k, n, scaled, res, act, res_act);
    }
}

/// A NaN accumulator becomes the lower bound under a clamping activation (as `f32::max`
/// does) and stays NaN without one, in every tier.
#[test]
fn pointwise_nan_follows_the_reference() {
    let x = [f32::NAN, 1.0];
    let w = [1.0, 1.0];
    let bias = [0.5];
    for act in ACTS {
        let epi = PwEpilogue {
            scale: None,
            bias: &bias,
            act,
            residual: None,
            res_act: Act::None,
        };
        for tier in dispatch::available() {
            let mut out = [0.0];
            let pw = PwWeights::pack(tier, &w, 2, 1);
            pointwise::pointwise(tier, 1, &x, &pw, &epi, &mut out);
            match act {
                Act::None => assert!(out[0].is_nan(), "{}", tier.name()),
                _ => assert_eq!(out[0], 0.0, "{} {}", tier.name(), act.name()),
            }
        }
    }
}

/// Weights packed for one tier and run under another (a plan compiled for AVX-512 and run
/// with a lower tier) still give the reference result.
#[test]
fn pointwise_weights_from_another_tier_match_reference() {
    let mut rng = Rng::new(43);
    let (m, k, n) = (37, 19, 53);
    let (x, w, bias) = (rng.vec(m * k), rng.vec(k * n), rng.vec(n));
    let epi = PwEpilogue {
        scale: None,
        bias: &bias,
        act: Act::Relu6,
        residual: None,
        res_act: Act::None,
    };
    let mut want = vec![0.0; m * n];
    reference::pointwise(m, k, n, &x, &w, &epi, &mut want);
    for packed_for in dispatch::available() {
        let pw = PwWeights::pack(packed_for, &w, k, n);
        for tier in dispatch::available() {
            let mut got = vec![f32::NAN; m * n];
            pointwise::pointwise(tier, m, &x, &pw, &epi, &mut got);
            let what = format!("packed for {}, run as {}", packed_for.name(), tier.name());
            assert_close(&got, &want, GEMM, &what);
        }
    }
}
