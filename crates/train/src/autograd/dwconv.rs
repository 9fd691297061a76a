//! Depthwise convolution (`groups == I == O`) forward and backward over an NHWC batch.
//!
//! The forward calls the kernels crate's depthwise kernel (its SIMD 3x3 paths when they
//! apply) image by image in parallel. The backward is hand-written: for each output pixel
//! and tap, `dX[iy, ix, :] += W[tap, :] ⊙ dY[oy, ox, :]` and `dW[tap, :] += X[iy, ix, :] ⊙
//! dY[oy, ox, :]`, loops over contiguous channels that the compiler vectorises. Images run
//! in parallel; each produces a partial `dW`, summed in image order so that the result does
//! not depend on the thread count.

use rayon::prelude::*;
use slimdet_core::{Conv2d, Tensor};
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Act, dwconv};

use super::conv::ConvGrads;
use super::linalg::Ctx;

/// Forward without the fused activation: `[N, OH, OW, C]`.
pub(crate) fn forward(ctx: Ctx, c: &Conv2d, g: &ConvGeom, n: usize, x: &[f32]) -> Vec<f32> {
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
    let mut y = vec![0.0f32; n * oh * ow * ch];
    let img = g.in_h * g.in_w * ch;
    y.par_chunks_mut((oh * ow * ch).max(1))
        .zip(x.par_chunks(img.max(1)))
        .for_each(|(dst, src)| {
            dwconv::dwconv_rows(ctx.tier, g, src, &w, bias, Act::None, 0..oh, dst);
        });
    y
}

/// Backward given `dy` `[N, OH, OW, C]` (already multiplied by the activation's derivative).
pub(crate) fn backward(
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
    let (oh, ow) = (g.out_h(), g.out_w());
    let img_in = g.in_h * g.in_w * ch;
    let img_out = oh * ow * ch;
    let w = dwconv::pack_weight(c.weight.data(), ch, g.kh, g.kw);
    let work = |b: usize, dx: &mut [f32]| -> (Vec<f32>, Vec<f32>) {
        let xs = &x[b * img_in..(b + 1) * img_in];
        let gs = &dy[b * img_out..(b + 1) * img_out];
        let (mut dw, mut db) = if need_params {
            (vec![0.0f32; taps * ch], vec![0.0f32; ch])
        } else {
            (Vec::new(), Vec::new())
        };
        for oy in 0..oh {
            for ox in 0..ow {
                let gp = &gs[(oy * ow + ox) * ch..(oy * ow + ox + 1) * ch];
                if need_params {
                    for (d, v) in db.iter_mut().zip(gp) {
                        *d += v;
                    }
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
                        let base = (iy as usize * g.in_w + ix as usize) * ch;
                        let t = (ky * g.kw + kx) * ch;
                        if need_params {
                            let xp = &xs[base..base + ch];
                            for ((d, xv), gv) in dw[t..t + ch].iter_mut().zip(xp).zip(gp) {
                                *d += xv * gv;
                            }
                        }
                        if need_dx {
                            let wt = &w[t..t + ch];
                            for ((d, wv), gv) in dx[base..base + ch].iter_mut().zip(wt).zip(gp) {
                                *d += wv * gv;
                            }
                        }
                    }
                }
            }
        }
        (dw, db)
    };
    let mut dx_all = vec![0.0f32; if need_dx { n * img_in } else { 0 }];
    let partials: Vec<(Vec<f32>, Vec<f32>)> = if need_dx {
        dx_all
            .par_chunks_mut(img_in.max(1))
            .enumerate()
            .map(|(b, dx)| work(b, dx))
            .collect()
    } else {
        (0..n).into_par_iter().map(|b| work(b, &mut [])).collect()
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
