//! The fake-quant training network: the prepared graph (BN folded, activations fused) of
//! a calibrated [`QuantizedDetector`], run on batches with int8-simulated weights and
//! activations, and differentiated with the straight-through estimator.
//!
//! Each convolution runs as a one-node graph on [`TrainGraph`] (its
//! forward and backward kernels, through the public API only); adds, concatenations and
//! reshapes are done here. Between nodes every value the integer engine holds as codes is
//! fake-quantized with the calibrated ranges ([`fake_quant_plan`], the same plan the
//! simulated path of [`slimdet_quant::sqnr_report`] uses), and its STE mask is kept for the
//! backward. Weights are fake-quantized per step from the f32 "shadow" weights exactly as
//! [`quantize_layer`] and [`QLayer::write_view`](slimdet_quant::QLayer::write_view) do, and the
//! gradient with respect to the fake-quantized weights is applied to the shadow weights
//! (STE: every weight lies inside its per-channel range).
//!
//! Tensors are NHWC `[N, H, W, C]`; the heads' outputs `[N, P, K]` and `[N, P, 4]`.

use std::collections::BTreeMap;

use slimdet_core::{Act, Graph, Op, Tensor, ValueId};
use slimdet_quant::QuantError;
use slimdet_quant::QuantizedDetector;
use slimdet_quant::float_exec::{FakeQuant, concat};
use slimdet_quant::quantize::quantize_layer;
use slimdet_quant::report::fake_quant_plan;

use super::fake::{Mask, fake_quant_forward, ste_backward};
use crate::autograd::gating;
use crate::error::Result;
use crate::{BackwardOptions, Gradients, Mode, Tape, TrainGraph};

/// What one forward pass keeps for the backward.
pub struct QatTape {
    shapes: Vec<Vec<usize>>,
    /// Per conv node: its one-node graph (fake-quantized weights) and tape.
    convs: BTreeMap<usize, (Graph, Tape)>,
    /// STE masks of the fake-quantized values.
    masks: Vec<Option<Mask>>,
    /// Pre-activation-free outputs of adds and acts with a non-identity activation.
    act_outputs: BTreeMap<usize, Vec<f32>>,
    /// Inputs of the nodes whose backward reads them (h-swish, h-sigmoid, max pooling,
    /// channel-wise multiply).
    saved: BTreeMap<usize, Vec<Vec<f32>>>,
    /// Graph outputs by name: value id and data (fake-quantized where the plan says so).
    outputs: Vec<(String, ValueId, Vec<f32>)>,
}

impl QatTape {
    /// The graph output `name`: value id, shape and data.
    pub fn output(&self, name: &str) -> Option<(ValueId, &[usize], &[f32])> {
        self.outputs
            .iter()
            .find(|(n, _, _)| n == name)
            .map(|(_, v, d)| (*v, self.shapes[*v].as_slice(), d.as_slice()))
    }

    /// The STE mask of value `v`, if it is fake-quantized.
    pub fn mask(&self, v: ValueId) -> Option<&Mask> {
        self.masks.get(v).and_then(Option::as_ref)
    }
}

/// The trainable fake-quant model.
pub struct QatNet {
    /// The calibrated model: activation ranges, which convolutions are int8, granularity.
    pub calibrated: QuantizedDetector,
    /// Prepared graph with the f32 shadow weights (what the optimiser updates).
    pub graph: Graph,
    fake: Vec<Option<FakeQuant>>,
    exec: TrainGraph,
}

impl QatNet {
    /// A network that starts from the f32 weights of `det`'s prepared graph and the
    /// activation ranges of `calibrated` (a static model quantized from `det`), computing
    /// on `threads` threads.
    ///
    /// # Errors
    /// `calibrated` not static, or a graph the quantizer cannot prepare.
    pub fn new(
        det: &slimdet_models::Detector,
        calibrated: QuantizedDetector,
        threads: usize,
    ) -> Result<Self> {
        if calibrated.mode != slimdet_quant::Mode::Static {
            return Err(QuantError::InvalidOption {
                option: "mode",
                value: calibrated.mode.to_string(),
                expected: "static (QAT starts from a calibrated int8 model)",
            }
            .into());
        }
        let graph = slimdet_quant::prepare::prepare(&det.graph)?;
        let fake = fake_quant_plan(&calibrated);
        let exec = TrainGraph::new(threads)?;
        Ok(Self {
            calibrated,
            graph,
            fake,
            exec,
        })
    }

    /// The fake-quant view of conv node `i`: weights and bias as the int8 model would hold
    /// them, or the shadow weights for layers kept in f32.
    fn conv_view(&self, i: usize) -> slimdet_core::Conv2d {
        let n = &self.graph.nodes[i];
        let Op::Conv(c) = &n.op else {
            unreachable!("conv_view on a conv node")
        };
        let mut c = c.clone();
        if self.calibrated.layers.contains_key(&n.name) {
            let in_scale = self.calibrated.act[n.inputs[0]].map(|p| p.scale);
            let l = quantize_layer(&c, self.calibrated.granularity, in_scale);
            l.write_view(&mut c, in_scale);
        }
        c
    }

    /// The fake-quant forward on `input` `[N, H, W, 3]`.
    ///
    /// # Errors
    /// An input of the wrong shape or a kernel failure.
    pub fn forward(&self, input: &Tensor) -> Result<QatTape> {
        let g = &self.graph;
        let shapes = slimdet_core::shape::infer(g, input.shape())?;
        let mut last_use = vec![0usize; g.num_values];
        for (i, n) in g.nodes.iter().enumerate() {
            for &v in &n.inputs {
                last_use[v] = i;
            }
        }
        for (_, v) in &g.outputs {
            last_use[*v] = usize::MAX;
        }
        let mut vals: Vec<Option<Vec<f32>>> = vec![None; g.num_values];
        let mut masks: Vec<Option<Mask>> = vec![None; g.num_values];
        let mut x = input.data().to_vec();
        if let Some(f) = &self.fake[g.input] {
            fake_quant_forward(f, &mut x);
        }
        vals[g.input] = Some(x);
        let mut convs = BTreeMap::new();
        let mut act_outputs = BTreeMap::new();
        let mut saved = BTreeMap::new();
        for (i, n) in g.nodes.iter().enumerate() {
            let get = |k: usize| vals[n.inputs[k]].as_deref().unwrap_or(&[]);
            let mut y = match &n.op {
                Op::Conv(_) => {
                    let mut m = Graph::new();
                    let out = m.conv(&n.name, m.input, self.conv_view(i));
                    m.output("y", out);
                    let xin = Tensor::new(shapes[n.inputs[0]].clone(), get(0).to_vec())?;
                    let tape = self.exec.forward(&m, &xin, Mode::Eval)?;
                    let y = tape.value(out).to_vec();
                    convs.insert(i, (m, tape));
                    y
                }
                Op::Add(a) => {
                    let y: Vec<f32> = get(0)
                        .iter()
                        .zip(get(1))
                        .map(|(p, q)| a.apply(p + q))
                        .collect();
                    if *a != Act::None {
                        act_outputs.insert(i, y.clone());
                    }
                    y
                }
                Op::Act(a) => {
                    let mut y = get(0).to_vec();
                    a.apply_slice(&mut y);
                    act_outputs.insert(i, y.clone());
                    y
                }
                Op::Reshape(_) => get(0).to_vec(),
                Op::Concat { axis } => {
                    let parts: Vec<(&[f32], &[usize])> = n
                        .inputs
                        .iter()
                        .map(|&v| (vals[v].as_deref().unwrap_or(&[]), shapes[v].as_slice()))
                        .collect();
                    let mut y = vec![0f32; shapes[n.output].iter().product()];
                    concat(&parts, *axis, &mut y);
                    y
                }
                Op::BatchNorm(b) => {
                    let (scale, shift) = b.scale_shift();
                    let mut y = vec![0.0; get(0).len()];
                    slimdet_core::exec::scale_channels(get(0), &scale, &shift, &mut y);
                    y
                }
                Op::GlobalAvgPool => gating::gap_forward(get(0), &shapes[n.inputs[0]]),
                Op::HardSwish | Op::HardSigmoid | Op::MaxPool(_) | Op::ChannelMul => {
                    let xs: Vec<Vec<f32>> = (0..n.inputs.len()).map(|k| get(k).to_vec()).collect();
                    let xs0 = &shapes[n.inputs[0]];
                    let y = match &n.op {
                        Op::HardSwish => gating::hard_swish_forward(&xs[0]),
                        Op::HardSigmoid => gating::hard_sigmoid_forward(&xs[0]),
                        Op::MaxPool(p) => {
                            gating::max_pool_forward(p, &xs[0], xs0, &shapes[n.output])
                        }
                        _ => gating::channel_mul_forward(&xs[0], &xs[1], xs0),
                    };
                    saved.insert(i, xs);
                    y
                }
                other => {
                    return Err(QuantError::Unsupported {
                        layer: n.name.clone(),
                        op: other.kind(),
                    }
                    .into());
                }
            };
            if let Some(f) = &self.fake[n.output] {
                masks[n.output] = Some(fake_quant_forward(f, &mut y));
            }
            vals[n.output] = Some(y);
            for &v in &n.inputs {
                if last_use[v] == i {
                    vals[v] = None;
                }
            }
        }
        let outputs = g
            .outputs
            .iter()
            .map(|(name, v)| (name.clone(), *v, vals[*v].take().unwrap_or_default()))
            .collect();
        Ok(QatTape {
            shapes,
            convs,
            masks,
            act_outputs,
            saved,
            outputs,
        })
    }

    /// The backward from `seeds` (`(value, dL/dvalue)`, typically the two outputs):
    /// gradients of every conv weight and bias, keyed like [`Graph::params`].
    ///
    /// # Errors
    /// A seed of the wrong length or a kernel failure.
    pub fn backward(&self, tape: &QatTape, seeds: &[(ValueId, &[f32])]) -> Result<Gradients> {
        let g = &self.graph;
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; g.num_values];
        for (v, s) in seeds {
            let len: usize = tape.shapes[*v].iter().product();
            if s.len() != len {
                return Err(QuantError::InputShape {
                    index: *v,
                    expected: len,
                    got: s.len(),
                }
                .into());
            }
            accumulate(&mut grads[*v], s.to_vec());
        }
        let mut out = Gradients::default();
        for (i, n) in g.nodes.iter().enumerate().rev() {
            let Some(mut dy) = grads[n.output].take() else {
                continue;
            };
            if let Some(m) = &tape.masks[n.output] {
                ste_backward(m, &mut dy);
            }
            let x0 = n.inputs[0];
            let need_dx = x0 != g.input;
            match &n.op {
                Op::Conv(_) => {
                    let (m, t) = &tape.convs[&i];
                    let opts = BackwardOptions {
                        frozen_prefixes: Vec::new(),
                        input_grad: need_dx,
                    };
                    let r = self.exec.backward(m, t, &[(m.outputs[0].1, &dy)], &opts)?;
                    out.params.extend(r.params);
                    if let Some(dx) = r.input {
                        accumulate(&mut grads[x0], dx);
                    }
                }
                Op::Add(a) => {
                    if let Some(y) = tape.act_outputs.get(&i) {
                        act_mask(*a, y, &mut dy);
                    }
                    accumulate(&mut grads[n.inputs[1]], dy.clone());
                    accumulate(&mut grads[x0], dy);
                }
                Op::Act(a) => {
                    if let Some(y) = tape.act_outputs.get(&i) {
                        act_mask(*a, y, &mut dy);
                    }
                    accumulate(&mut grads[x0], dy);
                }
                Op::Reshape(_) => accumulate(&mut grads[x0], dy),
                Op::Concat { axis } => {
                    let outer: usize = tape.shapes[n.output][..*axis].iter().product();
                    let row = dy.len() / outer.max(1);
                    let mut offset = 0;
                    for &v in &n.inputs {
                        let inner: usize = tape.shapes[v][*axis..].iter().product();
                        let mut part = Vec::with_capacity(outer * inner);
                        for o in 0..outer {
                            part.extend_from_slice(&dy[o * row + offset..o * row + offset + inner]);
                        }
                        offset += inner;
                        accumulate(&mut grads[v], part);
                    }
                }
                Op::BatchNorm(b) => {
                    // A batch norm left unfolded (VGG16-SSD's) is not trained: dL/dx only.
                    let (scale, _) = b.scale_shift();
                    let c = scale.len();
                    for px in dy.chunks_mut(c) {
                        for j in 0..c {
                            px[j] *= scale[j];
                        }
                    }
                    accumulate(&mut grads[x0], dy);
                }
                Op::GlobalAvgPool => {
                    accumulate(&mut grads[x0], gating::gap_backward(&dy, &tape.shapes[x0]))
                }
                Op::HardSwish | Op::HardSigmoid | Op::MaxPool(_) | Op::ChannelMul => {
                    let xs = &tape.saved[&i];
                    let xs0 = &tape.shapes[x0];
                    match &n.op {
                        Op::HardSwish => {
                            accumulate(&mut grads[x0], gating::hard_swish_backward(&xs[0], dy))
                        }
                        Op::HardSigmoid => {
                            accumulate(&mut grads[x0], gating::hard_sigmoid_backward(&xs[0], dy))
                        }
                        Op::MaxPool(p) => {
                            let ys = &tape.shapes[n.output];
                            let dx = gating::max_pool_backward(p, &xs[0], xs0, ys, &dy);
                            accumulate(&mut grads[x0], dx);
                        }
                        _ => {
                            let (dx, ds) = gating::channel_mul_backward(&xs[0], &xs[1], &dy, xs0);
                            accumulate(&mut grads[n.inputs[1]], ds);
                            accumulate(&mut grads[x0], dx);
                        }
                    }
                }
                _ => {}
            }
        }
        Ok(out)
    }

    /// The int8 model of the current shadow weights: the calibrated activation ranges,
    /// weights and biases re-quantized from the trained f32 weights.
    pub fn export(&self) -> QuantizedDetector {
        let mut q = self.calibrated.clone();
        q.graph = self.graph.clone();
        for n in &mut q.graph.nodes {
            if let Op::Conv(c) = &mut n.op
                && q.layers.contains_key(&n.name)
            {
                let in_scale = q.act[n.inputs[0]].map(|p| p.scale);
                let l = quantize_layer(c, q.granularity, in_scale);
                l.write_view(c, in_scale);
                q.layers.insert(n.name.clone(), l);
            }
        }
        q
    }
}

/// The derivative of `act` at its output `y` (`dy` zeroed where the activation is flat).
fn act_mask(act: Act, y: &[f32], dy: &mut [f32]) {
    let (lo, hi) = act.bounds();
    for (d, &v) in dy.iter_mut().zip(y) {
        if v <= lo || v >= hi {
            *d = 0.0;
        }
    }
}

fn accumulate(slot: &mut Option<Vec<f32>>, g: Vec<f32>) {
    match slot {
        None => *slot = Some(g),
        Some(s) => {
            for (a, b) in s.iter_mut().zip(&g) {
                *a += b;
            }
        }
    }
}
