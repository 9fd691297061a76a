//! Int8 depthwise convolution, NHWC, any k×k geometry the f32 kernels accept (the
//! MobileNetV2 layers are 3x3 with padding 1, stride 1 or 2), with the requantization
//! and activation clamp fused.
//!
//! `out[oy, ox, c] = rq(Σ_taps (x[iy, ix, c] − x_zp) · w[tap, c], c)` where taps that
//! fall into the padding contribute nothing (they hold the real value 0, which is
//! `x_zp`). Kernel ids: `<arch>/<isa>/qdwconv_u8i8_requant_c<lanes>` (crate docs, "Kernel names").

use std::ops::Range;

use super::requant::Requant;
use crate::dispatch::Tier;
use crate::reference::ConvGeom;

/// Repacks a PyTorch depthwise weight `[C, 1, kh, kw]` to `[kh·kw, C]`.
pub fn pack_weight(oihw: &[i8], channels: usize, kh: usize, kw: usize) -> Vec<i8> {
    let mut out = vec![0i8; kh * kw * channels];
    for c in 0..channels {
        for t in 0..kh * kw {
            out[t * channels + c] = oihw[c * kh * kw + t];
        }
    }
    out
}

pub(crate) fn check(
    g: &ConvGeom,
    x: &[u8],
    w: &[i8],
    rq: &Requant,
    rows: &Range<usize>,
    out: &[u8],
) {
    let c = g.in_c;
    assert!(
        g.groups == c && g.out_c == c && c > 0 && g.dil_h >= 1 && g.dil_w >= 1,
        "qdwconv: not a depthwise geometry: {g:?}"
    );
    assert!(
        rows.end <= g.out_h(),
        "qdwconv: rows {rows:?} past {}",
        g.out_h()
    );
    assert_eq!(x.len(), g.in_h * g.in_w * c, "qdwconv: input length");
    assert_eq!(w.len(), g.kh * g.kw * c, "qdwconv: weight length");
    assert_eq!(
        out.len(),
        rows.len() * g.out_w() * c,
        "qdwconv: output length"
    );
    assert!(
        rq.is_valid() && rq.channels() == c,
        "qdwconv: invalid requant stage"
    );
}

/// The input position of tap `k` for output position `o`, if inside the image.
#[inline]
pub(crate) fn tap_pos(
    o: usize,
    k: usize,
    stride: usize,
    dil: usize,
    pad: usize,
    len: usize,
) -> Option<usize> {
    let i = (o * stride + k * dil) as isize - pad as isize;
    (i >= 0 && (i as usize) < len).then_some(i as usize)
}

/// The specification: plain loops over output rows `rows` of one image.
///
/// - `x`: `[in_h, in_w, C]`, zero point `x_zp`
/// - `w`: `[kh·kw, C]` (see [`pack_weight`])
/// - `out`: `[rows.len(), out_w, C]`
pub fn qdwconv_reference(
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) {
    check(g, x, w, rq, &rows, out);
    let (c, ow) = (g.in_c, g.out_w());
    for (r, oy) in rows.enumerate() {
        for ox in 0..ow {
            for ch in 0..c {
                let mut acc = 0i32;
                for ky in 0..g.kh {
                    let Some(iy) = tap_pos(oy, ky, g.stride_h, g.dil_h, g.pad_h, g.in_h) else {
                        continue;
                    };
                    for kx in 0..g.kw {
                        let Some(ix) = tap_pos(ox, kx, g.stride_w, g.dil_w, g.pad_w, g.in_w) else {
                            continue;
                        };
                        let xv = x[(iy * g.in_w + ix) * c + ch] as i32 - x_zp;
                        acc = acc.wrapping_add(xv * w[(ky * g.kw + kx) * c + ch] as i32);
                    }
                }
                out[(r * ow + ox) * c + ch] = rq.apply(acc, ch);
            }
        }
    }
}

/// Depthwise int8 convolution of output rows `rows` on the widest path `tier` allows.
/// Arguments as [`qdwconv_reference`]; `x_zp` in `0..=255`.
///
/// # Panics
/// On inconsistent lengths or an invalid stage (programmer errors).
#[allow(clippy::too_many_arguments)]
pub fn qdwconv_u8i8_requant_rows(
    tier: Tier,
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) {
    check(g, x, w, rq, &rows, out);
    assert!((0..=255).contains(&x_zp), "qdwconv: zero point {x_zp}");
    if crate::x86_64::quant::qdwconv(tier, g, x, x_zp, w, rq, rows.clone(), out)
        || crate::aarch64::quant::qdwconv(tier, g, x, x_zp, w, rq, rows.clone(), out)
    {
        return;
    }
    qdwconv_reference(g, x, x_zp, w, rq, rows, out);
}

/// The kernel a call on `tier` runs.
pub fn qdwconv_kernel_id(tier: Tier) -> &'static str {
    crate::x86_64::quant::qdwconv_id(tier)
        .or_else(|| crate::aarch64::quant::qdwconv_id(tier))
        .unwrap_or("reference/qdwconv_u8i8_requant")
}
