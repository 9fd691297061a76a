//! Turning a study [`Variant`] into a model: pruning through `slimdet-prune`, fine-tuning
//! through `slimdet-train` (pruned weights held at zero by masks), quantization through
//! `slimdet-quant` (in that order). Methods and modes whose backend is not part of this
//! build are refused up front by [`check_available`], with the config key to change, and
//! never approximated.

use std::path::Path;

use anyhow::{Context, Result, bail};
use slimdet_data::RgbImage;
use slimdet_models::Detector;
use slimdet_prune::{
    Criterion, Method, Scope, StructuredOptions, UnstructuredOptions, prune_structured,
    prune_unstructured,
};
use slimdet_quant::{Granularity, Mode, Observer, QuantOptions, QuantizedDetector, quantize};
use slimdet_train::schedule::{LrPolicy, LrSchedule};
use slimdet_train::{Progress, TrainConfig, TrainStart, WeightMasks, train_from};

use super::config::StudyConfig;
use super::grid::Variant;

/// Whether pruning method `m` is built in.
pub fn prune_available(m: &str) -> bool {
    unstructured(m).is_some() || structured(m).is_some()
}

/// The unstructured method of a study method name.
fn unstructured(m: &str) -> Option<Method> {
    match m {
        "random" => Some(Method::Random),
        "l1" => Some(Method::L1),
        _ => None,
    }
}

/// The structured (whole-channel) criterion of a study method name.
fn structured(m: &str) -> Option<Criterion> {
    match m {
        "filter-l1" => Some(Criterion::FilterL1),
        "filter-l2" => Some(Criterion::FilterL2),
        "bn-scale" => Some(Criterion::BnScale),
        "random-channel" => Some(Criterion::Random),
        _ => None,
    }
}

/// Whether precision mode `q` is built in.
pub fn quant_available(q: &str) -> bool {
    q == "fp32" || quant_options(q, &StudyConfig::default()).is_some()
}

/// Whether precision mode `q` calibrates activations (static int8).
pub fn needs_calibration(q: &str) -> bool {
    q.starts_with("int8-")
}

/// The quantizer's options for study mode `q` (`None` for `fp32` and unknown modes).
pub fn quant_options(q: &str, cfg: &StudyConfig) -> Option<QuantOptions> {
    let base = QuantOptions {
        calib_images: cfg.quant.calib_images,
        seed: cfg.seed,
        ..QuantOptions::default()
    };
    match q {
        "fp16" => Some(QuantOptions {
            mode: Mode::Fp16,
            ..base
        }),
        "dynamic-int8" => Some(QuantOptions {
            mode: Mode::Dynamic,
            ..base
        }),
        _ => {
            let mut parts = q.strip_prefix("int8-")?.splitn(2, '-');
            let granularity = match parts.next()? {
                "tensor" => Granularity::Tensor,
                "channel" => Granularity::Channel,
                _ => return None,
            };
            let observer = match parts.next()? {
                "minmax" => Observer::MinMax,
                "entropy" => Observer::Entropy,
                "mse" => Observer::Mse,
                "percentile" => Observer::Percentile(99.99),
                _ => return None,
            };
            Some(QuantOptions {
                mode: Mode::Static,
                granularity,
                observer,
                ..base
            })
        }
    }
}

/// Whether fine-tuned variants can be built.
pub fn finetune_available() -> bool {
    true
}

/// Fails, naming the config key, if `cfg` asks for a method or mode this build lacks.
pub fn check_available(cfg: &StudyConfig) -> Result<()> {
    let pairs = cfg.combos.prune.iter().chain(&cfg.finetune.variants);
    for m in cfg.prune.methods.iter().chain(pairs.map(|(m, _)| m)) {
        if !prune_available(m) {
            bail!(
                "pruning method {m:?} is not available in this build; remove it from \
                 prune.methods / combos.prune / finetune.variants (available: {})",
                available_list(&super::config::PRUNE_METHODS, prune_available)
            );
        }
    }
    for q in cfg.quant.modes.iter().chain(&cfg.combos.quant) {
        if !quant_available(q) {
            bail!(
                "quantization mode {q:?} is not available in this build; remove it from \
                 quant.modes / combos.quant (available: {})",
                available_list(&super::config::QUANT_MODES, quant_available)
            );
        }
    }
    if !cfg.finetune.variants.is_empty() && !finetune_available() {
        bail!("fine-tuning is not available in this build; leave finetune.variants empty");
    }
    Ok(())
}

fn available_list(all: &[&str], ok: fn(&str) -> bool) -> String {
    let v: Vec<&str> = all.iter().copied().filter(|m| ok(m)).collect();
    if v.is_empty() {
        "none".into()
    } else {
        v.join(", ")
    }
}

/// Removes what this build cannot run from a preset (used for `--quick` only; a user's
/// config is checked by [`check_available`] instead). Returns the names removed.
pub fn drop_unavailable(cfg: &mut StudyConfig) -> Vec<String> {
    let mut dropped = Vec::new();
    cfg.prune.methods.retain(|m| {
        prune_available(m) || {
            dropped.push(m.clone());
            false
        }
    });
    cfg.quant.modes.retain(|q| {
        quant_available(q) || {
            dropped.push(q.clone());
            false
        }
    });
    dropped
}

/// Where fine-tuning reads its data and how many threads it uses; the calibration images.
pub struct TrainEnv<'a> {
    /// VOC year folder holding the training split.
    pub root: &'a Path,
    /// Split fine-tuning trains on (`data.train_split`).
    pub split: &'a str,
    /// Worker threads.
    pub threads: usize,
    /// Calibration images of static int8 (a seeded subset of the training split).
    pub calib: &'a [RgbImage],
}

/// A built variant: the model to evaluate and, when quantized, what is saved.
pub struct Built {
    /// Runs the variant (a quantized model's predictor uses its own engine).
    pub det: Detector,
    /// The quantized model, saved in the quantized file format.
    pub quant: Option<QuantizedDetector>,
}

/// Loads `n` calibration images: a seeded subset of split `split` of `root`.
pub fn calibration_images(root: &Path, split: &str, n: usize, seed: u64) -> Result<Vec<RgbImage>> {
    let ds = slimdet_data::voc::VocDataset::open(root, split, None).with_context(|| {
        format!(
            "opening the {split} split of {} for calibration",
            root.display()
        )
    })?;
    if ds.is_empty() {
        bail!(
            "static int8 needs calibration images but {} has an empty {split} split",
            root.display()
        );
    }
    slimdet_quant::calibration_subset(ds.len(), n, seed)
        .into_iter()
        .map(|i| {
            let id = &ds.ids()[i];
            ds.load_image(id)
                .with_context(|| format!("reading calibration image {id}"))
        })
        .collect()
}

/// Builds variant `v` from the baseline model; `step` is told what is running.
pub fn build(
    base: &Detector,
    v: &Variant,
    cfg: &StudyConfig,
    train: &TrainEnv,
    step: &(dyn Fn(&str) + Sync),
) -> Result<Built> {
    let mut det = base.clone();
    if let Some((method, level)) = &v.prune {
        let what = || format!("pruning {}", v.name);
        if let Some(method) = unstructured(method) {
            let opts = UnstructuredOptions {
                method,
                amount: *level,
                scope: if cfg.prune.scope == "global" {
                    Scope::Global
                } else {
                    Scope::Layer
                },
                include_bn: false,
                exclude: cfg.prune.exclude.clone(),
                seed: cfg.seed,
            };
            prune_unstructured(&mut det, &opts).with_context(what)?;
        } else if let Some(criterion) = structured(method) {
            let opts = StructuredOptions {
                criterion,
                amount: *level,
                exclude: cfg.prune.exclude.clone(),
                channel_multiple: cfg.prune.channel_multiple,
                seed: cfg.seed,
            };
            det = prune_structured(&det, &opts).with_context(what)?;
        } else {
            bail!("pruning method {method:?} is not available in this build");
        }
    }
    if v.finetuned {
        det = finetune(det, cfg, train, step).with_context(|| format!("fine-tuning {}", v.name))?;
    }
    if v.quant == "fp32" {
        return Ok(Built { det, quant: None });
    }
    let Some(opts) = quant_options(&v.quant, cfg) else {
        bail!(
            "quantization mode {:?} is not available in this build",
            v.quant
        );
    };
    step("quantize");
    let calib: &[RgbImage] = if needs_calibration(&v.quant) {
        train.calib
    } else {
        &[]
    };
    let q = quantize(&det, calib, &opts).with_context(|| format!("quantizing {}", v.name))?;
    Ok(Built {
        det: q.to_detector(),
        quant: Some(q),
    })
}

/// Fine-tunes `det` on the training split (`data.train_split`) for `finetune.epochs` epochs (cosine
/// schedule from `finetune.lr`, no validation), keeping its zero weights at zero.
fn finetune(
    det: Detector,
    cfg: &StudyConfig,
    train: &TrainEnv,
    step: &(dyn Fn(&str) + Sync),
) -> Result<Detector> {
    let f = &cfg.finetune;
    let tmp = tempfile::tempdir().context("creating a folder for fine-tuning checkpoints")?;
    let mut tc = TrainConfig::new(train.root, tmp.path());
    tc.split = train.split.to_string();
    tc.epochs = f.epochs;
    tc.batch = f.batch;
    tc.schedule = LrSchedule {
        base_lr: f.lr,
        policy: LrPolicy::Cosine { t_max: f.epochs },
        warmup_epochs: 0,
    };
    tc.val_split = None;
    tc.val_every = 0;
    tc.threads = train.threads;
    tc.seed = cfg.seed;
    tc.train_limit = (f.train_limit > 0).then_some(f.train_limit);
    tc.precision = f.precision.parse().map_err(anyhow::Error::msg)?;
    let masks = WeightMasks::from_zeros(&det.graph);
    let start = TrainStart {
        model: Some(det),
        masks: Some(masks),
    };
    let (_, tuned) = train_from(&tc, start, &mut |p| {
        if let Progress::Step(s) = p {
            step(&format!(
                "fine-tune epoch {}/{} batch {}/{}",
                s.epoch + 1,
                f.epochs,
                s.batch + 1,
                s.batches
            ));
        }
    })?;
    Ok(tuned)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::commands::study::config::{PRUNE_METHODS, QUANT_MODES};

    #[test]
    fn unavailable_methods_are_config_errors() {
        for m in PRUNE_METHODS {
            let mut c = StudyConfig::quick();
            c.prune.methods = vec![m.to_string()];
            c.quant.modes.clear();
            let r = check_available(&c);
            assert_eq!(r.is_ok(), prune_available(m), "{m}");
            if let Err(e) = r {
                assert!(e.to_string().contains("not available in this build"), "{e}");
            }
        }
        for q in QUANT_MODES {
            let mut c = StudyConfig::quick();
            c.prune.methods.clear();
            c.quant.modes = vec![q.to_string()];
            assert_eq!(check_available(&c).is_ok(), quant_available(q), "{q}");
        }
        let mut c = StudyConfig::quick();
        drop_unavailable(&mut c);
        assert!(check_available(&c).is_ok());
    }
}
