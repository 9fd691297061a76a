//! Errors of the engine.

use thiserror::Error;

/// What can go wrong while building, rewriting or running a graph.
#[derive(Debug, Error)]
pub enum CoreError {
    /// A tensor's data length does not match its shape.
    #[error("tensor data has {got} values but shape {shape:?} needs {expected}")]
    DataLength {
        /// The shape given.
        shape: Vec<usize>,
        /// Values the shape needs.
        expected: usize,
        /// Values supplied.
        got: usize,
    },
    /// An operator got inputs whose shapes it cannot accept.
    #[error("node `{node}`: {reason}")]
    Shape {
        /// Node name.
        node: String,
        /// What is wrong.
        reason: String,
    },
    /// The graph itself is malformed (a value used before it is produced, ...).
    #[error("invalid graph: {0}")]
    Graph(String),
    /// The input given to a compiled plan does not match the shape it was compiled for.
    #[error("input has {got} values, the plan was compiled for shape {expected:?}")]
    InputShape {
        /// Compiled input shape `[N, H, W, C]`.
        expected: Vec<usize>,
        /// Values supplied.
        got: usize,
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

/// Result type of the engine.
pub type Result<T> = std::result::Result<T, CoreError>;
