//! `slimdet init`: a randomly initialised model (pytorch-ssd's initialisation) for a class
//! list, as a starting point for training or for timing runs.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use slimdet_models::{Arch, Detector};

/// Options of `slimdet init`.
#[derive(clap::Args)]
pub struct Args {
    /// Class list (labels.txt of a dataset: one name per line or comma-separated).
    #[arg(long)]
    classes: PathBuf,
    /// Width multiplier of MobileNetV2 (1.0, 0.75 or 0.5).
    #[arg(long, default_value_t = 1.0)]
    width: f64,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Output .safetensors file.
    #[arg(long, short = 'o')]
    out: PathBuf,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if ![1.0, 0.75, 0.5].contains(&a.width) {
        bail!(
            "--width {} is not supported: pytorch-ssd's MobileNetV2-SSD-Lite builds only with 1.0, 0.75 or 0.5",
            a.width
        );
    }
    let classes = slimdet_data::voc::read_class_file(&a.classes)
        .with_context(|| format!("reading {}", a.classes.display()))?;
    let arch = Arch::named("mb2-ssd-lite", a.width, classes.len())?;
    let det = Detector::random(arch, classes, a.seed);
    det.save_safetensors(&a.out)
        .with_context(|| format!("saving {}", a.out.display()))?;
    eprintln!(
        "wrote {} ({} classes with background)",
        a.out.display(),
        det.class_names.len()
    );
    Ok(ExitCode::SUCCESS)
}
