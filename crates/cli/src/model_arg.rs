//! The `--model`, `--arch` and `--threads` options shared by every command that computes.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result};
use clap::Args;
use slimdet_models::Detector;

/// Which model to load.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model file: PyTorch .pth (zip or legacy), .safetensors, .onnx, or a TF Object
    /// Detection API frozen graph .pb (default: the built-in MobileNetV2-SSD-Lite trained
    /// on the synthetic dataset, models/).
    #[arg(long, short = 'm', default_value_os_t = builtin_model_path())]
    pub model: PathBuf,
    /// Architecture: mb2-ssd-lite, ultraface-slim, ultraface-rfb or tf-ssdlite-mobilenet-v2
    /// (default: recognised from the file).
    #[arg(long, value_parser = ["mb2-ssd-lite", "ultraface-slim", "ultraface-rfb", "tf-ssdlite-mobilenet-v2"])]
    pub arch: Option<String>,
}

impl ModelArgs {
    /// Loads the detector.
    pub fn load(&self) -> Result<Detector> {
        check_builtin(&self.model)?;
        let is_onnx = self
            .model
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("onnx"));
        if is_onnx {
            return slimdet_onnx::detector_from_onnx(&self.model, self.arch.as_deref())
                .with_context(|| format!("loading model {}", self.model.display()));
        }
        if slimdet_quant::is_quantized_file(&self.model) {
            return slimdet_quant::QuantizedDetector::load(&self.model)
                .map(|q| q.to_detector())
                .with_context(|| format!("loading quantized model {}", self.model.display()));
        }
        Detector::load(&self.model, self.arch.as_deref())
            .with_context(|| format!("loading model {}", self.model.display()))
    }
}

/// The built-in model, `models/mb2-ssd-lite-synth.safetensors` of the source tree this
/// binary was built from (see `models/README.md`).
pub fn builtin_model_path() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../models/mb2-ssd-lite-synth.safetensors")
}

/// A clear error when `path` is the built-in model and it is not there.
pub fn check_builtin(path: &Path) -> Result<()> {
    if path == builtin_model_path() && !path.is_file() {
        anyhow::bail!(
            "no --model given and the built-in model {} is missing (it is built with \
             `slimdet train`, see models/README.md); pass --model FILE",
            path.display()
        );
    }
    Ok(())
}

/// Worker threads.
#[derive(Args, Clone, Debug)]
pub struct ThreadArgs {
    /// Worker threads (1 to 256).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u16).range(1..=256))]
    pub threads: u16,
}

impl ThreadArgs {
    /// As a count.
    pub fn get(&self) -> usize {
        self.threads as usize
    }
}
