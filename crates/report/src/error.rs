//! The report crate's error type.

use std::path::PathBuf;

/// Errors of report generation.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// The study rows could not be read.
    #[error("study rows: {0}")]
    Input(String),
    /// A figure could not be drawn or encoded.
    #[error("plot: {0}")]
    Plot(String),
    /// A file could not be written.
    #[error("{}: {source}", path.display())]
    Io {
        /// The file.
        path: PathBuf,
        /// The cause.
        source: std::io::Error,
    },
}

/// Result with [`Error`].
pub type Result<T> = std::result::Result<T, Error>;
