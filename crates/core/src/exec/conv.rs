//! Convolution steps: compiling one convolution (with its BN and activation) into packed
//! weights for its kernel, and running it on NHWC buffers.

use rayon::prelude::*;
use slimdet_kernels::pointwise::{PwEpilogue, PwWeights, pointwise};
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Act, Tier, dwconv, im2col};

use super::{ConvKind, IM2COL_BAND_FLOATS, Step};
use crate::ops::Conv2d;

/// Compiles one convolution (with its BN and activation) for `tier`; returns the step and
/// the scratch floats it needs when run on `threads` workers.
pub(super) fn compile_conv(
    c: &Conv2d,
    in_shape: &[usize],
    bn: Option<&crate::ops::BatchNorm>,
    act: Act,
    tier: Tier,
    threads: usize,
) -> (Step, usize) {
    let [kh, kw] = c.kernel();
    let geom = c.geom(in_shape);
    let mut bias = c
        .bias
        .as_ref()
        .map_or_else(|| vec![0.0; geom.out_c], |b| b.data().to_vec());
    // With a BN: y = (acc + b)·s + t = acc·s + (b·s + t).
    let scale = bn.map(|bn| {
        let (s, t) = bn.scale_shift_f64();
        for (o, b) in bias.iter_mut().enumerate() {
            *b = (*b as f64 * s[o] + t[o]) as f32;
        }
        s.into_iter().map(|v| v as f32).collect::<Vec<f32>>()
    });
    let wd = c.weight.data();
    let (kind, w, scratch) = if c.is_pointwise() {
        (
            ConvKind::Pointwise(Box::new(PwWeights::pack(
                tier,
                &im2col::pack_weight(wd, geom.out_c, geom.in_c, 1, 1),
                geom.in_c,
                geom.out_c,
            ))),
            Vec::new(),
            0,
        )
    } else if c.groups == 1 {
        let k = kh * kw * geom.in_c;
        let band = im2col_band(&geom).min(geom.out_h());
        (
            ConvKind::Im2col(Box::new(PwWeights::pack(
                tier,
                &im2col::pack_weight(wd, geom.out_c, geom.in_c, kh, kw),
                k,
                geom.out_c,
            ))),
            Vec::new(),
            threads * band * geom.out_w() * k,
        )
    } else if c.is_depthwise() {
        (
            ConvKind::Depthwise,
            dwconv::pack_weight(wd, geom.in_c, kh, kw),
            0,
        )
    } else {
        (ConvKind::Grouped, wd.to_vec(), 0)
    };
    (
        Step::Conv {
            kind,
            geom,
            w,
            scale,
            bias,
            act,
            residual: None,
        },
        scratch,
    )
}

/// Output rows per im2col band: the band's columns take about [`IM2COL_BAND_FLOATS`].
fn im2col_band(g: &ConvGeom) -> usize {
    (IM2COL_BAND_FLOATS / (g.out_w() * g.kh * g.kw * g.in_c).max(1)).max(1)
}

/// Per-output-channel epilogue of a convolution: `act(acc · scale + bias)`.
pub(super) struct Epilogue<'a> {
    pub(super) scale: Option<&'a [f32]>,
    pub(super) bias: &'a [f32],
    pub(super) act: Act,
}

impl<'a> Epilogue<'a> {
    /// The pointwise kernel's form of this epilogue, with an optional residual.
    fn pw(&self, residual: Option<(&'a [f32], Act)>) -> PwEpilogue<'a> {
        PwEpilogue {
            scale: self.scale,
            bias: self.bias,
            act: self.act,
            residual: residual.map(|r| r.0),
            res_act: residual.map_or(Act::None, |r| r.1),
        }
    }

    /// Applies the epilogue to raw accumulators `[pixels, C]` in place (`acc · scale + bias`
    /// as one fused multiply-add, as in the kernels' epilogues).
    fn apply(&self, out: &mut [f32]) {
        let (lo, hi) = self.act.bounds();
        let c = self.bias.len();
        match self.scale {
            Some(s) => {
                for row in out.chunks_mut(c) {
                    for ((v, s), b) in row.iter_mut().zip(s).zip(self.bias) {
                        *v = v.mul_add(*s, *b).max(lo).min(hi);
                    }
                }
            }
            None => {
                for row in out.chunks_mut(c) {
                    for (v, b) in row.iter_mut().zip(self.bias) {
                        *v = (*v + b).max(lo).min(hi);
                    }
                }
            }
        }
    }
}

/// Runs one convolution over a batch. `res`: the residual `[N, OH, OW, O]` added after the
/// epilogue, and the activation applied after it (pointwise convolutions only).
#[allow(clippy::too_many_arguments)]
pub(super) fn run_conv(
    kind: &ConvKind,
    g: &ConvGeom,
    w: &[f32],
    epi: &Epilogue,
    input: &[f32],
    res: Option<(&[f32], Act)>,
    batch: usize,
    out: &mut [f32],
    scratch: &mut [f32],
    tier: Tier,
    threads: usize,
) {
    let (oh, ow, oc) = (g.out_h(), g.out_w(), g.out_c);
    let in_img = g.in_h * g.in_w * g.in_c;
    let out_img = oh * ow * oc;
    if out_img == 0 {
        return;
    }
    match kind {
        ConvKind::Pointwise(pw) => {
            let m = batch * g.in_h * g.in_w;
            let k = g.in_c;
            // One call per worker: the kernel blocks for the caches itself.
            let chunk = m.div_ceil(threads).next_multiple_of(24).max(24);
            let run_rows = |ci: usize, o: &mut [f32]| {
                let (r0, rows) = (ci * chunk, o.len() / oc);
                let x = &input[r0 * k..(r0 + rows) * k];
                let r = res.map(|(r, a)| (&r[r0 * oc..(r0 + rows) * oc], a));
                pointwise(tier, rows, x, pw, &epi.pw(r), o);
            };
            if threads == 1 || m <= chunk {
                run_rows(0, out);
            } else {
                out.par_chunks_mut(chunk * oc)
                    .enumerate()
                    .for_each(|(ci, o)| run_rows(ci, o));
            }
        }
        ConvKind::Im2col(pw) => {
            let k = g.kh * g.kw * g.in_c;
            let band = im2col_band(g);
            for b in 0..batch {
                let x = &input[b * in_img..(b + 1) * in_img];
                let o = &mut out[b * out_img..(b + 1) * out_img];
                // Each worker takes a run of output rows and builds its bands in its own
                // part of the scratch.
                let per = oh.div_ceil(threads).max(1);
                o.par_chunks_mut(per * ow * oc)
                    .zip(scratch.par_chunks_mut(band.min(oh) * ow * k))
                    .enumerate()
                    .for_each(|(ci, (o, cols))| {
                        let rows = ci * per..((ci + 1) * per).min(oh);
                        for r0 in rows.clone().step_by(band) {
                            let r1 = (r0 + band).min(rows.end);
                            let px = (r1 - r0) * ow;
                            let cols = &mut cols[..px * k];
                            im2col::im2col_rows(g, x, r0..r1, cols);
                            let o = &mut o[(r0 - rows.start) * ow * oc..][..px * oc];
                            pointwise(tier, px, cols, pw, &epi.pw(None), o);
                        }
                    });
            }
        }
        ConvKind::Depthwise => {
            for b in 0..batch {
                let x = &input[b * in_img..(b + 1) * in_img];
                let o = &mut out[b * out_img..(b + 1) * out_img];
                let chunk = oh.div_ceil(threads * 2).max(1);
                o.par_chunks_mut(chunk * ow * oc)
                    .enumerate()
                    .for_each(|(ci, c)| {
                        let r0 = ci * chunk;
                        let rows = r0..(r0 + chunk).min(oh);
                        dwconv::dwconv_scaled_rows(
                            tier, g, x, w, epi.scale, epi.bias, epi.act, rows, c,
                        );
                    });
            }
        }
        ConvKind::Sparse(sw) => slimdet_kernels::sparse::spmm(
            tier, sw, input, epi.scale, epi.bias, epi.act, out, threads,
        ),
        ConvKind::Grouped => {
            for b in 0..batch {
                let o = &mut out[b * out_img..(b + 1) * out_img];
                let zeros = vec![0.0; oc];
                slimdet_kernels::reference::conv2d(
                    g,
                    &input[b * in_img..(b + 1) * in_img],
                    w,
                    &zeros,
                    Act::None,
                    o,
                );
                epi.apply(o);
            }
        }
    }
}
