//! A quantized ONNX model (QDQ or QOperator) as a static int8 [`QuantizedDetector`], run
//! by the integer engine.
//!
//! The float detector is built as for any ONNX file (convolutions mapped onto a known
//! architecture, see [`crate::detector`]); it is then prepared for quantization (BN
//! folded, activations fused) and given the file's quantization:
//! - activation parameters move from the imported graph's values to the prepared graph's
//!   by position in canonical order ([`crate::order::canonical`]): the network input,
//!   the k-th convolution, the k-th add, concat or reshape (an activation after a layer
//!   belongs to that layer, as it is fused there);
//! - each convolution whose weight came from `DequantizeLinear` or a `QLinearConv` keeps
//!   the file's int8 codes and scales, and its int32 bias (or the float bias rounded to
//!   the accumulator scale `s_in · s_w` when the file gave it in float). Other
//!   convolutions run in f32;
//! - the activation the file applies after each convolution must clip the output codes
//!   as the architecture's fused activation does (a QOperator model has no ReLU: its
//!   output range, zero point 0, is the ReLU).

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use slimdet_core::{Act, Graph, Op};
use slimdet_models::Detector;
use slimdet_quant::{
    Activations, Granularity, Mode, Observer, QBias, QLayer, QParams, QuantizedDetector,
};

use crate::error::{OnnxError, Result};
use crate::import::Imported;

/// A value's position in a detector graph, independent of node names.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash)]
enum Key {
    Input,
    Conv(usize),
    Add(usize),
    Concat(usize),
    Reshape(usize),
    /// The `n`-th node of another kind (max pool, h-swish, squeeze-and-excite's ops, a
    /// batch norm no convolution precedes).
    Other(&'static str, usize),
}

/// The position of every value of `g` that has one, counting nodes in `order` (a
/// canonical order, see [`crate::order`]).
fn keys(g: &Graph, order: &[usize]) -> Vec<Option<Key>> {
    let mut k = vec![None; g.num_values];
    k[g.input] = Some(Key::Input);
    let (mut conv, mut add, mut cat, mut rs) = (0, 0, 0, 0);
    let mut other: HashMap<&'static str, usize> = HashMap::new();
    let next = |c: &mut usize| {
        *c += 1;
        *c - 1
    };
    for n in order.iter().map(|&i| &g.nodes[i]) {
        k[n.output] = match &n.op {
            Op::Conv(_) => Some(Key::Conv(next(&mut conv))),
            Op::Add(_) => Some(Key::Add(next(&mut add))),
            Op::Concat { .. } => Some(Key::Concat(next(&mut cat))),
            Op::Reshape(_) => Some(Key::Reshape(next(&mut rs))),
            Op::Act(_) => n.inputs.first().and_then(|&i| k[i]),
            Op::Transpose(_) | Op::Softmax => None,
            op => Some(Key::Other(
                op.kind(),
                next(other.entry(op.kind()).or_default()),
            )),
        };
    }
    k
}

/// The activation that follows each convolution of `g` (in `order`), once fused.
fn fused_acts(g: &Graph, order: &[usize]) -> Vec<Act> {
    let mut fused = g.clone();
    slimdet_core::passes::fuse_activations(&mut fused);
    // Fusion keeps the names of the convs (unique in an imported graph).
    let act_of: HashMap<&str, Act> = fused
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some((n.name.as_str(), c.act)),
            _ => None,
        })
        .collect();
    convs_in(g, order)
        .into_iter()
        .map(|i| {
            act_of
                .get(g.nodes[i].name.as_str())
                .copied()
                .unwrap_or(Act::None)
        })
        .collect()
}

/// Indices of the convolutions of `g`, in `order`.
fn convs_in(g: &Graph, order: &[usize]) -> Vec<usize> {
    order
        .iter()
        .copied()
        .filter(|&i| matches!(g.nodes[i].op, Op::Conv(_)))
        .collect()
}

/// `float` (the mapped float detector of the file) with the quantization of `imported`
/// (whose graph, with BN folded, is `src`).
pub(crate) fn quantized_detector(
    path: &Path,
    float: Detector,
    src: &Graph,
    imported: &Imported,
) -> Result<QuantizedDetector> {
    let file = path.display().to_string();
    let err = |reason: String| OnnxError::Invalid {
        file: file.clone(),
        reason,
    };
    let g = slimdet_quant::prepare::prepare(&float.graph)
        .map_err(|e| err(format!("cannot prepare the network for int8: {e}")))?;
    let src_order = crate::order::canonical(
        src,
        &crate::order::detector_roots(
            &crate::detector::output_values(src),
            &imported.engine_output_shapes,
        ),
    );
    let g_order = crate::detector::arch_order(&g);
    let src_keys = keys(src, &src_order);
    let mut by_key: HashMap<Key, (f32, u8)> = HashMap::new();
    for (&v, &q) in &imported.act_quant {
        if let Some(Some(k)) = src_keys.get(v) {
            by_key.insert(*k, q);
        }
    }
    let act: Vec<Option<QParams>> = keys(&g, &g_order)
        .iter()
        .map(|k| {
            k.and_then(|k| by_key.get(&k)).map(|&(scale, zp)| QParams {
                scale,
                zero_point: zp as i32,
            })
        })
        .collect();
    let src_acts = fused_acts(src, &src_order);
    let src_convs: Vec<&str> = convs_in(src, &src_order)
        .into_iter()
        .map(|i| src.nodes[i].name.as_str())
        .collect();
    let mut layers = BTreeMap::new();
    let mut keep_float = BTreeSet::new();
    let mut per_tensor = true;
    for (k, i) in convs_in(&g, &g_order).into_iter().enumerate() {
        let n = &g.nodes[i];
        let Op::Conv(c) = &n.op else { continue };
        let cq = src_convs.get(k).and_then(|s| imported.conv_quant.get(*s));
        let in_scale = act[n.inputs[0]].map(|p| p.scale);
        let (Some(cq), Some(si), Some(qo)) = (cq, in_scale, act[n.output]) else {
            if cq.is_some() {
                // Int8 weights whose input or output quantization did not map: running
                // this conv in float would silently change the model.
                return Err(err(format!(
                    "conv `{}` has int8 weights in the file, but the quantization of its {} could not be placed on the architecture",
                    n.name,
                    if in_scale.is_none() {
                        "input"
                    } else {
                        "output"
                    }
                )));
            }
            keep_float.insert(n.name.clone());
            continue;
        };
        // The file's activation after this conv (none when a QOperator model folded it
        // into the output range) must clip the codes as the architecture's does.
        let file_act = src_acts.get(k).copied().unwrap_or(Act::None);
        if qo.clamp_codes(file_act, 0) != qo.clamp_codes(c.act, 0) {
            return Err(err(format!(
                "conv `{}`: the file applies {file_act:?} to its output, the architecture {:?}, and with output zero point {} they clip the int8 codes differently",
                n.name, c.act, qo.zero_point
            )));
        }
        if let Some(&w) = cq.weight.iter().find(|&&w| w == i8::MIN) {
            return Err(err(format!(
                "conv `{}` has the weight code {w}; the int8 kernels take symmetric weights in -127..=127",
                n.name
            )));
        }
        let s = c.weight.shape();
        let bias = match (&cq.bias, &c.bias) {
            (Some(b), _) => b.clone(),
            (None, Some(b)) => b
                .data()
                .iter()
                .zip(&cq.weight_scale)
                .map(|(&b, &sw)| (b as f64 / (si as f64 * sw as f64)).round() as i32)
                .collect(),
            (None, None) => vec![0; s[0]],
        };
        per_tensor &= cq.weight_scale.iter().all(|&x| x == cq.weight_scale[0]);
        layers.insert(
            n.name.clone(),
            QLayer {
                weight: cq.weight.clone(),
                shape: [s[0], s[1], s[2], s[3]],
                weight_scale: cq.weight_scale.clone(),
                bias: QBias::I32(bias),
            },
        );
    }
    if layers.is_empty() {
        return Err(err(
            "a QDQ model, but none of its convolutions has int8 weights with quantized input and output".into(),
        ));
    }
    let mut q = QuantizedDetector {
        head: float.head(),
        mode: Mode::Static,
        activations: Activations::U8,
        granularity: if per_tensor {
            Granularity::Tensor
        } else {
            Granularity::Channel
        },
        observer: Observer::MinMax,
        graph: g,
        act,
        layers,
        keep_float,
    };
    let views: Vec<(usize, Option<f32>)> = q
        .graph
        .nodes
        .iter()
        .enumerate()
        .map(|(i, n)| (i, q.act[n.inputs[0]].map(|p| p.scale)))
        .collect();
    for (i, in_scale) in views {
        let name = q.graph.nodes[i].name.clone();
        if let (Op::Conv(c), Some(l)) = (&mut q.graph.nodes[i].op, q.layers.get(&name)) {
            l.write_view(c, in_scale);
        }
    }
    Ok(q)
}
