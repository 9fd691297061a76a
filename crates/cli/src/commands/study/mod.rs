//! `slimdet study`: the compression study. Every variant of the grid (pruning methods x
//! levels, precision modes, combinations, fine-tuned variants) is built from one model,
//! saved, evaluated on one dataset split and measured; each finished variant becomes one
//! row of `<out>/<stamp>_study.csv` (+ `.json`), written atomically, and the study ends
//! with a report (`<out>/<stamp>_report/report.html`, `report.md`, `plots/`).
//!
//! - [`config`]: the TOML configuration, defaults and the `--quick` preset.
//! - [`grid`]: the variants of a configuration.
//! - [`backends`]: building a variant (pruning, quantization, fine-tuning).
//! - [`rows`]: the documented columns and the resumable journal.
//! - [`measure`]: one variant in, one row out; the report's setup table.
//! - [`shard`]: `--shard I/N` and `slimdet study merge`.

pub mod backends;
pub mod config;
pub mod grid;
pub mod measure;
pub mod rows;
pub mod shard;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use slimdet_data::synth::{SynthConfig, generate_with_threads, is_generated};
use slimdet_data::voc::VocDataset;
use slimdet_eval::results::now_stamp;
use slimdet_models::Detector;

use config::StudyConfig;
use rows::Journal;

/// Options of `slimdet study`.
#[derive(clap::Args)]
pub struct Args {
    /// Study configuration (TOML; keys in the README, "Study configuration").
    #[arg(long)]
    config: Option<PathBuf>,
    /// Output folder for the study CSV/JSON, the report and kept models.
    #[arg(long, short = 'o', default_value = "results")]
    out: PathBuf,
    /// Small preset (60 images, a few variants): minutes on 2 cores.
    #[arg(long, conflicts_with = "config")]
    quick: bool,
    /// Continue the latest study in --out with the same configuration: finished
    /// variants are kept, not recomputed.
    #[arg(long)]
    resume: bool,
    /// VOC year folder (overrides data.voc; default: the repository's real VOC2007
    /// evaluation set, datasets/voc2007).
    #[arg(long)]
    voc: Option<PathBuf>,
    /// Model file (overrides model.path).
    #[arg(long, short = 'm')]
    model: Option<PathBuf>,
    /// Worker threads (overrides `threads`; default: all cores).
    #[arg(long, value_parser = clap::value_parser!(u16).range(1..=256))]
    threads: Option<u16>,
    /// Run only these variants (comma-separated names, as in the `variant` column).
    #[arg(long, value_delimiter = ',')]
    only: Vec<String>,
    /// Do not write the report at the end.
    #[arg(long)]
    no_report: bool,
    /// With --resume: write the report of the study's finished rows, run nothing else.
    #[arg(long, requires = "resume", conflicts_with = "no_report")]
    report_only: bool,
    /// Run only part I of N of the grid (variants whose grid index is I modulo N), for
    /// one job of a scheduler's array; `slimdet study merge` joins the parts.
    #[arg(long, value_parser = shard::Shard::parse)]
    shard: Option<shard::Shard>,
    #[command(subcommand)]
    command: Option<StudyCommand>,
}

/// Subcommands of `slimdet study`.
#[derive(clap::Subcommand)]
enum StudyCommand {
    /// Joins the shards of one study (`--shard I/N` runs, one folder each) into the whole
    /// study's CSV, JSON and report; a missing, duplicated or unfinished shard is an error.
    Merge(shard::MergeArgs),
}

/// Everything resolved before any work starts.
struct Plan {
    cfg: StudyConfig,
    variants: Vec<grid::Variant>,
    threads: usize,
    reproduce_base: String,
}

/// Reads and checks the configuration and the grid; no file is written.
fn plan(a: &Args) -> Result<Plan> {
    let mut cfg = if a.quick {
        let mut c = StudyConfig::quick();
        let dropped = backends::drop_unavailable(&mut c);
        if !dropped.is_empty() {
            eprintln!(
                "note: --quick leaves out {} (not available in this build)",
                dropped.join(", ")
            );
        }
        c
    } else if let Some(path) = &a.config {
        let text = std::fs::read_to_string(path)
            .with_context(|| format!("reading study config {}", path.display()))?;
        StudyConfig::from_toml(&text).with_context(|| format!("study config {}", path.display()))?
    } else {
        StudyConfig::default()
    };
    if let Some(v) = &a.voc {
        cfg.data.voc = Some(v.clone());
        cfg.data.synthetic = false;
    }
    cfg.data.settle_splits();
    if let Some(m) = &a.model {
        cfg.model.path = m.clone();
    }
    if let Some(t) = a.threads {
        cfg.threads = t as usize;
    }
    let what = a
        .config
        .as_ref()
        .map_or("study configuration".to_string(), |p| {
            p.display().to_string()
        });
    cfg.validate().with_context(|| what.clone())?;
    backends::check_available(&cfg).with_context(|| what.clone())?;
    let mut variants = grid::select(grid::expand(&cfg).with_context(|| what)?, &a.only)?;
    if let Some(s) = a.shard {
        variants = s.select(variants);
        eprintln!("shard {s}: {} variants of the grid", variants.len());
    }
    let threads = resolve_threads(&cfg);
    let mut rep = vec!["slimdet".to_string(), "study".to_string()];
    if a.quick {
        rep.push("--quick".into());
    }
    let mut opt = |k: &str, v: Option<String>| {
        if let Some(v) = v {
            let v = if v.contains(' ') { format!("'{v}'") } else { v };
            rep.extend([k.to_string(), v]);
        }
    };
    let disp = |p: &Option<PathBuf>| p.as_ref().map(|p| p.display().to_string());
    opt("--config", disp(&a.config));
    opt("--voc", disp(&a.voc));
    opt("--model", disp(&a.model));
    opt("--threads", a.threads.map(|t| t.to_string()));
    opt("--out", Some(a.out.display().to_string()));
    Ok(Plan {
        cfg,
        variants,
        threads,
        reproduce_base: rep.join(" "),
    })
}

/// The built-in synthetic dataset under `dir`, generated if missing.
fn ensure_synth(dir: &Path, threads: usize) -> Result<PathBuf> {
    let sc = SynthConfig::default();
    if is_generated(dir, &sc) {
        return Ok(dir.to_path_buf());
    }
    eprintln!(
        "generating the built-in synthetic dataset ({} images) into {}",
        sc.total(),
        dir.display()
    );
    let bar = ProgressBar::new(sc.total() as u64).with_style(
        ProgressStyle::with_template("synth {bar:40} {pos}/{len} images  eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    generate_with_threads(dir, &sc, threads, &mut |d, _| bar.set_position(d as u64))
        .with_context(|| format!("generating {}", dir.display()))?;
    bar.finish_and_clear();
    Ok(dir.to_path_buf())
}

/// The study's base model, loaded as every other command loads `--model` (`.pth`,
/// safetensors, ONNX, TF `.pb`); a quantized file is refused: the study prunes and quantizes a
/// float model itself.
fn load_model(cfg: &StudyConfig) -> Result<Detector> {
    let path = &cfg.model.path;
    crate::model_arg::check_builtin(path)?;
    if !path.exists() {
        bail!("model {} does not exist", path.display());
    }
    if slimdet_quant::is_quantized_file(path) {
        bail!(
            "model {} is quantized: the study starts from the float model (it quantizes the \
             variants itself)",
            path.display()
        );
    }
    crate::model_arg::ModelArgs {
        model: path.clone(),
        arch: None,
    }
    .load()
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if let Some(StudyCommand::Merge(m)) = a.command {
        return shard::merge(m);
    }
    let p = plan(&a)?;
    let cfg = &p.cfg;
    let (base, root, ds) = open_inputs(cfg, p.threads)?;
    let mut fingerprint = serde_json::json!({
        "config": cfg,
        "dataset": root,
        "threads": p.threads,
        "only": a.only,
    });
    if let Some(s) = a.shard {
        fingerprint["shard"] = s.to_string().into();
    }
    let fingerprint = serde_json::to_string_pretty(&fingerprint)?;
    let mut journal = open_journal(&a, &fingerprint)?;
    let todo: Vec<&grid::Variant> = p
        .variants
        .iter()
        .filter(|v| !a.report_only && !journal.has(&v.name))
        .collect();
    if a.report_only && journal.rows.is_empty() {
        bail!(
            "--report-only: study {} has no finished rows yet",
            journal.stamp
        );
    }
    let done = p.variants.iter().filter(|v| journal.has(&v.name)).count();
    if done > 0 {
        eprintln!(
            "resuming {}: {done} of {} variants already done",
            journal.stamp,
            p.variants.len()
        );
    }
    let models_dir = a.out.join("models");
    std::fs::create_dir_all(&models_dir)
        .with_context(|| format!("creating {}", models_dir.display()))?;
    let calib = if todo.iter().any(|v| backends::needs_calibration(&v.quant)) {
        eprintln!(
            "loading {} calibration images from the {} split",
            cfg.quant.calib_images, cfg.data.train_split
        );
        backends::calibration_images(
            &root,
            &cfg.data.train_split,
            cfg.quant.calib_images,
            cfg.seed,
        )?
    } else {
        Vec::new()
    };
    let bar = ProgressBar::new(todo.len() as u64).with_style(
        ProgressStyle::with_template("study [{bar:30}] {pos}/{len} variants  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = Instant::now();
    let env = measure::Env {
        cfg,
        ds: &ds,
        base_model: &cfg.model.path,
        threads: p.threads,
        models_dir: &models_dir,
        reproduce_base: &p.reproduce_base,
        calib: &calib,
    };
    for v in todo {
        let row = measure::variant(&env, &base, v, &|step| {
            bar.set_message(format!("{}: {step}", v.name))
        })?;
        journal.append(&row)?;
        bar.inc(1);
        let line = measure::summary_line(&row);
        bar.suspend(|| eprintln!("{line}"));
    }
    bar.finish_and_clear();
    eprintln!(
        "{} variants in {:.1} s; wrote {} and {}",
        journal.rows.len(),
        start.elapsed().as_secs_f64(),
        journal.csv.display(),
        journal.json.display()
    );
    if !a.no_report {
        let dir = a.out.join(format!("{}_report", journal.stamp));
        let setup = measure::setup(&env, &base, &root);
        let html = measure::write_report(&dir, &setup, &journal.rows, &cfg.report)?;
        eprintln!("wrote {}", html.display());
    }
    Ok(ExitCode::SUCCESS)
}

/// Worker threads: the configuration's, or every core when it says 0.
fn resolve_threads(cfg: &StudyConfig) -> usize {
    match cfg.threads {
        0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
        t => t,
    }
}

/// The base model, the dataset folder and the evaluation split opened for the model's
/// classes.
fn open_inputs(cfg: &StudyConfig, threads: usize) -> Result<(Detector, PathBuf, VocDataset)> {
    let base = load_model(cfg)?;
    let root = data_root(cfg, threads)?;
    let ds = crate::dataset_arg::open_for_model(
        &root,
        &cfg.data.split,
        &base.class_names,
        &cfg.model.path,
    )?;
    Ok((base, root, ds))
}

/// The evaluation dataset's folder: the configured VOC folder, or the synthetic dataset
/// (generated if missing).
fn data_root(cfg: &StudyConfig, threads: usize) -> Result<PathBuf> {
    Ok(match &cfg.data.voc {
        _ if cfg.data.synthetic => ensure_synth(&cfg.data.synth_dir, threads)?,
        Some(v) if v.is_dir() => v.clone(),
        Some(v) => bail!(
            "dataset {} is not there: the built-in evaluation set ships with the source \
             repository (datasets/voc2007); pass --voc DIR, or set data.synthetic = true",
            v.display()
        ),
        None => ensure_synth(&cfg.data.synth_dir, threads)?,
    })
}

/// Writes the report of `journal`'s rows into `<out>/<stamp>_report` (for merged shards:
/// the setup table is read from the configuration, the model and the dataset again).
fn report_for(cfg: &StudyConfig, out: &Path, journal: &Journal) -> Result<PathBuf> {
    let threads = resolve_threads(cfg);
    let (base, root, ds) = open_inputs(cfg, threads)?;
    let models_dir = out.join("models");
    let env = measure::Env {
        cfg,
        ds: &ds,
        base_model: &cfg.model.path,
        threads,
        models_dir: &models_dir,
        reproduce_base: "",
        calib: &[],
    };
    let dir = out.join(format!("{}_report", journal.stamp));
    let setup = measure::setup(&env, &base, &root);
    measure::write_report(&dir, &setup, &journal.rows, &cfg.report)
}

/// A new journal, or with `--resume` the latest one in `--out` with this configuration.
fn open_journal(a: &Args, fingerprint: &str) -> Result<Journal> {
    if a.resume {
        match Journal::latest(&a.out, fingerprint)? {
            Some((j, true)) => return Ok(j),
            Some((j, false)) => bail!(
                "--resume: the latest study in {} ({}) was run with a different \
                 configuration (see {}); drop --resume or use another --out",
                a.out.display(),
                j.stamp,
                j.config.display()
            ),
            None if a.report_only => bail!("--report-only: no study in {}", a.out.display()),
            None => eprintln!(
                "--resume: no earlier study in {}, starting a new one",
                a.out.display()
            ),
        }
    }
    let mut stamp = now_stamp();
    let mut n = 2;
    while a.out.join(format!("{stamp}_study.config.json")).exists() {
        stamp = format!("{}-{n}", now_stamp());
        n += 1;
    }
    Journal::create(&a.out, &stamp, fingerprint)
}
