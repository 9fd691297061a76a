//! Evaluation for slimdet: the exact Pascal VOC average precision of
//! pytorch-ssd's `eval_ssd.py` (spec section 10) and reading/writing
//! detection files.
//!
//! Why exact: the point of the toolkit is to reproduce the reference's mAP
//! (0.6860690100560214 for mb2-ssd-lite on VOC2007 test) and then measure
//! what pruning and quantisation cost, so every detail that moves the last
//! digits is copied: f32 IoU without "+1" and with `1e-5` in the
//! denominator, the comp4 file round trip of boxes, strict `> 0.5`, argmax
//! matching, difficult boxes ignored, f64 cumulative sums, numpy's NaN
//! propagation and summation order.
//!
//! - [`evaluate`]: per-class AP and mAP from ground truth and detections.
//! - [`average_precision_voc07`], [`average_precision_all_point`]: the two
//!   AP formulas on a precision/recall curve.
//! - [`detections_io`]: CSV and JSON detection files.
//! - [`quant_sensitivity`]: the mAP cost of each int8 convolution of a quantized model and
//!   the model that keeps the most sensitive in f32 (`slimdet quantize --auto-keep-float`).

mod ap;
pub mod detections_io;
mod error;
mod evaluate;
pub mod metrics;
pub mod quant_sensitivity;
pub mod results;
pub mod runner;

use std::fmt;
use std::str::FromStr;

pub use ap::{average_precision_all_point, average_precision_voc07};
pub use error::{Error, Result, RowProblem};
pub use evaluate::{evaluate, ground_truth_from_voc, iou_reference};

/// Which AP formula to apply to each class's precision/recall curve.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum ApMetric {
    /// VOC2007 11-point interpolated AP (`eval_ssd.py`'s default,
    /// `--use_2007_metric True`); [`average_precision_voc07`].
    #[default]
    Voc07,
    /// VOC2010+ all-point (area under the monotone curve);
    /// [`average_precision_all_point`].
    Voc10,
}

impl fmt::Display for ApMetric {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            ApMetric::Voc07 => "voc07",
            ApMetric::Voc10 => "voc10",
        })
    }
}

impl FromStr for ApMetric {
    type Err = Error;

    /// Parses `voc07` or `voc10` (case-insensitive).
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "voc07" => Ok(ApMetric::Voc07),
            "voc10" => Ok(ApMetric::Voc10),
            _ => Err(Error::UnknownMetric {
                value: s.to_string(),
            }),
        }
    }
}

/// How `precision = tp / (tp + fp)` treats `tp + fp == 0`.
///
/// That happens when a class's highest-scored detections all match
/// *difficult* ground truth: they are neither TP nor FP, so the first
/// precision values are `0 / 0`.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, Default)]
pub enum NanPolicy {
    /// numpy-compatible (pytorch-ssd): the precision is NaN, `np.max`
    /// propagates it, and the class AP usually becomes NaN (and so does the
    /// mAP). Use this to reproduce the reference's printed numbers.
    #[default]
    Strict,
    /// Official VOC devkit: divide by `max(tp + fp, f64::EPSILON)`, so those
    /// leading precisions are 0 and the AP stays finite.
    Safe,
}

/// One ground-truth box.
#[derive(Clone, Debug, PartialEq)]
pub struct GroundTruth {
    /// Image id; compared to [`Detection::image`] by exact string equality.
    pub image: String,
    /// Class index (0 = background; boxes of class 0 or with an index not
    /// below `class_names.len()` are ignored).
    pub class_index: usize,
    /// `[x1, y1, x2, y2]` in 0-based original-image pixels (VOC value − 1).
    pub bbox: [f32; 4],
    /// Difficult boxes never count as misses, and detections matching them
    /// are neither TP nor FP.
    pub difficult: bool,
}

/// One detection.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Image id (see [`GroundTruth::image`]).
    pub image: String,
    /// Class index (0 = background, ignored by [`evaluate`]).
    pub class_index: usize,
    /// Confidence; detections are ranked by it, highest first.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in 0-based original-image pixels, not clipped.
    pub bbox: [f32; 4],
}

/// Output of [`evaluate`].
#[derive(Clone, Debug, PartialEq)]
pub struct ApResult {
    /// The AP formula used.
    pub metric: ApMetric,
    /// `(class name, AP)` for classes `1..class_names.len()` in index order
    /// (background skipped). NaN is possible, see [`evaluate`].
    pub per_class: Vec<(String, f64)>,
    /// Arithmetic mean of all `per_class` APs (NaN if any is NaN or if there
    /// are no classes).
    pub map: f64,
    /// Number of images evaluated, as given by the caller.
    pub images: usize,
    /// Non-difficult ground-truth boxes per class, aligned with `per_class`
    /// (0 marks a class whose AP is not meaningful).
    pub num_gt: Vec<usize>,
}
