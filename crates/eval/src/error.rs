//! The crate's single error type and the per-row problems of detection files.
//!
//! File errors name the file and, where the format has lines, the line, so
//! that a user can fix the input without a debugger.

use std::path::PathBuf;

/// Why one row (CSV) or item (JSON) of a detections file was rejected.
#[derive(Debug, thiserror::Error)]
pub enum RowProblem {
    /// The row has fewer fields than the header names.
    #[error("expected {expected} fields, found {got}")]
    FieldCount { expected: usize, got: usize },
    /// The CSV row is not valid UTF-8 (or otherwise unreadable by the CSV parser).
    #[error("unreadable row: {0}")]
    Csv(#[source] csv::Error),
    /// The JSON item does not have the expected fields or types.
    #[error("invalid item: {0}")]
    Json(#[source] serde_json::Error),
    /// The image name is empty.
    #[error("empty image name")]
    EmptyImage,
    /// The label is not one of the class names.
    #[error("unknown label {0:?}")]
    UnknownLabel(String),
    /// A JSON item has neither `label` nor `label_index`.
    #[error("neither \"label\" nor \"label_index\" given")]
    MissingLabel,
    /// A `label_index` is not below the number of classes.
    #[error("label_index {index} out of range (there are {classes} classes)")]
    LabelIndexOutOfRange { index: usize, classes: usize },
    /// `label` and `label_index` name different classes.
    #[error("label {label:?} is class {expected}, but label_index is {index}")]
    LabelMismatch {
        label: String,
        expected: usize,
        index: usize,
    },
    /// A number field does not parse, or is NaN or infinite.
    #[error("column {column}: {value:?} is not a finite number")]
    BadNumber { column: &'static str, value: String },
}

/// Errors of the evaluation crate.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// A file could not be read or written.
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    /// The CSV file could not be read as a whole (I/O failure, bad header).
    #[error("{path}: {source}")]
    Csv {
        path: PathBuf,
        #[source]
        source: csv::Error,
    },
    /// The CSV header lacks a required column.
    #[error("{path}:1: missing column {column:?} (need image,label,score,x1,y1,x2,y2)")]
    MissingColumn { path: PathBuf, column: &'static str },
    /// The JSON file is not a well-formed array.
    #[error("{path}:{line}:{column}: {source}")]
    Json {
        path: PathBuf,
        line: usize,
        column: usize,
        #[source]
        source: serde_json::Error,
    },
    /// One row (CSV line or JSON item starting on `line`) is invalid.
    #[error("{path}:{line}: {problem}")]
    BadRow {
        path: PathBuf,
        line: u64,
        #[source]
        problem: RowProblem,
    },
    /// The file name has neither a `.csv` nor a `.json` extension.
    #[error("{path}: unknown detections format (expected .csv or .json)")]
    UnknownFormat { path: PathBuf },
    /// A detection to be written has a class index with no name.
    #[error("{path}: detection {row} has class index {index}, but there are {classes} classes")]
    ClassIndexOutOfRange {
        path: PathBuf,
        row: usize,
        index: usize,
        classes: usize,
    },
    /// An AP metric name other than `voc07` / `voc10`.
    #[error("unknown AP metric {value:?} (expected voc07 or voc10)")]
    UnknownMetric { value: String },
    /// The model could not be built or run.
    #[error(transparent)]
    Model(#[from] slimdet_models::ModelError),
    /// A dataset file could not be read.
    #[error(transparent)]
    Data(#[from] slimdet_data::Error),
    /// A timing was asked for with no runs or no images.
    #[error("nothing to time: zero runs or no images")]
    NoRuns,
    /// The dataset split selects no images.
    #[error("{root}: split {split:?} selects no images")]
    EmptySelection { root: PathBuf, split: String },
    /// A result file's row does not have the documented columns.
    #[error("result row has columns {got:?}, expected the documented {expected:?}")]
    Columns {
        expected: Vec<String>,
        got: Vec<String>,
    },
}

/// Result alias of this crate.
pub type Result<T> = std::result::Result<T, Error>;
