//! The crate's single error type.
//!
//! Every variant names the file it is about (`path`) and the cause, so a
//! message read on its own (in a CLI, a log, a CI report) says which weight
//! file is broken and how. Lower-layer errors (I/O, zip, safetensors) are
//! kept as `#[source]`, not stringified.

use std::path::PathBuf;

/// Errors from loading or saving weight files.
#[derive(Debug, thiserror::Error)]
pub enum FormatError {
    /// The file could not be opened, read, written, synced or renamed.
    #[error("{}: I/O error while {op}: {source}", path.display())]
    Io {
        path: PathBuf,
        /// What was being done, e.g. "reading", "renaming temp file".
        op: &'static str,
        #[source]
        source: std::io::Error,
    },
    /// The data ends before a complete item could be read.
    #[error("{}: file is truncated: {what} at byte {offset} runs past the end of the data", path.display())]
    Truncated {
        path: PathBuf,
        /// The item being read, e.g. "pickle opcode", "storage 3 data".
        what: String,
        /// Absolute byte offset where the incomplete item starts.
        offset: u64,
    },
    /// The file is not of a kind this crate reads.
    #[error("{}: not a recognised weight file: {detail}", path.display())]
    BadMagic { path: PathBuf, detail: String },
    /// A version this crate does not read (pickle protocol or torch.save protocol).
    #[error("{}: unsupported {what} version {version}", path.display())]
    UnsupportedProtocol {
        path: PathBuf,
        what: &'static str,
        version: i128,
    },
    /// The pickle names a global that is not on the allow-list; nothing was executed.
    #[error(
        "{}: refusing pickle global `{module}.{name}`: only OrderedDict, torch tensor \
         rebuild functions and torch storage types are allowed",
        path.display()
    )]
    ForbiddenGlobal {
        path: PathBuf,
        module: String,
        name: String,
    },
    /// The pickle stream is well-formed bytes but not a valid program for this subset.
    #[error("{}: malformed pickle at byte {offset}: {reason}", path.display())]
    MalformedPickle {
        path: PathBuf,
        /// Absolute byte offset of the offending opcode.
        offset: u64,
        reason: String,
    },
    /// A tensor refers to a storage the file does not contain.
    #[error("{}: storage `{key}` is missing: {detail}", path.display())]
    MissingStorage {
        path: PathBuf,
        key: String,
        detail: String,
    },
    /// A tensor's offset/size/stride reaches outside its storage.
    #[error("{}: tensor `{tensor}` is out of bounds of its storage: {detail}", path.display())]
    OutOfBounds {
        path: PathBuf,
        tensor: String,
        detail: String,
    },
    /// The zip container (new-style .pth) could not be read.
    #[error("{}: cannot read the zip archive (truncated or corrupt?): {source}", path.display())]
    Zip {
        path: PathBuf,
        #[source]
        source: zip::result::ZipError,
    },
    /// A safetensors file is invalid or a tensor cannot be represented.
    #[error("{}: safetensors: {reason}", path.display())]
    Safetensors {
        path: PathBuf,
        reason: String,
        #[source]
        source: Option<safetensors::SafeTensorError>,
    },
    /// A TensorFlow `GraphDef` (`.pb`) that cannot be decoded or holds an invalid tensor.
    #[error("{}: TensorFlow GraphDef: {reason}", path.display())]
    GraphDef { path: PathBuf, reason: String },
    /// The file parsed, but its top-level object is not a state dict of tensors.
    #[error("{}: not a state dict: {reason}", path.display())]
    NotAStateDict { path: PathBuf, reason: String },
    /// The file asks for more than a stated resource limit (a decompression bomb, an
    /// allocation out of proportion to the file's size).
    #[error("{}: refused: {reason}", path.display())]
    Limit { path: PathBuf, reason: String },
}

/// Result alias used throughout the crate.
pub type Result<T> = std::result::Result<T, FormatError>;
