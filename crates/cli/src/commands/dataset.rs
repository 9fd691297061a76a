//! `slimdet dataset synth`: writes the built-in synthetic dataset in the Pascal VOC layout.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use clap::Subcommand;
use indicatif::{ProgressBar, ProgressStyle};
use slimdet_data::synth::{SYNTH_CLASSES, SynthConfig, generate_with_threads};

use crate::model_arg::ThreadArgs;

/// `slimdet dataset ...`
#[derive(clap::Args)]
pub struct Args {
    #[command(subcommand)]
    what: What,
}

#[derive(Subcommand)]
enum What {
    /// Generate the synthetic VOC-layout dataset (deterministic for a seed and version).
    Synth(SynthArgs),
}

/// Options of `slimdet dataset synth`.
#[derive(clap::Args)]
pub struct SynthArgs {
    /// Output folder (becomes the VOC year folder: JPEGImages/, Annotations/, ImageSets/).
    #[arg(long, short = 'o')]
    pub out: PathBuf,
    /// Images in the trainval split.
    #[arg(long, default_value_t = 1500)]
    pub train: usize,
    /// Images in the test split.
    #[arg(long, default_value_t = 500)]
    pub test: usize,
    /// Random seed.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Image side in pixels (16 to 2048).
    #[arg(long, default_value_t = 300, value_parser = clap::value_parser!(u32).range(16..=2048))]
    pub size: u32,
    #[command(flatten)]
    pub threads: ThreadArgs,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    match a.what {
        What::Synth(s) => synth(&s),
    }
}

/// Generates the dataset with a progress bar; returns the folder.
pub fn synth(s: &SynthArgs) -> Result<ExitCode> {
    if s.train + s.test == 0 {
        bail!("--train and --test are both 0: nothing to generate");
    }
    let cfg = SynthConfig {
        train: s.train,
        test: s.test,
        seed: s.seed,
        size: s.size as usize,
    };
    let bar = ProgressBar::new(cfg.total() as u64).with_style(
        ProgressStyle::with_template("synth {bar:40} {pos}/{len} images  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let summary = generate_with_threads(&s.out, &cfg, s.threads.get(), &mut |done, _| {
        bar.set_position(done as u64)
    })
    .with_context(|| format!("generating {}", s.out.display()))?;
    bar.finish_and_clear();
    eprintln!(
        "wrote {} images ({} objects, {} difficult) to {}",
        summary.images,
        summary.objects,
        summary.difficult,
        s.out.display()
    );
    for (name, n) in SYNTH_CLASSES.iter().zip(&summary.per_class) {
        eprintln!("  {name:<10} {n}");
    }
    Ok(ExitCode::SUCCESS)
}
