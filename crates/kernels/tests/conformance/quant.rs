//! Int8 kernels: every tier this CPU runs must equal the scalar reference bit for bit,
//! over XNNPACK-style edge grids (channels 1, tile − 1, tile, tile + 1, 3·tile + 1 for
//! the 16-lane AVX-512 and 8-lane AVX2 tiles; odd and even sizes; strides 1 and 2).

use slimdet_kernels::dispatch;
use slimdet_kernels::quant::im2col::qconv_reference;
use slimdet_kernels::quant::qadd::qadd_reference;
use slimdet_kernels::quant::qdwconv::{pack_weight, qdwconv_reference};
use slimdet_kernels::quant::qgemm::{
    qgemm_add_reference, qgemm_dequant_reference, qgemm_reference,
};
use slimdet_kernels::quant::*;
use slimdet_kernels::reference::ConvGeom;

use crate::common::Rng;

fn bytes(rng: &mut Rng, n: usize) -> Vec<u8> {
    (0..n).map(|_| rng.next_u64() as u8).collect()
}

fn weights(rng: &mut Rng, n: usize) -> Vec<i8> {
    // Symmetric weights in [-127, 127], with some -128 to exercise the extreme.
    (0..n)
        .map(|i| {
            if i % 97 == 5 {
                -128
            } else {
                (rng.range(0, 254) as i32 - 127) as i8
            }
        })
        .collect()
}

/// A stage with a mix of multipliers: tiny, typical, ≥ 1 (left shifts), and per-tensor.
/// Every third per-channel stage has only multipliers below 0.5, which [`Requant::new`]
/// stores in the total-shift-32 layout of the fast epilogue.
fn stage(rng: &mut Rng, n: usize, per_tensor: bool, clamp: bool) -> Requant {
    let zp = rng.range(0, 255) as i32;
    let (qmin, qmax) = if clamp {
        (rng.range(0, 20) as u8, rng.range(200, 255) as u8)
    } else {
        (0, 255)
    };
    let reals = [1.3e-4, 2.1e-3, 0.0173, 0.31, 0.9999, 1.7, 37.0];
    let muls: Vec<QMul> = if per_tensor {
        vec![QMul::from_real(rng.pick(&reals))]
    } else if rng.range(0, 3) == 0 {
        (0..n)
            .map(|_| QMul::from_real(rng.pick(&reals[..4]) * (1.0 + rng.f32() as f64 * 0.3)))
            .collect()
    } else {
        (0..n)
            .map(|_| QMul::from_real(rng.pick(&reals) * (1.0 + rng.f32() as f64 * 0.3)))
            .collect()
    };
    let bias = (0..n)
        .map(|_| (rng.next_u64() as i32) >> rng.range(1, 20))
        .collect();
    Requant::new(bias, &muls, zp, qmin, qmax)
}

const GEMM_M: [usize; 8] = [1, 2, 5, 6, 7, 12, 13, 19];
const GEMM_N: [usize; 10] = [1, 7, 8, 9, 15, 16, 17, 49, 65, 130];
const GEMM_K: [usize; 9] = [1, 3, 4, 5, 8, 27, 33, 64, 150];

#[test]
fn qgemm_requant_is_bit_exact_on_every_tier() {
    let mut rng = Rng::new(11);
    let mut cases = 0;
    for &m in &GEMM_M {
        for &n in &GEMM_N {
            for &k in &GEMM_K {
                let (lda, ldc) = (k + rng.range(0, 3), n + rng.range(0, 3));
                let a = bytes(&mut rng, m * lda);
                let w = weights(&mut rng, k * n);
                let b = PackedB::pack(&w, k, n);
                let per_tensor = rng.range(0, 3) == 0;
                let rq = stage(&mut rng, n, per_tensor, true);
                let s = QGemmShape { m, lda, ldc };
                let mut want = vec![7u8; m * ldc];
                qgemm_reference(s, &a, &b, &rq, &mut want);
                for tier in dispatch::available() {
                    let mut got = vec![7u8; m * ldc];
                    qgemm_u8i8_i32_requant(tier, s, &a, &b, &rq, &mut got);
                    assert_eq!(
                        got,
                        want,
                        "{} m{m} n{n} k{k} lda{lda} ldc{ldc}",
                        qgemm::qgemm_kernel_id(tier)
                    );
                }
                cases += 1;
            }
        }
    }
    assert_eq!(cases, GEMM_M.len() * GEMM_N.len() * GEMM_K.len());
}

#[test]
fn qgemm_requant_wraps_like_the_reference_at_the_extremes() {
    let mut rng = Rng::new(5);
    let (m, n, k) = (7, 33, 64);
    let a = vec![255u8; m * k];
    let w = vec![-128i8; k * n];
    let b = PackedB::pack(&w, k, n);
    let bias: Vec<i32> = (0..n)
        .map(|j| {
            if j % 2 == 0 {
                i32::MAX - 5
            } else {
                i32::MIN + 5
            }
        })
        .collect();
    let muls: Vec<QMul> = (0..n)
        .map(|j| {
            if j % 3 == 0 {
                QMul {
                    multiplier: i32::MAX,
                    shift: 30,
                }
            } else {
                QMul::from_real(0.5)
            }
        })
        .collect();
    let rq = Requant::new(bias, &muls, 3, 0, 255);
    let s = QGemmShape { m, lda: k, ldc: n };
    let mut want = vec![0u8; m * n];
    qgemm_reference(s, &a, &b, &rq, &mut want);
    for tier in dispatch::available() {
        let mut got = vec![0u8; m * n];
        qgemm_u8i8_i32_requant(tier, s, &a, &b, &rq, &mut got);
        assert_eq!(got, want, "{tier:?}");
    }
    let _ = rng.next_u64();
}

/// Shapes of the network's pointwise layers (several 16-row blocks, 64-column groups,
/// depths with and without a remainder of 64): on AMX machines these run the tile
/// kernel, whose rows past the last multiple of 16 go to the VNNI kernel. Requantized,
/// with the fused add, and dequantized, against the references.
#[test]
fn qgemm_network_shapes_are_bit_exact_on_every_tier() {
    let mut rng = Rng::new(23);
    for &(m, k, n) in &[
        (16, 16, 16),
        (33, 24, 144),
        (48, 144, 24),
        (37, 64, 96),
        (50, 320, 130),
        (19, 960, 65),
        (64, 28, 32),
    ] {
        let a = bytes(&mut rng, m * k);
        let b = PackedB::pack(&weights(&mut rng, k * n), k, n);
        let s = QGemmShape { m, lda: k, ldc: n };
        for mode in 0..3 {
            let rq = stage(&mut rng, n, mode == 0, true);
            let mut want = vec![0u8; m * n];
            qgemm_reference(s, &a, &b, &rq, &mut want);
            let res = bytes(&mut rng, m * n);
            let p = QAddParams::new((0.02, rq.zero_point), (0.03, 7), (0.04, 100), 0, 255);
            let mut want_add = vec![0u8; m * n];
            qgemm_add_reference(s, &a, &b, &rq, &res, &p, &mut want_add);
            for tier in dispatch::available() {
                let mut got = vec![0u8; m * n];
                qgemm_u8i8_i32_requant(tier, s, &a, &b, &rq, &mut got);
                assert_eq!(got, want, "{tier:?} m{m} k{k} n{n} mode {mode}");
                qgemm_u8i8_requant_add(tier, s, &a, &b, &rq, &res, &p, &mut got);
                assert_eq!(got, want_add, "{tier:?} add m{m} k{k} n{n}");
            }
        }
        let dq = Dequant {
            bias_i32: (0..n).map(|j| j as i32 * 37 - 900).collect(),
            scale: (0..n).map(|j| 1e-3 * (1.0 + j as f32 / 7.0)).collect(),
            bias: (0..n).map(|j| j as f32 * 0.01 - 0.3).collect(),
            lo: -2.0,
            hi: 4.0,
        };
        let mut want = vec![0f32; m * n];
        qgemm_dequant_reference(s, &a, &b, &dq, &mut want);
        for tier in dispatch::available() {
            let mut got = vec![0f32; m * n];
            qgemm_u8i8_f32_dequant(tier, s, &a, &b, &dq, &mut got);
            assert!(
                got.iter()
                    .zip(&want)
                    .all(|(x, y)| x.to_bits() == y.to_bits()),
                "{tier:?} dequant m{m} k{k} n{n}"
            );
        }
    }
}

/// The projection with its residual add fused equals the reference and the unfused
/// GEMM followed by the add, on every tier.
#[test]
fn qgemm_with_fused_add_is_bit_exact_on_every_tier() {
    let mut rng = Rng::new(21);
    for &m in &[1, 5, 6, 7, 13] {
        for &n in &[1, 7, 8, 9, 16, 17, 65] {
            for &k in &[1, 4, 5, 24, 33] {
                let (lda, ldc) = (k + rng.range(0, 2), n + rng.range(0, 2));
                let a = bytes(&mut rng, m * lda);
                let b = PackedB::pack(&weights(&mut rng, k * n), k, n);
                let per_tensor = rng.range(0, 3) == 0;
                let rq = stage(&mut rng, n, per_tensor, true);
                let res = bytes(&mut rng, m * ldc);
                let sc = |r: &mut Rng| 10f32.powf(-3.0 + 2.5 * (r.f32() + 1.0) / 2.0);
                let p = QAddParams::new(
                    (sc(&mut rng), rq.zero_point),
                    (sc(&mut rng), rng.range(0, 255) as i32),
                    (sc(&mut rng), rng.range(0, 255) as i32),
                    rng.range(0, 30) as u8,
                    rng.range(220, 255) as u8,
                );
                let s = QGemmShape { m, lda, ldc };
                let mut want = vec![9u8; m * ldc];
                qgemm_add_reference(s, &a, &b, &rq, &res, &p, &mut want);
                let mut conv = vec![9u8; m * ldc];
                qgemm_reference(s, &a, &b, &rq, &mut conv);
                for i in 0..m {
                    for j in 0..n {
                        let at = i * ldc + j;
                        assert_eq!(want[at], p.apply(conv[at], res[at]), "unfused m{m} n{n}");
                    }
                }
                for tier in dispatch::available() {
                    let mut got = vec![9u8; m * ldc];
                    qgemm_u8i8_requant_add(tier, s, &a, &b, &rq, &res, &p, &mut got);
                    assert_eq!(got, want, "{tier:?} m{m} n{n} k{k}");
                }
            }
        }
    }
}

#[test]
fn qgemm_requant_q32_layout_is_exact_at_the_extremes() {
    let (m, n, k) = (7, 33, 64);
    for (fill, wfill) in [(255u8, -128i8), (255, 127), (0, 127)] {
        let a = vec![fill; m * k];
        let b = PackedB::pack(&vec![wfill; k * n], k, n);
        let bias: Vec<i32> = (0..n)
            .map(|j| match j % 3 {
                0 => i32::MAX - 5,
                1 => i32::MIN + 5,
                _ => j as i32 * 1001 - 7000,
            })
            .collect();
        let muls: Vec<QMul> = (0..n)
            .map(|j| QMul::from_real([0.4999, 1e-9, 0.0031][j % 3]))
            .collect();
        let rq = Requant::new(bias, &muls, 200, 3, 250);
        assert!(rq.is_q32());
        let s = QGemmShape { m, lda: k, ldc: n };
        let mut want = vec![0u8; m * n];
        qgemm_reference(s, &a, &b, &rq, &mut want);
        for tier in dispatch::available() {
            let mut got = vec![0u8; m * n];
            qgemm_u8i8_i32_requant(tier, s, &a, &b, &rq, &mut got);
            assert_eq!(got, want, "{tier:?}");
        }
    }
}

#[test]
fn qgemm_dequant_is_bit_exact_on_every_tier() {
    let mut rng = Rng::new(12);
    for &m in &[1, 6, 7, 13] {
        for &n in &GEMM_N {
            for &k in &[1, 5, 27, 64] {
                let a = bytes(&mut rng, m * k);
                let w = weights(&mut rng, k * n);
                let b = PackedB::pack(&w, k, n);
                let dq = Dequant {
                    bias_i32: b.zero_point_bias(&vec![0; n], rng.range(0, 255) as i32),
                    scale: (0..n).map(|_| rng.f32().abs() * 1e-3 + 1e-5).collect(),
                    bias: rng.vec(n),
                    lo: if rng.range(0, 1) == 0 {
                        f32::NEG_INFINITY
                    } else {
                        0.0
                    },
                    hi: if rng.range(0, 1) == 0 {
                        f32::INFINITY
                    } else {
                        6.0
                    },
                };
                let s = QGemmShape { m, lda: k, ldc: n };
                let mut want = vec![0f32; m * n];
                qgemm_dequant_reference(s, &a, &b, &dq, &mut want);
                for tier in dispatch::available() {
                    let mut got = vec![0f32; m * n];
                    qgemm_u8i8_f32_dequant(tier, s, &a, &b, &dq, &mut got);
                    let same = got
                        .iter()
                        .zip(&want)
                        .all(|(x, y)| x.to_bits() == y.to_bits());
                    assert!(same, "{tier:?} m{m} n{n} k{k}");
                }
            }
        }
    }
}

#[allow(clippy::too_many_arguments)]
fn geom(
    h: usize,
    w: usize,
    ci: usize,
    co: usize,
    k: usize,
    stride: usize,
    pad: usize,
    groups: usize,
) -> ConvGeom {
    ConvGeom {
        in_h: h,
        in_w: w,
        in_c: ci,
        out_c: co,
        kh: k,
        kw: k,
        stride_h: stride,
        stride_w: stride,
        pad_h: pad,
        pad_w: pad,
        pad_h_end: pad,
        pad_w_end: pad,
        dil_h: 1,
        dil_w: 1,
        groups,
    }
}

#[test]
fn qdwconv_is_bit_exact_on_every_tier() {
    let mut rng = Rng::new(13);
    for &c in &[1, 7, 8, 9, 15, 16, 17, 25, 49] {
        for &h in &[1, 2, 5, 6, 7] {
            for &wd in &[1, 3, 4, 7, 8, 10] {
                for &stride in &[1, 2] {
                    for &(pad, pad_end) in &[(0, 0), (1, 1), (0, 1)] {
                        if h + pad + pad_end < 3 || wd + pad + pad_end < 3 {
                            continue;
                        }
                        let g = ConvGeom {
                            pad_h_end: pad_end,
                            pad_w_end: pad_end,
                            ..geom(h, wd, c, c, 3, stride, pad, c)
                        };
                        let x = bytes(&mut rng, h * wd * c);
                        let w = pack_weight(&weights(&mut rng, c * 9), c, 3, 3);
                        let zp = rng.range(0, 255) as i32;
                        let pt = rng.range(0, 1) == 0;
                        let rq = stage(&mut rng, c, pt, false);
                        let oh = g.out_h();
                        let rows = if oh > 2 { 1..oh } else { 0..oh };
                        let mut want = vec![0u8; rows.len() * g.out_w() * c];
                        qdwconv_reference(&g, &x, zp, &w, &rq, rows.clone(), &mut want);
                        for tier in dispatch::available() {
                            let mut got = vec![1u8; want.len()];
                            qdwconv_u8i8_requant_rows(
                                tier,
                                &g,
                                &x,
                                zp,
                                &w,
                                &rq,
                                rows.clone(),
                                &mut got,
                            );
                            assert_eq!(got, want, "{} {g:?}", qdwconv::qdwconv_kernel_id(tier));
                        }
                    }
                }
            }
        }
    }
}

/// The first layer: 3x3 dense conv on 3 channels via im2col + GEMM equals the direct
/// reference convolution (zero-point padding and the folded zero-point bias included).
#[test]
fn first_conv_im2col_gemm_matches_direct_conv() {
    let mut rng = Rng::new(14);
    for &co in &[1, 15, 16, 17, 32, 49] {
        for &(h, wd) in &[(1, 1), (5, 7), (6, 6), (9, 4)] {
            for (stride, pad, pad_end) in [(1, 1, 1), (2, 1, 1), (2, 0, 1)] {
                let g = ConvGeom {
                    pad_h_end: pad_end,
                    pad_w_end: pad_end,
                    ..geom(h, wd, 3, co, 3, stride, pad, 1)
                };
                let x = bytes(&mut rng, h * wd * 3);
                let w = weights(&mut rng, co * 27);
                let zp = rng.range(0, 255) as i32;
                let rq0 = stage(&mut rng, co, false, true);
                let mut want = vec![0u8; g.out_h() * g.out_w() * co];
                qconv_reference(&g, &x, zp, &w, &rq0, &mut want);
                let rows = g.out_h() * g.out_w();
                for padded in [false, true] {
                    let b = if padded {
                        PackedB::from_oihw_padded(&w, co, 3, 3, 3)
                    } else {
                        PackedB::from_oihw(&w, co, 3, 3, 3)
                    };
                    let ld = b.k();
                    assert_eq!(ld, if padded { 28 } else { 27 });
                    let rq = Requant {
                        bias: b.zero_point_bias(&rq0.bias, zp),
                        ..rq0.clone()
                    };
                    let mut cols = vec![0u8; rows * ld];
                    im2col_u8_rows(&g, &x, zp as u8, 0..g.out_h(), ld, &mut cols);
                    for tier in dispatch::available() {
                        let mut got = vec![0u8; want.len()];
                        let s = QGemmShape {
                            m: rows,
                            lda: ld,
                            ldc: co,
                        };
                        qgemm_u8i8_i32_requant(tier, s, &cols, &b, &rq, &mut got);
                        assert_eq!(got, want, "{tier:?} {g:?} padded {padded}");
                    }
                }
            }
        }
    }
}

#[test]
fn qadd_is_bit_exact_on_every_tier() {
    let mut rng = Rng::new(15);
    for len in [1, 7, 8, 9, 15, 16, 17, 49, 333] {
        for _ in 0..6 {
            let sc = |r: &mut Rng| 10f32.powf(-3.0 + 2.5 * (r.f32() + 1.0) / 2.0);
            let p = QAddParams::new(
                (sc(&mut rng), rng.range(0, 255) as i32),
                (sc(&mut rng), rng.range(0, 255) as i32),
                (sc(&mut rng), rng.range(0, 255) as i32),
                rng.range(0, 30) as u8,
                rng.range(220, 255) as u8,
            );
            let a = bytes(&mut rng, len);
            let b = bytes(&mut rng, len);
            let mut want = vec![0u8; len];
            qadd_reference(&a, &b, &p, &mut want);
            for tier in dispatch::available() {
                let mut got = vec![0u8; len];
                qadd_u8_requant(tier, &a, &b, &p, &mut got);
                assert_eq!(got, want, "{tier:?} len {len} {p:?}");
            }
        }
    }
}

/// The add reference itself tracks real arithmetic: within one output step.
#[test]
fn qadd_reference_tracks_real_values() {
    let (sa, za, sb, zb, so, zo) = (0.05f32, 120, 0.02f32, 30, 0.06f32, 100);
    let p = QAddParams::new((sa, za), (sb, zb), (so, zo), 0, 255);
    for a in (0..=255u8).step_by(7) {
        for b in (0..=255u8).step_by(11) {
            let real = sa * (a as i32 - za) as f32 + sb * (b as i32 - zb) as f32;
            let want = (real / so).round() as i32 + zo;
            let got = p.apply(a, b) as i32;
            assert!(
                (got - want.clamp(0, 255)).abs() <= 1,
                "{a} {b}: {got} vs {want}"
            );
        }
    }
}

/// Each tier names the int8 GEMM it runs: the tests above compared exactly these kernels.
#[test]
fn qgemm_kernel_ids_name_each_tier() {
    use slimdet_kernels::Tier;
    for tier in dispatch::available() {
        let id = qgemm::qgemm_kernel_id(tier);
        match tier {
            Tier::Scalar => assert_eq!(id, "reference/qgemm_u8i8_i32_requant"),
            Tier::Neon => assert_eq!(id, "aarch64/neon/qgemm_u8i8_i32_requant_2x16"),
            Tier::NeonDot => assert_eq!(id, "aarch64/neondot/qgemm_u8i8_i32_requant_4x16"),
            Tier::Avx2 | Tier::Avx512 => {
                assert!(
                    id.starts_with("x86_64/avx") || id.starts_with("x86_64/amx/"),
                    "{id}"
                )
            }
        }
    }
}
