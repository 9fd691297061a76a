//! The QDQ description of a static int8 [`QuantizedDetector`] made by `slimdet-quant`.

use std::collections::BTreeMap;
use std::path::Path;

use slimdet_core::Op;
use slimdet_quant::{Mode, QBias, QuantizedDetector};

use super::{QdqConv, QdqSpec, export_detector_qdq};
use crate::error::{OnnxError, Result};

/// The uint8 activation parameters of every value and the int8 weights and int32 biases
/// of every quantized convolution of `q`. Only static int8 models have a QDQ form.
pub fn qdq_spec(q: &QuantizedDetector, file: &str) -> Result<QdqSpec> {
    let err = |node: &str, reason: String| OnnxError::Export {
        file: file.to_string(),
        node: node.to_string(),
        reason,
    };
    if q.mode != Mode::Static {
        return Err(err(
            "(model)",
            format!(
                "only static int8 models have a QDQ form (this one is {:?}); export the fp32 model instead",
                q.mode
            ),
        ));
    }
    // Only the values the integer engine holds as uint8 codes, or quantizes for the next
    // integer layer, are quantized: the input, the outputs of every layer that computes,
    // and concatenations and reshapes that such a layer reads (SqueezeNet's Fire modules).
    // The heads' reshapes and concats run on dequantized f32 values there, so they stay
    // float here.
    let layout = |op: &Op| {
        matches!(
            op,
            Op::Reshape(_) | Op::Concat { .. } | Op::Transpose(_) | Op::Softmax
        )
    };
    let mut in_codes = vec![false; q.graph.num_values];
    in_codes[q.graph.input] = true;
    for n in q.graph.nodes.iter().filter(|n| !layout(&n.op)) {
        in_codes[n.output] = true;
        for &v in &n.inputs {
            in_codes[v] = true;
        }
    }
    let act: Vec<Option<(f32, u8)>> = q
        .act
        .iter()
        .zip(&in_codes)
        .map(|(p, &coded)| {
            p.filter(|_| coded)
                .map(|p| (p.scale, p.zero_point.clamp(0, 255) as u8))
        })
        .collect();
    let mut convs = BTreeMap::new();
    for (name, layer) in &q.layers {
        let node = q
            .graph
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .ok_or_else(|| err(name, "quantized layer not in the graph".into()))?;
        let in_scale = node
            .inputs
            .first()
            .and_then(|&v| act.get(v).copied().flatten())
            .map(|(s, _)| s);
        let (bias, bias_scale) = match (&layer.bias, in_scale) {
            (QBias::I32(b), Some(si)) => (
                Some(b.clone()),
                layer.weight_scale.iter().map(|&sw| si * sw).collect(),
            ),
            _ => (None, Vec::new()),
        };
        convs.insert(
            name.clone(),
            QdqConv {
                weight: layer.weight.clone(),
                weight_scale: layer.weight_scale.clone(),
                bias,
                bias_scale,
            },
        );
    }
    Ok(QdqSpec { act, convs })
}

/// Writes static int8 `q` to `path` as a QDQ ONNX model, atomically.
pub fn export_quantized_detector(q: &QuantizedDetector, path: &Path, raw: bool) -> Result<()> {
    let spec = qdq_spec(q, &path.display().to_string())?;
    export_detector_qdq(&q.to_detector(), &spec, path, raw)
}
