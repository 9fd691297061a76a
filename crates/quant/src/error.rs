//! Errors of quantization, the quantized file format and the integer executor.

use std::path::PathBuf;

use thiserror::Error;

/// What can go wrong while quantizing, saving, loading or running a quantized model.
#[derive(Debug, Error)]
pub enum QuantError {
    /// No calibration input was given, or `calib_images` is 0.
    #[error("calibration needs at least one image ({given} given, calib_images = {requested})")]
    EmptyCalibration {
        /// Inputs passed in.
        given: usize,
        /// `calib_images` asked for.
        requested: usize,
    },
    /// An observer name that is not one of minmax, moving-average, percentile, entropy, mse.
    #[error("unknown observer `{0}` (expected minmax, moving-average, percentile, entropy or mse)")]
    UnknownObserver(String),
    /// An option value that is not recognised.
    #[error("invalid {option} `{value}` (expected {expected})")]
    InvalidOption {
        /// Option name.
        option: &'static str,
        /// The value given.
        value: String,
        /// What would have been accepted.
        expected: &'static str,
    },
    /// A `keep_float` pattern matched no layer.
    #[error(
        "keep-float pattern `{pattern}` matches no layer (layers are named like `base_net.3.conv.0`, `classification_headers.1.3`)"
    )]
    PatternMatchesNothing {
        /// The pattern.
        pattern: String,
    },
    /// A calibration input of the wrong size.
    #[error("calibration input {index} has {got} values, the model needs {expected}")]
    InputShape {
        /// Which input.
        index: usize,
        /// Values expected.
        expected: usize,
        /// Values given.
        got: usize,
    },
    /// The graph holds an operator the int8 engine cannot run.
    #[error("layer `{layer}`: operator {op} is not supported by the quantized engine")]
    Unsupported {
        /// Node name.
        layer: String,
        /// Operator kind.
        op: &'static str,
    },
    /// A quantized file is unreadable, corrupted or inconsistent with its architecture.
    #[error("{path}: {reason}")]
    Format {
        /// The file.
        path: PathBuf,
        /// What is wrong.
        reason: String,
    },
    /// Reading or writing a file failed.
    #[error("{path}: {source}")]
    Io {
        /// The file.
        path: PathBuf,
        /// The I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The layer-sensitivity measurement has no images to run on.
    #[error("layer sensitivity needs at least one image: {reason}")]
    EmptySensitivitySet {
        /// Why the set is empty.
        reason: String,
    },
    /// `--auto-keep-float K` with more layers than the model quantizes.
    #[error("cannot keep {k} layers in f32: the model has {layers} quantizable layers")]
    TooManyKeepFloat {
        /// Layers asked for.
        k: usize,
        /// Int8 convolutions available.
        layers: usize,
    },
    /// Reading a dataset failed.
    #[error(transparent)]
    Data(#[from] slimdet_data::Error),
    /// The engine failed (graph, shapes, thread pool).
    #[error(transparent)]
    Core(#[from] slimdet_core::CoreError),
    /// The model layer failed.
    #[error(transparent)]
    Model(#[from] slimdet_models::ModelError),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, QuantError>;
