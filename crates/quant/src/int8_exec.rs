//! The integer executor: a [`QuantizedDetector`] compiled to int8 kernel calls.
//!
//! Every value lives in the domain its producer computes in: `u8` codes for quantized
//! convolutions and adds, `f32` for the input, layers kept in f32, dynamic-mode layers
//! and concatenations. A consumer that needs the other domain gets a quantize or
//! dequantize step, compiled once: this is how mixed precision (`keep_float`) puts
//! conversions exactly at the boundaries. The SSD heads are reshaped in `u8` and
//! concatenated in `f32`, so softmax and box decoding read dequantized logits.

use std::sync::Arc;

use rayon::prelude::*;
use slimdet_core::{Act, Op, ValueId};
use slimdet_kernels::Tier;
use slimdet_kernels::quant::{
    Dequant, PackedB, QAddParams, QGemmShape, QMul, Requant, im2col_u8_rows, qadd_u8_requant,
    qdwconv, qdwconv_u8i8_requant_rows, qgemm_u8i8_f32_dequant, qgemm_u8i8_i32_requant,
};
use slimdet_kernels::reference::ConvGeom;
use slimdet_models::{Backend, BackendFactory, ModelError};

use crate::error::{QuantError, Result};
use crate::float_exec::{FloatConv, concat};
use crate::model::{QBias, QParams, QuantizedDetector};
use crate::options::Mode;
use crate::prepare::ConvKind;

/// Builds an [`Int8Engine`] per predictor.
#[derive(Debug)]
pub struct Int8Factory {
    model: Arc<QuantizedDetector>,
}

impl Int8Factory {
    /// A factory for `model`.
    pub fn new(model: Arc<QuantizedDetector>) -> Self {
        Self { model }
    }
}

impl BackendFactory for Int8Factory {
    fn build(&self, threads: usize) -> slimdet_models::Result<Box<dyn Backend>> {
        Int8Engine::new(&self.model, threads)
            .map(|e| Box::new(e) as Box<dyn Backend>)
            .map_err(|e| ModelError::Backend(Box::new(e)))
    }
}

/// Rows of output computed per parallel task.
const ROWS_PER_TASK: usize = 64;

#[derive(Debug)]
enum Step {
    Quantize {
        src: usize,
        dst: usize,
        q: QParams,
        qmin: i32,
    },
    Dequantize {
        src: usize,
        dst: usize,
        q: QParams,
    },
    QGemm {
        kind: ConvKind,
        geom: ConvGeom,
        src: usize,
        dst: usize,
        b: PackedB,
        rq: Requant,
        in_zp: u8,
    },
    QDw {
        geom: ConvGeom,
        src: usize,
        dst: usize,
        w: Vec<i8>,
        rq: Requant,
        in_zp: i32,
    },
    DynGemm {
        kind: ConvKind,
        geom: ConvGeom,
        src: usize,
        dst: usize,
        b: PackedB,
        neg_colsum: Vec<i32>,
        w_scale: Vec<f32>,
        bias: Vec<f32>,
        act: Act,
    },
    FConv {
        conv: FloatConv,
        src: usize,
        dst: usize,
    },
    QAdd {
        a: usize,
        b: usize,
        dst: usize,
        p: QAddParams,
    },
    FAdd {
        a: usize,
        b: usize,
        dst: usize,
        act: Act,
    },
    FAct {
        src: usize,
        dst: usize,
        act: Act,
    },
    CopyU8 {
        src: usize,
        dst: usize,
    },
    CopyF32 {
        src: usize,
        dst: usize,
    },
    Concat {
        srcs: Vec<(usize, Vec<usize>)>,
        dst: usize,
        axis: usize,
    },
}

/// The buffers a step reads and writes: `(u8 srcs, u8 dsts, f32 srcs, f32 dsts)`.
type StepIo<'a> = (
    Vec<&'a mut usize>,
    Vec<&'a mut usize>,
    Vec<&'a mut usize>,
    Vec<&'a mut usize>,
);

impl Step {
    fn io(&mut self) -> StepIo<'_> {
        match self {
            Step::Quantize { src, dst, .. } => (vec![], vec![dst], vec![src], vec![]),
            Step::Dequantize { src, dst, .. } => (vec![src], vec![], vec![], vec![dst]),
            Step::QGemm { src, dst, .. }
            | Step::QDw { src, dst, .. }
            | Step::CopyU8 { src, dst } => (vec![src], vec![dst], vec![], vec![]),
            Step::DynGemm { src, dst, .. }
            | Step::FConv { src, dst, .. }
            | Step::FAct { src, dst, .. }
            | Step::CopyF32 { src, dst } => (vec![], vec![], vec![src], vec![dst]),
            Step::QAdd { a, b, dst, .. } => (vec![a, b], vec![dst], vec![], vec![]),
            Step::FAdd { a, b, dst, .. } => (vec![], vec![], vec![a, b], vec![dst]),
            Step::Concat { srcs, dst, .. } => (
                vec![],
                vec![],
                srcs.iter_mut().map(|(b, _)| b).collect(),
                vec![dst],
            ),
        }
    }
}

/// Puts every buffer of `steps` in an arena slot by liveness and rewrites the steps to
/// slot indices. Returns the slot sizes (u8, f32) and the new index of each pinned f32
/// buffer.
fn share_buffers(
    steps: &mut [Step],
    u8_sizes: &[usize],
    f32_sizes: &[usize],
    pinned_f32: &[usize],
) -> (Vec<usize>, Vec<usize>, Vec<usize>) {
    let mut lists_u8 = Vec::with_capacity(steps.len());
    let mut lists_f32 = Vec::with_capacity(steps.len());
    for st in steps.iter_mut() {
        let (us, ud, fs, fd) = st.io();
        lists_u8.push((
            us.into_iter().map(|b| *b).collect(),
            ud.into_iter().map(|b| *b).collect(),
        ));
        lists_f32.push((
            fs.into_iter().map(|b| *b).collect(),
            fd.into_iter().map(|b| *b).collect(),
        ));
    }
    let (slot_u8, sizes_u8) = crate::arena::assign(u8_sizes, &lists_u8, &[]);
    let (slot_f32, sizes_f32) = crate::arena::assign(f32_sizes, &lists_f32, pinned_f32);
    for st in steps.iter_mut() {
        let (us, ud, fs, fd) = st.io();
        for b in us.into_iter().chain(ud) {
            *b = slot_u8[*b];
        }
        for b in fs.into_iter().chain(fd) {
            *b = slot_f32[*b];
        }
    }
    (
        sizes_u8,
        sizes_f32,
        pinned_f32.iter().map(|&b| slot_f32[b]).collect(),
    )
}

/// A compiled quantized model with its buffers.
pub struct Int8Engine {
    steps: Vec<Step>,
    u8s: Vec<Vec<u8>>,
    f32s: Vec<Vec<f32>>,
    cols: Vec<u8>,
    dyn_in: Vec<u8>,
    f32_scratch: Vec<f32>,
    input: usize,
    outputs: Vec<usize>,
    /// Per value: its `u8` buffer, its `f32` buffer, its quantization.
    values: Vec<(Option<usize>, Option<usize>, Option<QParams>)>,
    tier: Tier,
    pool: Option<rayon::ThreadPool>,
    name: &'static str,
}

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
    /// Compiles `m` (static or dynamic) for one image per call on `threads` threads,
    /// sharing activation buffers by liveness.
    pub fn new(m: &QuantizedDetector, threads: usize) -> Result<Self> {
        Self::build(m, threads, false)
    }

    /// Like [`Int8Engine::new`], but every value keeps its own buffer so that
    /// [`Int8Engine::values_f32`] can read all of them after a run (for reports).
    pub fn new_keep_all(m: &QuantizedDetector, threads: usize) -> Result<Self> {
        Self::build(m, threads, true)
    }

    fn build(m: &QuantizedDetector, threads: usize, keep_all: bool) -> Result<Self> {
        let det = slimdet_models::Detector::new(m.arch.clone());
        let shapes = slimdet_core::shape::infer(&m.graph, &det.input_shape())?;
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
                other => {
                    return Err(QuantError::Unsupported {
                        layer: n.name.clone(),
                        op: other.kind(),
                    });
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
        Ok(Self {
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

    /// Runs one image (NHWC `[1, H, W, 3]`); returns the graph outputs in order.
    pub fn run(&mut self, input: &[f32]) -> Result<Vec<&[f32]>> {
        if input.len() != self.f32s[self.input].len() {
            return Err(slimdet_core::CoreError::InputShape {
                expected: vec![self.f32s[self.input].len()],
                got: input.len(),
            }
            .into());
        }
        self.f32s[self.input].copy_from_slice(input);
        match self.pool.take() {
            Some(pool) => {
                pool.install(|| self.run_steps(true));
                self.pool = Some(pool);
            }
            None => self.run_steps(false),
        }
        Ok(self
            .outputs
            .iter()
            .map(|&b| self.f32s[b].as_slice())
            .collect())
    }

    /// Runs once like [`Int8Engine::run`] and returns each step's kind and wall time in
    /// milliseconds (single-threaded), for profiling.
    pub fn profile(&mut self, input: &[f32]) -> Result<Vec<(String, f64)>> {
        self.run(input)?;
        let mut out = Vec::with_capacity(self.steps.len());
        for i in 0..self.steps.len() {
            let t = std::time::Instant::now();
            self.exec(i, false);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let kind = match &self.steps[i] {
                Step::QGemm { kind, geom, .. } | Step::DynGemm { kind, geom, .. } => format!(
                    "{kind:?} {}x{} {}->{} @{}x{}",
                    geom.kh,
                    geom.kw,
                    geom.in_c,
                    geom.out_c,
                    geom.out_h(),
                    geom.out_w()
                ),
                Step::QDw { geom, .. } => format!(
                    "QDw s{} {} @{}x{}",
                    geom.stride_h,
                    geom.in_c,
                    geom.out_h(),
                    geom.out_w()
                ),
                other => format!("{other:?}")
                    .split([' ', '{'])
                    .next()
                    .unwrap_or("")
                    .to_string(),
            };
            out.push((kind, ms));
        }
        Ok(out)
    }

    /// The fastest of `reps` back-to-back executions of step `i` (hot caches), in
    /// milliseconds, after one full run; for profiling.
    pub fn time_step(&mut self, input: &[f32], i: usize, reps: usize) -> Result<f64> {
        self.run(input)?;
        let mut best = f64::INFINITY;
        for _ in 0..reps {
            let t = std::time::Instant::now();
            self.exec(i, false);
            best = best.min(t.elapsed().as_secs_f64() * 1e3);
        }
        Ok(best)
    }

    /// Every value of the last run, dequantized (`None` for values never materialised,
    /// and for all values of an engine built with [`Int8Engine::new`], whose buffers are
    /// shared).
    pub fn values_f32(&self) -> Vec<Option<Vec<f32>>> {
        self.values
            .iter()
            .map(|(u, f, q)| match (u, f, q) {
                (_, Some(f), _) => Some(self.f32s[*f].clone()),
                (Some(u), None, Some(q)) => {
                    Some(self.u8s[*u].iter().map(|&c| q.dequantize(c)).collect())
                }
                _ => None,
            })
            .collect()
    }

    fn run_steps(&mut self, par: bool) {
        for i in 0..self.steps.len() {
            self.exec(i, par);
        }
    }

    fn exec(&mut self, i: usize, par: bool) {
        let tier = self.tier;
        match &self.steps[i] {
            Step::Quantize { src, dst, q, qmin } => {
                q.quantize_slice(&self.f32s[*src], &mut self.u8s[*dst], *qmin);
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
            } => {
                let mut out = std::mem::take(&mut self.u8s[*dst]);
                let x = &self.u8s[*src];
                let k = b.k();
                let rows = geom.out_h() * geom.out_w();
                let a: &[u8] = if *kind == ConvKind::Im2col {
                    let cols = &mut self.cols[..rows * k];
                    im2col_u8_rows(geom, x, *in_zp, 0..geom.out_h(), k, cols);
                    cols
                } else {
                    x
                };
                let n = b.n();
                let run = |r0: usize, o: &mut [u8]| {
                    let m = o.len() / n;
                    let s = QGemmShape { m, lda: k, ldc: n };
                    qgemm_u8i8_i32_requant(tier, s, &a[r0 * k..(r0 + m) * k], b, rq, o);
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
                q.quantize_slice(x, xq, 0);
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

    fn packed_bytes(&self) -> usize {
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

impl Backend for Int8Engine {
    fn forward(
        &mut self,
        input: &[f32],
        logits: &mut [f32],
        locations: &mut [f32],
    ) -> slimdet_models::Result<()> {
        let outs = self
            .run(input)
            .map_err(|e| ModelError::Backend(Box::new(e)))?;
        if outs.len() < 2 || outs[0].len() != logits.len() || outs[1].len() != locations.len() {
            return Err(ModelError::Backend(Box::new(QuantError::Format {
                path: "<quantized model>".into(),
                reason: "outputs do not match the detector's logits and locations".into(),
            })));
        }
        logits.copy_from_slice(outs[0]);
        locations.copy_from_slice(outs[1]);
        Ok(())
    }

    fn name(&self) -> &str {
        self.name
    }

    fn weight_bytes(&self) -> usize {
        self.packed_bytes()
    }

    fn arena_bytes(&self) -> usize {
        self.u8s.iter().map(Vec::len).sum::<usize>()
            + 4 * self.f32s.iter().map(Vec::len).sum::<usize>()
            + self.cols.len()
            + self.dyn_in.len()
    }
}
