//! Class lists of a VOC dataset: the 21 default classes, `labels.txt` and
//! user class files.
//!
//! Index 0 is always `BACKGROUND`; an object's class index is its position
//! in the list, which is also the network's output channel.

use std::collections::HashMap;
use std::path::Path;

use crate::{Error, Result};

/// The default VOC class list of pytorch-ssd (index 0 = BACKGROUND, then the
/// 20 VOC classes in alphabetical order; spec section 12).
pub const VOC_CLASSES: [&str; 21] = [
    "BACKGROUND",
    "aeroplane",
    "bicycle",
    "bird",
    "boat",
    "bottle",
    "bus",
    "car",
    "cat",
    "chair",
    "cow",
    "diningtable",
    "dog",
    "horse",
    "motorbike",
    "person",
    "pottedplant",
    "sheep",
    "sofa",
    "train",
    "tvmonitor",
];

/// The name of the background class at index 0.
pub const BACKGROUND: &str = "BACKGROUND";

/// [`VOC_CLASSES`] as owned strings.
pub fn default_classes() -> Vec<String> {
    VOC_CLASSES.iter().map(|s| s.to_string()).collect()
}

/// Parses the text of a class file: names separated by commas and/or line
/// breaks, spaces removed, empty entries dropped; `BACKGROUND` is prepended
/// unless the first entry already is `BACKGROUND` (case-insensitive).
///
/// This reads both pytorch-ssd's `labels.txt` (comma separated,
/// `BACKGROUND` implied) and its `voc-model-labels.txt` (one per line,
/// `BACKGROUND` first). Difference from the reference: it concatenates the
/// lines of `labels.txt` *without* a separator, so a one-name-per-line
/// `labels.txt` becomes a single bogus class there; here line breaks
/// separate names. `path` is only used in error messages.
pub fn parse_class_text(text: &str, path: &Path) -> Result<Vec<String>> {
    let names: Vec<String> = text
        .split([',', '\n', '\r'])
        .map(|s| s.chars().filter(|c| *c != ' ').collect::<String>())
        .map(|s| s.trim().to_string())
        .filter(|s| !s.is_empty())
        .collect();
    if names.is_empty() {
        return Err(Error::EmptyClassList {
            path: path.to_path_buf(),
        });
    }
    let mut out = Vec::with_capacity(names.len() + 1);
    if !names[0].eq_ignore_ascii_case(BACKGROUND) {
        out.push(BACKGROUND.to_string());
    }
    out.extend(names);
    Ok(out)
}

/// Reads and parses a class file with [`parse_class_text`].
pub fn read_class_file(path: &Path) -> Result<Vec<String>> {
    let text = std::fs::read_to_string(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    parse_class_text(&text, path)
}

/// Name → index map; fails on an empty list or a duplicate name.
pub(crate) fn index_classes(names: &[String], path: &Path) -> Result<HashMap<String, usize>> {
    if names.is_empty() {
        return Err(Error::EmptyClassList {
            path: path.to_path_buf(),
        });
    }
    let mut map = HashMap::with_capacity(names.len());
    for (i, n) in names.iter().enumerate() {
        if map.insert(n.clone(), i).is_some() {
            return Err(Error::DuplicateClass {
                path: path.to_path_buf(),
                class: n.clone(),
            });
        }
    }
    Ok(map)
}
