//! Running the compiled steps.

use super::*;

impl Int8Engine {
    pub(super) fn run_steps(&mut self, par: bool) {
        for i in 0..self.steps.len() {
            if Some(i) != self.input_quantize {
                self.exec(i, par);
            }
        }
    }

    pub(super) fn exec(&mut self, i: usize, par: bool) {
        let tier = self.tier;
        match &self.steps[i] {
            Step::Quantize { src, dst, q, qmin } => {
                q.quantize_slice(tier, &self.f32s[*src], &mut self.u8s[*dst], *qmin);
            }
            Step::Dequantize { src, dst, q } => {
                let (x, o) = (&self.u8s[*src], &mut self.f32s[*dst]);
                for (o, &c) in o.iter_mut().zip(x) {
                    *o = q.dequantize(c);
                }
            }
            Step::QGemm {
                kind,
                geom,
                src,
                dst,
                b,
                rq,
                in_zp,
                residual,
            } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                let x = &self.u8s[*src];
                let residual = residual.as_ref().map(|(r, p)| (self.u8s[*r].as_slice(), p));
                let k = b.k();
                let n = b.n();
                if *kind == ConvKind::Im2col && residual.is_none() {
                    // Bands of image rows: each band's column matrix is built and consumed
                    // while it is in L1/L2 (the whole 150x150 first layer's is 630 KB).
                    let (ow, oh) = (geom.out_w(), geom.out_h());
                    let band = IM2COL_BAND_PIXELS.div_ceil(ow).max(1);
                    let cols = &mut self.cols[..oh * ow * k];
                    let work = |(t, (o, cb)): (usize, (&mut [u8], &mut [u8]))| {
                        let y0 = t * band;
                        let y1 = (y0 + band).min(oh);
                        im2col_u8_rows(geom, x, *in_zp, y0..y1, k, cb);
                        let s = QGemmShape {
                            m: (y1 - y0) * ow,
                            lda: k,
                            ldc: n,
                        };
                        qgemm_u8i8_i32_requant(tier, s, cb, b, rq, o);
                    };
                    let chunks = out
                        .chunks_mut(band * ow * n)
                        .zip(cols.chunks_mut(band * ow * k))
                        .enumerate();
                    if par {
                        chunks.par_bridge().for_each(work);
                    } else {
                        chunks.for_each(work);
                    }
                    self.u8s[*dst] = out;
                    return;
                }
                let rows = geom.out_h() * geom.out_w();
                let a: &[u8] = if *kind == ConvKind::Im2col {
                    let cols = &mut self.cols[..rows * k];
                    im2col_u8_rows(geom, x, *in_zp, 0..geom.out_h(), k, cols);
                    cols
                } else {
                    x
                };
                let run = |r0: usize, o: &mut [u8]| {
                    let m = o.len() / n;
                    let s = QGemmShape { m, lda: k, ldc: n };
                    let a = &a[r0 * k..(r0 + m) * k];
                    match residual {
                        Some((r, p)) => {
                            let r = &r[r0 * n..(r0 + m) * n];
                            qgemm_u8i8_requant_add(tier, s, a, b, rq, r, p, o);
                        }
                        None => qgemm_u8i8_i32_requant(tier, s, a, b, rq, o),
                    }
                };
                if par {
                    out.par_chunks_mut(ROWS_PER_TASK * n)
                        .enumerate()
                        .for_each(|(t, o)| run(t * ROWS_PER_TASK, o));
                } else {
                    run(0, &mut out);
                }
                self.u8s[*dst] = out;
            }
            Step::QDw {
                geom,
                src,
                dst,
                w,
                rq,
                in_zp,
            } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                let x = &self.u8s[*src];
                let (oh, row) = (geom.out_h(), geom.out_w() * geom.out_c);
                if par {
                    let chunk = 4;
                    out.par_chunks_mut(chunk * row)
                        .enumerate()
                        .for_each(|(t, o)| {
                            let r0 = t * chunk;
                            qdwconv_u8i8_requant_rows(
                                tier,
                                geom,
                                x,
                                *in_zp,
                                w,
                                rq,
                                r0..(r0 + chunk).min(oh),
                                o,
                            );
                        });
                } else {
                    qdwconv_u8i8_requant_rows(tier, geom, x, *in_zp, w, rq, 0..oh, &mut out);
                }
                self.u8s[*dst] = out;
            }
            Step::DynGemm {
                kind,
                geom,
                src,
                dst,
                b,
                neg_colsum,
                w_scale,
                bias,
                act,
            } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                let x = &self.f32s[*src];
                let (lo, hi) = x
                    .iter()
                    .fold((0f32, 0f32), |(l, h), &v| (l.min(v), h.max(v)));
                let q = QParams::from_range(lo, hi, crate::options::Activations::U8);
                let xq = &mut self.dyn_in[..x.len()];
                q.quantize_slice(tier, x, xq, 0);
                let k = b.k();
                let rows = geom.out_h() * geom.out_w();
                let a: &[u8] = if *kind == ConvKind::Im2col {
                    let cols = &mut self.cols[..rows * k];
                    im2col_u8_rows(geom, xq, q.zero_point as u8, 0..geom.out_h(), k, cols);
                    cols
                } else {
                    xq
                };
                let (alo, ahi) = act.bounds();
                let dq = Dequant {
                    bias_i32: neg_colsum
                        .iter()
                        .map(|&c| c.wrapping_mul(q.zero_point))
                        .collect(),
                    scale: w_scale.iter().map(|&s| s * q.scale).collect(),
                    bias: bias.clone(),
                    lo: alo,
                    hi: ahi,
                };
                let n = b.n();
                qgemm_u8i8_f32_dequant(
                    tier,
                    QGemmShape {
                        m: rows,
                        lda: k,
                        ldc: n,
                    },
                    a,
                    b,
                    &dq,
                    &mut out,
                );
                self.f32s[*dst] = out;
            }
            Step::FConv { conv, src, dst } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                conv.run(tier, &self.f32s[*src], &mut out, &mut self.f32_scratch);
                self.f32s[*dst] = out;
            }
            Step::QAdd { a, b, dst, p } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                qadd_u8_requant(tier, &self.u8s[*a], &self.u8s[*b], p, &mut out);
                self.u8s[*dst] = out;
            }
            Step::FAdd { a, b, dst, act } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                for ((o, x), y) in out.iter_mut().zip(&self.f32s[*a]).zip(&self.f32s[*b]) {
                    *o = act.apply(x + y);
                }
                self.f32s[*dst] = out;
            }
            Step::FAct { src, dst, act } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                out.copy_from_slice(&self.f32s[*src]);
                act.apply_slice(&mut out);
                self.f32s[*dst] = out;
            }
            Step::CopyU8 { src, dst } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                out.copy_from_slice(&self.u8s[*src]);
                self.u8s[*dst] = out;
            }
            Step::CopyF32 { src, dst } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                out.copy_from_slice(&self.f32s[*src]);
                self.f32s[*dst] = out;
            }
            Step::Float { op, srcs, dst } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                let xs: Vec<&[f32]> = srcs.iter().map(|&b| self.f32s[b].as_slice()).collect();
                op.run(&xs, &mut out);
                self.f32s[*dst] = out;
            }
            Step::LutU8 { lut, src, dst } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                for (o, &c) in out.iter_mut().zip(&self.u8s[*src]) {
                    *o = lut[c as usize];
                }
                self.u8s[*dst] = out;
            }
            Step::MaxPoolU8 {
                p,
                shape,
                out_shape,
                src,
                dst,
            } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                slimdet_core::exec::max_pool(p, &self.u8s[*src], shape, out_shape, &mut out);
                self.u8s[*dst] = out;
            }
            Step::Concat { srcs, dst, axis } => {
                let mut out = std::mem::take(&mut self.f32s[*dst]);
                let parts: Vec<(&[f32], &[usize])> = srcs
                    .iter()
                    .map(|(b, s)| (self.f32s[*b].as_slice(), s.as_slice()))
                    .collect();
                concat(&parts, *axis, &mut out);
                self.f32s[*dst] = out;
            }
        }
    }

    pub(super) fn packed_bytes(&self) -> usize {
        self.steps
            .iter()
            .map(|s| match s {
                Step::QGemm { b, rq, .. } => b.as_slice().len() + 12 * rq.channels(),
                Step::QDw { w, rq, .. } => w.len() + 12 * rq.channels(),
                Step::DynGemm { b, w_scale, .. } => b.as_slice().len() + 12 * w_scale.len(),
                Step::FConv { conv, .. } => 4 * (conv.w.len() + conv.bias.len()),
                _ => 0,
            })
            .sum()
    }
}
