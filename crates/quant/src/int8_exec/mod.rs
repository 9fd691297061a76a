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
    qgemm_u8i8_requant_add,
};
use slimdet_kernels::reference::ConvGeom;
use slimdet_models::{Backend, BackendFactory, ModelError};

use crate::error::{QuantError, Result};
use crate::float_exec::{FloatConv, concat};
use crate::float_ops::FloatOp;
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

/// Output pixels per band of an im2col convolution: 8 rows of the first layer's 150x150
/// output, 1,200 pixels (a multiple of the AMX kernel's 16-row blocks) and 34 KB of
/// 28-byte columns.
const IM2COL_BAND_PIXELS: usize = 1200;

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
        /// A residual add fused into the epilogue: the other input's buffer and the add's
        /// parameters with this convolution's codes as `a`.
        residual: Option<(usize, QAddParams)>,
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
    /// An operator run in f32 (see [`crate::float_ops`]).
    Float {
        op: FloatOp,
        srcs: Vec<usize>,
        dst: usize,
    },
    /// An element-wise function of `u8` codes by table (h-swish, h-sigmoid).
    LutU8 {
        lut: Box<[u8; 256]>,
        src: usize,
        dst: usize,
    },
    /// Max pooling of `u8` codes (the output keeps the input's quantization).
    MaxPoolU8 {
        p: slimdet_core::Pool2d,
        shape: Vec<usize>,
        out_shape: Vec<usize>,
        src: usize,
        dst: usize,
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
            Step::QGemm {
                src, dst, residual, ..
            } => {
                let mut srcs = vec![src];
                srcs.extend(residual.as_mut().map(|(r, _)| r));
                (srcs, vec![dst], vec![], vec![])
            }
            Step::QDw { src, dst, .. }
            | Step::CopyU8 { src, dst }
            | Step::MaxPoolU8 { src, dst, .. }
            | Step::LutU8 { src, dst, .. } => (vec![src], vec![dst], vec![], vec![]),
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
            Step::Float { srcs, dst, .. } => (vec![], vec![], srcs.iter_mut().collect(), vec![dst]),
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
    /// The step that quantizes the network input, when it is the input's only reader:
    /// [`Int8Engine::run`] runs it on the caller's slice (no copy into the arena).
    input_quantize: Option<usize>,
    outputs: Vec<usize>,
    /// Per value: its `u8` buffer, its `f32` buffer, its quantization.
    values: Vec<(Option<usize>, Option<usize>, Option<QParams>)>,
    tier: Tier,
    pool: Option<rayon::ThreadPool>,
    name: &'static str,
}

mod build;
mod exec;

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

    /// Runs on kernel tier `tier` from now on (the process tier by default; a tier the CPU
    /// lacks runs the best lower path, as every kernel wrapper re-checks).
    pub fn set_tier(&mut self, tier: Tier) {
        self.tier = tier;
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
        match self.input_quantize.map(|i| &self.steps[i]) {
            Some(Step::Quantize { dst, q, qmin, .. }) => {
                q.quantize_slice(self.tier, input, &mut self.u8s[*dst], *qmin)
            }
            _ => self.f32s[self.input].copy_from_slice(input),
        }
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
        // Every step runs below, the input quantization too: give it the input.
        self.f32s[self.input].copy_from_slice(input);
        let mut out = Vec::with_capacity(self.steps.len());
        for i in 0..self.steps.len() {
            let t = std::time::Instant::now();
            self.exec(i, false);
            let ms = t.elapsed().as_secs_f64() * 1e3;
            let kind = match &self.steps[i] {
                Step::QGemm {
                    kind,
                    geom,
                    residual,
                    ..
                } => format!(
                    "{kind:?}{} {}x{} {}->{} @{}x{}",
                    if residual.is_some() { "+Add" } else { "" },
                    geom.kh,
                    geom.kw,
                    geom.in_c,
                    geom.out_c,
                    geom.out_h(),
                    geom.out_w()
                ),
                Step::DynGemm { kind, geom, .. } => format!(
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
        self.f32s[self.input].copy_from_slice(input);
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
