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
use slimdet_quant::QuantizedDetector;

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
        slimdet_onnx::export_quantized_detector(&q, &a.out, a.raw).with_context(ctx)?;
        q.head.name
    } else {
        if is_quantized {
            bail!(
                "{} is a quantized model: add --quantized to export it as QDQ int8 ONNX",
                path.display()
            );
        }
        let det = a.model.load()?;
        slimdet_onnx::export_detector(&det, &a.out, a.raw).with_context(ctx)?;
        det.name
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
