//! `slimdet train --qat`: quantization-aware fine-tuning of a calibrated int8 model (see
//! `slimdet_train::qat`), written in the format of `slimdet quantize`.

use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use slimdet_data::voc::VocDataset;
use slimdet_models::Detector;
use slimdet_quant::{Observer, QuantOptions, calibration_subset, quantize};
use slimdet_train::qat::qat_train;
use slimdet_train::{Progress, TrainConfig};

use super::Args;

/// Calibrates `--init`, runs QAT as `cfg` says and writes `OUT/qat-int8.safetensors`.
pub fn run(a: &Args, cfg: &TrainConfig, cb: &mut dyn FnMut(&Progress)) -> Result<ExitCode> {
    let Some(init) = &a.init else {
        bail!("--qat needs the f32 model to start from: pass --init MODEL");
    };
    if a.calib_images == 0 {
        bail!("--calib-images must be at least 1");
    }
    let observer: Observer = a.observer.parse()?;
    let det =
        Detector::load(init, None).with_context(|| format!("loading model {}", init.display()))?;
    let ds = VocDataset::open(&cfg.voc_root, &cfg.split, None)
        .with_context(|| format!("opening dataset {}", cfg.voc_root.display()))?;
    if ds.is_empty() {
        bail!(
            "dataset {} ({} split) has no images to calibrate on",
            cfg.voc_root.display(),
            cfg.split
        );
    }
    let calib = calibration_subset(ds.len(), a.calib_images, cfg.seed)
        .into_iter()
        .map(|i| {
            let id = &ds.ids()[i];
            ds.load_image(id).with_context(|| {
                format!("loading calibration image {}", ds.image_path(id).display())
            })
        })
        .collect::<Result<Vec<_>>>()?;
    let opts = QuantOptions {
        observer,
        calib_images: a.calib_images,
        seed: cfg.seed,
        ..QuantOptions::default()
    };
    let q0 =
        quantize(&det, &calib, &opts).with_context(|| format!("calibrating {}", init.display()))?;
    eprintln!(
        "calibrated {} on {} images ({} observer): {} int8 layers",
        init.display(),
        calib.len(),
        q0.observer,
        q0.layers.len()
    );
    let (q, report) = qat_train(&det, q0, cfg, cb)
        .with_context(|| format!("quantization-aware training on {}", cfg.voc_root.display()))?;
    std::fs::create_dir_all(&cfg.out_dir)
        .with_context(|| format!("creating {}", cfg.out_dir.display()))?;
    let out = cfg.out_dir.join("qat-int8.safetensors");
    q.save(&out)
        .with_context(|| format!("writing {}", out.display()))?;
    if report.stopped {
        eprintln!("stopped at step {}", report.global_step);
    }
    eprintln!("{:.2} images/s", report.images_per_sec);
    eprintln!("int8 model: {}", out.display());
    if a.json {
        let v = serde_json::json!({
            "global_step": report.global_step,
            "stopped": report.stopped,
            "images_per_sec": report.images_per_sec,
            "epochs": report.epochs.iter().map(|r| serde_json::json!({
                "epoch": r.epoch, "loss": r.loss, "regression": r.regression,
                "classification": r.classification, "lr": r.lr,
            })).collect::<Vec<_>>(),
            "int8": out,
        });
        println!("{v:#}");
    }
    Ok(ExitCode::SUCCESS)
}
