//! The study configuration (`--config study.toml`), its defaults (the reference study's
//! grid), the `--quick` preset and validation. Every check runs before any work starts.
//! The keys are documented in the README ("Study configuration").

use std::path::{Path, PathBuf};

use anyhow::{Result, bail};
use serde::{Deserialize, Serialize};

/// Pruning methods the study knows (whether each is built in: [`super::backends`]):
/// unstructured `random` and `l1` (magnitude, conv weights only); structured (whole
/// channels, a smaller dense model) `filter-l1`, `filter-l2`, `bn-scale`, `random-channel`.
pub const PRUNE_METHODS: [&str; 6] = [
    "random",
    "l1",
    "filter-l1",
    "filter-l2",
    "bn-scale",
    "random-channel",
];

/// Precision modes the study knows (`fp32` is the unquantized model): `fp16` weight
/// storage, `dynamic-int8` (int8 weights, activations quantized at run time) and static
/// `int8-<granularity>-<observer>` (int8 weights per tensor or per channel, activation
/// ranges calibrated with min/max, entropy (KL), MSE or 99.99th-percentile clipping).
pub const QUANT_MODES: [&str; 11] = [
    "fp32",
    "fp16",
    "dynamic-int8",
    "int8-tensor-minmax",
    "int8-tensor-entropy",
    "int8-tensor-mse",
    "int8-tensor-percentile",
    "int8-channel-minmax",
    "int8-channel-entropy",
    "int8-channel-mse",
    "int8-channel-percentile",
];

/// The whole study configuration. Unknown keys are errors.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct StudyConfig {
    /// Seed for dataset generation, random pruning and calibration subsets.
    pub seed: u64,
    /// Worker threads for evaluation and timing (0, the default: all cores).
    pub threads: usize,
    /// Dataset.
    pub data: DataConfig,
    /// Model.
    pub model: ModelConfig,
    /// Evaluation and measurement.
    pub eval: EvalConfig,
    /// Pruning grid.
    pub prune: PruneConfig,
    /// Quantization modes applied to the unpruned model.
    pub quant: QuantConfig,
    /// Pruned x quantized combinations.
    pub combos: ComboConfig,
    /// Fine-tuned variants.
    pub finetune: FinetuneConfig,
    /// Report budgets.
    pub report: ReportConfig,
    /// What is kept on disk.
    pub output: OutputConfig,
}

/// The repository's real VOC2007 evaluation set (`datasets/voc2007`, see its SOURCES.md).
pub fn builtin_eval_set() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/voc2007")
}

/// Evaluation split of the built-in set: 200 held-out `val_q75` photos.
pub const BUILTIN_SPLIT: &str = "val200";
/// Calibration split of the built-in set: 100 `train_q75` photos.
pub const BUILTIN_TRAIN_SPLIT: &str = "train100";

impl DataConfig {
    /// Another VOC folder than the built-in set gets the standard `test` / `trainval`
    /// splits unless the configuration names others.
    pub fn settle_splits(&mut self) {
        let builtin = self.voc.as_deref() == Some(builtin_eval_set().as_path());
        if !builtin || self.synthetic {
            if self.split == BUILTIN_SPLIT {
                self.split = "test".into();
            }
            if self.train_split == BUILTIN_TRAIN_SPLIT {
                self.train_split = "trainval".into();
            }
        }
    }
}

/// Which dataset.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct DataConfig {
    /// VOC year folder (default: the repository's real VOC2007 evaluation set,
    /// `datasets/voc2007`).
    pub voc: Option<PathBuf>,
    /// Use the synthetic shapes dataset (generated into `synth_dir` if missing) instead of
    /// `voc`.
    pub synthetic: bool,
    /// Cache folder of the synthetic dataset.
    pub synth_dir: PathBuf,
    /// Split to evaluate (`val200` on the built-in set; `test` elsewhere when unset).
    pub split: String,
    /// Split that calibration images and fine-tuning come from (`train100` on the
    /// built-in set; `trainval` elsewhere when unset).
    pub train_split: String,
    /// Evaluate at most this many images (0: all).
    pub limit: usize,
}

/// Which model.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ModelConfig {
    /// Weight file (.pth or .safetensors).
    pub path: PathBuf,
}

/// How to evaluate and measure.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct EvalConfig {
    /// `voc07` or `voc10`.
    pub metric: String,
    /// Timed forward passes (and pipeline runs) per variant after warm-up; 0 skips
    /// latency and peak RSS.
    pub timing_runs: usize,
}

/// Pruning grid: every method at every level (level 0 is the baseline itself).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct PruneConfig {
    /// Methods (see [`PRUNE_METHODS`]).
    pub methods: Vec<String>,
    /// Fractions in [0, 1).
    pub levels: Vec<f64>,
    /// `layer` (every conv gets the level) or `global` (one ranking over all convs);
    /// unstructured methods only.
    pub scope: String,
    /// Layer patterns never pruned (e.g. `base_net.0.0`, `*headers*`).
    pub exclude: Vec<String>,
    /// Structured methods: kept channel counts rounded up to a multiple of this (1:
    /// exactly `C - round(level * C)`).
    pub channel_multiple: usize,
}

/// Precision modes of the unpruned model.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct QuantConfig {
    /// Modes (see [`QUANT_MODES`]).
    pub modes: Vec<String>,
    /// Calibration images (from `data.train_split`) for static int8.
    pub calib_images: usize,
}

/// Combinations: every `(method, level)` with every mode.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ComboConfig {
    /// `[method, level]` pairs.
    pub prune: Vec<(String, f64)>,
    /// Modes applied to each.
    pub quant: Vec<String>,
}

/// Fine-tuning of pruned variants (off unless `variants` is non-empty).
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct FinetuneConfig {
    /// `[method, level]` pairs to fine-tune after pruning (keeping the zeros).
    pub variants: Vec<(String, f64)>,
    /// Epochs over `data.train_split`.
    pub epochs: usize,
    /// Initial learning rate (cosine decay to 0 over the epochs).
    pub lr: f64,
    /// Batch size.
    pub batch: usize,
    /// Train on at most this many training images (0: all).
    pub train_limit: usize,
    /// Arithmetic of the convolution products: `fp32` or `bf16` (`slimdet train
    /// --precision`).
    pub precision: String,
}

/// Budgets of the report's conclusions.
#[derive(Clone, Debug, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct ReportConfig {
    /// Size budget as a fraction of the baseline's gzip size.
    pub size_budget: f64,
    /// Latency budget as a fraction of the baseline's forward latency.
    pub latency_budget: f64,
    /// mAP drop still counted as no loss (0.01 = one point).
    pub map_tolerance: f64,
}

/// Files kept besides the results.
#[derive(Clone, Debug, Default, Deserialize, Serialize, PartialEq)]
#[serde(deny_unknown_fields, default)]
pub struct OutputConfig {
    /// Keep every variant's model file under `<out>/models/` (else deleted once measured).
    pub keep_models: bool,
}

impl Default for DataConfig {
    fn default() -> Self {
        Self {
            voc: Some(builtin_eval_set()),
            synthetic: false,
            synth_dir: "data/synth".into(),
            split: BUILTIN_SPLIT.into(),
            train_split: BUILTIN_TRAIN_SPLIT.into(),
            limit: 0,
        }
    }
}

impl Default for ModelConfig {
    fn default() -> Self {
        Self {
            path: crate::model_arg::builtin_model_path(),
        }
    }
}

impl Default for EvalConfig {
    fn default() -> Self {
        Self {
            metric: "voc07".into(),
            timing_runs: 20,
        }
    }
}

impl Default for PruneConfig {
    /// The reference study's grid.
    fn default() -> Self {
        Self {
            methods: vec!["random".into(), "l1".into(), "filter-l1".into()],
            levels: vec![
                0.0, 0.02, 0.04, 0.05, 0.08, 0.10, 0.15, 0.20, 0.25, 0.30, 0.40, 0.50,
            ],
            scope: "layer".into(),
            exclude: Vec::new(),
            channel_multiple: 1,
        }
    }
}

impl Default for QuantConfig {
    fn default() -> Self {
        Self {
            modes: vec![
                "fp16".into(),
                "dynamic-int8".into(),
                "int8-tensor-minmax".into(),
                "int8-channel-entropy".into(),
            ],
            calib_images: 100,
        }
    }
}

impl Default for ComboConfig {
    fn default() -> Self {
        Self {
            prune: vec![("l1".into(), 0.5), ("filter-l1".into(), 0.25)],
            quant: vec!["fp16".into(), "int8-channel-entropy".into()],
        }
    }
}

impl Default for FinetuneConfig {
    fn default() -> Self {
        Self {
            variants: Vec::new(),
            epochs: 2,
            lr: 1e-3,
            batch: 16,
            train_limit: 0,
            precision: "fp32".into(),
        }
    }
}

impl Default for ReportConfig {
    fn default() -> Self {
        Self {
            size_budget: 0.5,
            latency_budget: 0.8,
            map_tolerance: 0.01,
        }
    }
}

impl StudyConfig {
    /// The `--quick` preset: 60 test images, 5 timed runs, l1 and filter-l1 pruning at 25
    /// and 50 % and fp16; a few minutes at most on 2 cores.
    pub fn quick() -> Self {
        Self {
            data: DataConfig {
                limit: 60,
                ..DataConfig::default()
            },
            eval: EvalConfig {
                timing_runs: 5,
                ..EvalConfig::default()
            },
            prune: PruneConfig {
                methods: vec!["l1".into(), "filter-l1".into()],
                levels: vec![0.25, 0.5],
                ..PruneConfig::default()
            },
            quant: QuantConfig {
                modes: vec!["fp16".into()],
                calib_images: 16,
            },
            combos: ComboConfig {
                prune: vec![],
                quant: vec![],
            },
            ..Self::default()
        }
    }

    /// Parses a TOML file's text; keys not given keep their defaults, unknown keys are
    /// errors.
    pub fn from_toml(text: &str) -> Result<Self> {
        Ok(toml::from_str(text)?)
    }

    /// Checks every option (the availability of methods is checked separately, by
    /// [`super::backends::check_available`]).
    pub fn validate(&self) -> Result<()> {
        if self.threads > 256 {
            bail!("threads = {} is outside 0..=256", self.threads);
        }
        if !["voc07", "voc10"].contains(&self.eval.metric.as_str()) {
            bail!(
                "eval.metric = {:?}: expected voc07 or voc10",
                self.eval.metric
            );
        }
        if !["layer", "global"].contains(&self.prune.scope.as_str()) {
            bail!(
                "prune.scope = {:?}: expected layer or global",
                self.prune.scope
            );
        }
        if self.prune.channel_multiple == 0 || self.prune.channel_multiple > 64 {
            bail!(
                "prune.channel_multiple = {}: expected 1 to 64",
                self.prune.channel_multiple
            );
        }
        let pairs = self.combos.prune.iter().chain(&self.finetune.variants);
        for m in self
            .prune
            .methods
            .iter()
            .chain(pairs.clone().map(|(m, _)| m))
        {
            if !PRUNE_METHODS.contains(&m.as_str()) {
                bail!(
                    "unknown pruning method {m:?}: expected one of {}",
                    PRUNE_METHODS.join(", ")
                );
            }
        }
        for l in self.prune.levels.iter().chain(pairs.map(|(_, l)| l)) {
            if !(0.0..1.0).contains(l) {
                bail!("pruning level {l} is outside [0, 1) (levels are fractions: 0.3 = 30 %)");
            }
        }
        for q in self.quant.modes.iter().chain(&self.combos.quant) {
            if !QUANT_MODES.contains(&q.as_str()) {
                bail!(
                    "unknown quantization mode {q:?}: expected one of {}",
                    QUANT_MODES.join(", ")
                );
            }
        }
        let static_int8 = self
            .quant
            .modes
            .iter()
            .chain(&self.combos.quant)
            .any(|q| q.starts_with("int8-"));
        if static_int8 && self.quant.calib_images == 0 {
            bail!("quant.calib_images = 0: static int8 needs calibration images");
        }
        let f = &self.finetune;
        if !f.variants.is_empty() && (f.epochs == 0 || f.batch < 2 || !(f.lr > 0.0 && f.lr < 1.0)) {
            bail!(
                "finetune: epochs = {}, batch = {}, lr = {}: expected epochs >= 1, batch >= 2, 0 < lr < 1",
                f.epochs,
                f.batch,
                f.lr
            );
        }
        if let Err(e) = f.precision.parse::<slimdet_train::Precision>() {
            bail!("finetune.precision: {e}");
        }
        let r = &self.report;
        for (k, v) in [
            ("report.size_budget", r.size_budget),
            ("report.latency_budget", r.latency_budget),
            ("report.map_tolerance", r.map_tolerance),
        ] {
            if !(v.is_finite() && v > 0.0) {
                bail!("{k} = {v}: expected a positive number");
            }
        }
        Ok(())
    }
}
