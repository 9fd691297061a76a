//! CSV detection files: `image,label,score,x1,y1,x2,y2` with a header.

use std::path::Path;

use csv::StringRecord;

use super::{Collector, ReadDetections, class_of, finite, image_key, name_of, write_atomic};
use crate::{Detection, Error, Result, RowProblem};

/// Required columns, in the order [`parse_row`] uses them.
const COLUMNS: [&str; 7] = ["image", "label", "score", "x1", "y1", "x2", "y2"];

/// Reads a CSV detections file (see the module docs for the layout).
pub fn read_csv(path: &Path, class_names: &[String], skip_bad: bool) -> Result<ReadDetections> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_csv(&data, path, class_names, skip_bad)
}

/// Parses CSV bytes; `path` is only used in errors. Fields are trimmed,
/// blank lines skipped, header names matched case-insensitively.
pub fn parse_csv(
    data: &[u8],
    path: &Path,
    class_names: &[String],
    skip_bad: bool,
) -> Result<ReadDetections> {
    let csv_err = |source| Error::Csv {
        path: path.to_path_buf(),
        source,
    };
    let mut rdr = csv::ReaderBuilder::new()
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(data);
    let header = rdr.headers().map_err(csv_err)?.clone();
    let mut cols = [0usize; 7];
    for (c, name) in cols.iter_mut().zip(COLUMNS) {
        *c = header
            .iter()
            .position(|h| h.eq_ignore_ascii_case(name))
            .ok_or(Error::MissingColumn {
                path: path.to_path_buf(),
                column: name,
            })?;
    }
    let mut out = Collector::new(path, skip_bad);
    for rec in rdr.records() {
        match rec {
            Ok(rec) => {
                let line = rec.position().map_or(0, |p| p.line());
                out.push(line, parse_row(&rec, &cols, header.len(), class_names))?;
            }
            Err(e) if e.is_io_error() => return Err(csv_err(e)),
            Err(e) => {
                let line = e.position().map_or(0, |p| p.line());
                out.push(line, Err(RowProblem::Csv(e)))?;
            }
        }
    }
    Ok(out.finish())
}

fn parse_row(
    rec: &StringRecord,
    cols: &[usize; 7],
    header_len: usize,
    class_names: &[String],
) -> std::result::Result<Detection, RowProblem> {
    let field = |i: usize| rec.get(cols[i]);
    let (Some(image), Some(label)) = (field(0), field(1)) else {
        return Err(RowProblem::FieldCount {
            expected: header_len,
            got: rec.len(),
        });
    };
    let mut nums = [0f32; 5];
    for (k, v) in nums.iter_mut().enumerate() {
        let Some(text) = field(k + 2) else {
            return Err(RowProblem::FieldCount {
                expected: header_len,
                got: rec.len(),
            });
        };
        *v = finite(COLUMNS[k + 2], text, text.parse().ok())?;
    }
    let image = image_key(image);
    if image.is_empty() {
        return Err(RowProblem::EmptyImage);
    }
    Ok(Detection {
        image: image.to_string(),
        class_index: class_of(label, class_names)?,
        score: nums[0],
        bbox: [nums[1], nums[2], nums[3], nums[4]],
    })
}

/// Writes detections as CSV (header `image,label,score,x1,y1,x2,y2`,
/// labels by name, numbers in shortest round-trip form), atomically.
/// [`Error::ClassIndexOutOfRange`] if a class index has no name.
pub fn write_csv(path: &Path, dets: &[Detection], class_names: &[String]) -> Result<()> {
    let labels = dets
        .iter()
        .enumerate()
        .map(|(i, d)| name_of(path, i, d.class_index, class_names))
        .collect::<Result<Vec<_>>>()?;
    write_atomic(path, |w| {
        let mut wr = csv::Writer::from_writer(w);
        wr.write_record(COLUMNS)?;
        for (d, label) in dets.iter().zip(&labels) {
            let [x1, y1, x2, y2] = d.bbox;
            wr.write_record([
                d.image.clone(),
                label.to_string(),
                d.score.to_string(),
                x1.to_string(),
                y1.to_string(),
                x2.to_string(),
                y2.to_string(),
            ])?;
        }
        wr.flush()
    })
}
