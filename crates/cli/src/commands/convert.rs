//! `slimdet convert`: any model slimdet reads (`.pth`, `.onnx`, TF `.pb`, older
//! safetensors) to a slimdet model file that carries its graph (format version 2).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result};

use crate::model_arg::ModelArgs;

/// Options of `slimdet convert`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Output .safetensors file.
    #[arg(long, short = 'o')]
    out: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let det = a.model.load()?;
    det.save_safetensors(&a.out)
        .with_context(|| format!("saving {}", a.out.display()))?;
    eprintln!("wrote {} ({})", a.out.display(), det.name);
    Ok(ExitCode::SUCCESS)
}
