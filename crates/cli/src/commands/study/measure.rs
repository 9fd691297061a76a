//! One study variant in, one documented row out: build, save, evaluate (the eval crate's
//! runner), measure (the same row builder as `slimdet eval`), then the study's own
//! columns. Also the report's setup table and the call into `slimdet-report`.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use slimdet_data::voc::VocDataset;
use slimdet_eval::results::{ResultRow, now_stamp};
use slimdet_eval::runner::{EvalOptions, evaluate_detector};
use slimdet_eval::{ApMetric, NanPolicy, metrics};
use slimdet_models::Detector;

use super::backends;
use super::config::{ReportConfig, StudyConfig};
use super::grid::Variant;
use super::rows::get;
use crate::commands::eval::{RowContext, metrics_row, num};

/// What every variant of one study shares.
pub struct Env<'a> {
    /// The configuration.
    pub cfg: &'a StudyConfig,
    /// The evaluation split.
    pub ds: &'a VocDataset,
    /// The baseline's model file.
    pub base_model: &'a Path,
    /// Worker threads.
    pub threads: usize,
    /// Where variant models are saved.
    pub models_dir: &'a Path,
    /// `slimdet study ...` without `--only`.
    pub reproduce_base: &'a str,
    /// Calibration images of static int8 (empty when no variant needs them).
    pub calib: &'a [slimdet_data::RgbImage],
}

/// Evaluation options of the study.
fn eval_options(env: &Env) -> EvalOptions {
    EvalOptions {
        metric: if env.cfg.eval.metric == "voc10" {
            ApMetric::Voc10
        } else {
            ApMetric::Voc07
        },
        nan: NanPolicy::Safe,
        limit: (env.cfg.data.limit > 0).then_some(env.cfg.data.limit),
        threads: env.threads,
        skip_bad: false,
    }
}

/// Builds, saves, evaluates and measures variant `v`; `step` is told what is running.
pub fn variant(
    env: &Env,
    base: &Detector,
    v: &Variant,
    step: &(dyn Fn(&str) + Sync),
) -> Result<ResultRow> {
    step("build");
    let train = backends::TrainEnv {
        root: env.ds.root(),
        split: &env.cfg.data.train_split,
        threads: env.threads,
        calib: env.calib,
    };
    let built = backends::build(base, v, env.cfg, &train, step)?;
    step("save");
    let path = env.models_dir.join(format!("{}.safetensors", v.name));
    let saved: anyhow::Result<()> = match &built.quant {
        Some(q) => q.save(&path).map_err(Into::into),
        None => built
            .det
            .save_safetensors_sparse(&path)
            .map(|_| ())
            .map_err(Into::into),
    };
    saved.with_context(|| format!("saving {}", path.display()))?;
    let det = built.det;
    step("eval");
    let out = evaluate_detector(&det, env.ds, &eval_options(env), &|d, n| {
        step(&format!("eval {d}/{n} images"))
    })
    .with_context(|| format!("evaluating {} on {}", v.name, env.ds.root().display()))?;
    step("timing");
    let ctx = RowContext {
        command: "study",
        variant: v.name.clone(),
        arch: None,
        threads: env.threads,
        timing_runs: env.cfg.eval.timing_runs,
        reproduce: format!("{} --only {}", env.reproduce_base, v.name),
    };
    let mut row = metrics_row(&ctx, &det, &path, env.ds, &out.ap, out.wall_s)?;
    row.set("model", env.base_model.display().to_string());
    let (method, level) = v.prune.clone().unwrap_or_default();
    row.set("prune_method", method);
    row.set("prune_level", num(level));
    row.set("quant", v.quant.clone());
    row.set("finetuned", v.finetuned);
    row.set("seed", env.cfg.seed);
    if !env.cfg.output.keep_models {
        std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
    }
    Ok(row)
}

/// A one-line summary of a finished row.
pub fn summary_line(row: &ResultRow) -> String {
    let f = |k: &str| get(row, k).as_f64();
    format!(
        "{:<36} mAP {:>6}  sparsity {:>5.1} %  {:>8} ms  {:>7.0} KiB gz",
        get(row, "variant").as_str().unwrap_or(""),
        f("map").map_or("NaN".into(), |m| format!("{:.2}", m * 100.0)),
        f("sparsity_conv").unwrap_or(0.0) * 100.0,
        f("forward_mean_ms").map_or("-".into(), |m| format!("{m:.2}")),
        f("file_gz_bytes").unwrap_or(0.0) / 1024.0,
    )
}

/// The report's setup table: machine, versions, dataset, model, settings.
pub fn setup(env: &Env, base: &Detector, root: &Path) -> Vec<(String, String)> {
    let cfg = env.cfg;
    let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
    let kernel = std::fs::read_to_string("/proc/sys/kernel/osrelease")
        .map(|s| format!(" {}", s.trim()))
        .unwrap_or_default();
    let stats = slimdet_core::stats::model_stats(&base.graph, &base.input_shape()).ok();
    let images = match cfg.data.limit {
        0 => env.ds.len(),
        n => n.min(env.ds.len()),
    };
    let classes: Vec<&str> = base
        .class_names
        .iter()
        .skip(1)
        .map(String::as_str)
        .collect();
    let synth = if cfg.data.synthetic || cfg.data.voc.is_none() {
        " (built-in synthetic dataset, seed 0, 300x300)"
    } else {
        ""
    };
    vec![
        ("report written (UTC)".into(), now_stamp()),
        (
            "machine".into(),
            format!("{} ({cores} logical cores)", metrics::cpu_name()),
        ),
        (
            "system".into(),
            format!(
                "{} {}{kernel}",
                std::env::consts::OS,
                std::env::consts::ARCH
            ),
        ),
        (
            "slimdet".into(),
            format!(
                "{} (revision {})",
                env!("CARGO_PKG_VERSION"),
                env!("SLIMDET_GIT_REV")
            ),
        ),
        (
            "kernels, threads".into(),
            format!("{}, {}", slimdet_kernels::tier().name(), env.threads),
        ),
        (
            "dataset".into(),
            format!(
                "{}{synth}, split {}, {images} images",
                root.display(),
                cfg.data.split
            ),
        ),
        ("classes".into(), classes.join(", ")),
        (
            "model".into(),
            format!(
                "{} ({}, {} parameters, {} MACs)",
                env.base_model.display(),
                base.name,
                stats.as_ref().map_or(0, |s| s.params),
                stats.as_ref().map_or(0, |s| s.macs)
            ),
        ),
        (
            "metric".into(),
            format!(
                "{} AP, IoU > 0.5, difficult ignored, devkit NaN handling",
                cfg.eval.metric
            ),
        ),
        (
            "latency".into(),
            format!(
                "forward pass, mean of {} runs after 3 warm-up runs",
                cfg.eval.timing_runs
            ),
        ),
        ("seed".into(), cfg.seed.to_string()),
        ("command".into(), env.reproduce_base.to_string()),
    ]
}

/// Writes the report of `rows` under `dir`; returns the HTML file.
pub fn write_report(
    dir: &Path,
    setup: &[(String, String)],
    rows: &[ResultRow],
    rc: &ReportConfig,
) -> Result<PathBuf> {
    let rows: Vec<slimdet_report::Row> = rows
        .iter()
        .map(|r| slimdet_report::Row::from_pairs(r.fields.iter().cloned()))
        .collect();
    let opts = slimdet_report::ReportOptions {
        size_budget_frac: rc.size_budget,
        latency_budget_frac: rc.latency_budget,
        map_tolerance: rc.map_tolerance,
    };
    let w = slimdet_report::write_report(dir, "slimdet compression study", setup, &rows, &opts)
        .with_context(|| format!("writing the report to {}", dir.display()))?;
    Ok(w.html)
}
