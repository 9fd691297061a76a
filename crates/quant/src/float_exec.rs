//! A node-by-node f32 executor over a prepared graph that shows every intermediate
//! value: calibration observes them, the SQNR report compares them, and with fake
//! quantization it is the simulated (fake-quant) int8 model.
//!
//! It favours visibility over speed (one buffer per live value, single-threaded
//! kernels); the fp32 production path stays [`slimdet_core::Plan`].

use slimdet_core::{Act, Graph, Op, ValueId};
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::sgemm::{GemmShape, sgemm};
use slimdet_kernels::{Tier, dwconv, im2col};

use crate::error::Result;
use crate::float_ops::FloatOp;
use crate::prepare::{ConvKind, conv_kind};

/// Fake quantization of one value: `x ← (clamp(round(x / s) + zp, qmin, qmax) − zp) · s`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct FakeQuant {
    /// Scale.
    pub scale: f32,
    /// Zero point.
    pub zero_point: i32,
    /// Lowest code.
    pub qmin: i32,
    /// Highest code.
    pub qmax: i32,
}

impl FakeQuant {
    /// Applies the fake quantization in place.
    pub fn apply(&self, xs: &mut [f32]) {
        let inv = 1.0 / self.scale;
        for x in xs {
            let q = ((*x * inv).round() as i32 + self.zero_point).clamp(self.qmin, self.qmax);
            *x = (q - self.zero_point) as f32 * self.scale;
        }
    }
}

/// A convolution with f32 weights packed for its kernel.
#[derive(Clone, Debug)]
pub(crate) struct FloatConv {
    pub kind: ConvKind,
    pub geom: ConvGeom,
    /// Packed: `[K, O]` for GEMMs, `[kh·kw, C]` for depthwise, OIHW otherwise.
    pub w: Vec<f32>,
    pub bias: Vec<f32>,
    pub act: Act,
}

impl FloatConv {
    pub fn new(c: &slimdet_core::Conv2d, in_shape: &[usize]) -> Self {
        let geom = c.geom(in_shape);
        let kind = conv_kind(c);
        let wd = c.weight.data();
        let [kh, kw] = c.kernel();
        let w = match kind {
            ConvKind::Pointwise | ConvKind::Im2col => {
                im2col::pack_weight(wd, geom.out_c, geom.in_c, kh, kw)
            }
            ConvKind::Depthwise => dwconv::pack_weight(wd, geom.in_c, kh, kw),
            ConvKind::Grouped => wd.to_vec(),
        };
        let bias = c
            .bias
            .as_ref()
            .map_or_else(|| vec![0.0; geom.out_c], |b| b.data().to_vec());
        FloatConv {
            kind,
            geom,
            w,
            bias,
            act: c.act,
        }
    }

    /// Runs on one image `x` `[H, W, I]` into `out` `[OH, OW, O]`; `scratch` is reused.
    pub fn run(&self, tier: Tier, x: &[f32], out: &mut [f32], scratch: &mut Vec<f32>) {
        let g = &self.geom;
        let (oh, ow, oc) = (g.out_h(), g.out_w(), g.out_c);
        match self.kind {
            ConvKind::Pointwise | ConvKind::Im2col => {
                let k = g.kh * g.kw * g.in_c;
                let rows = oh * ow;
                let a: &[f32] = if self.kind == ConvKind::Pointwise {
                    x
                } else {
                    scratch.resize(rows * k, 0.0);
                    im2col::im2col_rows(g, x, 0..oh, scratch);
                    scratch
                };
                sgemm(
                    tier,
                    GemmShape::dense(rows, oc, k),
                    a,
                    &self.w,
                    out,
                    false,
                    1,
                );
                let (lo, hi) = self.act.bounds();
                for row in out.chunks_mut(oc) {
                    for (v, b) in row.iter_mut().zip(&self.bias) {
                        *v = (*v + b).max(lo).min(hi);
                    }
                }
            }
            ConvKind::Depthwise => {
                dwconv::dwconv_rows(tier, g, x, &self.w, &self.bias, self.act, 0..oh, out);
            }
            ConvKind::Grouped => {
                slimdet_kernels::reference::conv2d(g, x, &self.w, &self.bias, self.act, out);
            }
        }
    }
}

#[derive(Clone, Debug)]
enum FOp {
    Conv(FloatConv),
    Add(Act),
    Act(Act),
    Concat { axis: usize },
    Copy,
    Float(FloatOp),
}

#[derive(Clone, Debug)]
struct FStep {
    op: FOp,
    inputs: Vec<ValueId>,
    output: ValueId,
}

/// The compiled f32 executor.
#[derive(Clone, Debug)]
pub struct FloatRunner {
    steps: Vec<FStep>,
    shapes: Vec<Vec<usize>>,
    input: ValueId,
    outputs: Vec<ValueId>,
    last_use: Vec<usize>,
    tier: Tier,
}

impl FloatRunner {
    /// Compiles a prepared graph (see [`crate::prepare::prepare`]) for `input_shape`
    /// `[1, H, W, C]`.
    pub fn new(g: &Graph, input_shape: &[usize]) -> Result<Self> {
        let shapes = slimdet_core::shape::infer(g, input_shape)?;
        let mut steps = Vec::with_capacity(g.nodes.len());
        for n in &g.nodes {
            let op = match &n.op {
                Op::Conv(c) => FOp::Conv(FloatConv::new(c, &shapes[n.inputs[0]])),
                Op::Add(a) => FOp::Add(*a),
                Op::Act(a) => FOp::Act(*a),
                Op::Concat { axis } => FOp::Concat { axis: *axis },
                Op::Reshape(_) => FOp::Copy,
                other => {
                    let ins: Vec<&[usize]> =
                        n.inputs.iter().map(|&v| shapes[v].as_slice()).collect();
                    if let Some(f) = FloatOp::new(other, &ins, &shapes[n.output]) {
                        steps.push(FStep {
                            op: FOp::Float(f),
                            inputs: n.inputs.clone(),
                            output: n.output,
                        });
                        continue;
                    }
                    return Err(crate::QuantError::Unsupported {
                        layer: n.name.clone(),
                        op: other.kind(),
                    });
                }
            };
            steps.push(FStep {
                op,
                inputs: n.inputs.clone(),
                output: n.output,
            });
        }
        let mut last_use = vec![0; g.num_values];
        for (i, s) in steps.iter().enumerate() {
            for &v in &s.inputs {
                last_use[v] = i;
            }
        }
        for (_, v) in &g.outputs {
            last_use[*v] = usize::MAX;
        }
        Ok(Self {
            steps,
            shapes,
            input: g.input,
            outputs: g.outputs.iter().map(|(_, v)| *v).collect(),
            last_use,
            tier: slimdet_kernels::tier(),
        })
    }

    /// Shape of every value.
    pub fn shapes(&self) -> &[Vec<usize>] {
        &self.shapes
    }

    /// Runs one image. After each value is produced (the input included) it is fake
    /// quantized when `fake[value]` is set, then passed to `hook(value, data)`. Returns
    /// the graph outputs in order.
    pub fn run(
        &self,
        input: &[f32],
        fake: Option<&[Option<FakeQuant>]>,
        hook: &mut dyn FnMut(ValueId, &[f32]),
    ) -> Result<Vec<Vec<f32>>> {
        let numel = |v: ValueId| self.shapes[v].iter().product::<usize>();
        if input.len() != numel(self.input) {
            return Err(slimdet_core::CoreError::InputShape {
                expected: self.shapes[self.input].clone(),
                got: input.len(),
            }
            .into());
        }
        let mut vals: Vec<Option<Vec<f32>>> = vec![None; self.shapes.len()];
        let mut x = input.to_vec();
        if let Some(f) = fake.and_then(|f| f[self.input]) {
            f.apply(&mut x);
        }
        hook(self.input, &x);
        vals[self.input] = Some(x);
        let mut scratch = Vec::new();
        for (i, s) in self.steps.iter().enumerate() {
            let get = |k: usize| vals[s.inputs[k]].as_deref().unwrap_or(&[]);
            let mut out = vec![0f32; numel(s.output)];
            match &s.op {
                FOp::Conv(c) => c.run(self.tier, get(0), &mut out, &mut scratch),
                FOp::Add(a) => {
                    for ((o, p), q) in out.iter_mut().zip(get(0)).zip(get(1)) {
                        *o = a.apply(p + q);
                    }
                }
                FOp::Act(a) => {
                    out.copy_from_slice(get(0));
                    a.apply_slice(&mut out);
                }
                FOp::Copy => out.copy_from_slice(get(0)),
                FOp::Float(f) => {
                    let xs: Vec<&[f32]> = (0..s.inputs.len()).map(get).collect();
                    f.run(&xs, &mut out);
                }
                FOp::Concat { axis } => {
                    let parts: Vec<(&[f32], &[usize])> = s
                        .inputs
                        .iter()
                        .map(|&v| (vals[v].as_deref().unwrap_or(&[]), self.shapes[v].as_slice()))
                        .collect();
                    concat(&parts, *axis, &mut out);
                }
            }
            if let Some(f) = fake.and_then(|f| f[s.output]) {
                f.apply(&mut out);
            }
            hook(s.output, &out);
            vals[s.output] = Some(out);
            for &v in &s.inputs {
                if self.last_use[v] == i {
                    vals[v] = None;
                }
            }
        }
        Ok(self
            .outputs
            .iter()
            .map(|&v| vals[v].clone().unwrap_or_default())
            .collect())
    }
}

/// Concatenates `parts` (data, shape) along `axis` into `out`.
pub fn concat<T: Copy>(parts: &[(&[T], &[usize])], axis: usize, out: &mut [T]) {
    let Some((_, s0)) = parts.first() else { return };
    let outer: usize = s0[..axis].iter().product();
    let out_inner: usize = out.len() / outer.max(1);
    let mut offset = 0;
    for (x, s) in parts {
        let inner: usize = s[axis..].iter().product();
        for o in 0..outer {
            out[o * out_inner + offset..o * out_inner + offset + inner]
                .copy_from_slice(&x[o * inner..(o + 1) * inner]);
        }
        offset += inner;
    }
}
