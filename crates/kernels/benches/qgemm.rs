//! Int8 micro-benchmarks: the `u8 × i8` GEMM with fused requantization (pointwise
//! convolutions) and the int8 depthwise 3x3, on MobileNetV2-SSD-Lite shapes, for the
//! reference and every int8 SIMD path this CPU has, single-threaded. Throughput counts
//! operations (a multiply-add is 2); divan prints it as `item/s`. The AVX-512 VNNI peak
//! is 64 MACs × 2 ops × 2 `vpdpbusd` per cycle per core (~1050 GOP/s at 4.1 GHz).
//!
//! `cargo bench -p slimdet-kernels --bench qgemm`

use std::fmt;

use divan::counter::ItemsCount;
use divan::{Bencher, black_box};
use slimdet_kernels::quant::qdwconv::{pack_weight, qdwconv_kernel_id, qdwconv_reference};
use slimdet_kernels::quant::qgemm::{qgemm_kernel_id, qgemm_reference};
use slimdet_kernels::quant::*;
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Tier, dispatch};

fn main() {
    divan::main();
}

/// `[m, k] · [k, n]`.
#[derive(Clone, Copy)]
struct Mm {
    m: usize,
    n: usize,
    k: usize,
}

/// Pointwise layers of MobileNetV2-SSD-Lite (300x300), plus one square compute-bound
/// shape that fits in L2 to show the micro-kernel's peak.
const MM: [Mm; 6] = [
    Mm {
        m: 150 * 150,
        n: 96,
        k: 16,
    },
    Mm {
        m: 75 * 75,
        n: 144,
        k: 24,
    },
    Mm {
        m: 75 * 75,
        n: 24,
        k: 144,
    },
    Mm {
        m: 19 * 19,
        n: 576,
        k: 96,
    },
    Mm {
        m: 10 * 10,
        n: 1280,
        k: 320,
    },
    Mm {
        m: 384,
        n: 256,
        k: 512,
    },
];

impl fmt::Display for Mm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "m{} n{} k{}", self.m, self.n, self.k)
    }
}

#[derive(Clone, Copy)]
struct TierMm(Tier, Mm);

impl fmt::Display for TierMm {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", qgemm_kernel_id(self.0), self.1)
    }
}

fn bytes(n: usize, seed: u32) -> Vec<u8> {
    (0..n as u32)
        .map(|i| (i.wrapping_mul(2_654_435_761) ^ seed).wrapping_shr(13) as u8)
        .collect()
}

struct MmData {
    a: Vec<u8>,
    b: PackedB,
    rq: Requant,
    c: Vec<u8>,
}

fn mm_data(s: Mm) -> MmData {
    let w: Vec<i8> = bytes(s.k * s.n, 5)
        .into_iter()
        .map(|v| (v as i8).max(-127))
        .collect();
    let b = PackedB::pack(&w, s.k, s.n);
    let rq = Requant::new(
        b.zero_point_bias(&vec![100; s.n], 3),
        &[QMul::from_real(0.0007)],
        7,
        7,
        200,
    );
    MmData {
        a: bytes(s.m * s.k, 1),
        b,
        rq,
        c: vec![0; s.m * s.n],
    }
}

fn simd_mm() -> Vec<TierMm> {
    dispatch::available()
        .into_iter()
        .filter(|&t| t != Tier::Scalar)
        .flat_map(|t| MM.map(|s| TierMm(t, s)))
        .collect()
}

mod qgemm_u8i8_i32_requant {
    use super::*;

    #[divan::bench(args = simd_mm())]
    fn simd(bencher: Bencher, case: TierMm) {
        let TierMm(tier, s) = case;
        let mut d = mm_data(s);
        let shape = QGemmShape {
            m: s.m,
            lda: s.k,
            ldc: s.n,
        };
        bencher
            .counter(ItemsCount::new(2 * s.m * s.n * s.k))
            .bench_local(|| {
                qgemm_u8i8_i32_requant(
                    tier,
                    shape,
                    black_box(&d.a),
                    &d.b,
                    &d.rq,
                    black_box(&mut d.c),
                )
            });
    }

    #[divan::bench(args = [MM[3], MM[5]], sample_count = 5)]
    fn reference(bencher: Bencher, s: Mm) {
        let mut d = mm_data(s);
        let shape = QGemmShape {
            m: s.m,
            lda: s.k,
            ldc: s.n,
        };
        bencher
            .counter(ItemsCount::new(2 * s.m * s.n * s.k))
            .bench_local(|| {
                qgemm_reference(shape, black_box(&d.a), &d.b, &d.rq, black_box(&mut d.c))
            });
    }
}

/// A depthwise 3x3 layer with padding 1 on `[h, w, c]`.
#[derive(Clone, Copy)]
struct Dw {
    h: usize,
    w: usize,
    c: usize,
    stride: usize,
}

const DW: [Dw; 4] = [
    Dw {
        h: 150,
        w: 150,
        c: 32,
        stride: 1,
    },
    Dw {
        h: 75,
        w: 75,
        c: 144,
        stride: 1,
    },
    Dw {
        h: 75,
        w: 75,
        c: 144,
        stride: 2,
    },
    Dw {
        h: 19,
        w: 19,
        c: 576,
        stride: 1,
    },
];

impl Dw {
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

    fn ops(self) -> usize {
        let g = self.geom();
        2 * 9 * g.out_h() * g.out_w() * g.out_c
    }
}

impl fmt::Display for Dw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}x{}x{}/s{}", self.h, self.w, self.c, self.stride)
    }
}

#[derive(Clone, Copy)]
struct TierDw(Tier, Dw);

impl fmt::Display for TierDw {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{} {}", qdwconv_kernel_id(self.0), self.1)
    }
}

fn simd_dw() -> Vec<TierDw> {
    dispatch::available()
        .into_iter()
        .filter(|&t| t != Tier::Scalar)
        .flat_map(|t| DW.map(|s| TierDw(t, s)))
        .collect()
}

struct DwData {
    g: ConvGeom,
    x: Vec<u8>,
    w: Vec<i8>,
    rq: Requant,
    out: Vec<u8>,
}

fn dw_data(s: Dw) -> DwData {
    let g = s.geom();
    let w: Vec<i8> = bytes(9 * s.c, 3)
        .into_iter()
        .map(|v| (v as i8).max(-127))
        .collect();
    DwData {
        g,
        x: bytes(s.h * s.w * s.c, 2),
        w: pack_weight(&w, s.c, 3, 3),
        rq: Requant::new(vec![50; s.c], &[QMul::from_real(0.003)], 0, 0, 255),
        out: vec![0; g.out_h() * g.out_w() * s.c],
    }
}

mod qdwconv_u8i8_requant {
    use super::*;

    #[divan::bench(args = simd_dw())]
    fn simd(bencher: Bencher, case: TierDw) {
        let TierDw(tier, s) = case;
        let mut d = dw_data(s);
        let oh = d.g.out_h();
        bencher.counter(ItemsCount::new(s.ops())).bench_local(|| {
            qdwconv_u8i8_requant_rows(
                tier,
                &d.g,
                black_box(&d.x),
                12,
                &d.w,
                &d.rq,
                0..oh,
                black_box(&mut d.out),
            )
        });
    }

    #[divan::bench(args = [DW[3]], sample_count = 5)]
    fn reference(bencher: Bencher, s: Dw) {
        let mut d = dw_data(s);
        let oh = d.g.out_h();
        bencher.counter(ItemsCount::new(s.ops())).bench_local(|| {
            qdwconv_reference(
                &d.g,
                black_box(&d.x),
                12,
                &d.w,
                &d.rq,
                0..oh,
                black_box(&mut d.out),
            )
        });
    }
}
