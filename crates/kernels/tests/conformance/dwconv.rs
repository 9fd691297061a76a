//! Depthwise convolution: `dwconv::dwconv_rows` under every tier vs `reference::conv2d`.

use std::fmt;
use std::ops::Range;

use slimdet_kernels::reference::{self, ConvGeom};
use slimdet_kernels::{Act, Tier, dispatch, dwconv};

use crate::common::{DWCONV, Rng, Unaligned, assert_close};

/// XNNPACK's channel grid for a 16-lane tile (1, tile ± 1, tile, 3·tile + 1), plus the
/// neighbours of the 8-lane AVX2 and 4-lane NEON tiles (3·4 + 1 = 13) and a MobileNetV2
/// width.
const CHANNELS: [usize; 13] = [1, 3, 4, 5, 7, 8, 9, 13, 15, 16, 17, 49, 96];
/// Odd and even sizes, including ones smaller than the kernel.
const SIZES: [usize; 5] = [1, 2, 3, 5, 8];
const ACTS: [Act; 3] = [Act::None, Act::Relu, Act::Relu6];

/// A depthwise geometry: `k`x`k` kernel, same stride, padding and dilation on both axes.
fn geom(h: usize, w: usize, c: usize, k: usize, stride: usize, pad: usize, dil: usize) -> ConvGeom {
    ConvGeom {
        in_h: h,
        in_w: w,
        in_c: c,
        out_c: c,
        kh: k,
        kw: k,
        stride_h: stride,
        stride_w: stride,
        pad_h: pad,
        pad_w: pad,
        pad_h_end: pad,
        pad_w_end: pad,
        dil_h: dil,
        dil_w: dil,
        groups: c,
    }
}

/// One random problem: input `[H, W, C]`, weight OIHW `[C, 1, kh, kw]` and its packed form.
struct Case {
    g: ConvGeom,
    act: Act,
    input: Vec<f32>,
    oihw: Vec<f32>,
    packed: Vec<f32>,
    bias: Vec<f32>,
}

impl Case {
    fn new(rng: &mut Rng, g: ConvGeom, act: Act) -> Case {
        let c = g.in_c;
        // Scale inputs so that ReLU6's upper clamp is reached by some outputs.
        let input: Vec<f32> = rng
            .vec(g.in_h * g.in_w * c)
            .iter()
            .map(|x| 3.0 * x)
            .collect();
        let oihw = rng.vec(c * g.kh * g.kw);
        let packed = dwconv::pack_weight(&oihw, c, g.kh, g.kw);
        let bias = rng.vec(c);
        Case {
            g,
            act,
            input,
            oihw,
            packed,
            bias,
        }
    }

    fn reference(&self) -> Vec<f32> {
        let mut out = vec![0.0; self.g.out_h() * self.g.out_w() * self.g.out_c];
        reference::conv2d(
            &self.g,
            &self.input,
            &self.oihw,
            &self.bias,
            self.act,
            &mut out,
        );
        out
    }

    fn row_len(&self) -> usize {
        self.g.out_w() * self.g.out_c
    }

    fn run(&self, tier: Tier, rows: Range<usize>) -> Vec<f32> {
        // Poison the output so that an element the kernel fails to write shows up.
        let mut out = vec![f32::NAN; rows.len() * self.row_len()];
        dwconv::dwconv_rows(
            tier,
            &self.g,
            &self.input,
            &self.packed,
            &self.bias,
            self.act,
            rows,
            &mut out,
        );
        out
    }

    fn run_unaligned(&self, tier: Tier) -> Vec<f32> {
        let (input, packed, bias) = (
            Unaligned::new(&self.input),
            Unaligned::new(&self.packed),
            Unaligned::new(&self.bias),
        );
        let mut out = Unaligned::zeros(self.g.out_h() * self.row_len());
        dwconv::dwconv_rows(
            tier,
            &self.g,
            input.get(),
            packed.get(),
            bias.get(),
            self.act,
            0..self.g.out_h(),
            out.get_mut(),
        );
        out.get().to_vec()
    }

    fn name(&self, tier: Tier) -> Named<'_> {
        Named(self, tier)
    }
}

/// Displays a case for assertion messages.
struct Named<'a>(&'a Case, Tier);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let (c, tier) = (self.0, self.1);
        let g = &c.g;
        write!(
            f,
            "{} ({}) {}x{}x{} k{}x{} s{}x{} p{}x{} (end {}x{}) d{}x{} {}",
            dwconv::kernel_id(tier, g, c.act),
            tier.name(),
            g.in_h,
            g.in_w,
            g.in_c,
            g.kh,
            g.kw,
            g.stride_h,
            g.stride_w,
            g.pad_h,
            g.pad_w,
            g.pad_h_end,
            g.pad_w_end,
            g.dil_h,
            g.dil_w,
            c.act.name()
        )
    }
}

/// Padding `(before, after)` on both axes: none, PyTorch's symmetric 1, and TensorFlow's
/// `SAME` on a stride-2 3x3 over an even size (0 before, 1 after).
const PADS: [(usize, usize); 3] = [(0, 0), (1, 1), (0, 1)];

/// The 3x3 grid: every channel count, H and W, stride, padding and activation.
fn grid() -> impl Iterator<Item = (ConvGeom, Act)> {
    CHANNELS.into_iter().flat_map(|c| {
        SIZES.into_iter().flat_map(move |h| {
            SIZES.into_iter().flat_map(move |w| {
                [1, 2].into_iter().flat_map(move |s| {
                    PADS.into_iter().flat_map(move |(p, pe)| {
                        let g = ConvGeom {
                            pad_h_end: pe,
                            pad_w_end: pe,
                            ..geom(h, w, c, 3, s, p, 1)
                        };
                        ACTS.into_iter().map(move |act| (g, act))
                    })
                })
            })
        })
    })
}

#[test]
fn dwconv3x3_grid_matches_reference() {
    let mut rng = Rng::new(1);
    let mut checked = 0;
    for (g, act) in grid() {
        let case = Case::new(&mut rng, g, act);
        let want = case.reference();
        for tier in dispatch::available() {
            let got = case.run(tier, 0..g.out_h());
            assert_close(&got, &want, DWCONV, &case.name(tier));
            checked += 1;
        }
    }
    assert!(checked >= CHANNELS.len() * SIZES.len() * SIZES.len() * 18);
}

#[test]
fn dwconv3x3_row_splits_match_full_run() {
    let mut rng = Rng::new(2);
    for (g, act) in grid().filter(|(g, _)| g.in_h >= 5) {
        let case = Case::new(&mut rng, g, act);
        let oh = g.out_h();
        for tier in dispatch::available() {
            let full = case.run(tier, 0..oh);
            for k in 0..=oh {
                let mut split = case.run(tier, 0..k);
                split.extend(case.run(tier, k..oh));
                // Each output element is computed the same way whatever the row range, so
                // the results are bit-identical, not merely close.
                let same = full
                    .iter()
                    .zip(&split)
                    .all(|(a, b)| a.to_bits() == b.to_bits());
                assert!(
                    same,
                    "{}: rows 0..{k} + {k}..{oh} differ from 0..{oh}",
                    case.name(tier)
                );
            }
            // One row at a time.
            let rows: Vec<f32> = (0..oh).flat_map(|y| case.run(tier, y..y + 1)).collect();
            assert_eq!(rows, full, "{}: row by row", case.name(tier));
        }
    }
}

#[test]
fn dwconv3x3_unaligned_slices() {
    let mut rng = Rng::new(3);
    for (g, act) in grid().filter(|(g, a)| g.in_h == g.in_w && *a == Act::Relu6) {
        let case = Case::new(&mut rng, g, act);
        let want = case.reference();
        for tier in dispatch::available() {
            let got = case.run_unaligned(tier);
            assert_close(&got, &want, DWCONV, &case.name(tier));
            assert_eq!(
                got,
                case.run(tier, 0..g.out_h()),
                "{}: alignment",
                case.name(tier)
            );
        }
    }
}

#[test]
fn dwconv3x3_wide_images_in_channel_groups_match_reference() {
    // Rows wide enough that the kernels walk the channels in several groups (each group's
    // three input rows sized for L1), with a tail block in the last group.
    let mut rng = Rng::new(7);
    for (h, w, c) in [(6, 19, 200), (5, 40, 75), (7, 10, 300), (4, 64, 37)] {
        for (s, p) in [(1, 1), (2, 1), (1, 0), (2, 0)] {
            let g = geom(h, w, c, 3, s, p, 1);
            let case = Case::new(&mut rng, g, Act::Relu6);
            let want = case.reference();
            let oh = g.out_h();
            for tier in dispatch::available() {
                assert_close(&case.run(tier, 0..oh), &want, DWCONV, &case.name(tier));
                let mut split = case.run(tier, 0..oh / 2);
                split.extend(case.run(tier, oh / 2..oh));
                assert_close(&split, &want, DWCONV, &case.name(tier));
            }
        }
    }
}

#[test]
fn dwconv3x3_empty_images_and_row_ranges() {
    let mut rng = Rng::new(8);
    for (h, w) in [(0, 5), (5, 0), (0, 0), (1, 1)] {
        for p in [0, 1] {
            let g = geom(h, w, 17, 3, 1, p, 1);
            let case = Case::new(&mut rng, g, Act::None);
            let want = case.reference();
            for tier in dispatch::available() {
                assert_close(
                    &case.run(tier, 0..g.out_h()),
                    &want,
                    DWCONV,
                    &case.name(tier),
                );
                assert!(case.run(tier, g.out_h()..g.out_h()).is_empty());
            }
        }
    }
}

#[test]
fn dwconv_other_geometries_take_the_portable_path() {
    let mut rng = Rng::new(4);
    let geoms = [
        geom(9, 8, 17, 5, 1, 2, 1), // 5x5
        geom(9, 8, 17, 3, 1, 2, 2), // dilated 3x3
        geom(9, 8, 17, 3, 3, 1, 1), // stride 3
        geom(9, 8, 17, 3, 1, 2, 1), // padding 2
        geom(9, 8, 17, 1, 1, 0, 1), // 1x1
    ];
    for g in geoms {
        let case = Case::new(&mut rng, g, Act::Relu6);
        let want = case.reference();
        for tier in dispatch::available() {
            assert_eq!(
                dwconv::kernel_id(tier, &g, Act::Relu6),
                "portable/dwconv_f32"
            );
            assert_close(
                &case.run(tier, 0..g.out_h()),
                &want,
                DWCONV,
                &case.name(tier),
            );
        }
    }
}

#[test]
fn dwconv_random_shapes_match_reference() {
    let mut rng = Rng::new(5);
    for _ in 0..200 {
        let c = rng.range(1, 70);
        let (h, w) = (rng.range(1, 12), rng.range(1, 12));
        // Mostly the SIMD geometry (3x3, stride and padding ≤ 2 and ≤ 1, possibly different
        // per axis); sometimes anything, for the portable path.
        let simd = rng.range(0, 3) != 0;
        let (k, dil, smax, pmax) = if simd {
            (3, 1, 2, 1)
        } else {
            (rng.range(1, 5), rng.range(1, 2), 3, 2)
        };
        let mut g = geom(h, w, c, k, rng.range(1, smax), rng.range(0, pmax), dil);
        g.kw = if simd { 3 } else { rng.range(1, 5) };
        g.stride_w = rng.range(1, smax);
        g.pad_w = rng.range(0, pmax);
        let act = rng.pick(&ACTS);
        let case = Case::new(&mut rng, g, act);
        let want = case.reference();
        let oh = g.out_h();
        let split = rng.range(0, oh);
        for tier in dispatch::available() {
            let mut got = case.run(tier, 0..split);
            got.extend(case.run(tier, split..oh));
            assert_close(&got, &want, DWCONV, &case.name(tier));
        }
    }
}

#[test]
fn dwconv3x3_process_tier_matches_reference() {
    // Runs under whatever tier `SLIMDET_KERNELS` selects for this process.
    let mut rng = Rng::new(6);
    for g in [geom(19, 19, 49, 3, 1, 1, 1), geom(20, 21, 33, 3, 2, 1, 1)] {
        let case = Case::new(&mut rng, g, Act::Relu6);
        let got = case.run(slimdet_kernels::tier(), 0..g.out_h());
        assert_close(
            &got,
            &case.reference(),
            DWCONV,
            &case.name(slimdet_kernels::tier()),
        );
    }
}

#[test]
fn dwconv3x3_kernel_ids_name_the_isa_and_activation() {
    let g = geom(8, 8, 16, 3, 2, 1, 1);
    for tier in dispatch::available() {
        let id = dwconv::kernel_id(tier, &g, Act::Relu6);
        match tier {
            Tier::Scalar => assert_eq!(id, "portable/dwconv_f32"),
            Tier::Avx2 => assert_eq!(id, "x86_64/avx2/dwconv3x3_f32_relu6_c8"),
            Tier::Avx512 => assert_eq!(id, "x86_64/avx512/dwconv3x3_f32_relu6_c16"),
            Tier::Neon | Tier::NeonDot => assert_eq!(id, "aarch64/neon/dwconv3x3_f32_relu6_c4"),
        }
    }
}

/// The BN-scaled epilogue `act(acc · scale + bias)` under every tier, over the edge grid,
/// against the reference conv without bias followed by the scale and shift in f32.
#[test]
fn dwconv3x3_scaled_epilogue_matches_reference() {
    let mut rng = Rng::new(7);
    let mut checked = 0;
    for (g, act) in grid() {
        let case = Case::new(&mut rng, g, act);
        let scale: Vec<f32> = rng.vec(g.in_c).iter().map(|v| 2.0 * v).collect();
        let mut want = vec![0.0; g.out_h() * g.out_w() * g.out_c];
        let zeros = vec![0.0; g.in_c];
        reference::conv2d(&g, &case.input, &case.oihw, &zeros, Act::None, &mut want);
        for (i, v) in want.iter_mut().enumerate() {
            let c = i % g.in_c;
            *v = act.apply(*v * scale[c] + case.bias[c]);
        }
        for tier in dispatch::available() {
            let oh = g.out_h();
            let mut got = vec![f32::NAN; oh * case.row_len()];
            let split = oh / 2;
            let (top, bottom) = got.split_at_mut(split * case.row_len());
            for (rows, out) in [(0..split, top), (split..oh, bottom)] {
                dwconv::dwconv_scaled_rows(
                    tier,
                    &g,
                    &case.input,
                    &case.packed,
                    Some(&scale),
                    &case.bias,
                    act,
                    rows,
                    out,
                );
            }
            assert_close(&got, &want, DWCONV, &case.name(tier));
            checked += 1;
        }
    }
    assert!(checked >= CHANNELS.len() * SIZES.len() * SIZES.len() * 12);
}

/// `dwconv_window_rows` on the smallest window of input rows that output rows `a..b` read
/// gives exactly the rows the whole-image call gives (same kernel, same tap order), under
/// every tier, for strides 1 and 2, padding 0 and 1, and the channel grid.
#[test]
fn window_rows_match_whole_image() {
    let mut rng = Rng::new(77);
    for c in CHANNELS {
        for (h, w) in [(1, 3), (5, 7), (8, 8), (9, 4)] {
            for stride in [1, 2] {
                for pad in [0, 1] {
                    let g = geom(h, w, c, 3, stride, pad, 1);
                    let (oh, ow) = (g.out_h(), g.out_w());
                    if oh == 0 || ow == 0 {
                        continue;
                    }
                    let act = rng.pick(&ACTS);
                    let case = Case::new(&mut rng, g, act);
                    for tier in dispatch::available() {
                        let mut whole = vec![0.0; oh * ow * c];
                        dwconv::dwconv_rows(
                            tier,
                            &g,
                            &case.input,
                            &case.packed,
                            &case.bias,
                            case.act,
                            0..oh,
                            &mut whole,
                        );
                        for a in 0..oh {
                            for b in a + 1..=oh {
                                let lo = (a * stride).saturating_sub(pad);
                                let hi = ((b - 1) * stride + 3 - pad).min(h);
                                let win = &case.input[lo * w * c..hi * w * c];
                                let mut got = vec![f32::NAN; (b - a) * ow * c];
                                dwconv::dwconv_window_rows(
                                    tier,
                                    &g,
                                    win,
                                    lo,
                                    &case.packed,
                                    None,
                                    &case.bias,
                                    case.act,
                                    a..b,
                                    &mut got,
                                );
                                assert_eq!(
                                    got,
                                    whole[a * ow * c..b * ow * c],
                                    "{} {g:?} rows {a}..{b} window {lo}..{hi}",
                                    tier.name()
                                );
                            }
                        }
                    }
                }
            }
        }
    }
}

/// A window that misses a row the output reads is a programmer error caught before any
/// access.
#[test]
#[should_panic(expected = "do not cover")]
fn window_missing_a_row_panics() {
    let g = geom(6, 4, 16, 3, 1, 1, 1);
    let input = vec![0.0; 6 * 4 * 16];
    let packed = vec![0.0; 9 * 16];
    let mut out = vec![0.0; 4 * 16];
    // Output row 2 reads input rows 1..=3; the window starts at row 2.
    dwconv::dwconv_window_rows(
        dispatch::tier(),
        &g,
        &input[2 * 64..],
        2,
        &packed,
        None,
        &[0.0; 16],
        Act::None,
        2..3,
        &mut out,
    );
}
