//! The crate's single error type.
//!
//! Lower-layer errors (engine, models, data, formats, eval) are wrapped with `#[from]`;
//! configuration mistakes a user can make get their own variants with the offending value.

use std::path::PathBuf;

/// What can go wrong while training.
#[derive(Debug, thiserror::Error)]
pub enum TrainError {
    /// The engine refused the graph or the input.
    #[error(transparent)]
    Core(#[from] slimdet_core::CoreError),
    /// A model could not be built, loaded or saved.
    #[error(transparent)]
    Model(#[from] slimdet_models::ModelError),
    /// A dataset or image could not be read.
    #[error(transparent)]
    Data(#[from] slimdet_data::Error),
    /// A weight file could not be read or written.
    #[error(transparent)]
    Format(#[from] slimdet_formats::FormatError),
    /// Quantization-aware training: the quantized model or its calibration was refused.
    #[error("quantization-aware training: {0}")]
    Quant(Box<slimdet_quant::QuantError>),
    /// A node's operator has no training implementation.
    #[error("node `{node}`: {op} is not supported in training ({reason})")]
    Unsupported {
        /// Node name.
        node: String,
        /// Operator kind.
        op: &'static str,
        /// Why.
        reason: String,
    },
    /// A gradient or target buffer has the wrong length.
    #[error("{what}: expected {expected} values, got {got}")]
    Length {
        /// Which buffer.
        what: String,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// A training option is invalid (batch 0, NaN learning rate, ...).
    #[error("invalid training configuration: {0}")]
    Config(String),
    /// The training split has no usable image.
    #[error("{split}: no image with a non-difficult object to train on ({skipped} skipped)")]
    EmptyDataset {
        /// The split name.
        split: String,
        /// Images skipped (only difficult objects, or no objects).
        skipped: usize,
    },
    /// A checkpoint does not belong to this run (other architecture, classes, ...).
    #[error("{path}: checkpoint does not match: {reason}")]
    CheckpointMismatch {
        /// The checkpoint file.
        path: PathBuf,
        /// What differs.
        reason: String,
    },
    /// A checkpoint or its state file is malformed.
    #[error("{path}: bad checkpoint: {reason}")]
    BadCheckpoint {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        #[source]
        source: std::io::Error,
    },
    /// The loss became NaN or infinite.
    #[error("loss is not finite ({value}) at epoch {epoch}, step {step}; lower the learning rate")]
    NonFinite {
        /// The value.
        value: f32,
        /// Epoch (0-based).
        epoch: usize,
        /// Global step.
        step: usize,
    },
    /// The thread pool could not be built.
    #[error("cannot start {threads} worker threads: {reason}")]
    Threads {
        /// Requested threads.
        threads: usize,
        /// Cause.
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, TrainError>;

impl TrainError {
    /// An I/O error on `path`.
    pub fn io(path: impl Into<PathBuf>) -> impl FnOnce(std::io::Error) -> TrainError {
        let path = path.into();
        move |source| TrainError::Io { path, source }
    }
}

impl From<slimdet_quant::QuantError> for TrainError {
    fn from(e: slimdet_quant::QuantError) -> Self {
        TrainError::Quant(Box::new(e))
    }
}
