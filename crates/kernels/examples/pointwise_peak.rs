//! Measures the single-thread fp32 GEMM peak (the `gemm` crate on a large square product)
//! and the GFLOP/s of each MobileNetV2-SSD-Lite 1x1 convolution shape under the tier's
//! pointwise kernel (with bias and ReLU6 fused), next to `gemm` + a separate epilogue pass.
//!
//! `cargo run --release -p slimdet-kernels --example pointwise_peak [-- REPEATS]`

use std::time::Instant;

use slimdet_kernels::pointwise::{self, PwEpilogue, PwWeights};
use slimdet_kernels::sgemm::{GemmShape, sgemm};
use slimdet_kernels::{Act, tier};

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

/// Best wall time of `reps` calls of `f`, in seconds.
fn best(reps: usize, mut f: impl FnMut()) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let t = Instant::now();
            f();
            t.elapsed().as_secs_f64()
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let reps: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(20);
    let t = tier();
    // The peak: the best `gemm` rate over square products from L2-resident to large (the
    // best of many short runs is the least disturbed by other processes on a shared core).
    let mut peak: f64 = 0.0;
    for d in [256, 512, 1024] {
        let (a, b) = (data(d * d, 1), data(d * d, 2));
        let mut c = vec![0.0; d * d];
        let runs = reps * (1024 / d) * (1024 / d) / 4;
        let s = best(runs.clamp(5, 2000), || {
            sgemm(t, GemmShape::dense(d, d, d), &a, &b, &mut c, false, 1)
        });
        let rate = 2.0 * (d * d * d) as f64 / s / 1e9;
        println!(
            "tier {}: gemm {d}x{d}x{d} fp32 1 thread: {rate:.1} GFLOP/s",
            t.name()
        );
        peak = peak.max(rate);
    }
    println!("measured peak: {peak:.1} GFLOP/s");
    println!(
        "{:>9} {:>5} {:>5} | {:>9} {:>7} | {:>9} {:>7} {:>6}",
        "pixels", "k", "n", "gemm+epi", "GFLOP/s", "pointwise", "GFLOP/s", "%peak"
    );
    // (H·W, in_c, out_c) of the MobileNetV2-SSD-Lite 1x1 layers at 300x300.
    let shapes = [
        (48, 64, 48),
        (96, 256, 48),
        (96, 256, 96),
        (22500, 32, 16),
        (22500, 16, 96),
        (5625, 96, 24),
        (5625, 24, 144),
        (5625, 144, 24),
        (1444, 144, 32),
        (1444, 32, 192),
        (1444, 192, 32),
        (361, 192, 64),
        (361, 64, 384),
        (361, 384, 64),
        (361, 384, 96),
        (361, 96, 576),
        (361, 576, 96),
        (100, 576, 160),
        (100, 160, 960),
        (100, 960, 160),
        (100, 960, 320),
        (100, 320, 1280),
        (100, 1280, 256),
    ];
    for (m, k, n) in shapes {
        let (x, w, bias) = (data(m * k, 3), data(k * n, 4), data(n, 5));
        let mut out = vec![0.0; m * n];
        let epi = PwEpilogue {
            scale: None,
            bias: &bias,
            act: Act::Relu6,
            residual: None,
            res_act: Act::None,
        };
        let flop = 2.0 * (m * n * k) as f64;
        let g = best(reps, || {
            sgemm(t, GemmShape::dense(m, n, k), &x, &w, &mut out, false, 1);
            pointwise::apply_epilogue(&epi, &mut out);
        });
        let pw = PwWeights::pack(t, &w, k, n);
        let p = best(reps, || pointwise::pointwise(t, m, &x, &pw, &epi, &mut out));
        println!(
            "{m:>9} {k:>5} {n:>5} | {:>8.3}ms {:>7.1} | {:>8.3}ms {:>7.1} {:>5.0}%",
            g * 1e3,
            flop / g / 1e9,
            p * 1e3,
            flop / p / 1e9,
            100.0 * flop / p / 1e9 / peak
        );
    }
}
