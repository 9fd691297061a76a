//! Quantization-aware training (`slimdet train --qat`): fine-tunes a calibrated static
//! int8 model with fake quantization, then exports the real int8 model.
//!
//! - Starting point: a [`QuantizedDetector`] from [`slimdet_quant::quantize`] (static mode), i.e.
//!   BN already folded into the convolutions, activations fused, activation ranges
//!   calibrated by the chosen observer. QAT fine-tunes the **folded** weights (the BN
//!   parameters no longer exist as such) and keeps the calibrated activation ranges fixed.
//! - Forward: [`QatNet`] runs the prepared graph with per-channel (or per-tensor, as
//!   calibrated) symmetric int8 weights re-quantized from the f32 shadow weights at every
//!   step, and every activation the integer engine stores as codes fake-quantized with its
//!   calibrated scale and zero point, activation clamps included.
//! - Backward: the straight-through estimator; the gradient passes where the value was
//!   inside the clamp range and is zero outside ([`fake`]).
//! - Loop: pytorch-ssd's MultiboxLoss, SGD with momentum and weight decay, the LR
//!   schedule, the training augmentation, the same batches as `slimdet train` for a given
//!   seed (the `slimdet-train` data pipeline). No checkpoints or resume: runs are short.
//! - Export: [`QatNet::export`] quantizes the trained weights with the calibrated ranges;
//!   the result is saved like any `slimdet quantize` output.

pub mod exec;
pub mod fake;

use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use slimdet_data::voc::VocDataset;
use slimdet_models::Detector;
use slimdet_quant::{QuantError, QuantizedDetector};

pub use exec::{QatNet, QatTape};

use crate::checkpoint::EpochRecord;
use crate::data::{Prefetcher, SampleSpec, TrainSet, epoch_order};
use crate::error::{Result, TrainError};
use crate::loss::MultiboxLoss;
use crate::optim::{Sgd, clip_grad_norm};
use crate::{Progress, StepInfo, TrainConfig};

/// What a QAT run did.
#[derive(Clone, Debug, PartialEq)]
pub struct QatReport {
    /// Total loss of every step.
    pub step_losses: Vec<f32>,
    /// Per-epoch summaries (no validation).
    pub epochs: Vec<EpochRecord>,
    /// Optimiser steps done.
    pub global_step: usize,
    /// True when stopped by the stop flag or `max_steps` before the last epoch ended.
    pub stopped: bool,
    /// Training images per second.
    pub images_per_sec: f64,
}

/// Fine-tunes `calibrated` (a static model quantized from `det`) on `config.split` of
/// `config.voc_root` with fake quantization and returns the exported int8 model.
///
/// Uses `epochs`, `batch`, `schedule`, `momentum`, `weight_decay`, `clip_grad_norm`,
/// `freeze_backbone`, `threads`, `seed`, `train_limit`, `max_steps`, `augment` and `stop`
/// of `config`; validation, checkpoints, `init` and `resume` do not apply.
///
/// # Errors
/// A non-static model, classes that differ from the dataset's, an empty split, or a
/// training failure (non-finite loss included).
pub fn qat_train(
    det: &Detector,
    calibrated: QuantizedDetector,
    config: &TrainConfig,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(QuantizedDetector, QatReport)> {
    config.check()?;
    let ds = VocDataset::open(&config.voc_root, &config.split, None)?;
    // A model of fewer classes (a person detector on VOC) trains on its classes by name.
    let ds = if ds.class_names().len() == det.class_names.len() {
        ds
    } else {
        ds.for_classes(&det.class_names)?
    };
    if ds.class_names() != det.class_names.as_slice() {
        return Err(QuantError::InvalidOption {
            option: "dataset classes",
            value: ds.class_names().join(","),
            expected: "the model's classes",
        }
        .into());
    }
    let set = Arc::new(TrainSet::open(ds, config.train_limit)?);
    let mut net = QatNet::new(det, calibrated, config.threads)?;
    let spec = Arc::new(SampleSpec::for_detector(det, config.augment, config.seed));
    let loss_fn = MultiboxLoss::for_detector(det);
    let mut opt = Sgd::new(config.momentum, config.weight_decay);
    let n = set.len();
    let ranges = set.batches(config.batch, &config.split)?;
    let per_epoch = ranges.len();
    progress(&Progress::Start {
        images: n,
        skipped: set.skipped,
        batches_per_epoch: per_epoch,
        epoch: 0,
        batch: 0,
        epochs: config.epochs,
    });
    let mut report = QatReport {
        step_losses: Vec::new(),
        epochs: Vec::new(),
        global_step: 0,
        stopped: false,
        images_per_sec: 0.0,
    };
    let (mut images, mut seconds) = (0usize, 0f64);
    'epochs: for epoch in 0..config.epochs {
        let order = epoch_order(n, config.seed, epoch);
        let batches: Vec<Vec<usize>> = ranges.iter().map(|r| order[r.clone()].to_vec()).collect();
        let mut loader = Prefetcher::start(set.clone(), spec.clone(), epoch, batches, 1)?;
        let mut sums = [0f64; 4];
        let mut lr = config.schedule.base_lr;
        for b in 0..per_epoch {
            let t0 = Instant::now();
            let batch = loader
                .next_batch()
                .ok_or_else(|| TrainError::Config("the batch loader stopped early".into()))??;
            let bn = batch.images.shape()[0];
            lr = config.schedule.lr(epoch, report.global_step, per_epoch);
            let tape = net.forward(&batch.images)?;
            let (lv, _, logits) = output(&tape, "logits")?;
            let (locv, _, locs) = output(&tape, "locations")?;
            let out = loss_fn.compute(bn, logits, locs, &batch.labels, &batch.locations)?;
            let total = out.value.total();
            if !total.is_finite() {
                return Err(TrainError::NonFinite {
                    value: total,
                    epoch,
                    step: report.global_step,
                });
            }
            let seeds = [
                (lv, out.d_logits.as_slice()),
                (locv, out.d_locations.as_slice()),
            ];
            let mut grads = net.backward(&tape, &seeds)?;
            drop(tape);
            if config.freeze_backbone {
                grads.params.retain(|k, _| !k.starts_with("base_net."));
            }
            if let Some(max) = config.clip_grad_norm {
                clip_grad_norm(&mut grads, max);
            }
            opt.step(&mut net.graph, &grads, lr as f32);
            report.global_step += 1;
            report.step_losses.push(total);
            sums[0] += f64::from(total);
            sums[1] += f64::from(out.value.regression);
            sums[2] += f64::from(out.value.classification);
            sums[3] += 1.0;
            let dt = t0.elapsed().as_secs_f64();
            images += bn;
            seconds += dt;
            progress(&Progress::Step(StepInfo {
                epoch,
                batch: b,
                batches: per_epoch,
                global_step: report.global_step,
                loss: out.value,
                lr,
                images: bn,
                seconds: dt,
            }));
            let stop = config
                .stop
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst));
            if stop || config.max_steps.is_some_and(|m| report.global_step >= m) {
                report.stopped = b + 1 < per_epoch || epoch + 1 < config.epochs;
                push_epoch(&mut report, epoch, sums, lr, progress);
                break 'epochs;
            }
        }
        push_epoch(&mut report, epoch, sums, lr, progress);
    }
    report.images_per_sec = if seconds > 0.0 {
        images as f64 / seconds
    } else {
        0.0
    };
    Ok((net.export(), report))
}

fn push_epoch(
    report: &mut QatReport,
    epoch: usize,
    sums: [f64; 4],
    lr: f64,
    progress: &mut dyn FnMut(&Progress),
) {
    let cnt = sums[3].max(1.0);
    let rec = EpochRecord {
        epoch,
        loss: sums[0] / cnt,
        regression: sums[1] / cnt,
        classification: sums[2] / cnt,
        lr,
        val_map: None,
    };
    report.epochs.push(rec.clone());
    progress(&Progress::EpochEnd(rec));
}

fn output<'a>(tape: &'a QatTape, name: &str) -> Result<(usize, &'a [usize], &'a [f32])> {
    tape.output(name).ok_or_else(|| {
        TrainError::from(QuantError::Unsupported {
            layer: name.to_string(),
            op: "missing SSD output",
        })
    })
}
