//! `slimdet quantize`: post-training quantization of a model (static int8 calibrated on
//! VOC images, dynamic int8, or fp16 weight storage), written as a quantized safetensors
//! file that `detect`, `eval`, `bench` and `info` accept.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use slimdet_data::RgbImage;
use slimdet_data::voc::VocDataset;
use slimdet_quant::{
    Activations, CalibInput, Granularity, Mode, Observer, QuantOptions, calibration_subset,
    quantize, sqnr_report,
};

use crate::model_arg::ModelArgs;

/// Options of `slimdet quantize`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// VOC folder with the calibration images (required for `--mode static`).
    #[arg(long)]
    calib_voc: Option<PathBuf>,
    /// Split of `--calib-voc` to draw calibration images from.
    #[arg(long, default_value = "trainval")]
    calib_split: String,
    /// Calibration images: a seeded subset of the split (at least 1).
    #[arg(long, default_value_t = 100)]
    calib_images: usize,
    /// Seed of the calibration subset.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Activation range observer: minmax, moving-average, percentile[:P], entropy, mse.
    #[arg(long, default_value = "mse")]
    observer: String,
    /// Weight scales per output channel or per tensor.
    #[arg(long, default_value = "channel", value_parser = ["channel", "tensor"])]
    granularity: String,
    /// Activation type: u8 asymmetric or i8 symmetric.
    #[arg(long, default_value = "u8", value_parser = ["u8", "i8"])]
    activations: String,
    /// Layers kept in f32: a module path (matches what is under it) or a glob. Repeatable.
    #[arg(long)]
    keep_float: Vec<String>,
    /// static (int8 weights and activations), dynamic (int8 weights, activations
    /// quantized at run time) or fp16 (half-precision weight storage).
    #[arg(long, default_value = "static", value_parser = ["static", "dynamic", "fp16"])]
    mode: String,
    /// Print the per-layer SQNR (f32 vs fake-quant simulation vs int8 engine) on up to 8
    /// of the calibration images.
    #[arg(long)]
    report: bool,
    /// Output file.
    #[arg(short = 'o', long)]
    output: PathBuf,
}

/// Loads the calibration images chosen from the split.
fn calibration_images(a: &Args) -> Result<Vec<RgbImage>> {
    let Some(root) = &a.calib_voc else {
        return Ok(Vec::new());
    };
    let ds = VocDataset::open(root, &a.calib_split, None)
        .with_context(|| format!("opening calibration dataset {}", root.display()))?;
    if ds.is_empty() {
        bail!(
            "calibration dataset {} ({} split) has no images",
            root.display(),
            a.calib_split
        );
    }
    let pick = calibration_subset(ds.len(), a.calib_images, a.seed);
    pick.iter()
        .map(|&i| {
            let id = &ds.ids()[i];
            ds.load_image(id).with_context(|| {
                format!("loading calibration image {}", ds.image_path(id).display())
            })
        })
        .collect()
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let mode: Mode = a.mode.parse()?;
    if a.calib_images == 0 {
        bail!("--calib-images must be at least 1");
    }
    if mode == Mode::Static && a.calib_voc.is_none() {
        bail!("--mode static needs calibration images: pass --calib-voc DIR");
    }
    let observer: Observer = a.observer.parse()?;
    let det = a.model.load()?;
    let calib = calibration_images(&a)?;
    let opts = QuantOptions {
        observer,
        granularity: a.granularity.parse::<Granularity>()?,
        activations: a.activations.parse::<Activations>()?,
        mode,
        keep_float: a.keep_float.clone(),
        calib_images: a.calib_images,
        seed: a.seed,
        ..QuantOptions::default()
    };
    let q = quantize(&det, &calib, &opts)
        .with_context(|| format!("quantizing {}", a.model.model.display()))?;
    q.save(&a.output)
        .with_context(|| format!("writing {}", a.output.display()))?;
    let in_bytes = std::fs::metadata(&a.model.model)
        .map(|m| m.len())
        .unwrap_or(0);
    let out_bytes = std::fs::metadata(&a.output)
        .with_context(|| format!("reading back {}", a.output.display()))?
        .len();
    let ratio = in_bytes as f64 / out_bytes.max(1) as f64;
    if q.mode == Mode::Fp16 {
        println!(
            "{} -> {} (fp16 weights): {in_bytes} -> {out_bytes} bytes ({ratio:.2}x smaller)",
            a.model.model.display(),
            a.output.display(),
        );
    } else {
        println!(
            "{} -> {} ({} mode, observer {}, {} weights, {} activations, {} calibration images): {} int8 layers, {} kept in f32; {in_bytes} -> {out_bytes} bytes ({ratio:.2}x smaller)",
            a.model.model.display(),
            a.output.display(),
            q.mode,
            q.observer,
            q.granularity,
            q.activations,
            calib.len(),
            q.layers.len(),
            q.keep_float.len(),
        );
    }
    if a.report {
        if mode == Mode::Fp16 {
            bail!("--report compares int8 layers; it does not apply to --mode fp16");
        }
        if calib.is_empty() {
            bail!("--report needs images: pass --calib-voc DIR");
        }
        let inputs = calib
            .iter()
            .take(8)
            .enumerate()
            .map(|(i, img)| img.to_input(&det, i))
            .collect::<slimdet_quant::Result<Vec<_>>>()?;
        let r = sqnr_report(&det, &q, &inputs)?;
        println!(
            "{:<36} {:<7} {:<5} {:>10} {:>10}",
            "layer", "kind", "int8", "sim dB", "int8 dB"
        );
        for l in &r.layers {
            println!(
                "{:<36} {:<7} {:<5} {:>10.1} {:>10.1}",
                l.name, l.kind, l.int8, l.sim_db, l.int8_db
            );
        }
        for (name, s, i) in &r.outputs {
            println!(
                "{:<36} {:<7} {:<5} {:>10.1} {:>10.1}",
                name, "output", "", s, i
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
