//! The slimdet model file: a safetensors container whose metadata holds the whole model,
//! so that loading it needs no architecture name.
//!
//! | metadata key | value |
//! |---|---|
//! | `slimdet.model.version` | `2` ([`FORMAT_VERSION`]) |
//! | `slimdet.graph` | the network as a JSON [`slimdet_core::GraphDesc`]: nodes, op attributes, value ids, parameter shapes |
//! | `slimdet.head` | JSON: family label, class names, input size, pre-processing, box coder variances, score function, NMS settings, and the priors `[cx, cy, w, h]` |
//! | `slimdet.arch`, `slimdet.classes` | the family label and comma-joined class names, for readers of version 1 |
//!
//! The tensors are the graph's parameters under their state_dict keys
//! (`<node name>.weight`, ...), dense or in the sparse `bitmap-v1` layout; quantized
//! files add their own keys (see `slimdet-quant`). Version 1 files (no `slimdet.graph`)
//! named an architecture and are rebuilt by its graph builder ([`crate::Arch`]).

use std::collections::BTreeMap;

use serde::{Deserialize, Serialize};
use slimdet_core::{Graph, GraphDesc};
use slimdet_data::Resize;

use crate::arch::{ScoreFn, SsdConfig};
use crate::error::{ModelError, Result};

/// Metadata key of the format version.
pub const VERSION_KEY: &str = "slimdet.model.version";
/// The version this build writes; it reads this one and version 1.
pub const FORMAT_VERSION: u32 = 2;
/// Metadata key of the graph description.
pub const GRAPH_KEY: &str = "slimdet.graph";
/// Metadata key of the head description.
pub const HEAD_KEY: &str = "slimdet.head";
/// Largest input side a file may declare.
const MAX_INPUT: usize = 4096;

/// Everything of a detector except its network: what `slimdet.head` stores.
#[derive(Clone, Debug, PartialEq)]
pub struct Head {
    /// Family label (`mb2-ssd-lite`, a file's own), for reports only.
    pub name: String,
    /// Priors, centre form, in output order.
    pub priors: Vec<[f32; 4]>,
    /// Pre/post-processing constants.
    pub config: SsdConfig,
    /// Class names, index 0 = BACKGROUND.
    pub class_names: Vec<String>,
}

/// The input mean as written: one number when the three channels agree (as in every file
/// written before per-channel means existed), else `[r, g, b]` (VGG16-SSD's).
#[derive(Clone, Copy, Serialize, Deserialize)]
#[serde(untagged)]
enum MeanDesc {
    One(f32),
    Rgb([f32; 3]),
}

impl MeanDesc {
    fn new(m: [f32; 3]) -> Self {
        if m[1..].iter().all(|&v| v.to_bits() == m[0].to_bits()) {
            MeanDesc::One(m[0])
        } else {
            MeanDesc::Rgb(m)
        }
    }

    fn rgb(self) -> [f32; 3] {
        match self {
            MeanDesc::One(v) => [v; 3],
            MeanDesc::Rgb(m) => m,
        }
    }
}

/// The JSON form of a [`Head`].
#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct HeadDesc {
    name: String,
    classes: Vec<String>,
    /// `[width, height]`.
    input: [usize; 2],
    mean: MeanDesc,
    std: f32,
    center_variance: f32,
    size_variance: f32,
    /// `softmax` or `sigmoid`.
    scores: String,
    /// `opencv` or `tf_legacy`.
    resize: String,
    nms_iou: f32,
    candidate_size: u64,
    default_threshold: f32,
    max_per_class: u64,
    max_detections: u64,
    clip_boxes: bool,
    priors: Vec<[f32; 4]>,
}

/// Adds the version, graph and head entries for `graph` and `head` to `meta`.
pub fn write_meta(head: &Head, graph: &Graph, meta: &mut BTreeMap<String, String>) {
    let c = &head.config;
    let desc = HeadDesc {
        name: head.name.clone(),
        classes: head.class_names.clone(),
        input: [c.input_w, c.input_h],
        mean: MeanDesc::new(c.mean),
        std: c.std,
        center_variance: c.center_variance,
        size_variance: c.size_variance,
        scores: match c.scores {
            ScoreFn::Softmax => "softmax",
            ScoreFn::Sigmoid => "sigmoid",
        }
        .into(),
        resize: match c.resize {
            Resize::OpenCv => "opencv",
            Resize::TfLegacy => "tf_legacy",
        }
        .into(),
        nms_iou: c.nms_iou,
        candidate_size: c.candidate_size as u64,
        default_threshold: c.default_threshold,
        max_per_class: c.max_per_class as u64,
        max_detections: c.max_detections as u64,
        clip_boxes: c.clip_boxes,
        priors: head.priors.clone(),
    };
    meta.insert(VERSION_KEY.into(), FORMAT_VERSION.to_string());
    meta.insert(GRAPH_KEY.into(), json(&graph.describe()));
    meta.insert(HEAD_KEY.into(), json(&desc));
    meta.insert("slimdet.arch".into(), head.name.clone());
    meta.insert("slimdet.classes".into(), head.class_names.join(","));
}

/// JSON of plain structs of numbers, strings and sequences, which cannot fail.
fn json<T: Serialize>(v: &T) -> String {
    serde_json::to_string(v).unwrap_or_default()
}

/// Reads a version-2 model from `meta`: `Ok(None)` for a version-1 file (no graph), the
/// head and a graph with zero parameters otherwise. The graph may declare at most
/// `max_params` parameter values (bound it by the file's size). The graph is checked
/// against the head: its outputs `logits` `[1, P, classes]` and `locations` `[1, P, 4]`
/// for the declared input, with `P` priors.
pub fn read_meta(
    meta: &BTreeMap<String, String>,
    path: &str,
    max_params: usize,
) -> Result<Option<(Head, Graph)>> {
    let bad = |reason: String| ModelError::Arch {
        path: path.into(),
        reason,
    };
    let version = meta.get(VERSION_KEY);
    let Some(graph_json) = meta.get(GRAPH_KEY) else {
        return match version {
            None => Ok(None),
            Some(v) => Err(bad(format!(
                "model format version {v} without a {GRAPH_KEY} entry"
            ))),
        };
    };
    match version.map(|v| v.parse::<u32>()) {
        Some(Ok(FORMAT_VERSION)) => {}
        Some(Ok(v)) if v > FORMAT_VERSION => {
            return Err(bad(format!(
                "model format version {v} is newer than this slimdet reads (1 and {FORMAT_VERSION})"
            )));
        }
        _ => {
            return Err(bad(format!(
                "{GRAPH_KEY} present but {VERSION_KEY} is {version:?}, expected {FORMAT_VERSION}"
            )));
        }
    }
    let desc: GraphDesc =
        serde_json::from_str(graph_json).map_err(|e| bad(format!("{GRAPH_KEY}: {e}")))?;
    let graph =
        Graph::from_desc(&desc, max_params).map_err(|e| bad(format!("{GRAPH_KEY}: {e}")))?;
    let h: HeadDesc = meta
        .get(HEAD_KEY)
        .ok_or_else(|| bad(format!("{GRAPH_KEY} present but no {HEAD_KEY}")))
        .and_then(|s| serde_json::from_str(s).map_err(|e| bad(format!("{HEAD_KEY}: {e}"))))?;
    let head = head_from_desc(h).map_err(|e| bad(format!("{HEAD_KEY}: {e}")))?;
    check_outputs(&graph, &head).map_err(bad)?;
    Ok(Some((head, graph)))
}

fn head_from_desc(h: HeadDesc) -> std::result::Result<Head, String> {
    let [w, hgt] = h.input;
    if !(1..=MAX_INPUT).contains(&w) || !(1..=MAX_INPUT).contains(&hgt) {
        return Err(format!("input {w}x{hgt} out of range (1 to {MAX_INPUT})"));
    }
    if h.classes.len() < 2 {
        return Err(format!(
            "{} classes (at least background and one)",
            h.classes.len()
        ));
    }
    let mean = h.mean.rgb();
    let finite = [
        mean[0],
        mean[1],
        mean[2],
        h.std,
        h.center_variance,
        h.size_variance,
        h.nms_iou,
        h.default_threshold,
    ];
    if finite.iter().any(|v| !v.is_finite()) || h.std == 0.0 {
        return Err("a pre- or post-processing constant is not finite (or std is 0)".into());
    }
    if h.priors.iter().flatten().any(|v| !v.is_finite()) {
        return Err("a prior is not finite".into());
    }
    let scores = match h.scores.as_str() {
        "softmax" => ScoreFn::Softmax,
        "sigmoid" => ScoreFn::Sigmoid,
        s => return Err(format!("unknown score function `{s}`")),
    };
    let resize = match h.resize.as_str() {
        "opencv" => Resize::OpenCv,
        "tf_legacy" => Resize::TfLegacy,
        s => return Err(format!("unknown resize `{s}`")),
    };
    let size = |v: u64| usize::try_from(v).unwrap_or(usize::MAX);
    Ok(Head {
        name: h.name,
        priors: h.priors,
        config: SsdConfig {
            input_w: w,
            input_h: hgt,
            mean,
            std: h.std,
            center_variance: h.center_variance,
            size_variance: h.size_variance,
            nms_iou: h.nms_iou,
            candidate_size: size(h.candidate_size),
            default_threshold: h.default_threshold,
            scores,
            resize,
            max_per_class: size(h.max_per_class),
            max_detections: size(h.max_detections),
            clip_boxes: h.clip_boxes,
        },
        class_names: h.classes,
    })
}

/// The graph's `logits` and `locations` outputs agree with the head's priors and classes.
fn check_outputs(g: &Graph, head: &Head) -> std::result::Result<(), String> {
    let input = [1, head.config.input_h, head.config.input_w, 3];
    let shapes = slimdet_core::shape::infer(g, &input).map_err(|e| format!("{GRAPH_KEY}: {e}"))?;
    let out = |name: &str| {
        g.outputs
            .iter()
            .find(|(n, _)| n == name)
            .map(|(_, v)| shapes[*v].clone())
            .ok_or_else(|| format!("{GRAPH_KEY}: no `{name}` output"))
    };
    let (p, k) = (head.priors.len(), head.class_names.len());
    let (logits, locations) = (out("logits")?, out("locations")?);
    if logits != [1, p, k] || locations != [1, p, 4] {
        return Err(format!(
            "the graph gives logits {logits:?} and locations {locations:?} for input {input:?}, \
             the head has {p} priors and {k} classes"
        ));
    }
    Ok(())
}
