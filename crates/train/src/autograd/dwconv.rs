//! Depthwise convolution (`groups == I == O`) forward and backward over an NHWC batch.
//!
//! The forward calls the kernels crate's depthwise kernel (its SIMD 3x3 paths when they
//! apply) image by image in parallel. The backward runs the kernels crate's
//! `dw_backward_image` (for each output pixel and tap, `dX[iy, ix, :] += W[tap, :] ⊙
//! dY[oy, ox, :]` and `dW[tap, :] += X[iy, ix, :] ⊙ dY[oy, ox, :]`, vectorised across
//! channels) image by image in parallel; each image produces a partial `dW`, summed in
//! image order so that the result does not depend on the thread count.

use rayon::prelude::*;
use slimdet_core::{Conv2d, Tensor};
use slimdet_kernels::dw_backward::{DwGrads, dw_backward_image};
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Act, dwconv};

use super::conv::ConvGrads;
use super::linalg::Ctx;

/// Forward without the fused activation: `[N, OH, OW, C]`.
pub(crate) fn forward(ctx: Ctx<'_>, c: &Conv2d, g: &ConvGeom, n: usize, x: &[f32]) -> Vec<f32> {
    let ch = g.in_c;
    let (oh, ow) = (g.out_h(), g.out_w());
    let w = dwconv::pack_weight(c.weight.data(), ch, g.kh, g.kw);
    let zeros;
    let bias = match &c.bias {
        Some(b) => b.data(),
        None => {
            zeros = vec![0.0f32; ch];
            &zeros
        }
    };
    let mut y = ctx.pool.zeroed(n * oh * ow * ch);
    let img = g.in_h * g.in_w * ch;
    y.par_chunks_mut((oh * ow * ch).max(1))
        .zip(x.par_chunks(img.max(1)))
        .for_each(|(dst, src)| {
            dwconv::dwconv_rows(ctx.tier, g, src, &w, bias, Act::None, 0..oh, dst);
        });
    y
}

/// Backward given `dy` `[N, OH, OW, C]` (already multiplied by the activation's derivative).
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
    let ch = g.in_c;
    let taps = g.kh * g.kw;
    let img_in = g.in_h * g.in_w * ch;
    let img_out = g.out_h() * g.out_w() * ch;
    let w = dwconv::pack_weight(c.weight.data(), ch, g.kh, g.kw);
    let work = |b: usize, dx: Option<&mut [f32]>| -> (Vec<f32>, Vec<f32>) {
        let (mut dw, mut db) = if need_params {
            (vec![0.0f32; taps * ch], vec![0.0f32; ch])
        } else {
            (Vec::new(), Vec::new())
        };
        let out = DwGrads {
            dx,
            dw: need_params.then_some(dw.as_mut_slice()),
            db: need_params.then_some(db.as_mut_slice()),
        };
        dw_backward_image(
            ctx.tier,
            g,
            &x[b * img_in..(b + 1) * img_in],
            &dy[b * img_out..(b + 1) * img_out],
            &w,
            out,
        );
        (dw, db)
    };
    let mut dx_all = ctx.pool.zeroed(if need_dx { n * img_in } else { 0 });
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if need_dx {
        dx_all
            .par_chunks_mut(img_in.max(1))
            .enumerate()
            .map(|(b, dx)| work(b, Some(dx)))
            .collect()
    } else {
        (0..n).into_par_iter().map(|b| work(b, None)).collect()
    };
    let mut dw_sum = vec![0.0f32; if need_params { taps * ch } else { 0 }];
    let mut db_sum = vec![0.0f32; if need_params { ch } else { 0 }];
    for (dw, db) in partials {
        for (s, v) in dw_sum.iter_mut().zip(dw) {
            *s += v;
        }
        for (s, v) in db_sum.iter_mut().zip(db) {
            *s += v;
        }
    }
    let dw = need_params.then(|| {
        // Packed [taps, C] back to OIHW [C, 1, kh, kw].
        let mut oihw = vec![0.0f32; taps * ch];
        for cc in 0..ch {
            for t in 0..taps {
                oihw[cc * taps + t] = dw_sum[t * ch + cc];
            }
        }
        Tensor::new(c.weight.shape().to_vec(), oihw).expect("weight shape")
    });
    let db = (need_params && c.bias.is_some())
        .then(|| Tensor::new(vec![ch], db_sum).expect("bias shape"));
    ConvGrads {
        dx: need_dx.then_some(dx_all),
        dw,
        db,
    }
}
