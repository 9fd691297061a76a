//! The training loop: epochs of prefetched batches, forward in training mode,
//! MultiboxLoss, backward, SGD, the LR schedule, checkpoints every epoch, periodic
//! validation keeping the best weights, and a stop flag.
//!
//! Exact resumption: the batches of epoch `e` depend only on `(seed, e)`, the optimiser
//! state (weights, BN statistics, momentum buffers) is saved losslessly, and the loss
//! sums of a partial epoch travel in `state.json`, so a run stopped and resumed produces
//! the same loss curve as an uninterrupted one (bit for bit with 1 thread; with more
//! threads the GEMM reduction order may differ).
//!
//! Layout of `out_dir`: `checkpoint/` (see [`crate::checkpoint`]), `best.safetensors`
//! (best validation mAP), `final.safetensors` (after the last epoch), `labels.txt`.

use std::path::Path;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::time::Instant;

use slimdet_data::voc::VocDataset;
use slimdet_formats::StateDict;
use slimdet_kernels::bf16_gemm;
use slimdet_models::{Arch, Detector};

use crate::autograd::{BackwardOptions, Mode, TrainGraph};
use crate::checkpoint::{self, EpochRecord, TrainState};
use crate::config::{Precision, Progress, StepInfo, TrainConfig, TrainReport};
use crate::data::{Prefetcher, SampleSpec, TrainSet, epoch_order};
use crate::error::{Result, TrainError};
use crate::loss::MultiboxLoss;
use crate::masks::WeightMasks;
use crate::optim::{Sgd, clip_grad_norm};

/// Where the weights of a run come from, besides `config.init` / `config.resume`.
#[derive(Clone, Debug, Default)]
pub struct TrainStart {
    /// An already-built model to train (e.g. a pruned one with non-standard shapes);
    /// `config.init` and `config.width_mult` are then ignored.
    pub model: Option<Detector>,
    /// Masks applied after every optimiser step (pruned weights stay 0).
    pub masks: Option<WeightMasks>,
}

/// Trains as `config` says; `progress` sees every event.
pub fn train(config: &TrainConfig, progress: &mut dyn FnMut(&Progress)) -> Result<TrainReport> {
    train_from(config, TrainStart::default(), progress).map(|(r, _)| r)
}

/// Trains from `start` and returns the report with the model as it ends.
pub fn train_from(
    config: &TrainConfig,
    start: TrainStart,
    progress: &mut dyn FnMut(&Progress),
) -> Result<(TrainReport, Detector)> {
    config.check()?;
    let tier = slimdet_kernels::tier();
    if config.precision == Precision::Bf16 && !bf16_gemm::hardware(tier) {
        return Err(TrainError::Config(format!(
            "precision bf16 needs AVX512-BF16 (`vdpbf16ps`), which kernel tier `{}` on this CPU \
             lacks; train with precision fp32",
            tier.name()
        )));
    }
    let ds = VocDataset::open(&config.voc_root, &config.split, None)?;
    // A given model of fewer classes (a person detector on VOC) trains on its own classes,
    // matched by name; objects of the others are skipped.
    let ds = match &start.model {
        Some(m) if m.class_names.len() != ds.class_names().len() => {
            ds.for_classes(&m.class_names)?
        }
        _ => ds,
    };
    let subset = ds.skip_unknown();
    let classes = ds.class_names().to_vec();
    let set = Arc::new(TrainSet::open(ds, config.train_limit)?);
    let mut det = initial_model(config, start.model, &classes, progress)?;
    let masks = start.masks.unwrap_or_default();
    masks.check(&det.graph)?;
    masks.apply(&mut det.graph);
    let mut opt = Sgd::new(config.momentum, config.weight_decay);
    let mut state = new_state(config, &det);
    if let Some(r) = &config.resume {
        state = resume_into(r, config, &mut det, &mut opt)?;
        masks.apply(&mut det.graph);
    }
    let val_ds = match &config.val_split {
        Some(s) if config.val_every > 0 => Some(
            VocDataset::open(&config.voc_root, s, Some(classes.clone()))?.with_skip_unknown(subset),
        ),
        _ => None,
    };
    let ckpt_dir = config.out_dir.join("checkpoint");
    std::fs::create_dir_all(&config.out_dir).map_err(TrainError::io(&config.out_dir))?;
    let labels_path = config.out_dir.join("labels.txt");
    checkpoint::write_atomic(&labels_path, classes.join("\n").as_bytes())?;

    let spec = Arc::new(SampleSpec::for_detector(&det, config.augment, config.seed));
    let mut exec = TrainGraph::new(config.threads)?;
    exec.set_precision(config.precision);
    let loss_fn = MultiboxLoss::for_detector(&det);
    let bopts = BackwardOptions {
        frozen_prefixes: if config.freeze_backbone {
            vec!["base_net.".to_string()]
        } else {
            Vec::new()
        },
        input_grad: false,
    };
    let n = set.len();
    let ranges = set.batches(config.batch, &config.split)?;
    let per_epoch = ranges.len();
    progress(&Progress::Start {
        images: n,
        skipped: set.skipped,
        batches_per_epoch: per_epoch,
        epoch: state.epoch,
        batch: state.batch_in_epoch,
        epochs: config.epochs,
    });

    let best_path = config.out_dir.join("best.safetensors");
    let mut last_ckpt = ckpt_dir.join("state.json");
    let (mut images_done, mut seconds) = (0usize, 0.0f64);
    let mut stopped = false;
    'epochs: while state.epoch < config.epochs {
        let epoch = state.epoch;
        let order = epoch_order(n, config.seed, epoch);
        let batches: Vec<Vec<usize>> = ranges
            .iter()
            .skip(state.batch_in_epoch)
            .map(|r| order[r.clone()].to_vec())
            .collect();
        let mut loader =
            Prefetcher::start(set.clone(), spec.clone(), epoch, batches, config.threads)?;
        while state.batch_in_epoch < per_epoch {
            let t0 = Instant::now();
            let batch = loader.next_batch().ok_or_else(|| {
                TrainError::Config("the batch loader stopped early".to_string())
            })??;
            let b = batch.images.shape()[0];
            let lr = config.schedule.lr(epoch, state.global_step, per_epoch);
            let tape = exec.forward(&det.graph, &batch.images, Mode::Train)?;
            let (lv, ls, logits) = output(&tape, "logits")?;
            let (locv, _, locs) = output(&tape, "locations")?;
            let out = loss_fn.compute(b, logits, locs, &batch.labels, &batch.locations)?;
            let total = out.value.total();
            if !total.is_finite() {
                return Err(TrainError::NonFinite {
                    value: total,
                    epoch,
                    step: state.global_step,
                });
            }
            debug_assert_eq!(ls[2], classes.len());
            let seeds = [
                (lv, out.d_logits.as_slice()),
                (locv, out.d_locations.as_slice()),
            ];
            let mut grads = exec.backward(&det.graph, &tape, &seeds, &bopts)?;
            if let Some(max) = config.clip_grad_norm {
                clip_grad_norm(&mut grads, max);
            }
            tape.update_bn_running_stats(&mut det.graph, config.bn_momentum);
            exec.recycle(tape);
            opt.step(&mut det.graph, &grads, lr as f32);
            masks.apply(&mut det.graph);

            state.global_step += 1;
            state.batch_in_epoch += 1;
            state.lr = lr;
            state.step_losses.push(total);
            let s = &mut state.epoch_sums;
            s[0] += f64::from(total);
            s[1] += f64::from(out.value.regression);
            s[2] += f64::from(out.value.classification);
            s[3] += 1.0;
            let dt = t0.elapsed().as_secs_f64();
            images_done += b;
            seconds += dt;
            progress(&Progress::Step(StepInfo {
                epoch,
                batch: state.batch_in_epoch - 1,
                batches: per_epoch,
                global_step: state.global_step,
                loss: out.value,
                lr,
                images: b,
                seconds: dt,
            }));
            let stop_flag = config
                .stop
                .as_ref()
                .is_some_and(|f| f.load(Ordering::SeqCst));
            let max_reached = config.max_steps.is_some_and(|m| state.global_step >= m);
            if stop_flag || max_reached {
                stopped = true;
                if state.batch_in_epoch < per_epoch {
                    last_ckpt = checkpoint::save(&ckpt_dir, &mut state, &det, &opt)?;
                    progress(&Progress::Checkpoint(last_ckpt.clone()));
                    break 'epochs;
                }
            }
        }
        drop(loader);

        // End of the epoch: summary, validation, checkpoint.
        let s = state.epoch_sums;
        let cnt = s[3].max(1.0);
        let mut rec = EpochRecord {
            epoch,
            loss: s[0] / cnt,
            regression: s[1] / cnt,
            classification: s[2] / cnt,
            lr: state.lr,
            val_map: None,
        };
        let last = epoch + 1 == config.epochs;
        if let Some(vds) = &val_ds
            && ((epoch + 1).is_multiple_of(config.val_every) || last)
        {
            exec.release_buffers();
            let v = crate::validate::validate(&det, vds, config.val_limit, config.threads)?;
            rec.val_map = Some(v.map);
            progress(&Progress::Validated { epoch, map: v.map });
            if state.best.is_none_or(|(_, b)| v.map > b) {
                state.best = Some((epoch, v.map));
                det.save_safetensors(&best_path)?;
            }
        }
        state.epochs.push(rec.clone());
        state.epoch += 1;
        state.batch_in_epoch = 0;
        state.epoch_sums = [0.0; 4];
        progress(&Progress::EpochEnd(rec));
        last_ckpt = checkpoint::save(&ckpt_dir, &mut state, &det, &opt)?;
        progress(&Progress::Checkpoint(last_ckpt.clone()));
        if stopped && state.epoch < config.epochs {
            break;
        }
        stopped = false;
    }

    let final_weights = if state.epoch >= config.epochs && !stopped {
        let p = config.out_dir.join("final.safetensors");
        det.save_safetensors(&p)?;
        Some(p)
    } else {
        None
    };
    let report = TrainReport {
        step_losses: state.step_losses.clone(),
        epochs: state.epochs.clone(),
        best: state.best,
        global_step: state.global_step,
        checkpoint: last_ckpt,
        final_weights,
        best_weights: state.best.map(|_| best_path),
        stopped: state.epoch < config.epochs,
        images_per_sec: if seconds > 0.0 {
            images_done as f64 / seconds
        } else {
            0.0
        },
    };
    Ok((report, det))
}

/// A graph output of the tape: value id, shape, data.
fn output<'a>(
    tape: &'a crate::autograd::Tape,
    name: &str,
) -> Result<(usize, &'a [usize], &'a [f32])> {
    tape.output(name).ok_or_else(|| {
        TrainError::Config(format!(
            "the model has no `{name}` output (not an SSD detector)"
        ))
    })
}

/// The model training starts from: `given`, else MobileNetV2-SSD-Lite of the configured
/// width for `classes`, PyTorch-initialised from the seed, then `config.init` loaded.
fn initial_model(
    config: &TrainConfig,
    given: Option<Detector>,
    classes: &[String],
    progress: &mut dyn FnMut(&Progress),
) -> Result<Detector> {
    if let Some(mut det) = given {
        let k = det.class_names.len();
        if k != classes.len() {
            return Err(TrainError::Config(format!(
                "the model has {k} classes (with background) but the dataset has {}",
                classes.len()
            )));
        }
        det.class_names = classes.to_vec();
        return Ok(det);
    }
    let arch = Arch::named(&config.arch, config.width_mult, classes.len())?;
    let mut det = Detector::new(arch);
    crate::init::init_ssd(&mut det.graph, config.seed);
    det.class_names = classes.to_vec();
    if let Some(p) = &config.init {
        let report = crate::init::load_compatible(&mut det.graph, p)?;
        progress(&Progress::Init {
            path: p.clone(),
            report,
        });
    }
    Ok(det)
}

/// A fresh state for a run of `config` on `det`.
fn new_state(config: &TrainConfig, det: &Detector) -> TrainState {
    TrainState {
        format: checkpoint::FORMAT.to_string(),
        arch: det.name.clone(),
        // The width the run asked for; a model given to the trainer is checked against
        // the checkpoint by its parameter shapes when the weights are loaded.
        width_mult: config.width_mult,
        class_names: det.class_names.clone(),
        epoch: 0,
        batch_in_epoch: 0,
        global_step: 0,
        seed: config.seed,
        rng: "splitmix64 streams derived from (seed, stream, epoch, index)".to_string(),
        lr: config.schedule.base_lr,
        schedule: config.schedule.clone(),
        batch: config.batch,
        step_losses: Vec::new(),
        epochs: Vec::new(),
        best: None,
        weights: String::new(),
        optimizer: String::new(),
        epoch_sums: [0.0; 4],
    }
}

/// Loads the checkpoint at `path` into `det` and `opt` after checking that it belongs to
/// this run (architecture, width, classes, seed, batch, schedule, parameter shapes).
fn resume_into(
    path: &Path,
    config: &TrainConfig,
    det: &mut Detector,
    opt: &mut Sgd,
) -> Result<TrainState> {
    let state_path = checkpoint::resolve(path);
    let text = std::fs::read(&state_path).map_err(TrainError::io(&state_path))?;
    let state: TrainState =
        serde_json::from_slice(&text).map_err(|e| TrainError::BadCheckpoint {
            path: state_path.clone(),
            reason: format!("state.json: {e}"),
        })?;
    let mismatch = |reason: String| TrainError::CheckpointMismatch {
        path: state_path.clone(),
        reason,
    };
    if state.format != checkpoint::FORMAT {
        return Err(TrainError::BadCheckpoint {
            path: state_path.clone(),
            reason: format!(
                "format {:?}, expected {:?}",
                state.format,
                checkpoint::FORMAT
            ),
        });
    }
    let want = new_state(config, det);
    if state.arch != want.arch || state.width_mult != want.width_mult {
        return Err(mismatch(format!(
            "it was trained as {} width {}, this run is {} width {}",
            state.arch, state.width_mult, want.arch, want.width_mult
        )));
    }
    if state.class_names != want.class_names {
        return Err(mismatch(format!(
            "classes {:?} differ from the dataset's {:?}",
            state.class_names, want.class_names
        )));
    }
    if state.seed != config.seed || state.batch != config.batch {
        return Err(mismatch(format!(
            "seed {} batch {} differ from this run's seed {} batch {} (an exact resume needs the same)",
            state.seed, state.batch, config.seed, config.batch
        )));
    }
    if state.schedule != config.schedule && !config.reschedule {
        return Err(mismatch(format!(
            "schedule {:?} differs from this run's {:?} (--reschedule accepts the new one)",
            state.schedule, config.schedule
        )));
    }
    let dir = state_path.parent().unwrap_or(Path::new("."));
    let wpath = dir.join(&state.weights);
    let (sd, _): (StateDict, _) = slimdet_formats::load_state_dict(&wpath)?;
    slimdet_models::weights::load_into(
        &mut det.graph,
        &sd,
        &wpath.display().to_string(),
        &det.name,
    )
    .map_err(|e| mismatch(e.to_string()))?;
    let opath = dir.join(&state.optimizer);
    let (osd, _) = slimdet_formats::load_state_dict(&opath)?;
    let shapes = det.graph.params();
    let mut buffers = std::collections::BTreeMap::new();
    for t in osd.iter() {
        let Some((_, p)) = shapes.iter().find(|(k, _)| *k == t.name) else {
            return Err(mismatch(format!(
                "momentum buffer `{}` has no parameter in the model",
                t.name
            )));
        };
        match &t.data {
            slimdet_formats::TensorData::F32(v) if v.len() == p.numel() => {
                buffers.insert(t.name.clone(), v.clone());
            }
            _ => {
                return Err(mismatch(format!(
                    "momentum buffer `{}` does not fit its parameter",
                    t.name
                )));
            }
        }
    }
    opt.set_buffers(buffers);
    let mut state = state;
    state.schedule = config.schedule.clone();
    Ok(state)
}
