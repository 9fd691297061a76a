//! Validation mAP: the inference predictor (running BN statistics, pytorch-ssd's
//! `Predictor` semantics) over a VOC split, scored by `slimdet_eval` with the VOC2007
//! 11-point metric.
//!
//! Unlike `eval_ssd.py`, the mean is over the classes that have at least one non-difficult
//! box in the images evaluated, so that a `--val-limit` subset is not dragged down by
//! classes it does not contain (the full per-class list is kept).

use slimdet_data::voc::VocDataset;
use slimdet_eval::{ApMetric, Detection, NanPolicy, ground_truth_from_voc};
use slimdet_models::{Detector, Predictor};

use crate::error::Result;

/// Result of one validation.
#[derive(Clone, Debug, PartialEq)]
pub struct ValReport {
    /// Mean AP over the classes present in the images evaluated.
    pub map: f64,
    /// `(class, AP, non-difficult boxes)` for every class but background.
    pub per_class: Vec<(String, f64, usize)>,
    /// Images evaluated.
    pub images: usize,
}

/// Runs `det` on the first `limit` images of `ds` (all if `None`) on `threads` threads
/// and scores the detections (threshold 0.01, hard NMS, no top-k, VOC07 AP, devkit
/// handling of 0/0 precision).
pub fn validate(
    det: &Detector,
    ds: &VocDataset,
    limit: Option<usize>,
    threads: usize,
) -> Result<ValReport> {
    let mut pred = Predictor::new(det, threads)?;
    let ids: Vec<String> = ds
        .ids()
        .iter()
        .take(limit.unwrap_or(usize::MAX))
        .cloned()
        .collect();
    let mut items = Vec::with_capacity(ids.len());
    let mut dets = Vec::new();
    for id in &ids {
        let ann = ds.annotation(id)?;
        let img = ds.load_image(id)?;
        for d in pred.predict(&img, 0.0, 0)? {
            dets.push(Detection {
                image: id.clone(),
                class_index: d.label,
                score: d.score,
                bbox: d.bbox,
            });
        }
        items.push((id.clone(), ann));
    }
    let gts = ground_truth_from_voc(&items);
    let r = slimdet_eval::evaluate(
        &gts,
        &dets,
        ds.class_names(),
        ApMetric::Voc07,
        NanPolicy::Safe,
        ids.len(),
    );
    let per_class: Vec<(String, f64, usize)> = r
        .per_class
        .into_iter()
        .zip(r.num_gt)
        .map(|((c, ap), n)| (c, ap, n))
        .collect();
    let present: Vec<f64> = per_class
        .iter()
        .filter(|(_, _, n)| *n > 0)
        .map(|(_, ap, _)| *ap)
        .collect();
    let map = if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    };
    Ok(ValReport {
        map,
        per_class,
        images: ids.len(),
    })
}
