//! Errors of ONNX import, execution and export. Every import error names the file and,
//! where one is involved, the node (its name, or `#index` and its first output when the
//! producer left names empty, as PyTorch does) and its operator.

use thiserror::Error;

/// What can go wrong with an ONNX file.
#[derive(Debug, Error)]
pub enum OnnxError {
    /// The file could not be read or written.
    #[error("{file}: {source}")]
    Io {
        /// The file.
        file: String,
        /// Cause.
        #[source]
        source: std::io::Error,
    },
    /// The bytes are not a valid ONNX protobuf message.
    #[error("{file}: not a valid ONNX protobuf: {source}")]
    Decode {
        /// The file.
        file: String,
        /// Cause.
        #[source]
        source: prost::DecodeError,
    },
    /// The model decodes but is malformed (no graph, undefined value, bad tensor data, ...).
    #[error("{file}: invalid model: {reason}")]
    Invalid {
        /// The file.
        file: String,
        /// What is wrong.
        reason: String,
    },
    /// The model uses an operator (or an operator form) this importer does not handle.
    #[error("{file}: node {node}: operator `{op}` is not supported: {reason}")]
    Unsupported {
        /// The file.
        file: String,
        /// The node.
        node: String,
        /// Its operator type.
        op: String,
        /// Why, and what would be needed.
        reason: String,
    },
    /// A supported operator has attributes or inputs it cannot accept.
    #[error("{file}: node {node} (`{op}`): {reason}")]
    Node {
        /// The file.
        file: String,
        /// The node.
        node: String,
        /// Its operator type.
        op: String,
        /// What is wrong.
        reason: String,
    },
    /// The engine rejected a translated node.
    #[error("{file}: node {node}: {source}")]
    Core {
        /// The file.
        file: String,
        /// The node.
        node: String,
        /// Cause.
        #[source]
        source: slimdet_core::CoreError,
    },
    /// The engine failed while compiling or running an imported model.
    #[error(transparent)]
    Engine(#[from] slimdet_core::CoreError),
    /// An input given to [`crate::OnnxModel`] has the wrong number of values.
    #[error("input has {got} values, the model expects shape {expected:?}")]
    InputLength {
        /// Expected shape.
        expected: Vec<usize>,
        /// Values supplied.
        got: usize,
    },
    /// The detector cannot be expressed in ONNX by the exporter.
    #[error("{file}: cannot export node `{node}`: {reason}")]
    Export {
        /// The target file.
        file: String,
        /// The node of our graph.
        node: String,
        /// Why.
        reason: String,
    },
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, OnnxError>;
