//! The crate's single error type.
//!
//! Every variant names the file it concerns (and the line/column where the
//! format has lines), so that a user can find the bad input without a
//! debugger. Lower-layer errors are kept as `source`, never stringified.

use std::path::PathBuf;

/// Errors from decoding images and reading datasets.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file or directory could not be read, written or listed.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The image bytes could not be decoded (corrupt, truncated or an unsupported format).
    #[error("{path}: cannot decode image: {source}")]
    Decode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// The image could not be encoded (PNG writer failure).
    #[error("{path}: cannot encode image: {source}")]
    Encode {
        path: PathBuf,
        #[source]
        source: image::ImageError,
    },
    /// An [`crate::RgbImage`] whose `data` length is not `width * height * 3`.
    #[error("{path}: image buffer of {width}x{height} RGB needs {expected} bytes, has {got}")]
    BadImageBuffer {
        path: PathBuf,
        width: usize,
        height: usize,
        expected: usize,
        got: usize,
    },
    /// The input asks for more than a stated resource limit (an annotation with more
    /// objects than any dataset has, an image larger than the decoder accepts).
    #[error("{path}: refused: {reason}")]
    Limit { path: PathBuf, reason: String },
    /// The XML is not well formed.
    #[error("{path}:{line}:{column}: malformed XML: {source}")]
    Xml {
        path: PathBuf,
        line: u32,
        column: u32,
        #[source]
        source: roxmltree::Error,
    },
    /// A required element is absent (`element` is the child that is missing, `parent` where it was expected).
    #[error("{path}:{line}: <{parent}> has no <{element}>")]
    MissingElement {
        path: PathBuf,
        line: u32,
        parent: String,
        element: String,
    },
    /// An element's text does not parse as the expected number.
    #[error("{path}:{line}: <{element}> has invalid value {value:?}")]
    BadValue {
        path: PathBuf,
        line: u32,
        element: String,
        value: String,
    },
    /// An `<object>` names a class that is not in the class list.
    #[error("{path}:{line}: unknown class {class:?} (not in the class list)")]
    UnknownClass {
        path: PathBuf,
        line: u32,
        class: String,
    },
    /// The JPEG of an id listed in the split does not exist.
    #[error("{path}: image file missing")]
    MissingImage { path: PathBuf },
    /// `ImageSets/Main/<split>.txt` does not exist.
    #[error("{path}: split file missing")]
    MissingSplit { path: PathBuf },
    /// The split file lists no ids.
    #[error("{path}: split file lists no image ids")]
    EmptySplit { path: PathBuf },
    /// The folder is neither a VOC year folder nor a VOCdevkit folder with exactly one year folder.
    #[error("{path}: not a VOC dataset folder: {reason}")]
    NotVocRoot { path: PathBuf, reason: String },
    /// A class list (labels.txt, `--classes FILE` or the caller's list) is empty.
    #[error("{path}: class list is empty")]
    EmptyClassList { path: PathBuf },
    /// A class name appears twice in a class list.
    #[error("{path}: class {class:?} listed twice")]
    DuplicateClass { path: PathBuf, class: String },
    /// A model's classes are not all among the dataset's (see `VocDataset::for_classes`).
    #[error("{path}: the dataset's {dataset} classes do not include {missing:?}")]
    ClassesNotInDataset {
        path: PathBuf,
        dataset: usize,
        missing: Vec<String>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
