//! bf16 GEMM against the f32 GEMM (`gemm` crate) on pointwise shapes of
//! MobileNetV2-SSD-Lite training (batch 8 of 300x300), single-threaded. Throughput counts
//! operations (a multiply-add is 2); divan prints it as `item/s`. Operands are packed
//! beforehand: the timed work is the product alone.
//!
//! `cargo bench -p slimdet-kernels --bench gemm_bf16`

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use slimdet_kernels::bf16_gemm::{PackedBf16B, gemm_bf16f32, pack_a};
use slimdet_kernels::sgemm::{GemmShape, sgemm};

fn main() {
    divan::main();
}

/// `(m, k, n)`: expansion 150x150 16→96, projection 75x75 144→24, 19x19 96→576 (batch 8).
const SHAPES: [(usize, usize, usize); 3] = [
    (8 * 150 * 150, 16, 96),
    (8 * 75 * 75, 144, 24),
    (8 * 19 * 19, 96, 576),
];

fn data(len: usize) -> Vec<f32> {
    (0..len)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.01)
        .collect()
}

#[divan::bench(args = SHAPES)]
fn f32_gemm(b: Bencher, (m, k, n): (usize, usize, usize)) {
    let (a, w) = (data(m * k), data(k * n));
    let mut c = vec![0.0f32; m * n];
    b.counter(ItemsCount::new(2 * m * k * n)).bench_local(|| {
        sgemm(
            slimdet_kernels::tier(),
            GemmShape::dense(m, n, k),
            black_box(&a),
            black_box(&w),
            &mut c,
            false,
            1,
        )
    });
}

#[divan::bench(args = SHAPES)]
fn bf16_gemm(b: Bencher, (m, k, n): (usize, usize, usize)) {
    let a = pack_a(slimdet_kernels::tier(), &data(m * k), m, k);
    let w = PackedBf16B::from_f32(slimdet_kernels::tier(), &data(k * n), k, n);
    let mut c = vec![0.0f32; m * n];
    b.counter(ItemsCount::new(2 * m * k * n))
        .bench_local(|| gemm_bf16f32(slimdet_kernels::tier(), m, black_box(&a), &w, &mut c, false));
}
