//! Export of a detector as an fp32 ONNX model (opset 13, IR 7), NCHW like a PyTorch
//! export, so that other runtimes (ONNX Runtime, TensorRT, ...) can run our models.
//!
//! Input `input` `[1, 3, H, W]`. Outputs `scores` `[1, P, K]` (softmax, or sigmoid for a
//! TF OD API model) and `boxes` `[1, P, 4]` (decoded corner form, priors baked in as
//! constants, as pytorch-ssd's `is_test` export, spec §13; clipped to `[0, 1]` when the
//! model's configuration clips), or with `raw` the head outputs `logits` and `locations`.
//! Our NHWC graph is walked node by node; every value is either a feature map (NCHW in
//! ONNX) or a plain tensor, and the head reshape becomes `Transpose(0, 2, 3, 1)` +
//! `Reshape`, exactly the pattern PyTorch emits.

mod builder;
mod from_quant;
mod qdq;

pub use from_quant::{export_quantized_detector, qdq_spec};
pub use qdq::{QdqConv, QdqSpec};

use std::collections::HashSet;
use std::path::Path;

use prost::Message;
use slimdet_core::{Act, Graph, Op};
use slimdet_models::{Detector, ScoreFn};

use crate::error::{OnnxError, Result};
use crate::proto::{GraphProto, ModelProto, OperatorSetIdProto, StringStringEntryProto};
use crate::value::Value;
use builder::{Builder, float, int, ints, value_info};

/// Our stored axis `k` of a feature map is ONNX axis `[0, 2, 3, 1][k]`.
const ONNX_AXIS: [usize; 4] = [0, 2, 3, 1];

/// Translates the nodes of `g`; returns the ONNX name of every value and whether it is a
/// feature map.
/// With `qdq`, quantized values get a QuantizeLinear/DequantizeLinear pair and quantized
/// convolutions read int8 weights (see [`qdq`]).
fn walk(
    b: &mut Builder,
    g: &Graph,
    shapes: &[Vec<usize>],
    qdq: Option<&QdqSpec>,
) -> Result<(Vec<String>, Vec<bool>, String)> {
    let mut name = vec![String::new(); g.num_values];
    let mut fm = vec![false; g.num_values];
    let input = b.fresh("input");
    let act_q = |v: usize| qdq.and_then(|q| q.act.get(v).copied().flatten());
    name[g.input] = match act_q(g.input) {
        Some(q) => b.qdq(&input, q),
        None => input.clone(),
    };
    fm[g.input] = true;
    let out_name: std::collections::HashMap<usize, &str> =
        g.outputs.iter().map(|(n, v)| (*v, n.as_str())).collect();
    let file = b.file.clone();
    for n in &g.nodes {
        let err = |reason: &str| OnnxError::Export {
            file: file.clone(),
            node: n.name.clone(),
            reason: reason.into(),
        };
        let xs: Vec<String> = n.inputs.iter().map(|&i| name[i].clone()).collect();
        let x_fm = n.inputs.first().is_some_and(|&i| fm[i]);
        if xs.is_empty() {
            return Err(err("node without inputs"));
        }
        let out = out_name
            .get(&n.output)
            .copied()
            .unwrap_or(&n.name)
            .to_string();
        let (y, y_fm) = match &n.op {
            Op::Conv(c) => {
                if !x_fm {
                    return Err(err("convolution of a non-feature-map value"));
                }
                let qc = qdq.and_then(|q| q.convs.get(&n.name));
                let w = match qc {
                    Some(qc) => b.qdq_weight(&n.name, qc, c.weight.shape()),
                    None => b.tensor(&format!("{}.weight", n.name), &c.weight),
                };
                let mut ins = vec![xs[0].clone(), w];
                match (
                    qc.and_then(|qc| qc.bias.as_ref().map(|q| (q, &qc.bias_scale))),
                    &c.bias,
                ) {
                    (Some((q, s)), _) => ins.push(b.qdq_bias(&n.name, q, s)),
                    (None, Some(bias)) => ins.push(b.tensor(&format!("{}.bias", n.name), bias)),
                    (None, None) => {}
                }
                let [kh, kw] = c.kernel();
                let [ph, pw, ph_end, pw_end] =
                    [c.pad[0], c.pad[1], c.pad_end[0], c.pad_end[1]].map(|p| p as i64);
                let attrs = vec![
                    ints("dilations", &c.dilation.map(|d| d as i64)),
                    int("group", c.groups as i64),
                    ints("kernel_shape", &[kh as i64, kw as i64]),
                    ints("pads", &[ph, pw, ph_end, pw_end]),
                    ints("strides", &c.stride.map(|s| s as i64)),
                ];
                let conv_out = if c.act == Act::None {
                    out.clone()
                } else {
                    n.name.clone() + ".preact"
                };
                let refs: Vec<&str> = ins.iter().map(String::as_str).collect();
                let y = b.node("Conv", &conv_out, &refs, attrs);
                (b.act(c.act, y, &out), true)
            }
            Op::BatchNorm(bn) => {
                if !x_fm {
                    return Err(err("batch norm of a non-feature-map value"));
                }
                let p = [
                    b.tensor(&format!("{}.weight", n.name), &bn.gamma),
                    b.tensor(&format!("{}.bias", n.name), &bn.beta),
                    b.tensor(&format!("{}.running_mean", n.name), &bn.mean),
                    b.tensor(&format!("{}.running_var", n.name), &bn.var),
                ];
                // `num_batches_tracked` is a training counter: not exported, as runtimes
                // warn about initializers no node reads.
                let ins = [xs[0].as_str(), &p[0], &p[1], &p[2], &p[3]];
                (
                    b.node(
                        "BatchNormalization",
                        &out,
                        &ins,
                        vec![float("epsilon", bn.eps)],
                    ),
                    true,
                )
            }
            Op::Act(a) => (b.act(*a, xs[0].clone(), &out), x_fm),
            Op::Add(a) => {
                if fm[n.inputs[0]] != fm[n.inputs[1]] {
                    return Err(err("add of a feature map and a plain tensor"));
                }
                let sum_out = if *a == Act::None {
                    out.clone()
                } else {
                    n.name.clone() + ".sum"
                };
                let y = b.node("Add", &sum_out, &[&xs[0], &xs[1]], vec![]);
                (b.act(*a, y, &out), x_fm)
            }
            Op::Concat { axis } => {
                if n.inputs.iter().any(|&i| fm[i] != x_fm) {
                    return Err(err("concat of feature maps and plain tensors"));
                }
                let a = if x_fm { ONNX_AXIS[*axis] } else { *axis };
                let refs: Vec<&str> = xs.iter().map(String::as_str).collect();
                (
                    b.node("Concat", &out, &refs, vec![int("axis", a as i64)]),
                    x_fm,
                )
            }
            Op::Reshape(dims) => {
                let x = if x_fm {
                    b.node(
                        "Transpose",
                        &format!("{}.nhwc", n.name),
                        &[&xs[0]],
                        vec![ints("perm", &[0, 2, 3, 1])],
                    )
                } else {
                    xs[0].clone()
                };
                let shape = b.i64s(&format!("{}.shape", n.name), dims);
                (b.node("Reshape", &out, &[&x, &shape], vec![]), false)
            }
            Op::Transpose(perm) => {
                let p: Vec<i64> = perm
                    .iter()
                    .map(|&a| if x_fm { ONNX_AXIS[a] as i64 } else { a as i64 })
                    .collect();
                (
                    b.node("Transpose", &out, &[&xs[0]], vec![ints("perm", &p)]),
                    false,
                )
            }
            Op::Softmax => {
                let axis = if x_fm { 1 } else { -1 };
                (
                    b.node("Softmax", &out, &[&xs[0]], vec![int("axis", axis)]),
                    x_fm,
                )
            }
            Op::HardSwish => (b.hard_act(&xs[0], &out, false), x_fm),
            Op::HardSigmoid => (b.hard_act(&xs[0], &out, true), x_fm),
            Op::GlobalAvgPool => {
                if !x_fm {
                    return Err(err("global average pool of a non-feature-map value"));
                }
                (b.node("GlobalAveragePool", &out, &[&xs[0]], vec![]), true)
            }
            Op::MaxPool(p) => {
                if !x_fm {
                    return Err(err("max pool of a non-feature-map value"));
                }
                let [ph, pw] = p.pad.map(|v| v as i64);
                let attrs = vec![
                    int("ceil_mode", p.ceil as i64),
                    ints("kernel_shape", &p.kernel.map(|k| k as i64)),
                    ints("pads", &[ph, pw, ph, pw]),
                    ints("strides", &p.stride.map(|s| s as i64)),
                ];
                (b.node("MaxPool", &out, &[&xs[0]], attrs), true)
            }
            Op::ChannelMul => {
                if !x_fm || !fm[n.inputs[1]] {
                    return Err(err("channel multiply of a non-feature-map value"));
                }
                // NCHW `[N, C, H, W] · [N, C, 1, 1]`: ONNX broadcasting.
                (b.node("Mul", &out, &[&xs[0], &xs[1]], vec![]), true)
            }
        };
        if shapes[n.output].is_empty() {
            return Err(err("value without a shape"));
        }
        let y = match act_q(n.output) {
            Some(q) => b.qdq(&y, q),
            None => y,
        };
        name[n.output] = y;
        fm[n.output] = y_fm;
    }
    Ok((name, fm, input))
}

/// Appends the score function and SSD box decoding with `config`'s variances (and
/// clipping) on priors `[cx, cy, w, h]`.
fn post_process(
    b: &mut Builder,
    logits: &str,
    locations: &str,
    priors: &[[f32; 4]],
    config: &slimdet_models::SsdConfig,
) -> [String; 2] {
    let p = priors.len();
    let (cv, sv) = (config.center_variance, config.size_variance);
    let scores = match config.scores {
        ScoreFn::Softmax => b.node("Softmax", "scores", &[logits], vec![int("axis", 2)]),
        ScoreFn::Sigmoid => b.node("Sigmoid", "scores", &[logits], vec![]),
    };
    let center: Vec<f32> = priors.iter().flat_map(|q| [q[0], q[1]]).collect();
    let size: Vec<f32> = priors.iter().flat_map(|q| [q[2], q[3]]).collect();
    let center = b.init("priors.center", &Value::f32(vec![1, p, 2], center));
    let size = b.init("priors.size", &Value::f32(vec![1, p, 2], size));
    let cv = b.init("center_variance", &Value::f32(vec![], vec![cv]));
    let sv = b.init("size_variance", &Value::f32(vec![], vec![sv]));
    let two = b.init("two", &Value::f32(vec![], vec![2.0]));
    let (s0, s2, s4, ax) = (
        b.i64s("slice.0", &[0]),
        b.i64s("slice.2", &[2]),
        b.i64s("slice.4", &[4]),
        b.i64s("slice.axis", &[2]),
    );
    let c = b.node(
        "Slice",
        "decode.loc_center",
        &[locations, &s0, &s2, &ax],
        vec![],
    );
    let c = b.node("Mul", "decode.center_scaled", &[&c, &cv], vec![]);
    let c = b.node("Mul", "decode.center_offset", &[&c, &size], vec![]);
    let c = b.node("Add", "decode.center", &[&c, &center], vec![]);
    let s = b.node(
        "Slice",
        "decode.loc_size",
        &[locations, &s2, &s4, &ax],
        vec![],
    );
    let s = b.node("Mul", "decode.size_scaled", &[&s, &sv], vec![]);
    let s = b.node("Exp", "decode.size_exp", &[&s], vec![]);
    let s = b.node("Mul", "decode.size", &[&s, &size], vec![]);
    let half = b.node("Div", "decode.half_size", &[&s, &two], vec![]);
    let lo = b.node("Sub", "decode.top_left", &[&c, &half], vec![]);
    let hi = b.node("Add", "decode.bottom_right", &[&c, &half], vec![]);
    let boxes = if config.clip_boxes {
        let corners = b.node(
            "Concat",
            "decode.corners",
            &[&lo, &hi],
            vec![int("axis", 2)],
        );
        let zero = b.init("clip.min", &Value::f32(vec![], vec![0.0]));
        let one = b.init("clip.max", &Value::f32(vec![], vec![1.0]));
        b.node("Clip", "boxes", &[&corners, &zero, &one], vec![])
    } else {
        b.node("Concat", "boxes", &[&lo, &hi], vec![int("axis", 2)])
    };
    [scores, boxes]
}

/// The detector as an ONNX model (see the module docs); `file` names it in errors.
pub fn detector_model(det: &Detector, raw: bool, file: &str) -> Result<ModelProto> {
    model(det, raw, file, None)
}

/// The detector as a QDQ int8 ONNX model: `det`'s graph (BN folded, activations fused)
/// with the quantization of `spec` written around it (see [`qdq`]).
pub fn detector_model_qdq(
    det: &Detector,
    spec: &QdqSpec,
    raw: bool,
    file: &str,
) -> Result<ModelProto> {
    if spec.act.len() != det.graph.num_values {
        return Err(OnnxError::Export {
            file: file.to_string(),
            node: "(graph)".into(),
            reason: format!(
                "quantization covers {} values, the graph has {}",
                spec.act.len(),
                det.graph.num_values
            ),
        });
    }
    model(det, raw, file, Some(spec))
}

fn model(det: &Detector, raw: bool, file: &str, qdq: Option<&QdqSpec>) -> Result<ModelProto> {
    let g = &det.graph;
    let shapes = slimdet_core::shape::infer(g, &det.input_shape())?;
    let mut b = Builder {
        file: file.to_string(),
        nodes: Vec::new(),
        inits: Vec::new(),
        names: HashSet::new(),
    };
    let (name, fm, input) = walk(&mut b, g, &shapes, qdq)?;
    let onnx_shape = |v: usize| {
        let s = &shapes[v];
        if fm[v] {
            vec![s[0], s[3], s[1], s[2]]
        } else {
            s.clone()
        }
    };
    let find = |want: &str| {
        g.outputs
            .iter()
            .find(|(n, _)| n == want)
            .map(|(_, v)| *v)
            .ok_or_else(|| OnnxError::Export {
                file: file.to_string(),
                node: want.to_string(),
                reason: "the detector graph has no such output".into(),
            })
    };
    let (logits, locations) = (find("logits")?, find("locations")?);
    let outputs = if raw {
        vec![
            value_info(&name[logits], &onnx_shape(logits)),
            value_info(&name[locations], &onnx_shape(locations)),
        ]
    } else {
        let [s, bx] = post_process(
            &mut b,
            &name[logits],
            &name[locations],
            &det.priors,
            &det.config,
        );
        let p = det.priors.len();
        vec![
            value_info(&s, &onnx_shape(logits)),
            value_info(&bx, &[1, p, 4]),
        ]
    };
    let [n, h, w, ch] = det.input_shape();
    let meta = |k: &str, v: String| StringStringEntryProto {
        key: k.into(),
        value: v,
    };
    Ok(ModelProto {
        ir_version: 7,
        opset_import: vec![OperatorSetIdProto {
            domain: String::new(),
            version: 13,
        }],
        producer_name: "slimdet".into(),
        producer_version: env!("CARGO_PKG_VERSION").into(),
        graph: Some(GraphProto {
            node: b.nodes,
            name: det.name.clone(),
            initializer: b.inits,
            input: vec![value_info(&input, &[n, ch, h, w])],
            output: outputs,
            ..Default::default()
        }),
        metadata_props: vec![
            meta("slimdet.arch", det.name.clone()),
            meta("slimdet.classes", det.class_names.join(",")),
        ],
        ..Default::default()
    })
}

/// Writes `det` to `path` as ONNX (see the module docs), atomically: a temporary file in
/// the same directory is renamed over `path`.
pub fn export_detector(det: &Detector, path: &Path, raw: bool) -> Result<()> {
    let file = path.display().to_string();
    write_atomic(path, &detector_model(det, raw, &file)?.encode_to_vec())
}

/// Writes `det` quantized by `spec` to `path` as a QDQ int8 ONNX model, atomically.
pub fn export_detector_qdq(det: &Detector, spec: &QdqSpec, path: &Path, raw: bool) -> Result<()> {
    let file = path.display().to_string();
    write_atomic(
        path,
        &detector_model_qdq(det, spec, raw, &file)?.encode_to_vec(),
    )
}

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).map_err(|source| OnnxError::Io {
        file: path.display().to_string(),
        source,
    })
}
