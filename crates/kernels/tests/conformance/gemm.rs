//! `sgemm::sgemm` under every tier vs `reference::sgemm`, and im2col + sgemm vs
//! `reference::conv2d`.

use slimdet_kernels::reference::{self, ConvGeom};
use slimdet_kernels::sgemm::{self, GemmShape};
use slimdet_kernels::{Act, dispatch, im2col};

use crate::common::{GEMM, Rng, assert_close};

/// Around the 16-wide AVX-512 register tile, plus sizes that leave remainders everywhere.
const DIMS: [usize; 6] = [1, 15, 16, 17, 33, 65];

/// Value written to C's padding columns; a kernel that writes past `n` changes it.
const SENTINEL: f32 = 1234.5;

fn check_gemm(rng: &mut Rng, s: GemmShape, accumulate: bool, threads: usize) {
    let a = rng.vec(s.m * s.lda);
    let b = rng.vec(s.k * s.ldb);
    let mut c0 = rng.vec(s.m * s.ldc);
    for row in c0.chunks_mut(s.ldc) {
        row[s.n..].fill(SENTINEL);
    }
    let mut want = c0.clone();
    reference::sgemm(s, &a, &b, &mut want, accumulate);
    for tier in dispatch::available() {
        let mut got = c0.clone();
        sgemm::sgemm(tier, s, &a, &b, &mut got, accumulate, threads);
        let what = format!(
            "sgemm {} {s:?} accumulate={accumulate} threads={threads}",
            tier.name()
        );
        assert_close(&got, &want, GEMM, &what);
        for row in got.chunks(s.ldc) {
            assert!(
                row[s.n..].iter().all(|&v| v == SENTINEL),
                "{what}: wrote past n"
            );
        }
    }
}

#[test]
fn sgemm_grid_matches_reference() {
    let mut rng = Rng::new(10);
    for m in DIMS {
        for n in DIMS {
            for k in DIMS {
                for accumulate in [false, true] {
                    check_gemm(&mut rng, GemmShape::dense(m, n, k), accumulate, 1);
                    // Leading dimensions wider than the rows.
                    let s = GemmShape {
                        m,
                        n,
                        k,
                        lda: k + 3,
                        ldb: n + 5,
                        ldc: n + 2,
                    };
                    check_gemm(&mut rng, s, accumulate, 1);
                }
            }
        }
    }
}

#[test]
fn sgemm_threaded_matches_reference() {
    let mut rng = Rng::new(11);
    let s = GemmShape {
        m: 257,
        n: 96,
        k: 65,
        lda: 70,
        ldb: 100,
        ldc: 97,
    };
    check_gemm(&mut rng, s, false, 2);
    check_gemm(&mut rng, s, true, 2);
}

#[test]
fn sgemm_random_shapes_match_reference() {
    let mut rng = Rng::new(12);
    for _ in 0..200 {
        let (m, n, k) = (rng.range(1, 70), rng.range(1, 70), rng.range(0, 70));
        let s = GemmShape {
            m,
            n,
            k,
            lda: k + rng.range(0, 3),
            ldb: n + rng.range(0, 3),
            ldc: n + rng.range(0, 3),
        };
        let accumulate = rng.range(0, 1) == 1;
        check_gemm(&mut rng, s, accumulate, 1);
    }
}

/// Dense convolution as im2col + GEMM (bias preloaded into C, accumulate = true, then the
/// activation) against the direct reference.
fn check_im2col(rng: &mut Rng, g: ConvGeom, act: Act) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let input = rng.vec(g.in_h * g.in_w * g.in_c);
    let oihw = rng.vec(g.out_c * g.in_c * g.kh * g.kw);
    let bias = rng.vec(g.out_c);
    let mut want = vec![0.0; oh * ow * g.out_c];
    reference::conv2d(&g, &input, &oihw, &bias, act, &mut want);

    let k = g.kh * g.kw * g.in_c;
    let rhs = im2col::pack_weight(&oihw, g.out_c, g.in_c, g.kh, g.kw);
    let mut cols = vec![f32::NAN; oh * ow * k];
    im2col::im2col_rows(&g, &input, 0..oh, &mut cols);
    for tier in dispatch::available() {
        let mut got: Vec<f32> = bias
            .iter()
            .copied()
            .cycle()
            .take(oh * ow * g.out_c)
            .collect();
        sgemm::sgemm(
            tier,
            GemmShape::dense(oh * ow, g.out_c, k),
            &cols,
            &rhs,
            &mut got,
            true,
            1,
        );
        act.apply_slice(&mut got);
        assert_close(
            &got,
            &want,
            GEMM,
            &format!("im2col+sgemm {} {g:?} {}", tier.name(), act.name()),
        );
    }
}

fn dense(
    h: usize,
    w: usize,
    cin: usize,
    cout: usize,
    stride: usize,
    pad: usize,
    dil: usize,
) -> ConvGeom {
    ConvGeom {
        in_h: h,
        in_w: w,
        in_c: cin,
        out_c: cout,
        kh: 3,
        kw: 3,
        stride_h: stride,
        stride_w: stride,
        pad_h: pad,
        pad_w: pad,
        pad_h_end: pad,
        pad_w_end: pad,
        dil_h: dil,
        dil_w: dil,
        groups: 1,
    }
}

#[test]
fn im2col_sgemm_3x3_stride2_pad1_matches_reference() {
    let mut rng = Rng::new(13);
    // The MobileNetV2 stem (3 → 32 channels) on small images, and wider layers.
    for (h, w, cin, cout) in [
        (15, 16, 3, 32),
        (8, 7, 16, 17),
        (1, 2, 5, 3),
        (9, 9, 64, 24),
    ] {
        for act in [Act::None, Act::Relu6] {
            check_im2col(&mut rng, dense(h, w, cin, cout, 2, 1, 1), act);
        }
    }
}

/// TensorFlow's `SAME` padding: 0 before and 1 after on even sizes at stride 2, and a
/// transposed split (1 before, 0 after) to cover the other side.
#[test]
fn im2col_sgemm_asymmetric_padding_matches_reference() {
    let mut rng = Rng::new(15);
    for (h, w, cin, cout) in [(16, 16, 3, 32), (8, 6, 16, 17), (2, 4, 5, 3)] {
        for (p, pe) in [(0, 1), (1, 0)] {
            let g = ConvGeom {
                pad_h: p,
                pad_w: p,
                pad_h_end: pe,
                pad_w_end: pe,
                ..dense(h, w, cin, cout, 2, 1, 1)
            };
            check_im2col(&mut rng, g, Act::Relu6);
        }
    }
}

#[test]
fn im2col_sgemm_dilated_3x3_matches_reference() {
    let mut rng = Rng::new(14);
    for (h, w, cin, cout) in [
        (9, 10, 4, 17),
        (5, 5, 16, 16),
        (2, 3, 7, 9),
        (12, 11, 33, 8),
    ] {
        for act in [Act::None, Act::Relu] {
            check_im2col(&mut rng, dense(h, w, cin, cout, 1, 2, 2), act);
        }
    }
}
