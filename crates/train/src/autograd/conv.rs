//! Dense convolution (`groups == 1`) forward and backward over an NHWC batch.
//!
//! - 1x1, stride 1, no padding: the batch is one matrix `X[N·H·W, I]`, so the forward is
//!   `Y = X · Wᵀ` and the backward `dX = dY · W` (W viewed as `[O, I]`, no repacking) and
//!   `dW = dYᵀ · X` (a transposed-A product, no copy of either matrix).
//! - any other kernel, stride, padding or dilation: im2col of the whole batch into
//!   `cols[N·OH·OW, kh·kw·I]` (patch order `[ky, kx, ci]`), `Y = cols · Wp`, and backward
//!   `dW = dYᵀ · cols`, `dcols = dY · W_ohwi`, then col2im scatters `dcols` into dX.
//!
//! Every product goes through `gemm` (`slimdet_kernels::sgemm` and `sgemm_t`), or in bf16
//! mode through `slimdet_kernels::bf16_gemm` (see `Ctx::conv_matmul`); im2col and
//! col2im run in parallel over the images of the batch; large buffers come from the pass's
//! pool.

use rayon::prelude::*;
use slimdet_core::{Conv2d, Tensor};
use slimdet_kernels::im2col;
use slimdet_kernels::reference::ConvGeom;

use super::linalg::{Ctx, col_sums};

/// im2col of every image of `x` `[N, H, W, I]` into `[N·OH·OW, kh·kw·I]`.
fn batch_cols(ctx: Ctx<'_>, g: &ConvGeom, n: usize, x: &[f32]) -> Vec<f32> {
    let (oh, ow) = (g.out_h(), g.out_w());
    let k = g.kh * g.kw * g.in_c;
    let img = g.in_h * g.in_w * g.in_c;
    let mut cols = ctx.pool.zeroed(n * oh * ow * k);
    cols.par_chunks_mut((oh * ow * k).max(1))
        .zip(x.par_chunks(img.max(1)))
        .for_each(|(dst, src)| im2col::im2col_rows(g, src, 0..oh, dst));
    cols
}

/// Forward of a dense convolution without its activation: `[N, OH, OW, O]`.
pub(crate) fn forward(ctx: Ctx<'_>, c: &Conv2d, g: &ConvGeom, n: usize, x: &[f32]) -> Vec<f32> {
    let o = g.out_c;
    let m = n * g.out_h() * g.out_w();
    let wp = im2col::pack_weight(c.weight.data(), o, g.in_c, g.kh, g.kw);
    let mut y = ctx.pool.zeroed(m * o);
    if c.is_pointwise() {
        ctx.conv_matmul(m, o, g.in_c, x, &wp, &mut y);
    } else {
        let cols = batch_cols(ctx, g, n, x);
        ctx.conv_matmul(m, o, g.kh * g.kw * g.in_c, &cols, &wp, &mut y);
        ctx.pool.give(cols);
    }
    if let Some(b) = &c.bias {
        let b = b.data();
        y.par_chunks_mut(o * 256).for_each(|rows| {
            for row in rows.chunks_mut(o) {
                for (v, bv) in row.iter_mut().zip(b) {
                    *v += bv;
                }
            }
        });
    }
    y
}

/// Gradients of one convolution.
pub(crate) struct ConvGrads {
    /// `[N, H, W, I]`, when asked for.
    pub dx: Option<Vec<f32>>,
    /// OIHW, when the layer is trained.
    pub dw: Option<Tensor>,
    /// `[O]`, when the layer is trained and has a bias.
    pub db: Option<Tensor>,
}

/// Backward of a dense convolution given `dy` `[N, OH, OW, O]` (already multiplied by the
/// derivative of the fused activation).
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    ctx: Ctx<'_>,
    c: &Conv2d,
    g: &ConvGeom,
    n: usize,
    x: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_params: bool,
) -> ConvGrads {
    let (o, i) = (g.out_c, g.in_c);
    let m = n * g.out_h() * g.out_w();
    let k = g.kh * g.kw * i;
    let db = (need_params && c.bias.is_some()).then(|| {
        let s = col_sums(dy, o);
        Tensor::new(vec![o], s.into_iter().map(|v| v as f32).collect()).expect("bias shape")
    });
    let pointwise = c.is_pointwise();
    let cols_owned = (need_params && !pointwise).then(|| batch_cols(ctx, g, n, x));
    let dw = need_params.then(|| {
        // dW [O, K] = dYᵀ · cols, K in (ky, kx, ci) order.
        let cols: &[f32] = cols_owned.as_deref().unwrap_or(x);
        let mut w_ok = vec![0.0f32; o * k];
        ctx.conv_matmul_tn(o, k, m, dy, cols, &mut w_ok);
        let oihw = if pointwise {
            w_ok
        } else {
            ohwi_to_oihw(&w_ok, o, i, g.kh, g.kw)
        };
        Tensor::new(c.weight.shape().to_vec(), oihw).expect("weight shape")
    });
    if let Some(cols) = cols_owned {
        ctx.pool.give(cols);
    }
    let dx = need_dx.then(|| {
        let w_ok = oihw_to_ohwi(c.weight.data(), o, i, g.kh, g.kw);
        if pointwise {
            let mut dx = ctx.pool.zeroed(m * i);
            ctx.conv_matmul(m, i, o, dy, &w_ok, &mut dx);
            dx
        } else {
            let mut dcols = ctx.pool.zeroed(m * k);
            ctx.conv_matmul(m, k, o, dy, &w_ok, &mut dcols);
            let dx = col2im(ctx, g, n, &dcols);
            ctx.pool.give(dcols);
            dx
        }
    });
    ConvGrads { dx, dw, db }
}

/// OIHW `[O, I, kh, kw]` to `[O, kh, kw, I]` (the im2col patch order).
fn oihw_to_ohwi(w: &[f32], o: usize, i: usize, kh: usize, kw: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    for oc in 0..o {
        for ci in 0..i {
            for t in 0..kh * kw {
                out[(oc * kh * kw + t) * i + ci] = w[(oc * i + ci) * kh * kw + t];
            }
        }
    }
    out
}

/// Inverse of [`oihw_to_ohwi`].
fn ohwi_to_oihw(w: &[f32], o: usize, i: usize, kh: usize, kw: usize) -> Vec<f32> {
    let mut out = vec![0.0f32; w.len()];
    for oc in 0..o {
        for ci in 0..i {
            for t in 0..kh * kw {
                out[(oc * i + ci) * kh * kw + t] = w[(oc * kh * kw + t) * i + ci];
            }
        }
    }
    out
}

/// Scatter-adds `dcols` `[N·OH·OW, kh·kw·I]` back into the input gradient `[N, H, W, I]`.
fn col2im(ctx: Ctx<'_>, g: &ConvGeom, n: usize, dcols: &[f32]) -> Vec<f32> {
    let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
    let k = g.kh * g.kw * c;
    let img = g.in_h * g.in_w * c;
    let mut dx = ctx.pool.zeroed(n * img);
    dx.par_chunks_mut(img.max(1))
        .zip(dcols.par_chunks((oh * ow * k).max(1)))
        .for_each(|(dst, src)| {
            for oy in 0..oh {
                for ox in 0..ow {
                    let row = &src[(oy * ow + ox) * k..(oy * ow + ox + 1) * k];
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
                            let base = (iy as usize * g.in_w + ix as usize) * c;
                            let t = (ky * g.kw + kx) * c;
                            for (d, v) in dst[base..base + c].iter_mut().zip(&row[t..t + c]) {
                                *d += v;
                            }
                        }
                    }
                }
            }
        });
    dx
}
