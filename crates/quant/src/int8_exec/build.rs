//! Compiling a [`QuantizedDetector`] into steps: the domain of each value, the
//! conversions at domain boundaries, packed weights and requantization stages.

use super::*;

struct Builder<'a> {
    m: &'a QuantizedDetector,
    shapes: Vec<Vec<usize>>,
    steps: Vec<Step>,
    u8_sizes: Vec<usize>,
    f32_sizes: Vec<usize>,
    values: Vec<(Option<usize>, Option<usize>, Option<QParams>)>,
}

impl Builder<'_> {
    fn numel(&self, v: ValueId) -> usize {
        self.shapes[v].iter().product()
    }

    fn new_u8(&mut self, v: ValueId) -> usize {
        self.u8_sizes.push(self.numel(v));
        self.values[v].0 = Some(self.u8_sizes.len() - 1);
        self.u8_sizes.len() - 1
    }

    fn new_f32(&mut self, v: ValueId) -> usize {
        self.f32_sizes.push(self.numel(v));
        self.values[v].1 = Some(self.f32_sizes.len() - 1);
        self.f32_sizes.len() - 1
    }

    fn missing(&self, v: ValueId, what: &str) -> QuantError {
        QuantError::Format {
            path: "<quantized model>".into(),
            reason: format!("value {v} has no {what}"),
        }
    }

    fn need_u8(&mut self, v: ValueId) -> Result<usize> {
        if let Some(b) = self.values[v].0 {
            return Ok(b);
        }
        let src = self.values[v]
            .1
            .ok_or_else(|| self.missing(v, "producer"))?;
        let q = self.values[v]
            .2
            .ok_or_else(|| self.missing(v, "quantization parameters"))?;
        let dst = self.new_u8(v);
        let qmin = self.m.base_min();
        self.steps.push(Step::Quantize { src, dst, q, qmin });
        Ok(dst)
    }

    fn need_f32(&mut self, v: ValueId) -> Result<usize> {
        if let Some(b) = self.values[v].1 {
            return Ok(b);
        }
        let src = self.values[v]
            .0
            .ok_or_else(|| self.missing(v, "producer"))?;
        let q = self.values[v]
            .2
            .ok_or_else(|| self.missing(v, "quantization parameters"))?;
        let dst = self.new_f32(v);
        self.steps.push(Step::Dequantize { src, dst, q });
        Ok(dst)
    }

    fn conv(&mut self, name: &str, c: &slimdet_core::Conv2d, x: ValueId, y: ValueId) -> Result<()> {
        let in_shape = self.shapes[x].clone();
        let fc = FloatConv::new(c, &in_shape);
        let (kind, geom) = (fc.kind, fc.geom);
        let layer = self.m.layers.get(name);
        match (layer, self.m.mode) {
            (Some(l), Mode::Static) => {
                let (qi, qo) = match (self.values[x].2, self.values[y].2) {
                    (Some(a), Some(b)) => (a, b),
                    _ => return Err(self.missing(y, "quantization parameters")),
                };
                let QBias::I32(bias) = &l.bias else {
                    return Err(self.missing(y, "int32 bias"));
                };
                let muls: Vec<QMul> = l
                    .weight_scale
                    .iter()
                    .map(|&sw| QMul::from_real(qi.scale as f64 * sw as f64 / qo.scale as f64))
                    .collect();
                let (qmin, qmax) = qo.clamp_codes(c.act, self.m.base_min());
                let src = self.need_u8(x)?;
                let dst = self.new_u8(y);
                if kind == ConvKind::Depthwise {
                    let rq = Requant::new(bias.clone(), &muls, qo.zero_point, qmin, qmax);
                    let w = qdwconv::pack_weight(&l.weight, geom.in_c, geom.kh, geom.kw);
                    self.steps.push(Step::QDw {
                        geom,
                        src,
                        dst,
                        w,
                        rq,
                        in_zp: qi.zero_point,
                    });
                } else {
                    let [o, i, kh, kw] = l.shape;
                    let b = if kind == ConvKind::Im2col {
                        PackedB::from_oihw_padded(&l.weight, o, i, kh, kw)
                    } else {
                        PackedB::from_oihw(&l.weight, o, i, kh, kw)
                    };
                    let rq = Requant::new(
                        b.zero_point_bias(bias, qi.zero_point),
                        &muls,
                        qo.zero_point,
                        qmin,
                        qmax,
                    );
                    self.steps.push(Step::QGemm {
                        kind,
                        geom,
                        src,
                        dst,
                        b,
                        rq,
                        in_zp: qi.zero_point as u8,
                        residual: None,
                    });
                }
            }
            (Some(l), _) => {
                let [o, i, kh, kw] = l.shape;
                let b = if kind == ConvKind::Im2col {
                    PackedB::from_oihw_padded(&l.weight, o, i, kh, kw)
                } else {
                    PackedB::from_oihw(&l.weight, o, i, kh, kw)
                };
                let neg_colsum = b.zero_point_bias(&vec![0; o], 1);
                let bias = match &l.bias {
                    QBias::F32(b) => b.clone(),
                    QBias::I32(_) => return Err(self.missing(y, "f32 bias")),
                };
                let src = self.need_f32(x)?;
                let dst = self.new_f32(y);
                let w_scale = l.weight_scale.clone();
                self.steps.push(Step::DynGemm {
                    kind,
                    geom,
                    src,
                    dst,
                    b,
                    neg_colsum,
                    w_scale,
                    bias,
                    act: c.act,
                });
            }
            (None, _) => {
                let src = self.need_f32(x)?;
                let dst = self.new_f32(y);
                self.steps.push(Step::FConv { conv: fc, src, dst });
            }
        }
        Ok(())
    }
}

impl Int8Engine {
    pub(super) fn build(m: &QuantizedDetector, threads: usize, keep_all: bool) -> Result<Self> {
        let c = &m.head.config;
        let shapes = slimdet_core::shape::infer(&m.graph, &[1, c.input_h, c.input_w, 3])?;
        let g = &m.graph;
        let act = if m.act.len() == g.num_values {
            m.act.clone()
        } else {
            vec![None; g.num_values]
        };
        let mut b = Builder {
            m,
            shapes,
            steps: Vec::new(),
            u8_sizes: Vec::new(),
            f32_sizes: Vec::new(),
            values: act.into_iter().map(|q| (None, None, q)).collect(),
        };
        let input = b.new_f32(g.input);
        for n in &g.nodes {
            let (x, y) = (n.inputs[0], n.output);
            match &n.op {
                Op::Conv(c) => b.conv(&n.name, c, x, y)?,
                Op::Add(a) => {
                    let z = n.inputs[1];
                    let qs = (b.values[x].2, b.values[z].2, b.values[y].2);
                    match qs {
                        (Some(qa), Some(qb), Some(qo))
                            if m.mode == Mode::Static && !m.keep_float.contains(&n.name) =>
                        {
                            let (qmin, qmax) = qo.clamp_codes(*a, m.base_min());
                            let p = QAddParams::new(
                                (qa.scale, qa.zero_point),
                                (qb.scale, qb.zero_point),
                                (qo.scale, qo.zero_point),
                                qmin,
                                qmax,
                            );
                            let (sa, sb) = (b.need_u8(x)?, b.need_u8(z)?);
                            let dst = b.new_u8(y);
                            b.steps.push(Step::QAdd {
                                a: sa,
                                b: sb,
                                dst,
                                p,
                            });
                        }
                        _ => {
                            let (sa, sb) = (b.need_f32(x)?, b.need_f32(z)?);
                            let dst = b.new_f32(y);
                            b.steps.push(Step::FAdd {
                                a: sa,
                                b: sb,
                                dst,
                                act: *a,
                            });
                        }
                    }
                }
                Op::Act(a) => {
                    let src = b.need_f32(x)?;
                    let dst = b.new_f32(y);
                    b.steps.push(Step::FAct { src, dst, act: *a });
                }
                Op::Reshape(_) => {
                    if let Some(src) = b.values[x].0 {
                        // Same codes, same parameters.
                        b.values[y].2 = b.values[x].2;
                        let dst = b.new_u8(y);
                        b.steps.push(Step::CopyU8 { src, dst });
                    } else {
                        let src = b.need_f32(x)?;
                        let dst = b.new_f32(y);
                        b.steps.push(Step::CopyF32 { src, dst });
                    }
                }
                Op::Concat { axis } => {
                    let mut srcs = Vec::new();
                    for &v in &n.inputs {
                        srcs.push((b.need_f32(v)?, b.shapes[v].clone()));
                    }
                    let dst = b.new_f32(y);
                    b.steps.push(Step::Concat {
                        srcs,
                        dst,
                        axis: *axis,
                    });
                }
                Op::HardSwish | Op::HardSigmoid
                    if m.mode == Mode::Static && b.values[x].0.is_some() =>
                {
                    let (Some(qi), Some(qo)) = (b.values[x].2, b.values[y].2) else {
                        return Err(b.missing(y, "quantization parameters"));
                    };
                    let f = if matches!(n.op, Op::HardSwish) {
                        slimdet_kernels::act::hard_swish
                    } else {
                        slimdet_kernels::act::hard_sigmoid
                    };
                    // Every input code's output code: dequantize, the f32 function, then
                    // the same quantization a `Quantize` step applies (the bytes do not
                    // depend on the tier).
                    let real: Vec<f32> = (0..=255u8).map(|c| f(qi.dequantize(c))).collect();
                    let mut lut = [0u8; 256];
                    qo.quantize_slice(slimdet_kernels::Tier::Scalar, &real, &mut lut, m.base_min());
                    let src = b.need_u8(x)?;
                    let dst = b.new_u8(y);
                    b.steps.push(Step::LutU8 {
                        lut: Box::new(lut),
                        src,
                        dst,
                    });
                }
                Op::MaxPool(p) if b.values[x].0.is_some() => {
                    let src = b.need_u8(x)?;
                    b.values[y].2 = b.values[x].2;
                    let dst = b.new_u8(y);
                    b.steps.push(Step::MaxPoolU8 {
                        p: *p,
                        shape: b.shapes[x].clone(),
                        out_shape: b.shapes[y].clone(),
                        src,
                        dst,
                    });
                }
                other => {
                    let ins: Vec<&[usize]> =
                        n.inputs.iter().map(|&v| b.shapes[v].as_slice()).collect();
                    let Some(op) = FloatOp::new(other, &ins, &b.shapes[y]) else {
                        return Err(QuantError::Unsupported {
                            layer: n.name.clone(),
                            op: other.kind(),
                        });
                    };
                    let mut srcs = Vec::new();
                    for &v in &n.inputs {
                        srcs.push(b.need_f32(v)?);
                    }
                    let dst = b.new_f32(y);
                    b.steps.push(Step::Float { op, srcs, dst });
                }
            }
        }
        let mut outputs = Vec::new();
        for (_, v) in &g.outputs {
            outputs.push(b.need_f32(*v)?);
        }
        let (mut input, mut u8_sizes, mut f32_sizes) =
            (input, b.u8_sizes.clone(), b.f32_sizes.clone());
        if !keep_all {
            fuse_residual_adds(&mut b.steps);
            let mut pinned = vec![input];
            pinned.extend(&outputs);
            let (su, sf, new_pinned) =
                share_buffers(&mut b.steps, &b.u8_sizes, &b.f32_sizes, &pinned);
            (u8_sizes, f32_sizes) = (su, sf);
            input = new_pinned[0];
            outputs = new_pinned[1..].to_vec();
            for v in &mut b.values {
                (v.0, v.1) = (None, None);
            }
        }
        let cols = b
            .steps
            .iter()
            .map(|s| match s {
                Step::QGemm {
                    kind: ConvKind::Im2col,
                    geom,
                    ..
                }
                | Step::DynGemm {
                    kind: ConvKind::Im2col,
                    geom,
                    ..
                } => {
                    geom.out_h()
                        * geom.out_w()
                        * (geom.kh * geom.kw * geom.in_c).next_multiple_of(4)
                }
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let dyn_in = b
            .steps
            .iter()
            .map(|s| match s {
                Step::DynGemm { geom, .. } => geom.in_h * geom.in_w * geom.in_c,
                _ => 0,
            })
            .max()
            .unwrap_or(0);
        let threads = threads.max(1);
        let pool = if threads > 1 {
            Some(
                rayon::ThreadPoolBuilder::new()
                    .num_threads(threads)
                    .build()
                    .map_err(|e| slimdet_core::CoreError::Threads {
                        threads,
                        reason: e.to_string(),
                    })?,
            )
        } else {
            None
        };
        // The network input read by one quantize step only: `run` quantizes straight from
        // the caller's slice instead of copying it into the arena first.
        let mut readers = b
            .steps
            .iter_mut()
            .enumerate()
            .filter_map(|(i, st)| st.io().2.iter().any(|&&mut f| f == input).then_some(i));
        let input_quantize = match (readers.next(), readers.next()) {
            (Some(i), None) if !keep_all && matches!(b.steps[i], Step::Quantize { .. }) => Some(i),
            _ => None,
        };
        Ok(Self {
            input_quantize,
            steps: b.steps,
            u8s: u8_sizes.into_iter().map(|n| vec![0; n]).collect(),
            f32s: f32_sizes.into_iter().map(|n| vec![0.0; n]).collect(),
            cols: vec![0; cols],
            dyn_in: vec![0; dyn_in],
            f32_scratch: Vec::new(),
            input,
            outputs,
            values: b.values,
            tier: slimdet_kernels::tier(),
            pool,
            name: if m.mode == Mode::Static {
                "int8-static"
            } else {
                "int8-dynamic"
            },
        })
    }
}

/// Folds each residual add into the GEMM that produces one of its inputs, when that GEMM
/// is the step just before it and nothing else reads its output (the projection of an
/// inverted-residual block): the add then runs in the GEMM's epilogue, bit-exact, and
/// the projection's codes are never stored. Not used when every value keeps its buffer
/// (the codes are then read back for reports).
fn fuse_residual_adds(steps: &mut Vec<Step>) {
    let mut reads = std::collections::HashMap::<usize, usize>::new();
    for st in steps.iter_mut() {
        for b in st.io().0 {
            *reads.entry(*b).or_default() += 1;
        }
    }
    let mut fused: Vec<Step> = Vec::with_capacity(steps.len());
    for st in steps.drain(..) {
        if let (
            Step::QAdd { a, b, dst, p },
            Some(Step::QGemm {
                dst: out, residual, ..
            }),
        ) = (&st, fused.last_mut())
        {
            let only_reader = |v: usize| reads.get(&v) == Some(&1);
            let other = if *out == *a && *b != *a && only_reader(*a) {
                Some((*b, *p))
            } else if *out == *b && *a != *b && only_reader(*b) {
                // The add is symmetric: swap the inputs so that the codes are `a`.
                let swapped = QAddParams {
                    a_zp: p.b_zp,
                    a_mul: p.b_mul,
                    b_zp: p.a_zp,
                    b_mul: p.a_mul,
                    ..*p
                };
                Some((*a, swapped))
            } else {
                None
            };
            if let (Some(r), None) = (other, residual.as_ref()) {
                *residual = Some(r);
                *out = *dst;
                continue;
            }
        }
        fused.push(st);
    }
    *steps = fused;
}
