//! Measures where the sparse 1x1 kernel beats the dense GEMM, on MobileNetV2-SSD-Lite's
//! pointwise shapes at 300x300, one thread:
//! `cargo run --release -p slimdet-kernels --example spmm_breakeven [threads]`.
//! Prints, per shape and sparsity, dense and sparse milliseconds and their ratio, then the
//! interpolated break-even sparsity per shape. The executor's threshold
//! (`slimdet_core::sparse::BREAK_EVEN_SPARSITY`) and BENCHMARKS.md cite this output.

use std::time::Instant;

use slimdet_kernels::sgemm::{GemmShape, sgemm};
use slimdet_kernels::sparse::{SparseWeights, spmm};
use slimdet_kernels::{Act, tier};

/// Fastest of `reps` runs after one warm-up, in ms: on a shared machine the minimum is
/// the run least disturbed by other processes.
fn min_ms(mut f: impl FnMut(), reps: usize, _threads: usize) -> f64 {
    f();
    (0..reps)
        .map(|_| {
            let s = Instant::now();
            f();
            s.elapsed().as_secs_f64() * 1e3
        })
        .fold(f64::INFINITY, f64::min)
}

fn main() {
    let threads: usize = std::env::args()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .unwrap();
    let shapes = [
        (150 * 150, 16, 96),
        (150 * 150, 32, 16),
        (75 * 75, 96, 24),
        (75 * 75, 24, 144),
        (75 * 75, 144, 24),
        (38 * 38, 32, 192),
        (38 * 38, 192, 32),
        (19 * 19, 64, 384),
        (19 * 19, 384, 64),
        (19 * 19, 96, 576),
        (19 * 19, 576, 96),
        (10 * 10, 160, 960),
        (10 * 10, 960, 160),
        (10 * 10, 320, 1280),
    ];
    let sparsities: [f32; 8] = [0.0, 0.3, 0.5, 0.6, 0.7, 0.8, 0.9, 0.95];
    let t = tier();
    println!("tier {} threads {threads}", t.name());
    println!(
        "{:>6} {:>5} {:>5} {:>9} | sparse/dense time at sparsity {:?} | break-even",
        "P", "I", "O", "dense_ms", sparsities
    );
    let mut s = 12345u64;
    let mut rnd = move || {
        s ^= s << 13;
        s ^= s >> 7;
        s ^= s << 17;
        (s >> 40) as f32 / (1u64 << 24) as f32
    };
    pool.install(|| {
        for (p, i, o) in shapes {
            let x: Vec<f32> = (0..p * i).map(|_| rnd() - 0.5).collect();
            let bias = vec![0.1f32; o];
            let mut out = vec![0.0f32; p * o];
            let dense_w: Vec<f32> = (0..i * o).map(|_| rnd() - 0.5).collect();
            let reps = (2e8 / (p * i * o) as f64).clamp(5.0, 200.0) as usize;
            let dense = min_ms(
                || {
                    sgemm(
                        t,
                        GemmShape::dense(p, o, i),
                        &x,
                        &dense_w,
                        &mut out,
                        false,
                        threads,
                    );
                    for row in out.chunks_mut(o) {
                        for (v, b) in row.iter_mut().zip(&bias) {
                            *v = (*v + b).clamp(0.0, 6.0);
                        }
                    }
                },
                reps,
                threads,
            );
            let mut ratios = Vec::new();
            for &sp in &sparsities {
                let w: Vec<f32> = (0..o * i)
                    .map(|_| if rnd() < sp { 0.0 } else { rnd() - 0.5 })
                    .collect();
                let sw = SparseWeights::from_dense(&w, o, i).unwrap();
                let ms = min_ms(
                    || spmm(t, &sw, &x, None, &bias, Act::Relu6, &mut out, threads),
                    reps,
                    threads,
                );
                ratios.push((ms / dense) as f32);
            }
            let mut be = f32::NAN;
            for k in 1..sparsities.len() {
                if ratios[k - 1] >= 1.0 && ratios[k] < 1.0 {
                    let f = (ratios[k - 1] - 1.0) / (ratios[k - 1] - ratios[k]);
                    be = sparsities[k - 1] + f * (sparsities[k] - sparsities[k - 1]);
                }
            }
            if ratios[0] < 1.0 {
                be = 0.0;
            }
            let r: Vec<String> = ratios.iter().map(|r| format!("{r:.2}")).collect();
            println!(
                "{p:>6} {i:>5} {o:>5} {dense:>9.3} | {} | {be:.2} {}",
                r.join(" "),
                slimdet_kernels::sparse::kernel_id(t, i)
            );
        }
    });
}
