//! `slimdet convert`: a .pth (or safetensors) model to safetensors with its architecture
//! recorded in the metadata.

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
