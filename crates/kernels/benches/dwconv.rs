//! Depthwise 3x3 and 1x1-convolution GEMM micro-benchmarks on MobileNetV2-SSD-Lite shapes.
//!
//! Each depthwise shape runs the plain-loop reference, the portable path (the scalar tier)
//! and every SIMD tier this CPU has, single-threaded, with ReLU6 fused. Throughput counts
//! FLOP (a multiply-add is 2) and divan prints it as `item/s`.
//!
//! `cargo bench -p slimdet-kernels --bench dwconv`

use std::fmt;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use slimdet_kernels::reference::{self, ConvGeom};
use slimdet_kernels::sgemm::{self, GemmShape};
use slimdet_kernels::{Act, Tier, dispatch, dwconv};

fn main() {
    divan::main();
}

/// A depthwise 3x3 layer with padding 1: input `[h, w, c]`.
#[derive(Clone, Copy)]
struct Dw {
    h: usize,
    w: usize,
    c: usize,
    stride: usize,
}

/// MobileNetV2 (300x300 input) depthwise layers, from the widest map to the deepest.
const DW_SHAPES: [Dw; 6] = [
    Dw::new(150, 150, 96, 2),
    Dw::new(75, 75, 144, 1),
    Dw::new(75, 75, 144, 2),
    Dw::new(19, 19, 576, 1),
    Dw::new(10, 10, 960, 1),
    // Not a MobileNetV2 layer: small enough to stay in L1, so it shows the kernels'
    // arithmetic throughput without the memory hierarchy.
    Dw::new(4, 120, 16, 1),
];

impl Dw {
    const fn new(h: usize, w: usize, c: usize, stride: usize) -> Self {
        Dw { h, w, c, stride }
    }

    fn geom(self) -> ConvGeom {
        ConvGeom {
            in_h: self.h,
            in_w: self.w,
            in_c: self.c,
            out_c: self.c,
            kh: 3,
            kw: 3,
            stride_h: self.stride,
            stride_w: self.stride,
            pad_h: 1,
            pad_w: 1,
            pad_h_end: 1,
            pad_w_end: 1,
            dil_h: 1,
            dil_w: 1,
            groups: self.c,
        }
    }

    fn flops(self) -> usize {
        let g = self.geom();
        2 * 9 * g.out_h() * g.out_w() * g.out_c
    }
}

impl fmt::Display for Dw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}/s{}", self.h, self.w, self.c, self.stride)
    }
}

/// Deterministic values in [-1, 1) (the data does not change the timing).
fn data(n: usize, seed: u32) -> Vec<f32> {
    (0..n as u32)
        .map(|i| ((i.wrapping_mul(2_654_435_761) ^ seed) >> 8) as f32 / (1u32 << 23) as f32 - 1.0)
        .collect()
}

/// Operands of one depthwise layer: input, OIHW weight, packed weight, bias, output.
struct DwData {
    g: ConvGeom,
    input: Vec<f32>,
    oihw: Vec<f32>,
    packed: Vec<f32>,
    bias: Vec<f32>,
    out: Vec<f32>,
}

impl DwData {
    fn new(s: Dw) -> Self {
        let g = s.geom();
        let oihw = data(9 * s.c, 2);
        DwData {
            g,
            input: data(s.h * s.w * s.c, 1),
            packed: dwconv::pack_weight(&oihw, s.c, 3, 3),
            oihw,
            bias: data(s.c, 3),
            out: vec![0.0; g.out_h() * g.out_w() * s.c],
        }
    }
}

/// A SIMD tier on one shape, named by kernel id.
#[derive(Clone, Copy)]
struct TierDw(Tier, Dw);

impl fmt::Display for TierDw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(
            f,
            "{} {}",
            dwconv::kernel_id(self.0, &self.1.geom(), Act::Relu6),
            self.1
        )
    }
}

fn simd_cases() -> Vec<TierDw> {
    let tiers = dispatch::available()
        .into_iter()
        .filter(|&t| t != Tier::Scalar);
    tiers
        .flat_map(|t| DW_SHAPES.map(|s| TierDw(t, s)))
        .collect()
}

mod dwconv3x3 {
    use super::*;

    #[divan::bench(args = simd_cases())]
    fn simd(bencher: Bencher, case: TierDw) {
        let TierDw(tier, shape) = case;
        let mut d = DwData::new(shape);
        let oh = d.g.out_h();
        bencher
            .counter(ItemsCount::new(shape.flops()))
            .bench_local(|| {
                dwconv::dwconv_rows(
                    tier,
                    &d.g,
                    black_box(&d.input),
                    &d.packed,
                    &d.bias,
                    Act::Relu6,
                    0..oh,
                    black_box(&mut d.out),
                )
            });
    }

    #[divan::bench(args = DW_SHAPES, sample_count = 30)]
    fn portable(bencher: Bencher, shape: Dw) {
        let mut d = DwData::new(shape);
        let oh = d.g.out_h();
        bencher
            .counter(ItemsCount::new(shape.flops()))
            .bench_local(|| {
                dwconv::portable_rows(
                    &d.g,
                    black_box(&d.input),
                    &d.packed,
                    None,
                    &d.bias,
                    Act::Relu6,
                    0..oh,
                    black_box(&mut d.out),
                )
            });
    }

    #[divan::bench(args = DW_SHAPES, sample_count = 10)]
    fn reference(bencher: Bencher, shape: Dw) {
        let mut d = DwData::new(shape);
        bencher
            .counter(ItemsCount::new(shape.flops()))
            .bench_local(|| {
                reference::conv2d(
                    &d.g,
                    black_box(&d.input),
                    &d.oihw,
                    &d.bias,
                    Act::Relu6,
                    black_box(&mut d.out),
                )
            });
    }
}

/// A 1x1 convolution as GEMM: `[m = H·W, k = in_c] · [k, n = out_c]`.
#[derive(Clone, Copy)]
struct Mm {
    m: usize,
    n: usize,
    k: usize,
}

impl fmt::Display for Mm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{}_n{}_k{}", self.m, self.n, self.k)
    }
}

/// MobileNetV2 expansion layers: 75x75 24→144, 19x19 96→576, 10x10 160→960.
const GEMM_SHAPES: [Mm; 3] = [
    Mm {
        m: 5625,
        n: 144,
        k: 24,
    },
    Mm {
        m: 361,
        n: 576,
        k: 96,
    },
    Mm {
        m: 100,
        n: 960,
        k: 160,
    },
];

/// Small enough for the scalar reference to finish quickly.
const GEMM_SMALL: [Mm; 1] = [Mm {
    m: 64,
    n: 96,
    k: 48,
}];

fn run_gemm(bencher: Bencher, s: Mm, tier: Tier) {
    let a = data(s.m * s.k, 4);
    let b = data(s.k * s.n, 5);
    let mut c = vec![0.0; s.m * s.n];
    let shape = GemmShape::dense(s.m, s.n, s.k);
    bencher
        .counter(ItemsCount::new(2 * s.m * s.n * s.k))
        .bench_local(|| sgemm::sgemm(tier, shape, black_box(&a), &b, black_box(&mut c), false, 1));
}

mod sgemm_1x1 {
    use super::*;

    /// The `gemm` crate (it picks its own ISA) under the best tier.
    #[divan::bench(args = GEMM_SHAPES)]
    fn gemm(bencher: Bencher, s: Mm) {
        run_gemm(bencher, s, dispatch::detected());
    }

    #[divan::bench(args = GEMM_SMALL)]
    fn gemm_small(bencher: Bencher, s: Mm) {
        run_gemm(bencher, s, dispatch::detected());
    }

    #[divan::bench(args = GEMM_SMALL)]
    fn reference_small(bencher: Bencher, s: Mm) {
        run_gemm(bencher, s, Tier::Scalar);
    }
}
