//! `slimdet train`: trains MobileNetV2-SSD-Lite on a VOC-layout dataset with
//! pytorch-ssd's recipe (MultiboxLoss, SGD with momentum, multistep or cosine schedule,
//! `TrainAugmentation`), checkpointing every epoch. Ctrl-C stops after the current step
//! with a checkpoint; `--resume` continues exactly where the checkpoint left off.

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use slimdet_train::schedule::{LrPolicy, LrSchedule};
use slimdet_train::{Precision, Progress, TrainConfig};

use crate::model_arg::ThreadArgs;

#[path = "train_qat.rs"]
mod qat;

/// Options of `slimdet train`.
#[derive(clap::Args)]
pub struct Args {
    /// VOC year folder (or a VOCdevkit holding one), e.g. a `slimdet dataset synth` folder.
    #[arg(long)]
    pub voc: PathBuf,
    /// Training split.
    #[arg(long, default_value = "trainval")]
    pub split: String,
    /// Validation split (mAP every --val-every epochs; the best weights are kept).
    #[arg(long, default_value = "test")]
    pub val_split: String,
    /// Do not validate.
    #[arg(long)]
    pub no_val: bool,
    /// Validate every this many epochs (and after the last).
    #[arg(long, default_value_t = 5)]
    pub val_every: usize,
    /// Validate on the first N images of the validation split only.
    #[arg(long)]
    pub val_limit: Option<usize>,
    /// Architecture: a pytorch-ssd network (`--net` name).
    #[arg(long, default_value = "mb2-ssd-lite", value_parser = clap::builder::PossibleValuesParser::new(slimdet_models::arch::PYTORCH_SSD_NETS))]
    pub arch: String,
    /// Width multiplier of mb2-ssd-lite: 1.0, 0.75, 0.5 or 0.25.
    #[arg(long, default_value_t = 1.0)]
    pub width: f64,
    /// Total epochs (also when resuming).
    #[arg(long, default_value_t = 120)]
    pub epochs: usize,
    /// Images per batch (≥ 2).
    #[arg(long, default_value_t = 32)]
    pub batch: usize,
    /// Base learning rate.
    #[arg(long, default_value_t = 1e-3)]
    pub lr: f64,
    /// LR schedule: multi-step, cosine or constant.
    #[arg(long, default_value = "multi-step", value_parser = ["multi-step", "cosine", "constant"])]
    pub scheduler: String,
    /// Multi-step milestones, in epochs.
    #[arg(long, default_value = "80,100", value_delimiter = ',')]
    pub milestones: Vec<usize>,
    /// Multi-step factor.
    #[arg(long, default_value_t = 0.1)]
    pub gamma: f64,
    /// Cosine period in epochs (default: --epochs).
    #[arg(long)]
    pub t_max: Option<usize>,
    /// Linear warm-up, in epochs.
    #[arg(long, default_value_t = 0)]
    pub warmup_epochs: usize,
    /// SGD momentum.
    #[arg(long, default_value_t = 0.9)]
    pub momentum: f32,
    /// Weight decay.
    #[arg(long, default_value_t = 5e-4)]
    pub weight_decay: f32,
    /// Clip gradients to this global L2 norm.
    #[arg(long)]
    pub clip_grad: Option<f64>,
    /// Initial weights (.pth or .safetensors: a full SSD, one with other classes, or an
    /// ImageNet MobileNetV2; or a TF Object Detection API SSDLite-MobileNetV2 frozen graph
    /// .pb, whose backbone, extras and head depthwise layers are mapped); default:
    /// PyTorch's random initialisation from --seed. What is not loaded is listed.
    #[arg(long)]
    pub init: Option<PathBuf>,
    /// Do not update the backbone (`base_net.*`).
    #[arg(long)]
    pub freeze_backbone: bool,
    /// Output folder: checkpoint/, best.safetensors, final.safetensors, labels.txt.
    #[arg(long, short = 'o', default_value = "runs/train")]
    pub out: PathBuf,
    /// Continue from the checkpoint in --out (or from --resume-from).
    #[arg(long)]
    pub resume: bool,
    /// Continue from this checkpoint (state.json, its folder or an output folder).
    #[arg(long)]
    pub resume_from: Option<PathBuf>,
    /// With --resume: continue on this run's LR schedule and epoch count even if the
    /// checkpoint's differ.
    #[arg(long)]
    pub reschedule: bool,
    /// Arithmetic of the convolution products: fp32, or bf16 (bf16 operands, f32 sums,
    /// f32 weights, optimiser, batch norm and loss; needs AVX512-BF16; not with --qat).
    #[arg(long, default_value = "fp32")]
    pub precision: Precision,
    /// Seed of the initialisation, shuffles and augmentation.
    #[arg(long, default_value_t = 0)]
    pub seed: u64,
    /// Train on at most this many images of the split.
    #[arg(long)]
    pub train_limit: Option<usize>,
    /// Stop (with a checkpoint) after this many optimiser steps in total.
    #[arg(long)]
    pub max_steps: Option<usize>,
    /// Train without augmentation (resize and normalise only).
    #[arg(long)]
    pub no_augment: bool,
    /// Print the final report as JSON on stdout.
    #[arg(long)]
    pub json: bool,
    /// Quantization-aware training: calibrate the f32 --init model (static int8,
    /// per-channel weights), fine-tune its BN-folded weights with fake quantization and the
    /// straight-through estimator, and write the int8 model to OUT/qat-int8.safetensors.
    #[arg(long, requires = "init", conflicts_with_all = ["resume", "resume_from"])]
    pub qat: bool,
    /// With --qat: calibration images (a seeded subset of --split) for the activation ranges.
    #[arg(long, default_value_t = 100)]
    pub calib_images: usize,
    /// With --qat: activation range observer (minmax, moving-average, percentile[:P],
    /// entropy, mse).
    #[arg(long, default_value = "mse")]
    pub observer: String,
    #[command(flatten)]
    pub threads: ThreadArgs,
}

fn config(a: &Args) -> Result<TrainConfig> {
    if a.epochs == 0 {
        bail!("--epochs 0: nothing to train");
    }
    if a.qat && a.precision != Precision::Fp32 {
        bail!(
            "--qat trains in fp32 (fake quantization); drop --precision {}",
            a.precision
        );
    }
    let policy = match a.scheduler.as_str() {
        "cosine" => LrPolicy::Cosine {
            t_max: a.t_max.unwrap_or(a.epochs),
        },
        "constant" => LrPolicy::Constant,
        _ => LrPolicy::MultiStep {
            milestones: a.milestones.clone(),
            gamma: a.gamma,
        },
    };
    let mut c = TrainConfig::new(&a.voc, &a.out);
    c.split = a.split.clone();
    c.val_split = (!a.no_val).then(|| a.val_split.clone());
    c.val_every = if a.no_val { 0 } else { a.val_every };
    c.val_limit = a.val_limit;
    c.arch = a.arch.clone();
    c.width_mult = a.width;
    c.epochs = a.epochs;
    c.batch = a.batch;
    c.schedule = LrSchedule {
        base_lr: a.lr,
        policy,
        warmup_epochs: a.warmup_epochs,
    };
    c.momentum = a.momentum;
    c.weight_decay = a.weight_decay;
    c.clip_grad_norm = a.clip_grad;
    c.init = a.init.clone();
    c.freeze_backbone = a.freeze_backbone;
    c.threads = a.threads.get();
    c.seed = a.seed;
    c.train_limit = a.train_limit;
    c.max_steps = a.max_steps;
    c.augment = !a.no_augment;
    c.reschedule = a.reschedule;
    c.precision = a.precision;
    c.resume = match (&a.resume_from, a.resume) {
        (Some(p), _) => Some(p.clone()),
        (None, true) => Some(a.out.clone()),
        (None, false) => None,
    };
    if let Some(r) = &c.resume {
        let s = slimdet_train::checkpoint::resolve(r);
        if !s.is_file() {
            bail!(
                "--resume: no checkpoint at {} (expected {})",
                r.display(),
                s.display()
            );
        }
    }
    c.check().context("checking the training options")?;
    Ok(c)
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let mut cfg = config(&a)?;
    let stop = Arc::new(AtomicBool::new(false));
    {
        let stop = stop.clone();
        // Without a handler (e.g. one already installed) Ctrl-C simply kills the run; the
        // last epoch's checkpoint is still complete.
        let _ = ctrlc::set_handler(move || {
            if stop.swap(true, Ordering::SeqCst) {
                std::process::exit(130);
            }
            eprintln!("\nstopping after this step (Ctrl-C again to abort)...");
        });
    }
    cfg.stop = Some(stop.clone());
    let bar = ProgressBar::new(0).with_style(
        ProgressStyle::with_template("epoch {prefix} {bar:30} {pos}/{len} loss {msg} eta {eta}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    // Without a terminal (a log file) the bar is hidden: lines go to stderr instead,
    // with a step line every 10 steps.
    let hidden = bar.is_hidden();
    let say = |line: String| {
        if hidden {
            eprintln!("{line}");
        } else {
            bar.println(line);
        }
    };
    let mut epochs = 0;
    let mut rate = 0.0f64;
    let mut cb = |p: &Progress| match p {
        Progress::Start {
            images,
            skipped,
            batches_per_epoch,
            epoch,
            batch,
            epochs: total,
        } => {
            epochs = *total;
            say(format!(
                "training on {images} images ({skipped} skipped), {batches_per_epoch} batches per epoch, from epoch {epoch} batch {batch}"
            ));
            bar.set_length(*batches_per_epoch as u64);
            bar.set_position(*batch as u64);
            bar.set_prefix(format!("{}/{total}", epoch + 1));
        }
        Progress::Step(s) => {
            let ips = s.images as f64 / s.seconds.max(1e-9);
            rate = if rate == 0.0 {
                ips
            } else {
                0.9 * rate + 0.1 * ips
            };
            bar.set_prefix(format!("{}/{epochs}", s.epoch + 1));
            bar.set_position(s.batch as u64 + 1);
            let msg = format!(
                "{:.4} (reg {:.4} cls {:.4}) lr {:.2e} {:.1} img/s",
                s.loss.total(),
                s.loss.regression,
                s.loss.classification,
                s.lr,
                rate
            );
            if hidden && s.global_step % 10 == 0 {
                eprintln!(
                    "epoch {} batch {}/{} step {} loss {msg}",
                    s.epoch,
                    s.batch + 1,
                    s.batches,
                    s.global_step
                );
            }
            bar.set_message(msg);
        }
        Progress::EpochEnd(r) => {
            say(format!(
                "epoch {:>4}  loss {:.4}  reg {:.4}  cls {:.4}  lr {:.2e}{}",
                r.epoch,
                r.loss,
                r.regression,
                r.classification,
                r.lr,
                r.val_map
                    .map(|m| format!("  val mAP {m:.4}"))
                    .unwrap_or_default()
            ));
            bar.set_position(0);
        }
        Progress::Init { path, report } => {
            say(format!(
                "--init {}: {} parameters loaded; left as initialised: {}",
                path.display(),
                report.loaded,
                init_leftovers(report)
            ));
        }
        Progress::Validated { .. } | Progress::Checkpoint(_) => {}
    };
    if a.qat {
        let r = qat::run(&a, &cfg, &mut cb);
        bar.finish_and_clear();
        return r;
    }
    let report = slimdet_train::train(&cfg, &mut cb)
        .with_context(|| format!("training on {}", cfg.voc_root.display()))?;
    bar.finish_and_clear();
    if report.stopped {
        eprintln!(
            "stopped at step {}; continue with --resume (checkpoint {})",
            report.global_step,
            report.checkpoint.display()
        );
    }
    if let Some((e, m)) = report.best {
        eprintln!("best val mAP {m:.4} at epoch {e}");
    }
    if let Some(p) = &report.best_weights {
        eprintln!("best weights: {}", p.display());
    }
    if let Some(p) = &report.final_weights {
        eprintln!("final weights: {}", p.display());
    }
    eprintln!("{:.2} images/s", report.images_per_sec);
    if a.json {
        let v = serde_json::json!({
            "global_step": report.global_step,
            "stopped": report.stopped,
            "images_per_sec": report.images_per_sec,
            "precision": a.precision.name(),
            "best": report.best.map(|(e, m)| serde_json::json!({"epoch": e, "map": m})),
            "epochs": report.epochs.iter().map(|r| serde_json::json!({
                "epoch": r.epoch, "loss": r.loss, "regression": r.regression,
                "classification": r.classification, "lr": r.lr, "val_map": r.val_map,
            })).collect::<Vec<_>>(),
            "checkpoint": report.checkpoint,
            "final": report.final_weights,
            "best_weights": report.best_weights,
        });
        println!("{v:#}");
    }
    Ok(ExitCode::SUCCESS)
}

/// The parameters `--init` did not set, by module (`extras.3.conv.6 (weight), ...`), with
/// shape mismatches marked.
fn init_leftovers(r: &slimdet_train::init::InitReport) -> String {
    let mut modules: Vec<String> = Vec::new();
    let tagged = r
        .missing
        .iter()
        .map(|k| (k, ""))
        .chain(r.shape_mismatch.iter().map(|k| (k, " (shape differs)")));
    for (key, tag) in tagged {
        let module = key.rsplit_once('.').map_or(key.as_str(), |(m, _)| m);
        let entry = format!("{module}{tag}");
        if !modules.contains(&entry) {
            modules.push(entry);
        }
    }
    if modules.is_empty() {
        "nothing".to_string()
    } else {
        modules.join(", ")
    }
}
