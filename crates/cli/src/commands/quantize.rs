//! `slimdet quantize`: post-training quantization of a model (static int8 calibrated on
//! VOC images, dynamic int8, or fp16 weight storage), written as a quantized safetensors
//! file that `detect`, `eval`, `bench` and `info` accept.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use slimdet_data::RgbImage;
use slimdet_data::voc::VocDataset;
use slimdet_eval::quant_sensitivity::{
    EvalSet, SensitivityReport, int8_layers, keep_most_sensitive, layer_sensitivity,
};
use slimdet_quant::{
    Activations, CalibInput, Granularity, Mode, Observer, QuantOptions, calibration_subset,
    quantize, sqnr_report,
};

use crate::model_arg::{ModelArgs, ThreadArgs};
use crate::output::write_atomic;

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
    /// Rank every int8 convolution by the mAP it costs alone (quantized with everything
    /// else in f32, on --sensitivity-images of --sensitivity-split) and keep the K most
    /// sensitive in f32. The ranking is printed and written as CSV and JSON.
    #[arg(long, value_name = "K")]
    auto_keep_float: Option<usize>,
    /// Images of the seeded subset the layer sensitivity is measured on.
    #[arg(long, default_value_t = 50)]
    sensitivity_images: usize,
    /// Split of --calib-voc the sensitivity subset is drawn from (default: --calib-split,
    /// so the test split stays unseen).
    #[arg(long)]
    sensitivity_split: Option<String>,
    /// Where the ranking goes: PREFIX.csv and PREFIX.json (default: the output file with
    /// `.sensitivity` in place of its extension).
    #[arg(long, value_name = "PREFIX")]
    sensitivity_out: Option<PathBuf>,
    #[command(flatten)]
    threads: ThreadArgs,
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

/// Measures the sensitivity of every int8 layer of `q`, prints the ranking and writes it.
fn sensitivity(
    a: &Args,
    det: &slimdet_models::Detector,
    q: &slimdet_quant::QuantizedDetector,
) -> Result<SensitivityReport> {
    let Some(root) = &a.calib_voc else {
        bail!("--auto-keep-float needs images: pass --calib-voc DIR");
    };
    let split = a.sensitivity_split.as_deref().unwrap_or(&a.calib_split);
    let ds = VocDataset::open(root, split, Some(det.class_names.clone()))
        .with_context(|| format!("opening sensitivity dataset {}", root.display()))?;
    if ds.is_empty() {
        bail!(
            "sensitivity dataset {} ({split} split) has no images",
            root.display()
        );
    }
    let set = EvalSet::from_voc(det, &ds, a.sensitivity_images, a.seed)
        .with_context(|| format!("loading sensitivity images from {}", root.display()))?;
    let total = int8_layers(q).len();
    eprintln!(
        "measuring {total} int8 layers one at a time on {} images of {} ({split})",
        set.len(),
        root.display()
    );
    let bar = indicatif::ProgressBar::new(total as u64).with_style(
        indicatif::ProgressStyle::with_template(
            "sensitivity {bar:30} {pos}/{len} layers eta {eta}",
        )
        .unwrap_or_else(|_| indicatif::ProgressStyle::default_bar()),
    );
    let report = layer_sensitivity(det, q, &set, a.threads.get(), &|done, _| {
        bar.set_position(done as u64)
    })
    .context("measuring layer sensitivity")?;
    bar.finish_and_clear();
    println!(
        "layer sensitivity on {} images (f32 mAP {:.4}):",
        report.images, report.fp32_map
    );
    println!(
        "{:>4} {:<36} {:<7} {:>9} {:>9} {:>10} {:>10}",
        "rank", "layer", "kind", "mAP", "drop", "scores dB", "locs dB"
    );
    for l in &report.layers {
        println!(
            "{:>4} {:<36} {:<7} {:>9.4} {:>9.4} {:>10.1} {:>10.1}",
            l.rank, l.name, l.kind, l.map, l.drop, l.scores_sqnr_db, l.locations_sqnr_db
        );
    }
    let prefix = a
        .sensitivity_out
        .clone()
        .unwrap_or_else(|| a.output.with_extension("sensitivity"));
    let csv_path = PathBuf::from(format!("{}.csv", prefix.display()));
    let json_path = PathBuf::from(format!("{}.json", prefix.display()));
    let mut csv = String::from("rank,layer,kind,map,drop,scores_sqnr_db,locations_sqnr_db\n");
    for l in &report.layers {
        csv += &format!(
            "{},{},{},{},{},{},{}\n",
            l.rank, l.name, l.kind, l.map, l.drop, l.scores_sqnr_db, l.locations_sqnr_db
        );
    }
    write_atomic(&csv_path, csv.as_bytes())
        .with_context(|| format!("writing {}", csv_path.display()))?;
    let finite = |v: f64| v.is_finite().then_some(v);
    let json = serde_json::json!({
        "model": a.model.model,
        "dataset": root,
        "split": split,
        "images": report.images,
        "seed": a.seed,
        "fp32_map": report.fp32_map,
        "kept_in_f32": report.top(a.auto_keep_float.unwrap_or(0)),
        "layers": report.layers.iter().map(|l| serde_json::json!({
            "rank": l.rank, "layer": l.name, "kind": l.kind, "map": l.map,
            "drop": l.drop, "scores_sqnr_db": finite(l.scores_sqnr_db),
            "locations_sqnr_db": finite(l.locations_sqnr_db),
        })).collect::<Vec<_>>(),
    });
    let text = serde_json::to_string_pretty(&json).context("serialising the ranking")?;
    write_atomic(&json_path, text.as_bytes())
        .with_context(|| format!("writing {}", json_path.display()))?;
    eprintln!(
        "ranking written to {} and {}",
        csv_path.display(),
        json_path.display()
    );
    Ok(report)
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
    if a.auto_keep_float.is_some() {
        if mode != Mode::Static {
            bail!("--auto-keep-float ranks calibrated int8 layers: it needs --mode static");
        }
        if a.sensitivity_images == 0 {
            bail!("--sensitivity-images must be at least 1");
        }
    }
    let mut q = quantize(&det, &calib, &opts)
        .with_context(|| format!("quantizing {}", a.model.model.display()))?;
    if let Some(k) = a.auto_keep_float {
        let layers = int8_layers(&q).len();
        if k > layers {
            bail!("--auto-keep-float {k}: the model has only {layers} quantizable (int8) layers");
        }
        let report = sensitivity(&a, &det, &q)?;
        q = keep_most_sensitive(&det, &q, &report, k)?;
        if k > 0 {
            println!("kept in f32: {}", report.top(k).join(", "));
        }
    }
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
