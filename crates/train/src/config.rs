//! What a training run is told ([`TrainConfig`]), what it reports while running
//! ([`Progress`]) and what it returns ([`TrainReport`]).

use std::path::PathBuf;
use std::sync::Arc;
use std::sync::atomic::AtomicBool;

use crate::error::{Result, TrainError};
use crate::loss::LossValue;
use crate::schedule::{LrPolicy, LrSchedule};

/// Arithmetic of a training run's convolution products (see the crate docs, "Mixed
/// precision", for the list of what runs in bf16).
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub enum Precision {
    /// Everything in f32.
    #[default]
    Fp32,
    /// Dense-convolution products with bf16 operands and f32 accumulation; weights,
    /// optimiser state, batch norm, the loss and every other op stay f32.
    Bf16,
}

impl Precision {
    /// The option's spelling (`fp32`, `bf16`).
    pub fn name(self) -> &'static str {
        match self {
            Self::Fp32 => "fp32",
            Self::Bf16 => "bf16",
        }
    }
}

impl std::fmt::Display for Precision {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(self.name())
    }
}

impl std::str::FromStr for Precision {
    type Err = String;

    fn from_str(s: &str) -> std::result::Result<Self, String> {
        match s {
            "fp32" => Ok(Self::Fp32),
            "bf16" => Ok(Self::Bf16),
            _ => Err(format!("unknown precision `{s}` (fp32 or bf16)")),
        }
    }
}

/// A training run of MobileNetV2-SSD-Lite on a VOC split.
#[derive(Clone, Debug)]
pub struct TrainConfig {
    /// VOC year folder (or a VOCdevkit holding one).
    pub voc_root: PathBuf,
    /// Training split (`trainval`).
    pub split: String,
    /// Validation split (`test`); `None`: no validation.
    pub val_split: Option<String>,
    /// The graph builder of the network to train when no model is given
    /// (`mb2-ssd-lite`; see `slimdet_models::Arch::named`).
    pub arch: String,
    /// Width multiplier (1.0; 0.75, 0.5 and 0.25 also build).
    pub width_mult: f64,
    /// Epochs to train (the total, also when resuming).
    pub epochs: usize,
    /// Images per batch (≥ 2: training-mode BN on the 1x1 extras needs two images).
    pub batch: usize,
    /// Learning-rate schedule.
    pub schedule: LrSchedule,
    /// SGD momentum (0.9).
    pub momentum: f32,
    /// Weight decay (5e-4).
    pub weight_decay: f32,
    /// Clip gradients to this global L2 norm.
    pub clip_grad_norm: Option<f64>,
    /// BN running-statistics momentum (PyTorch's 0.1).
    pub bn_momentum: f32,
    /// Initial weights (any compatible `.pth`/`.safetensors`); default: PyTorch init.
    pub init: Option<PathBuf>,
    /// No updates to `base_net.*` (its BN statistics still update, as in PyTorch).
    pub freeze_backbone: bool,
    /// Compute threads (also loader threads).
    pub threads: usize,
    /// Seed of every random stream.
    pub seed: u64,
    /// Output directory: `checkpoint/`, `best.safetensors`, `final.safetensors`,
    /// `labels.txt`.
    pub out_dir: PathBuf,
    /// Continue from this checkpoint (`state.json`, its directory or an output directory).
    pub resume: Option<PathBuf>,
    /// Validate every this many epochs (and after the last); 0: never.
    pub val_every: usize,
    /// Validate on at most this many images.
    pub val_limit: Option<usize>,
    /// Train on at most this many usable images.
    pub train_limit: Option<usize>,
    /// `TrainAugmentation` (true) or the plain test transform (false).
    pub augment: bool,
    /// Stop (with a checkpoint) after this many optimiser steps in total.
    pub max_steps: Option<usize>,
    /// Set by the caller (Ctrl-C) to stop after the current step with a checkpoint.
    pub stop: Option<Arc<AtomicBool>>,
    /// When resuming, accept a learning-rate schedule (or epoch count) other than the
    /// checkpoint's: the run continues on the new schedule from where it stopped (no
    /// longer the same curve as one uninterrupted run).
    pub reschedule: bool,
    /// Arithmetic of the convolution products.
    pub precision: Precision,
}

impl TrainConfig {
    /// pytorch-ssd's defaults for `voc_root` writing to `out_dir`: trainval, validation on
    /// test every 5 epochs, batch 32, 120 epochs, lr 1e-3 multistep (80, 100), momentum
    /// 0.9, weight decay 5e-4, with augmentation.
    pub fn new(voc_root: impl Into<PathBuf>, out_dir: impl Into<PathBuf>) -> Self {
        Self {
            voc_root: voc_root.into(),
            split: "trainval".into(),
            val_split: Some("test".into()),
            arch: "mb2-ssd-lite".into(),
            width_mult: 1.0,
            epochs: 120,
            batch: 32,
            schedule: LrSchedule {
                base_lr: 1e-3,
                policy: LrPolicy::MultiStep {
                    milestones: vec![80, 100],
                    gamma: 0.1,
                },
                warmup_epochs: 0,
            },
            momentum: 0.9,
            weight_decay: 5e-4,
            clip_grad_norm: None,
            bn_momentum: 0.1,
            init: None,
            freeze_backbone: false,
            threads: 1,
            seed: 0,
            out_dir: out_dir.into(),
            resume: None,
            val_every: 5,
            val_limit: None,
            train_limit: None,
            augment: true,
            max_steps: None,
            stop: None,
            reschedule: false,
            precision: Precision::Fp32,
        }
    }

    /// Rejects options that cannot train.
    pub fn check(&self) -> Result<()> {
        let bad = |m: String| Err(TrainError::Config(m));
        let lr = self.schedule.base_lr;
        if self.batch == 0 {
            return bad("batch size 0".into());
        }
        if self.batch == 1 {
            return bad("batch size 1: training-mode batch norm needs at least 2 images (the 1x1 extras see one value per channel and image)".into());
        }
        if !lr.is_finite() || lr < 0.0 {
            return bad(format!("learning rate {lr} must be finite and ≥ 0"));
        }
        if ![0.25, 0.5, 0.75, 1.0].contains(&self.width_mult) {
            return bad(format!(
                "width multiplier {} (0.25, 0.5, 0.75 or 1.0; pytorch-ssd ships 0.5 to 1.0)",
                self.width_mult
            ));
        }
        if !(0.0..1.0).contains(&self.momentum)
            || !self.weight_decay.is_finite()
            || self.weight_decay < 0.0
        {
            return bad(format!(
                "momentum {} must be in [0, 1) and weight decay {} ≥ 0",
                self.momentum, self.weight_decay
            ));
        }
        if let LrPolicy::Cosine { t_max: 0 } = self.schedule.policy {
            return bad("cosine schedule with T_max 0".into());
        }
        if self.clip_grad_norm.is_some_and(|c| c.is_nan() || c <= 0.0) {
            return bad("gradient clipping norm must be > 0".into());
        }
        if self.threads == 0 {
            return bad("0 threads".into());
        }
        Ok(())
    }
}

/// One optimiser step, as reported to the progress callback.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct StepInfo {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Batch index in the epoch.
    pub batch: usize,
    /// Batches in the epoch.
    pub batches: usize,
    /// Steps done in total (this one included).
    pub global_step: usize,
    /// Loss of this batch.
    pub loss: LossValue,
    /// Learning rate used.
    pub lr: f64,
    /// Images in this batch.
    pub images: usize,
    /// Seconds this step took (loading wait included).
    pub seconds: f64,
}

/// Events of a run, in order.
#[derive(Clone, Debug, PartialEq)]
pub enum Progress {
    /// Training starts (or resumes) at `epoch`, batch `batch`.
    Start {
        /// Usable training images.
        images: usize,
        /// Images skipped (difficult only).
        skipped: usize,
        /// Batches per epoch.
        batches_per_epoch: usize,
        /// Epoch started at.
        epoch: usize,
        /// Batch started at.
        batch: usize,
        /// Total epochs.
        epochs: usize,
    },
    /// `--init` was loaded: what was copied and what was left as initialised.
    Init {
        /// The file.
        path: PathBuf,
        /// Parameters loaded, missing from the file, or of another shape there.
        report: crate::init::InitReport,
    },
    /// A step finished.
    Step(StepInfo),
    /// An epoch finished.
    EpochEnd(crate::checkpoint::EpochRecord),
    /// A validation finished.
    Validated {
        /// Epoch.
        epoch: usize,
        /// mAP (VOC07, classes present).
        map: f64,
    },
    /// A checkpoint was written.
    Checkpoint(PathBuf),
}

/// What a run did.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainReport {
    /// Total loss of every step since the run's start (resumed steps included).
    pub step_losses: Vec<f32>,
    /// Per-epoch summaries.
    pub epochs: Vec<crate::checkpoint::EpochRecord>,
    /// Best validation `(epoch, mAP)`.
    pub best: Option<(usize, f64)>,
    /// Optimiser steps done in total.
    pub global_step: usize,
    /// The last checkpoint's `state.json`.
    pub checkpoint: PathBuf,
    /// `final.safetensors` (written when all epochs are done).
    pub final_weights: Option<PathBuf>,
    /// `best.safetensors`, if a validation ran.
    pub best_weights: Option<PathBuf>,
    /// True when stopped by the stop flag or `max_steps` before the last epoch ended.
    pub stopped: bool,
    /// Training images per second over this invocation's steps.
    pub images_per_sec: f64,
}
