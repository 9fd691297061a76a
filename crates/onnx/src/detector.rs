//! An ONNX file as a [`Detector`], so that every command taking `--model` accepts `.onnx`.
//!
//! Why not run the imported graph as is: the rest of the toolkit (pruning groups,
//! quantization, training, the predictor's post-processing) works on the named graphs of
//! the architectures it knows. So the imported network's convolutions are mapped, by
//! data flow and by shape, onto the graph of a known architecture, which then runs with
//! its own priors, softmax, box decoding and NMS. Both graphs are walked in
//! [`crate::order::canonical`] order (depth first from the class outputs, then the box
//! outputs), which depends on how tensors connect and not on the order of the file's
//! node list, and their k-th convolutions are paired.
//!
//! The architecture comes from the model's outputs (`[1, P, K]` class scores or logits:
//! `P = 3000` is MobileNetV2-SSD-Lite with `K` classes, `P = 4420` an UltraFace model) and
//! from the convolution shapes, which must match one candidate exactly; anything else is
//! an error that says what did not match. Exporters usually fold batch norm into the
//! convolutions (PyTorch does in eval mode); a folded conv `W, b` is stored as `W` followed
//! by an identity batch norm (`γ = 1`, `β = b`, mean 0, variance `1 − ε`), which computes
//! the same function. Unfolded batch norms in the file are folded first.
//!
//! A quantized file (QDQ: int8 weights and 8-bit activations through QuantizeLinear /
//! DequantizeLinear; or QOperator: QLinearConv / QLinearAdd) becomes a static int8
//! detector that runs on the integer kernels (see [`crate::qdetector`]).

use std::path::Path;

use slimdet_core::{BatchNorm, Conv2d, Graph, Op, Tensor, passes};
use slimdet_models::{Arch, Detector};
use slimdet_quant::QuantizedDetector;

use crate::error::{OnnxError, Result};
use crate::import::import;

/// An ONNX detector mapped onto a known architecture.
#[derive(Debug)]
pub enum OnnxDetector {
    /// A float model.
    Float(Box<Detector>),
    /// A quantized (QDQ or QOperator) model, as a static int8 model of our engine (it can
    /// be saved in slimdet's quantized format, or run through [`QuantizedDetector::to_detector`]).
    Quantized(Box<QuantizedDetector>),
}

/// Loads an ONNX detector as a [`Detector`] of a known architecture (quantized files run
/// on the int8 engine). `arch_hint` (`--arch`) restricts the candidates to that
/// architecture name.
pub fn detector_from_onnx(path: &Path, arch_hint: Option<&str>) -> Result<Detector> {
    Ok(match load_onnx_detector(path, arch_hint)? {
        OnnxDetector::Float(d) => *d,
        OnnxDetector::Quantized(q) => q.to_detector(),
    })
}

/// Loads an ONNX detector, keeping a quantized model's integer parameters accessible.
pub fn load_onnx_detector(path: &Path, arch_hint: Option<&str>) -> Result<OnnxDetector> {
    let file = path.display().to_string();
    let imported = import(path)?;
    let mut src = imported.graph.clone();
    passes::fold_bn(&mut src);
    let src_order = crate::order::canonical(
        &src,
        &crate::order::detector_roots(&output_values(&src), &imported.engine_output_shapes),
    );
    let convs: Vec<&Conv2d> = src_order
        .iter()
        .filter_map(|&i| match &src.nodes[i].op {
            Op::Conv(c) => Some(c),
            _ => None,
        })
        .collect();
    // Batch norms no convolution precedes (VGG16-SSD's source add-on).
    let bns: Vec<&BatchNorm> = src_order
        .iter()
        .filter_map(|&i| match &src.nodes[i].op {
            Op::BatchNorm(b) => Some(b),
            _ => None,
        })
        .collect();
    let candidates = candidates(&imported.output_shapes, &convs);
    let mut reasons = Vec::new();
    for arch in candidates {
        if arch_hint.is_some_and(|h| h != arch.name()) {
            continue;
        }
        let mut det = Detector::new(arch.clone());
        let input = det.input_shape();
        let filled = fill(&mut det.graph, &convs)
            .and_then(|()| fill_bns(&mut det.graph, &bns))
            .and_then(|()| {
                // Channel counts taken from the file must chain through the network.
                slimdet_core::shape::infer(&det.graph, &input)
                    .map(|_| ())
                    .map_err(|e| e.to_string())
            });
        match filled {
            Ok(()) if imported.is_quantized() => {
                let q = crate::qdetector::quantized_detector(path, det, &src, &imported)?;
                return Ok(OnnxDetector::Quantized(Box::new(q)));
            }
            Ok(()) => return Ok(OnnxDetector::Float(Box::new(det))),
            Err(why) => reasons.push(format!("{}: {why}", arch.name())),
        }
    }
    if reasons.is_empty() {
        reasons.push(match arch_hint {
            Some(h) => format!("the outputs {:?} do not fit --arch {h}", imported.output_shapes),
            None => format!(
                "no known architecture has outputs {:?} (expected [1, P, K] with the priors of a pytorch-ssd network (3000, 2568 or 8732) or [1, 4420, 2] for UltraFace)",
                imported.output_shapes
            ),
        });
    }
    Err(invalid(
        &file,
        format!("not a detector slimdet knows: {}", reasons.join("; ")),
    ))
}

/// The output values of `g`, in order.
pub(crate) fn output_values(g: &Graph) -> Vec<usize> {
    g.outputs.iter().map(|(_, v)| *v).collect()
}

/// The canonical node order of a known architecture's graph `g` (outputs: class logits,
/// then box locations).
pub(crate) fn arch_order(g: &Graph) -> Vec<usize> {
    let mut roots: Vec<(bool, usize)> = g
        .outputs
        .iter()
        .map(|(n, v)| (n == "locations", *v))
        .collect();
    roots.sort_by_key(|r| r.0);
    crate::order::canonical(g, &roots.into_iter().map(|r| r.1).collect::<Vec<_>>())
}

fn invalid(file: &str, reason: String) -> OnnxError {
    OnnxError::Invalid {
        file: file.to_string(),
        reason,
    }
}

/// Architectures whose outputs fit the model's `[1, P, K]` outputs.
fn candidates(output_shapes: &[Vec<usize>], convs: &[&Conv2d]) -> Vec<Arch> {
    let mut out = Vec::new();
    for s in output_shapes {
        let &[1, p, k] = s.as_slice() else { continue };
        if k == 4 {
            continue;
        }
        let stem = convs.first().map_or(32, |c| c.out_channels());
        out.extend(Arch::matching_outputs(p, k, stem));
    }
    out.dedup();
    out
}

/// Copies the source's batch norms that follow no convolution (in canonical order) into
/// those of `g` (the ones BN folding leaves, in canonical order too).
fn fill_bns(g: &mut Graph, src: &[&BatchNorm]) -> std::result::Result<(), String> {
    let mut folded = g.clone();
    passes::fold_bn(&mut folded);
    let left: std::collections::HashSet<&str> = folded
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm(_)))
        .map(|n| n.name.as_str())
        .collect();
    let idx: Vec<usize> = arch_order(g)
        .into_iter()
        .filter(|&i| {
            matches!(g.nodes[i].op, Op::BatchNorm(_)) && left.contains(g.nodes[i].name.as_str())
        })
        .collect();
    if idx.len() != src.len() {
        return Err(format!(
            "{} batch norms without a convolution before them in the file, {} in the architecture",
            src.len(),
            idx.len()
        ));
    }
    // Channel counts follow the file's (checked by shape inference afterwards).
    for (&i, s) in idx.iter().zip(src) {
        if let Op::BatchNorm(t) = &mut g.nodes[i].op {
            *t = (*s).clone();
        }
    }
    Ok(())
}

/// Copies the source convolutions (in canonical order) into `g`'s convolutions, taken in
/// canonical order too. A target conv followed by a batch norm receives the source bias
/// through an identity BN.
fn fill(g: &mut Graph, src: &[&Conv2d]) -> std::result::Result<(), String> {
    let conv_idx: Vec<usize> = arch_order(g)
        .into_iter()
        .filter(|&i| matches!(g.nodes[i].op, Op::Conv(_)))
        .collect();
    if conv_idx.len() != src.len() {
        return Err(format!(
            "{} convolutions in the file, {} in the architecture",
            src.len(),
            conv_idx.len()
        ));
    }
    let users = g.use_counts();
    for (&i, s) in conv_idx.iter().zip(src) {
        let out_value = g.nodes[i].output;
        let next_bn = g
            .nodes
            .iter()
            .position(|n| n.inputs.first() == Some(&out_value) && matches!(n.op, Op::BatchNorm(_)))
            .filter(|_| users[out_value] == 1);
        let name = g.nodes[i].name.clone();
        let Op::Conv(t) = &mut g.nodes[i].op else {
            unreachable!("filtered on Conv")
        };
        // Channel counts may differ (a structurally pruned model takes the file's); the
        // kernel, stride, padding, dilation and kind of convolution may not.
        let same_kind = t.groups == s.groups || (t.is_depthwise() && s.is_depthwise());
        if t.weight.shape()[2..] != s.weight.shape()[2..]
            || t.stride != s.stride
            || t.pad != s.pad
            || t.pad_end != s.pad_end
            || t.dilation != s.dilation
            || !same_kind
        {
            return Err(format!(
                "conv `{name}` expects weight {:?} stride {:?} pad {:?} groups {}, the file's conv #{} has {:?} stride {:?} pad {:?} groups {}",
                t.weight.shape(),
                t.stride,
                t.pad,
                t.groups,
                conv_idx.iter().position(|&j| j == i).unwrap_or(0),
                s.weight.shape(),
                s.stride,
                s.pad,
                s.groups
            ));
        }
        t.groups = s.groups;
        t.weight = s.weight.clone();
        let c = t.out_channels();
        let bias = s.bias.clone();
        // A batch norm after the target conv becomes the identity (its channels those of
        // the file's conv); the file's bias goes to the conv's bias, or to the BN's shift.
        let bias = match (t.bias.is_some(), next_bn) {
            (true, _) => {
                t.bias = Some(bias.unwrap_or_else(|| Tensor::zeros(vec![c])));
                None
            }
            (false, _) => bias,
        };
        match next_bn {
            Some(b) => {
                let Op::BatchNorm(bn) = &mut g.nodes[b].op else {
                    unreachable!("found as BatchNorm")
                };
                bn.gamma = Tensor::full(vec![c], 1.0);
                bn.beta = bias.unwrap_or_else(|| Tensor::zeros(vec![c]));
                bn.mean = Tensor::zeros(vec![c]);
                bn.var = Tensor::full(vec![c], 1.0 - bn.eps);
                bn.num_batches_tracked = None;
            }
            None => {
                if bias
                    .as_ref()
                    .is_some_and(|b| b.data().iter().any(|v| *v != 0.0))
                {
                    return Err(format!(
                        "conv `{name}` has no bias and no batch norm, but the file's conv has a bias"
                    ));
                }
            }
        }
    }
    Ok(())
}
