//! `slimdet export`: a model as ONNX for other runtimes (ONNX Runtime, TensorRT,
//! OpenVINO).
//!
//! The graph follows pytorch-ssd's export: input `[1, 3, H, W]`, outputs `scores`
//! `[1, P, classes]` and `boxes` `[1, P, 4]` (corner form, 0..1 units) with softmax and
//! box decoding inside the graph; `--raw` exports `logits` and `locations` instead.
//! Pruned models export with their reduced shapes.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};

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
    let det = a.model.load()?;
    slimdet_onnx::export_detector(&det, &a.out, a.raw).with_context(|| {
        format!(
            "exporting {} to {}",
            a.model.model.display(),
            a.out.display()
        )
    })?;
    let bytes = std::fs::metadata(&a.out).map(|m| m.len()).unwrap_or(0);
    eprintln!(
        "wrote {} ({}, {} bytes, {} outputs)",
        a.out.display(),
        det.arch.name(),
        bytes,
        if a.raw {
            "logits/locations"
        } else {
            "scores/boxes"
        }
    );
    Ok(ExitCode::SUCCESS)
}
