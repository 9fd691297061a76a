//! Errors of model building, weight loading and prediction.

use thiserror::Error;

/// What can go wrong with a model.
#[derive(Debug, Error)]
pub enum ModelError {
    /// The weight file could not be read.
    #[error(transparent)]
    Format(#[from] slimdet_formats::FormatError),
    /// The engine refused the graph.
    #[error(transparent)]
    Core(#[from] slimdet_core::CoreError),
    /// The image could not be read.
    #[error(transparent)]
    Image(#[from] slimdet_data::Error),
    /// The state_dict does not match the model; lists every mismatch.
    #[error("{path}: state_dict does not match {arch}:\n{}", report.join("\n"))]
    StateDictMismatch {
        /// The weight file.
        path: String,
        /// The architecture it was loaded into.
        arch: String,
        /// One line per missing key, unexpected key or shape mismatch.
        report: Vec<String>,
    },
    /// The architecture could not be recognised from the keys, or an option is invalid.
    #[error("{path}: {reason}")]
    Arch {
        /// The weight file (or `<config>`).
        path: String,
        /// Why.
        reason: String,
    },
    /// An alternative backend (see [`crate::Backend`]) failed.
    #[error(transparent)]
    Backend(Box<dyn std::error::Error + Send + Sync>),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, ModelError>;
