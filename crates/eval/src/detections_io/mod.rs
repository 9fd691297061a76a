//! Detection files: CSV and JSON, read into [`Detection`]s and written back.
//!
//! CSV (the golden `detections.csv` layout): a header naming at least
//! `image,label,score,x1,y1,x2,y2` (any order, extra columns ignored), one
//! detection per row, `label` a class name. JSON: an array of objects
//! `{"image", "label", "label_index", "score", "box": [x1, y1, x2, y2]}`
//! where one of `label` / `label_index` may be left out.
//!
//! Images are keyed by [`image_key`], so `000002`, `000002.jpg` and
//! `VOC2007/JPEGImages/000002.jpg` all name the same image. A bad row is an
//! [`Error::BadRow`] naming file and line, or, with `skip_bad`, a
//! [`SkippedRow`] in the result.

mod csv_io;
mod json_io;

use std::io::Write;
use std::path::Path;

pub use csv_io::{parse_csv, read_csv, write_csv};
pub use json_io::{parse_json, read_json, write_json};

use crate::{Detection, Error, Result, RowProblem};

/// Extensions [`image_key`] strips.
const IMAGE_EXTENSIONS: [&str; 6] = ["jpg", "jpeg", "png", "bmp", "tif", "tiff"];

/// Detections read from a file, and the rows left out with `skip_bad`.
#[derive(Debug, Default)]
pub struct ReadDetections {
    /// Good rows in file order.
    pub detections: Vec<Detection>,
    /// Rejected rows in file order (always empty without `skip_bad`).
    pub skipped: Vec<SkippedRow>,
}

/// A row left out of a detections file.
#[derive(Debug)]
pub struct SkippedRow {
    /// 1-based line (CSV: the row's line; JSON: the line where the item starts).
    pub line: u64,
    /// What was wrong with it.
    pub problem: RowProblem,
}

/// The image id of an image field: the last path component (split on `/`
/// and `\`), without its extension if that is an image extension (jpg,
/// jpeg, png, bmp, tif, tiff; any case). Ids with other dots are kept whole.
pub fn image_key(image: &str) -> &str {
    let name = image.trim();
    let name = name.rsplit(['/', '\\']).next().unwrap_or(name);
    match name.rsplit_once('.') {
        Some((stem, ext))
            if !stem.is_empty() && IMAGE_EXTENSIONS.iter().any(|e| e.eq_ignore_ascii_case(ext)) =>
        {
            stem
        }
        _ => name,
    }
}

/// Reads `path` as CSV or JSON according to its extension (`.csv`, `.json`).
pub fn read_detections(
    path: &Path,
    class_names: &[String],
    skip_bad: bool,
) -> Result<ReadDetections> {
    let ext = path
        .extension()
        .and_then(|e| e.to_str())
        .map(str::to_ascii_lowercase);
    match ext.as_deref() {
        Some("csv") => read_csv(path, class_names, skip_bad),
        Some("json") => read_json(path, class_names, skip_bad),
        _ => Err(Error::UnknownFormat {
            path: path.to_path_buf(),
        }),
    }
}

/// Collects rows: a problem is an error, or a skip with `skip_bad`.
pub(crate) struct Collector<'a> {
    path: &'a Path,
    skip_bad: bool,
    out: ReadDetections,
}

impl<'a> Collector<'a> {
    pub(crate) fn new(path: &'a Path, skip_bad: bool) -> Self {
        Self {
            path,
            skip_bad,
            out: ReadDetections::default(),
        }
    }

    pub(crate) fn push(
        &mut self,
        line: u64,
        row: std::result::Result<Detection, RowProblem>,
    ) -> Result<()> {
        match row {
            Ok(d) => self.out.detections.push(d),
            Err(problem) if self.skip_bad => self.out.skipped.push(SkippedRow { line, problem }),
            Err(problem) => {
                return Err(Error::BadRow {
                    path: self.path.to_path_buf(),
                    line,
                    problem,
                });
            }
        }
        Ok(())
    }

    pub(crate) fn finish(self) -> ReadDetections {
        self.out
    }
}

/// Checks a parsed field is finite.
pub(crate) fn finite(
    column: &'static str,
    text: &str,
    v: Option<f32>,
) -> std::result::Result<f32, RowProblem> {
    match v {
        Some(v) if v.is_finite() => Ok(v),
        _ => Err(RowProblem::BadNumber {
            column,
            value: text.to_string(),
        }),
    }
}

/// The class index of a label name.
pub(crate) fn class_of(
    label: &str,
    class_names: &[String],
) -> std::result::Result<usize, RowProblem> {
    class_names
        .iter()
        .position(|c| c == label)
        .ok_or_else(|| RowProblem::UnknownLabel(label.to_string()))
}

/// The name of class `index`, or an error naming the file and row.
pub(crate) fn name_of<'c>(
    path: &Path,
    row: usize,
    index: usize,
    class_names: &'c [String],
) -> Result<&'c str> {
    class_names
        .get(index)
        .map(String::as_str)
        .ok_or_else(|| Error::ClassIndexOutOfRange {
            path: path.to_path_buf(),
            row,
            index,
            classes: class_names.len(),
        })
}

/// Writes `path` atomically with what `fill` writes ([`slimdet_atomic::write_with`]).
pub(crate) fn write_atomic(
    path: &Path,
    fill: impl FnOnce(&mut dyn Write) -> std::io::Result<()>,
) -> Result<()> {
    slimdet_atomic::write_with(path, fill).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
