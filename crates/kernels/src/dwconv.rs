//! Depthwise convolution over NHWC images (`groups == in_c == out_c`).
//!
//! Channels are contiguous in NHWC, so every tap is a vector multiply-add across channels.
//! 3x3 kernels with dilation 1, stride 1 or 2 and padding ≤ 1 take the SIMD paths in
//! `x86_64/` when the tier allows (see [`kernel_id`]); everything else takes the portable
//! loop below, which the compiler vectorises over channels. The plain-loop specification is [`crate::reference::conv2d`].

use std::ops::Range;

use crate::act::Act;
use crate::dispatch::Tier;
use crate::reference::ConvGeom;

/// Repacks a PyTorch depthwise weight `[C, 1, kh, kw]` into tap-major `[kh·kw, C]`.
pub fn pack_weight(oihw: &[f32], channels: usize, kh: usize, kw: usize) -> Vec<f32> {
    let taps = kh * kw;
    let mut packed = vec![0.0; taps * channels];
    for c in 0..channels {
        for t in 0..taps {
            packed[t * channels + c] = oihw[c * taps + t];
        }
    }
    packed
}

/// Computes output rows `rows` of a depthwise convolution.
///
/// - `input`: `[in_h, in_w, C]`
/// - `weight`: packed `[kh·kw, C]` (see [`pack_weight`])
/// - `bias`: `[C]`
/// - `out`: exactly the requested rows, `[rows.len(), out_w, C]`
///
/// # Panics
/// If `g` is not depthwise or a slice does not match its shape (programmer errors).
#[allow(clippy::too_many_arguments)]
pub fn dwconv_rows(
    tier: Tier,
    g: &ConvGeom,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    dwconv_scaled_rows(tier, g, input, weight, None, bias, act, rows, out);
}

/// [`dwconv_rows`] with an optional per-channel `scale` `[C]`: then each output is
/// `act(acc · scale + bias)` with `acc` the plain sum of the taps, which is a batch norm
/// applied after the convolution in PyTorch's order (no rounding of folded weights).
///
/// # Panics
/// As [`dwconv_rows`], and if `scale` is not `[C]`.
#[allow(clippy::too_many_arguments)]
pub fn dwconv_scaled_rows(
    tier: Tier,
    g: &ConvGeom,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    assert_eq!(
        input.len(),
        g.in_h * g.in_w * g.in_c,
        "dwconv_rows: input length"
    );
    dwconv_window_rows(tier, g, input, 0, weight, scale, bias, act, rows, out);
}

/// [`dwconv_scaled_rows`] on a window of the input: `window` holds image rows
/// `row0..row0 + window.len() / (in_w·C)`, which must include every input row that output
/// rows `rows` read (with padding 1 and stride `s`: rows `rows.start·s − 1` to
/// `(rows.end − 1)·s + 1`, clipped to the image). A fused block computes its expanded
/// input band by band into such a window instead of a whole image.
///
/// # Panics
/// As [`dwconv_rows`], and if the window does not cover the rows read.
#[allow(clippy::too_many_arguments)]
pub fn dwconv_window_rows(
    tier: Tier,
    g: &ConvGeom,
    window: &[f32],
    row0: usize,
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let input = window;
    let c = g.in_c;
    assert!(
        g.groups == c && g.out_c == c,
        "dwconv_rows: not a depthwise geometry"
    );
    assert!(rows.end <= g.out_h(), "dwconv_rows: rows out of range");
    let row_len = g.in_w * c;
    assert!(
        input.len().is_multiple_of(row_len.max(1)),
        "dwconv_rows: input is not whole rows"
    );
    let win_end = row0 + input.len() / row_len.max(1);
    for oy in [rows.start, rows.end.saturating_sub(1)] {
        if rows.is_empty() || row_len == 0 {
            break;
        }
        for ky in 0..g.kh {
            let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
            assert!(
                iy < 0 || iy >= g.in_h as isize || (row0 as isize <= iy && iy < win_end as isize),
                "dwconv_rows: input rows do not cover the output rows"
            );
        }
    }
    assert_eq!(weight.len(), g.kh * g.kw * c, "dwconv_rows: weight length");
    assert_eq!(bias.len(), c, "dwconv_rows: bias length");
    assert!(
        scale.is_none_or(|s| s.len() == c),
        "dwconv_rows: scale length"
    );
    assert_eq!(
        out.len(),
        rows.len() * g.out_w() * c,
        "dwconv_rows: output length"
    );
    // This architecture's 3x3 SIMD wrapper (the other architecture's always declines).
    let simd = if cfg!(target_arch = "aarch64") {
        crate::aarch64::dwconv3x3_rows
    } else {
        crate::x86_64::dwconv3x3_rows
    };
    if simd(
        tier,
        g,
        input,
        row0,
        weight,
        scale,
        bias,
        act,
        rows.clone(),
        out,
    ) {
        return;
    }
    portable_window_rows(g, input, row0, weight, scale, bias, act, rows, out);
}

/// Id of the kernel [`dwconv_rows`] runs for `tier`, `g` and `act` (the SIMD kernel, or
/// `portable/dwconv_f32`), as used in logs, benches and CSV rows.
pub fn kernel_id(tier: Tier, g: &ConvGeom, act: Act) -> &'static str {
    crate::x86_64::dwconv3x3_id(tier, g, act)
        .or_else(|| crate::aarch64::dwconv3x3_id(tier, g, act))
        .unwrap_or("portable/dwconv_f32")
}

/// Portable path: any kernel size, stride, padding and dilation.
#[allow(clippy::too_many_arguments)]
pub fn portable_rows(
    g: &ConvGeom,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    portable_window_rows(g, input, 0, weight, scale, bias, act, rows, out);
}

/// [`portable_rows`] on a window of input rows starting at image row `row0`.
#[allow(clippy::too_many_arguments)]
fn portable_window_rows(
    g: &ConvGeom,
    input: &[f32],
    row0: usize,
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    crate::reference::fused_loops(
        #[inline(always)]
        || portable_window_loops(g, input, row0, weight, scale, bias, act, rows, out),
    )
}

/// The loops of [`portable_window_rows`]: taps in `(ky, kx)` order, each a fused
/// multiply-add across channels, from the bias (or from 0, then `acc · scale + bias`
/// fused), as the SIMD kernels compute them.
#[allow(clippy::too_many_arguments)]
#[inline(always)]
fn portable_window_loops(
    g: &ConvGeom,
    input: &[f32],
    row0: usize,
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    rows: Range<usize>,
    out: &mut [f32],
) {
    let c = g.in_c;
    let ow = g.out_w();
    let (lo, hi) = act.bounds();
    for (r, oy) in rows.enumerate() {
        for ox in 0..ow {
            let o = &mut out[(r * ow + ox) * c..(r * ow + ox + 1) * c];
            match scale {
                Some(_) => o.fill(0.0),
                None => o.copy_from_slice(bias),
            }
            for ky in 0..g.kh {
                let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                if iy < 0 || iy >= g.in_h as isize {
                    continue;
                }
                for kx in 0..g.kw {
                    let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
                    if ix < 0 || ix >= g.in_w as isize {
                        continue;
                    }
                    let base = ((iy as usize - row0) * g.in_w + ix as usize) * c;
                    let src = &input[base..base + c];
                    let t = ky * g.kw + kx;
                    let w = &weight[t * c..(t + 1) * c];
                    for ((ov, iv), wv) in o.iter_mut().zip(src).zip(w) {
                        *ov = iv.mul_add(*wv, *ov);
                    }
                }
            }
            if let Some(s) = scale {
                for ((v, s), b) in o.iter_mut().zip(s).zip(bias) {
                    *v = v.mul_add(*s, *b);
                }
            }
            if act != Act::None {
                for v in o.iter_mut() {
                    *v = v.max(lo).min(hi);
                }
            }
        }
    }
}
