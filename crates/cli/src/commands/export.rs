//! `slimdet export`: a model as ONNX for other runtimes (ONNX Runtime, TensorRT,
//! OpenVINO).
//!
//! The graph follows pytorch-ssd's export: input `[1, 3, H, W]`, outputs `scores`
//! `[1, P, classes]` and `boxes` `[1, P, 4]` (corner form, 0..1 units) with softmax and
//! box decoding inside the graph; `--raw` exports `logits` and `locations` instead.
//! Pruned models export with their reduced shapes. `--quantized` exports a static int8
//! model made by `slimdet quantize` in QDQ form (int8 weights, uint8 activations).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use slimdet_onnx::{QdqConv, QdqSpec};
use slimdet_quant::{Mode, QBias, QuantizedDetector};

use crate::model_arg::ModelArgs;

/// Options of `slimdet export`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Output format.
    #[arg(long, default_value = "onnx", value_parser = ["onnx"])]
    format: String,
    /// Export the raw head outputs (`logits`, `locations`) without softmax and decoding.
    #[arg(long)]
    raw: bool,
    /// Export a static int8 model (from `slimdet quantize`) as a QDQ int8 ONNX model.
    #[arg(long)]
    quantized: bool,
    /// Output file (.onnx).
    #[arg(long, short = 'o')]
    out: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if a.out.is_dir() {
        bail!(
            "{} is a directory; give the output .onnx file",
            a.out.display()
        );
    }
    let path = &a.model.model;
    let is_quantized = slimdet_quant::is_quantized_file(path);
    let ctx = || format!("exporting {} to {}", path.display(), a.out.display());
    let arch = if a.quantized {
        if !is_quantized {
            bail!(
                "{}: --quantized needs a model quantized by `slimdet quantize`",
                path.display()
            );
        }
        let q = QuantizedDetector::load(path)
            .with_context(|| format!("loading model {}", path.display()))?;
        let spec = qdq_spec(&q).with_context(|| format!("{}", path.display()))?;
        let det = q.to_detector();
        slimdet_onnx::export_detector_qdq(&det, &spec, &a.out, a.raw).with_context(ctx)?;
        det.arch.name()
    } else {
        if is_quantized {
            bail!(
                "{} is a quantized model: add --quantized to export it as QDQ int8 ONNX",
                path.display()
            );
        }
        let det = a.model.load()?;
        slimdet_onnx::export_detector(&det, &a.out, a.raw).with_context(ctx)?;
        det.arch.name()
    };
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({arch}{}, {bytes} bytes, {} outputs)",
        a.out.display(),
        if a.quantized { ", QDQ int8" } else { "" },
        if a.raw {
            "logits/locations"
        } else {
            "scores/boxes"
        }
    );
    Ok(ExitCode::SUCCESS)
}

/// The QDQ description of a static int8 model: uint8 activation parameters per value,
/// int8 weights and int32 biases per quantized convolution.
fn qdq_spec(q: &QuantizedDetector) -> Result<QdqSpec> {
    if q.mode != Mode::Static {
        bail!(
            "only static int8 models have a QDQ form (this one is {:?}); export the fp32 model instead",
            q.mode
        );
    }
    let act: Vec<Option<(f32, u8)>> = q
        .act
        .iter()
        .map(|p| p.map(|p| (p.scale, p.zero_point.clamp(0, 255) as u8)))
        .collect();
    let mut convs = std::collections::BTreeMap::new();
    for (name, layer) in &q.layers {
        let node = q
            .graph
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .with_context(|| format!("quantized layer {name} is not in the graph"))?;
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
