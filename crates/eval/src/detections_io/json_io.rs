//! JSON detection files: an array of
//! `{"image", "label", "label_index", "score", "box": [x1, y1, x2, y2]}`.

use std::path::Path;

use serde::{Deserialize, Serialize};
use serde_json::value::RawValue;

use super::{Collector, ReadDetections, class_of, finite, image_key, name_of, write_atomic};
use crate::{Detection, Error, Result, RowProblem};

/// One JSON item as accepted by [`parse_json`] (owned strings: a JSON
/// string with escapes cannot be borrowed).
#[derive(Deserialize)]
struct ItemIn {
    image: String,
    #[serde(default)]
    label: Option<String>,
    #[serde(default)]
    label_index: Option<usize>,
    /// Read as f64 and narrowed here, so that an out-of-range value is a bad number
    /// whatever serde_json's float features (its `float_roundtrip` parses f32 fields
    /// directly and rejects them as a syntax-level error instead).
    score: f64,
    #[serde(rename = "box")]
    bbox: [f64; 4],
}

/// One JSON item as written by [`write_json`].
#[derive(Serialize)]
struct ItemOut<'a> {
    image: &'a str,
    label: &'a str,
    label_index: usize,
    score: f32,
    #[serde(rename = "box")]
    bbox: [f32; 4],
}

/// Reads a JSON detections file (see the module docs for the layout).
pub fn read_json(path: &Path, class_names: &[String], skip_bad: bool) -> Result<ReadDetections> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_json(&text, path, class_names, skip_bad)
}

/// Parses JSON text; `path` is only used in errors. A text that is not a
/// JSON array is an [`Error::Json`] (even with `skip_bad`); an item with
/// missing or mistyped fields, an unknown label, a `label`/`label_index`
/// disagreement or a non-finite number is a bad row, reported at the line
/// where the item starts.
pub fn parse_json(
    text: &str,
    path: &Path,
    class_names: &[String],
    skip_bad: bool,
) -> Result<ReadDetections> {
    let items: Vec<&RawValue> = serde_json::from_str(text).map_err(|source| Error::Json {
        path: path.to_path_buf(),
        line: source.line(),
        column: source.column(),
        source,
    })?;
    let mut out = Collector::new(path, skip_bad);
    for raw in items {
        let line = line_of(text, raw.get());
        out.push(line, parse_item(raw.get(), class_names))?;
    }
    Ok(out.finish())
}

/// 1-based line of `part` inside `text` (`part` borrows from `text`).
fn line_of(text: &str, part: &str) -> u64 {
    let offset = (part.as_ptr() as usize).wrapping_sub(text.as_ptr() as usize);
    let before = text.as_bytes().get(..offset).unwrap_or_default();
    1 + before.iter().filter(|&&b| b == b'\n').count() as u64
}

fn parse_item(raw: &str, class_names: &[String]) -> std::result::Result<Detection, RowProblem> {
    let item: ItemIn = serde_json::from_str(raw).map_err(RowProblem::Json)?;
    let class_index = match (item.label.as_deref(), item.label_index) {
        (None, None) => return Err(RowProblem::MissingLabel),
        (Some(label), index) => {
            let c = class_of(label, class_names)?;
            match index {
                Some(i) if i != c => {
                    return Err(RowProblem::LabelMismatch {
                        label: label.to_string(),
                        expected: c,
                        index: i,
                    });
                }
                _ => c,
            }
        }
        (None, Some(i)) if i < class_names.len() => i,
        (None, Some(i)) => {
            return Err(RowProblem::LabelIndexOutOfRange {
                index: i,
                classes: class_names.len(),
            });
        }
    };
    let score = finite("score", &item.score.to_string(), Some(item.score as f32))?;
    let mut bbox = [0f32; 4];
    for ((b, v), name) in bbox.iter_mut().zip(item.bbox).zip(["x1", "y1", "x2", "y2"]) {
        *b = finite(name, &v.to_string(), Some(v as f32))?;
    }
    let image = image_key(&item.image);
    if image.is_empty() {
        return Err(RowProblem::EmptyImage);
    }
    Ok(Detection {
        image: image.to_string(),
        class_index,
        score,
        bbox,
    })
}

/// Writes detections as a JSON array (both `label` and `label_index`),
/// atomically. [`Error::ClassIndexOutOfRange`] if a class index has no name.
pub fn write_json(path: &Path, dets: &[Detection], class_names: &[String]) -> Result<()> {
    let items = dets
        .iter()
        .enumerate()
        .map(|(i, d)| {
            Ok(ItemOut {
                image: &d.image,
                label: name_of(path, i, d.class_index, class_names)?,
                label_index: d.class_index,
                score: d.score,
                bbox: d.bbox,
            })
        })
        .collect::<Result<Vec<_>>>()?;
    write_atomic(path, |w| {
        serde_json::to_writer_pretty(&mut *w, &items)?;
        w.write_all(b"\n")
    })
}
