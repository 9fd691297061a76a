//! `slimdet eval`: VOC AP of a model on a dataset split (or of a detections file made by
//! any system), plus the model's metrics, written to a dated results CSV and JSON.
//!
//! `--format json` prints `{"metric": "voc07", "map": .., "per_class": {"<class>": ..},
//! "images": N}` (a public interface; NaN APs print as null).

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use slimdet_core::stats::model_stats;
use slimdet_data::voc::VocDataset;
use slimdet_eval::metrics::{self, Timing};
use slimdet_eval::results::{ResultRow, now_stamp, write_results};
use slimdet_eval::runner::{EvalOptions, evaluate_detector, load_split};
use slimdet_eval::{ApMetric, ApResult, NanPolicy, detections_io, evaluate, ground_truth_from_voc};
use slimdet_models::Detector;

use crate::model_arg::ThreadArgs;

/// Options of `slimdet eval`.
#[derive(clap::Args)]
pub struct Args {
    /// Weight file (.pth or .safetensors); default: the built-in model (models/). Not
    /// used with --detections.
    #[arg(long, short = 'm')]
    model: Option<PathBuf>,
    /// Architecture (default: recognised from the file).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(slimdet_models::arch::ARCH_NAMES))]
    arch: Option<String>,
    /// Evaluate this detections file (JSON or CSV of `slimdet detect`) instead of a model.
    #[arg(long, conflicts_with = "model")]
    detections: Option<PathBuf>,
    /// VOC year folder (holding Annotations/), or a VOCdevkit holding one year.
    #[arg(long)]
    voc: PathBuf,
    /// Split file under ImageSets/Main.
    #[arg(long, default_value = "test")]
    split: String,
    /// Class list file (one name per line or comma-separated; BACKGROUND prepended).
    #[arg(long)]
    classes: Option<PathBuf>,
    /// AP formula: voc07 (11-point, pytorch-ssd's default) or voc10 (all-point).
    #[arg(long, default_value = "voc07", value_parser = ["voc07", "voc10"])]
    metric: String,
    /// NaN precision handling: strict (numpy/pytorch-ssd) or safe (VOC devkit).
    #[arg(long, default_value = "strict", value_parser = ["strict", "safe"])]
    nan: String,
    /// Evaluate only the first N images of the split.
    #[arg(long, value_parser = clap::value_parser!(u64).range(1..))]
    limit: Option<u64>,
    #[command(flatten)]
    threads: ThreadArgs,
    /// Printed format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
    /// Skip (and count) unreadable annotations, images or detection rows instead of failing.
    #[arg(long)]
    skip_bad: bool,
    /// Directory for the dated results CSV and JSON.
    #[arg(long, default_value = "results")]
    results: PathBuf,
    /// Do not write result files.
    #[arg(long)]
    no_results: bool,
    /// Name of this variant in the results (default: the model file stem).
    #[arg(long)]
    variant: Option<String>,
    /// Timed runs for the latency columns (0 skips timing and peak-RSS measurement).
    #[arg(long, default_value_t = 20)]
    timing_runs: usize,
    /// Quality gate: exit with code 1 (after printing and writing the results) when the
    /// mAP is below this value, in 0..=1. A NaN mAP fails the gate.
    #[arg(long, value_parser = parse_fraction)]
    min_map: Option<f64>,
}

fn parse_fraction(s: &str) -> std::result::Result<f64, String> {
    match s.parse::<f64>() {
        Ok(v) if (0.0..=1.0).contains(&v) => Ok(v),
        _ => Err(format!("{s:?} is not a number in 0..=1")),
    }
}

/// The exit code of the `--min-map` gate: 1 with a message when `map` is below it.
fn gate(map: f64, min_map: Option<f64>) -> ExitCode {
    match min_map {
        // A NaN mAP fails too.
        Some(min) if map.is_nan() || map < min => {
            eprintln!("quality gate failed: mAP {map:.4} is below --min-map {min}");
            ExitCode::from(1)
        }
        _ => ExitCode::SUCCESS,
    }
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let ds = match &a.classes {
        Some(c) => VocDataset::open_with_class_file(&a.voc, &a.split, c),
        None => VocDataset::open(&a.voc, &a.split, None),
    }
    .with_context(|| format!("opening dataset {}", a.voc.display()))?
    .with_skip_unknown(a.skip_bad);
    let metric = if a.metric == "voc10" {
        ApMetric::Voc10
    } else {
        ApMetric::Voc07
    };
    let nan = if a.nan == "safe" {
        NanPolicy::Safe
    } else {
        NanPolicy::Strict
    };
    let opts = EvalOptions {
        metric,
        nan,
        limit: a.limit.map(|n| n as usize),
        threads: a.threads.get(),
        skip_bad: a.skip_bad,
    };
    if let Some(path) = &a.detections {
        let (items, skipped) = load_split(&ds, &opts)?;
        let read = detections_io::read_detections(path, ds.class_names(), a.skip_bad)
            .with_context(|| format!("reading detections {}", path.display()))?;
        report_skips(&skipped, read.skipped.len());
        let ap = evaluate(
            &ground_truth_from_voc(&items),
            &read.detections,
            ds.class_names(),
            metric,
            nan,
            items.len(),
        );
        print_ap(&ap, &a.format)?;
        return Ok(gate(ap.map, a.min_map));
    }
    let model = &a
        .model
        .clone()
        .unwrap_or_else(crate::model_arg::builtin_model_path);
    crate::model_arg::check_builtin(model)?;
    // Through ModelArgs so that quantized (and ONNX) files load too.
    let det = crate::model_arg::ModelArgs {
        model: model.clone(),
        arch: a.arch.clone(),
    }
    .load()?;
    let ds = match &a.classes {
        Some(_) => ds,
        None => {
            let by_model =
                crate::dataset_arg::open_for_model(&a.voc, &a.split, &det.class_names, model)?;
            // Matching the model's classes by name already skips the others.
            let skip = a.skip_bad || by_model.skip_unknown();
            by_model.with_skip_unknown(skip)
        }
    };
    if det.class_names.len() != ds.class_names().len() {
        bail!(
            "{} has {} classes (with background) but dataset {} has {}: pass --classes FILE matching the model",
            model.display(),
            det.class_names.len(),
            a.voc.display(),
            ds.class_names().len()
        );
    }
    let n = a.limit.map_or(ds.len(), |l| (l as usize).min(ds.len()));
    let bar = ProgressBar::new(n as u64).with_style(
        ProgressStyle::with_template("eval {bar:40} {pos}/{len} images  {per_sec}  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let out = evaluate_detector(&det, &ds, &opts, &|done, _| bar.set_position(done as u64))?;
    bar.finish_and_clear();
    report_skips(&out.skipped, 0);
    eprintln!(
        "evaluated {} images in {:.2} s ({:.1} images/s, {} threads)",
        out.ap.images,
        out.wall_s,
        out.ap.images as f64 / out.wall_s,
        opts.threads
    );
    print_ap(&out.ap, &a.format)?;
    if a.no_results {
        return Ok(gate(out.ap.map, a.min_map));
    }
    let ctx = RowContext {
        command: "eval",
        variant: a.variant.clone().unwrap_or_else(|| {
            model
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_default()
        }),
        arch: a.arch.as_deref(),
        threads: opts.threads,
        timing_runs: a.timing_runs,
        reproduce: reproduce_command(),
    };
    let row = metrics_row(&ctx, &det, model, &ds, &out.ap, out.wall_s)?;
    let (csv, json) = write_results(&a.results, &now_stamp(), "eval", &[row])?;
    eprintln!("wrote {} and {}", csv.display(), json.display());
    Ok(gate(out.ap.map, a.min_map))
}

fn report_skips(skipped: &[String], rows: usize) {
    if !skipped.is_empty() || rows > 0 {
        eprintln!(
            "skipped {} images and {} detection rows (--skip-bad)",
            skipped.len(),
            rows
        );
        for s in skipped.iter().take(10) {
            eprintln!("  {s}");
        }
    }
}

/// A JSON number, or null for NaN and infinities.
pub fn num(v: f64) -> Value {
    if v.is_finite() { json!(v) } else { Value::Null }
}

fn print_ap(ap: &ApResult, format: &str) -> Result<()> {
    if format == "json" {
        let per: serde_json::Map<String, Value> = ap
            .per_class
            .iter()
            .map(|(c, v)| (c.clone(), num(*v)))
            .collect();
        println!(
            "{}",
            json!({"metric": ap.metric.to_string(), "map": num(ap.map), "per_class": per, "images": ap.images})
        );
        return Ok(());
    }
    println!("{:<16} {:>8} {:>6}", "class", "AP", "gt");
    for ((c, v), n) in ap.per_class.iter().zip(&ap.num_gt) {
        println!("{c:<16} {v:>8.4} {n:>6}");
    }
    println!(
        "{:<16} {:>8.4}   ({}, {} images)",
        "mAP", ap.map, ap.metric, ap.images
    );
    Ok(())
}

/// Runs `slimdet bench` as a child process to measure the peak RSS of a process that
/// only loads and runs the model.
fn child_peak_rss(model: &std::path::Path, arch: Option<&str>, threads: usize) -> Option<u64> {
    // `/proc/self/exe` runs this very binary even if its file was replaced by a rebuild
    // during a long study (then `current_exe` names a deleted file).
    let proc_exe = std::path::Path::new("/proc/self/exe");
    let exe = if proc_exe.exists() {
        proc_exe.to_path_buf()
    } else {
        std::env::current_exe().ok()?
    };
    let mut cmd = std::process::Command::new(exe);
    cmd.args([
        "bench",
        "--runs",
        "3",
        "--warmup",
        "1",
        "--json",
        "--threads",
        &threads.to_string(),
        "--model",
    ])
    .arg(model);
    if let Some(a) = arch {
        cmd.args(["--arch", a]);
    }
    let out = cmd.output().ok()?;
    let text = String::from_utf8_lossy(&out.stdout);
    let v: Value = serde_json::from_str(text.lines().last()?).ok()?;
    v["peak_rss_bytes"].as_u64()
}

/// What a results row needs beyond the model, the dataset and the AP.
pub struct RowContext<'a> {
    /// The `command` column (`eval`, `study`).
    pub command: &'a str,
    /// The `variant` column.
    pub variant: String,
    /// `--arch` given for the model file (for the peak-RSS child process).
    pub arch: Option<&'a str>,
    /// Threads for timing and the peak-RSS child.
    pub threads: usize,
    /// Timed runs (0: no latency columns and no peak RSS).
    pub timing_runs: usize,
    /// The `reproduce` column.
    pub reproduce: String,
}

/// Builds the documented results row (README "Results files") of `det`, saved at
/// `model`, evaluated on `ds` with result `ap`: sizes, MACs, sparsity, forward and
/// pipeline latency, peak RSS of a child `slimdet bench`, machine and revision.
pub fn metrics_row(
    a: &RowContext,
    det: &Detector,
    model: &std::path::Path,
    ds: &VocDataset,
    ap: &ApResult,
    wall_s: f64,
) -> Result<ResultRow> {
    let mut r = ResultRow::default();
    let input = det.input_shape();
    let st = model_stats(&det.graph, &input)?;
    let size = metrics::file_size(model)?;
    let threads = a.threads;
    let (fwd, pipe, rss) = if a.timing_runs > 0 {
        let images: Vec<PathBuf> = ds
            .ids()
            .iter()
            .take(16)
            .map(|id| ds.image_path(id))
            .collect();
        let fwd = metrics::time_forward(det, threads, 3, a.timing_runs)?;
        let pipe = metrics::time_pipeline(det, &images, threads, 2, a.timing_runs)?;
        (
            Some(fwd),
            Some(pipe),
            child_peak_rss(model, a.arch, threads),
        )
    } else {
        (None, None, None)
    };
    let plan = slimdet_core::Plan::new(&det.graph, &input, &slimdet_core::PlanOptions::default())?;
    r.set("timestamp", now_stamp());
    r.set("command", a.command);
    r.set("variant", a.variant.clone());
    r.set("model", model.display().to_string());
    r.set("dataset", ds.root().display().to_string());
    r.set("split", ds.split().to_string());
    r.set("images", ap.images);
    r.set("metric", ap.metric.to_string());
    r.set("map", num(ap.map));
    for (c, v) in &ap.per_class {
        r.set(&format!("ap_{c}"), num(*v));
    }
    r.set("params", st.params);
    r.set("macs", st.macs);
    r.set("macs_effective", st.macs_effective);
    r.set("sparsity_conv", st.conv_sparsity);
    r.set("sparsity_all", st.sparsity_all);
    r.set("mean_layer_sparsity", st.mean_layer_sparsity);
    r.set("file_bytes", size.bytes);
    r.set("file_gz_bytes", size.gz_bytes);
    set_timing(&mut r, "forward", fwd);
    set_timing(&mut r, "pipeline", pipe);
    r.set("peak_rss_bytes", rss.map_or(Value::Null, Value::from));
    r.set("arena_bytes", plan.arena_bytes());
    r.set("weight_bytes", plan.weight_bytes());
    r.set("threads", threads);
    r.set("kernels", plan.tier().name());
    r.set("cpu", metrics::cpu_name());
    r.set("git_rev", env!("SLIMDET_GIT_REV"));
    r.set("eval_wall_s", wall_s);
    r.set("reproduce", a.reproduce.clone());
    Ok(r)
}

fn set_timing(r: &mut ResultRow, prefix: &str, t: Option<Timing>) {
    let f = |g: fn(&Timing) -> f64| t.as_ref().map_or(Value::Null, |t| num(g(t)));
    r.set(&format!("{prefix}_mean_ms"), f(|t| t.mean_ms));
    r.set(&format!("{prefix}_std_ms"), f(|t| t.std_ms));
    r.set(&format!("{prefix}_p50_ms"), f(|t| t.p50_ms));
    r.set(&format!("{prefix}_p90_ms"), f(|t| t.p90_ms));
    r.set(&format!("{prefix}_fps"), f(|t| t.fps));
}

/// The command line that reproduces this run.
pub fn reproduce_command() -> String {
    let args: Vec<String> = std::env::args()
        .skip(1)
        .map(|a| if a.contains(' ') { format!("'{a}'") } else { a })
        .collect();
    format!("slimdet {}", args.join(" "))
}
