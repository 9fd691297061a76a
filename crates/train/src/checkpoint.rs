//! Checkpoints: everything needed to continue a run exactly.
//!
//! A checkpoint directory holds, per save, `step-<N>.weights.safetensors` (the model's
//! state_dict with BN running statistics and `num_batches_tracked`, loadable by
//! `Detector::load`), `step-<N>.optim.safetensors` (the SGD momentum buffers, keyed like
//! the parameters) and `state.json` ([`TrainState`]: position, seed, learning rate, loss
//! history, architecture). Each file is written atomically (temp file + rename) and
//! `state.json` last, so it always names a complete pair; older pairs are removed after.
//! The random state is the seed alone: every stream is derived from `(seed, epoch,
//! index)` (see [`crate::rng`]).

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use slimdet_formats::{NamedTensor, StateDict, TensorData};
use slimdet_models::Detector;

use crate::error::{Result, TrainError};
use crate::optim::Sgd;
use crate::schedule::LrSchedule;

/// `state.json` format tag.
pub const FORMAT: &str = "slimdet-train-checkpoint/1";

/// Mean losses of one finished epoch.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct EpochRecord {
    /// Epoch (0-based).
    pub epoch: usize,
    /// Mean total loss.
    pub loss: f64,
    /// Mean regression loss.
    pub regression: f64,
    /// Mean classification loss.
    pub classification: f64,
    /// Learning rate at the end of the epoch.
    pub lr: f64,
    /// Validation mAP, when validated.
    pub val_map: Option<f64>,
}

/// The training state saved beside the weights.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct TrainState {
    /// [`FORMAT`].
    pub format: String,
    /// Architecture name (`mb2-ssd-lite`).
    pub arch: String,
    /// Width multiplier.
    pub width_mult: f64,
    /// Class names, index 0 = BACKGROUND.
    pub class_names: Vec<String>,
    /// Epoch to continue (0-based).
    pub epoch: usize,
    /// Batches of `epoch` already done.
    pub batch_in_epoch: usize,
    /// Optimiser steps done.
    pub global_step: usize,
    /// Run seed; every random stream derives from it.
    pub seed: u64,
    /// How the random streams derive from the seed.
    pub rng: String,
    /// Learning rate of the last step.
    pub lr: f64,
    /// Schedule of the run.
    pub schedule: LrSchedule,
    /// Batch size of the run.
    pub batch: usize,
    /// Total loss of every step so far.
    pub step_losses: Vec<f32>,
    /// Per-epoch summaries.
    pub epochs: Vec<EpochRecord>,
    /// Best validation mAP and its epoch.
    pub best: Option<(usize, f64)>,
    /// Weight file name (in the same directory).
    pub weights: String,
    /// Momentum-buffer file name (in the same directory).
    pub optimizer: String,
    /// Sums over the finished batches of `epoch`: total, regression and classification
    /// loss, and the batch count (so a run resumed mid-epoch reports the same means).
    #[serde(default)]
    pub epoch_sums: [f64; 4],
}

/// The state file of a checkpoint given as `state.json`, its directory, or a run's output
/// directory (holding `checkpoint/`).
pub fn resolve(path: &Path) -> PathBuf {
    if path.is_dir() {
        let direct = path.join("state.json");
        if direct.is_file() {
            return direct;
        }
        return path.join("checkpoint").join("state.json");
    }
    path.to_path_buf()
}

/// Writes `det`, the optimiser's buffers and `state` (whose `weights`/`optimizer` fields
/// are filled in here) into `dir`. Returns the path of `state.json`.
pub fn save(dir: &Path, state: &mut TrainState, det: &Detector, opt: &Sgd) -> Result<PathBuf> {
    std::fs::create_dir_all(dir).map_err(TrainError::io(dir))?;
    let stem = format!("step-{:08}", state.global_step);
    state.weights = format!("{stem}.weights.safetensors");
    state.optimizer = format!("{stem}.optim.safetensors");
    det.save_safetensors(&dir.join(&state.weights))?;
    let shapes: HashMap<String, Vec<usize>> = det
        .graph
        .params()
        .into_iter()
        .map(|(k, t)| (k, t.shape().to_vec()))
        .collect();
    let mut sd = StateDict::default();
    for (k, v) in opt.buffers() {
        sd.push(NamedTensor {
            name: k.clone(),
            shape: shapes.get(k).cloned().unwrap_or_else(|| vec![v.len()]),
            data: TensorData::F32(v.clone()),
        });
    }
    let mut meta = BTreeMap::new();
    meta.insert("slimdet.kind".to_string(), "sgd-momentum".to_string());
    slimdet_formats::save_safetensors(&dir.join(&state.optimizer), &sd, &meta)?;
    let json = serde_json::to_vec_pretty(state).map_err(|e| TrainError::BadCheckpoint {
        path: dir.join("state.json"),
        reason: e.to_string(),
    })?;
    let state_path = dir.join("state.json");
    write_atomic(&state_path, &json)?;
    // Older pairs are no longer referenced.
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.flatten() {
            let name = e.file_name().to_string_lossy().into_owned();
            if name.starts_with("step-") && !name.starts_with(&stem) {
                let _ = std::fs::remove_file(e.path());
            }
        }
    }
    Ok(state_path)
}

/// Reads a checkpoint (see [`resolve`]): its state, the detector with its weights, and the
/// momentum buffers.
pub fn load(path: &Path) -> Result<(TrainState, Detector, BTreeMap<String, Vec<f32>>)> {
    let state_path = resolve(path);
    let bad = |reason: String| TrainError::BadCheckpoint {
        path: state_path.clone(),
        reason,
    };
    let text = std::fs::read(&state_path).map_err(TrainError::io(&state_path))?;
    let state: TrainState =
        serde_json::from_slice(&text).map_err(|e| bad(format!("state.json: {e}")))?;
    if state.format != FORMAT {
        return Err(bad(format!(
            "format {:?}, expected {FORMAT:?}",
            state.format
        )));
    }
    let dir = state_path.parent().unwrap_or(Path::new("."));
    let mut det = Detector::load(&dir.join(&state.weights), Some(&state.arch))?;
    det.class_names = state.class_names.clone();
    let (sd, _) = slimdet_formats::load_state_dict(&dir.join(&state.optimizer))?;
    let mut buffers = BTreeMap::new();
    for t in sd.iter() {
        match &t.data {
            TensorData::F32(v) => {
                buffers.insert(t.name.clone(), v.clone());
            }
            TensorData::I64(_) => return Err(bad(format!("momentum buffer {} is int64", t.name))),
        }
    }
    Ok((state, det, buffers))
}

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).map_err(TrainError::io(path))
}
