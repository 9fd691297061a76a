//! The `--model`, `--arch` and `--threads` options shared by every command that computes.

use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use anyhow::{Context, Result};
use clap::Args;
use slimdet_models::Detector;

/// Which model to load.
#[derive(Args, Clone, Debug)]
pub struct ModelArgs {
    /// Model file: PyTorch .pth (zip or legacy), .safetensors, .onnx, or a TF Object
    /// Detection API frozen graph .pb (default: the built-in MobileNetV2-SSD-Lite trained
    /// on VOC2007 photos, embedded in the binary; models/README.md).
    #[arg(long, short = 'm', default_value_os_t = builtin_model_path())]
    pub model: PathBuf,
    /// Architecture (default: recognised from the file).
    #[arg(long, value_parser = clap::builder::PossibleValuesParser::new(slimdet_models::arch::ARCH_NAMES))]
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

/// File name of the built-in model in the source tree's `models/` (see `models/README.md`).
const BUILTIN_FILE: &str = "mb2-ssd-lite-voc.safetensors";

/// The built-in model's bytes, embedded so that an installed or copied binary has it.
static BUILTIN: &[u8] = include_bytes!("../../../models/mb2-ssd-lite-voc.safetensors");

/// The built-in model (MobileNetV2-SSD-Lite trained on VOC2007 photos, `models/README.md`):
/// the source tree's file when the binary runs where it was built, otherwise the copy of
/// the embedded bytes in the user's cache folder (`$XDG_CACHE_HOME/slimdet` or
/// `~/.cache/slimdet`, else the temporary folder), named with a hash of the bytes and
/// written by [`check_builtin`] on first use (also when `SLIMDET_BUILTIN=embedded`).
pub fn builtin_model_path() -> PathBuf {
    static PATH: OnceLock<PathBuf> = OnceLock::new();
    PATH.get_or_init(|| {
        let tree = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("../../models")
            .join(BUILTIN_FILE);
        // `SLIMDET_BUILTIN=embedded` uses the embedded copy even in the source tree (to
        // check what an installed binary does).
        let embedded = std::env::var("SLIMDET_BUILTIN").is_ok_and(|v| v == "embedded");
        if tree.is_file() && !embedded {
            return tree;
        }
        // Empty or relative values are ignored, as the XDG base directory rules say.
        let absolute = |v: std::ffi::OsString| Some(PathBuf::from(v)).filter(|p| p.is_absolute());
        let cache = std::env::var_os("XDG_CACHE_HOME")
            .and_then(absolute)
            .or_else(|| {
                std::env::var_os("HOME")
                    .and_then(absolute)
                    .map(|h| h.join(".cache"))
            })
            .unwrap_or_else(std::env::temp_dir);
        // FNV-1a of the bytes: a new build with another model gets another file.
        let hash = BUILTIN.iter().fold(0xcbf2_9ce4_8422_2325u64, |h, &b| {
            (h ^ b as u64).wrapping_mul(0x0100_0000_01b3)
        });
        let stem = BUILTIN_FILE.trim_end_matches(".safetensors");
        cache
            .join("slimdet")
            .join(format!("{stem}-{hash:016x}.safetensors"))
    })
    .clone()
}

/// When `path` is the built-in model and not on disk, writes the embedded copy there
/// (to a temporary file first, then renamed, so a reader never sees a partial file).
pub fn check_builtin(path: &Path) -> Result<()> {
    if path != builtin_model_path() || path.is_file() {
        return Ok(());
    }
    let dir = path.parent().unwrap_or(Path::new("."));
    std::fs::create_dir_all(dir)
        .with_context(|| format!("creating {} for the built-in model", dir.display()))?;
    slimdet_atomic::write(path, BUILTIN)
        .with_context(|| format!("writing the built-in model to {}", path.display()))
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
