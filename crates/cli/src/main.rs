//! `slimdet`: load, evaluate, run and measure small object detectors on CPUs.
//!
//! A thin entry point: argument parsing lives here, each command in `commands/`.
//! Exit codes follow ripgrep: 0 success, 1 a quality gate failed, 2 an error.

mod commands;
mod dataset_arg;
mod draw;
mod model_arg;
mod output;

use std::process::ExitCode;

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "slimdet",
    version,
    about = "Prune, quantize, evaluate and run SSD detectors on embedded CPUs"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print layers, parameters, MACs, sparsity and file size of a model.
    Info(commands::info::Args),
    /// Prune a model: zero weights (l1, random) or remove channels (filter-l1, ...).
    Prune(commands::prune::Args),
    /// mAP of each layer group pruned alone at several levels (CSV, JSON, plot); with
    /// --target-macs, per-group ratios that meet a MAC budget.
    Sensitivity(commands::sensitivity::Args),
    /// Detect objects in images, draw them and print the detections.
    Detect(commands::detect::Args),
    /// Time the forward pass (median, p10, p90) after warm-up.
    Bench(commands::bench::Args),
    /// Convert a .pth model to safetensors.
    Convert(commands::convert::Args),
    /// Generate the built-in synthetic dataset.
    Dataset(commands::dataset::Args),
    /// Create a randomly initialised model for a class list.
    Init(commands::init::Args),
    /// Train MobileNetV2-SSD-Lite on a VOC-layout dataset, with checkpoints.
    Train(commands::train::Args),
    /// VOC mAP of a model (or of a detections file) with its metrics, to a results CSV.
    Eval(commands::eval::Args),
    /// Compression study: prune/quantize a model over a grid, measure every variant,
    /// write a results CSV and a report.
    Study(commands::study::Args),
    /// Draw detections and FPS on frames (folder, image or video) into a GIF or PNGs.
    Demo(commands::demo::Args),
    /// Quantize a model: static or dynamic int8, or fp16 weights.
    Quantize(commands::quantize::Args),
    /// Export a model as ONNX (fp32; pytorch-ssd's output names and shapes).
    Export(commands::export::Args),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Info(a) => commands::info::run(a),
        Command::Prune(a) => commands::prune::run(a),
        Command::Sensitivity(a) => commands::sensitivity::run(a),
        Command::Detect(a) => commands::detect::run(a),
        Command::Bench(a) => commands::bench::run(a),
        Command::Convert(a) => commands::convert::run(a),
        Command::Eval(a) => commands::eval::run(a),
        Command::Study(a) => commands::study::run(a),
        Command::Demo(a) => commands::demo::run(a),
        Command::Export(a) => commands::export::run(a),
        Command::Quantize(a) => commands::quantize::run(a),
        Command::Dataset(a) => commands::dataset::run(a),
        Command::Init(a) => commands::init::run(a),
        Command::Train(a) => commands::train::run(a),
    };
    match result {
        Ok(code) => code,
        Err(e) => {
            if is_broken_pipe(&e) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn is_broken_pipe(e: &anyhow::Error) -> bool {
    e.chain().any(|c| {
        c.downcast_ref::<std::io::Error>()
            .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
    })
}
