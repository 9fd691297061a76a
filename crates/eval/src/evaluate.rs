//! Per-class matching of detections to ground truth and the resulting AP,
//! as `compute_average_precision_per_class` in pytorch-ssd's `eval_ssd.py`
//! (spec section 10).

use std::cmp::Ordering;
use std::collections::HashMap;

use slimdet_data::voc::Annotation;

use crate::ap::{average_precision_all_point, average_precision_voc07};
use crate::{ApMetric, ApResult, Detection, GroundTruth, NanPolicy};

/// Matching threshold: a detection can match a box only if IoU `> 0.5` (strict).
const IOU_THRESHOLD: f32 = 0.5;

/// `np.maximum`/`torch.max` on f32: NaN if either is NaN.
fn max_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.max(b)
    }
}

/// `torch.min` on f32: NaN if either is NaN.
fn min_nan(a: f32, b: f32) -> f32 {
    if a.is_nan() || b.is_nan() {
        f32::NAN
    } else {
        a.min(b)
    }
}

/// `torch.clamp(x, min=0)`: NaN stays NaN.
fn clamp0(x: f32) -> f32 {
    if x < 0.0 { 0.0 } else { x }
}

/// pytorch-ssd's `iou_of(a, b, eps=1e-5)` in f32, operation for operation:
/// `overlap / (area(a) + area(b) - overlap + 1e-5)` with boxes
/// `[x1, y1, x2, y2]`, widths and heights clamped at 0 and no "+1".
/// In evaluation `a` is the detection and `b` the ground truth.
pub fn iou_reference(a: [f32; 4], b: [f32; 4]) -> f32 {
    let area = |x1: f32, y1: f32, x2: f32, y2: f32| clamp0(x2 - x1) * clamp0(y2 - y1);
    let overlap = area(
        max_nan(a[0], b[0]),
        max_nan(a[1], b[1]),
        min_nan(a[2], b[2]),
        min_nan(a[3], b[3]),
    );
    let area_a = area(a[0], a[1], a[2], a[3]);
    let area_b = area(b[0], b[1], b[2], b[3]);
    overlap / (area_a + area_b - overlap + 1e-5)
}

/// The reference writes boxes `+ 1` (f32) to `det_test_<class>.txt` with
/// the shortest round-trip decimal and reads them back `- 1` (f32), which
/// can change the low bits; this reproduces that round trip exactly.
fn comp4_round_trip(b: [f32; 4]) -> [f32; 4] {
    b.map(|v| (v + 1.0) - 1.0)
}

/// Highest score first; NaN scores last (as `np.argsort(-scores)`).
fn by_score_desc(a: &Detection, b: &Detection) -> Ordering {
    match (a.score.is_nan(), b.score.is_nan()) {
        (false, false) => b.score.partial_cmp(&a.score).unwrap_or(Ordering::Equal),
        (x, y) => x.cmp(&y),
    }
}

/// Ground-truth boxes of one class in one image.
#[derive(Default)]
struct ImageGt {
    boxes: Vec<[f32; 4]>,
    difficult: Vec<bool>,
    matched: Vec<bool>,
}

/// Evaluates detections against ground truth, VOC style, per class
/// `1..class_names.len()`, returning per-class AP and their mean.
///
/// For each class, exactly as the reference:
/// 1. detections of the class sorted by score, highest first. The sort is
///    **stable**: equal scores keep their input order (numpy's quicksort
///    order for ties is not reproducible);
/// 2. each detection box goes through the comp4 file round trip
///    (`(x + 1) - 1` in f32), then: no gt of this class in its image → FP;
///    else IoU ([`iou_reference`]) with every gt box of the class in the
///    image, difficult ones included; only the first argmax counts: if
///    `max > 0.5` and that box is difficult → ignored (neither TP nor FP),
///    not yet matched → TP (and now matched), already matched → FP (even if
///    another gt overlaps > 0.5); `max <= 0.5` (or NaN) → FP;
/// 3. cumulative `tp`, `fp` in f64; `precision = tp / (tp + fp)` (see
///    [`NanPolicy`]), `recall = tp / n_gt` with `n_gt` the non-difficult
///    boxes of the class;
/// 4. AP by `metric`.
///
/// Edge cases, following the reference's arithmetic:
/// - no detections for a class: AP 0 with both metrics;
/// - a class with no non-difficult gt (none at all, or difficult only):
///   the reference would crash (`KeyError` in `true_case_stat`); here the
///   arithmetic goes on: `recall = 0 / 0 = NaN`, so `voc07` gives 0 and
///   `voc10` gives NaN when the class has detections (0 without). Such
///   classes have `num_gt == 0` in the result; leave them out of the class
///   list if they should not weigh on the mAP;
/// - a NaN class AP makes the mAP NaN (plain mean, as Python's `sum / len`);
///   with no classes at all the mAP is NaN.
///
/// Detections and gts with class 0 (background) or an index not below
/// `class_names.len()` are ignored. `images` is only copied into the result.
pub fn evaluate(
    gts: &[GroundTruth],
    dets: &[Detection],
    class_names: &[String],
    metric: ApMetric,
    nan: NanPolicy,
    images: usize,
) -> ApResult {
    let nc = class_names.len();
    let mut gt_by_class: Vec<HashMap<&str, ImageGt>> = (0..nc).map(|_| HashMap::new()).collect();
    let mut num_gt = vec![0usize; nc];
    for g in gts
        .iter()
        .filter(|g| g.class_index > 0 && g.class_index < nc)
    {
        let e = gt_by_class[g.class_index]
            .entry(g.image.as_str())
            .or_default();
        e.boxes.push(g.bbox);
        e.difficult.push(g.difficult);
        e.matched.push(false);
        num_gt[g.class_index] += usize::from(!g.difficult);
    }
    let mut det_by_class: Vec<Vec<&Detection>> = vec![Vec::new(); nc];
    for d in dets
        .iter()
        .filter(|d| d.class_index > 0 && d.class_index < nc)
    {
        det_by_class[d.class_index].push(d);
    }

    let mut per_class = Vec::with_capacity(nc.saturating_sub(1));
    for c in 1..nc {
        let mut class_dets = std::mem::take(&mut det_by_class[c]);
        class_dets.sort_by(|a, b| by_score_desc(a, b));
        let (precision, recall) =
            precision_recall(&class_dets, &mut gt_by_class[c], num_gt[c], nan);
        let ap = match metric {
            ApMetric::Voc07 => average_precision_voc07(&precision, &recall),
            ApMetric::Voc10 => average_precision_all_point(&precision, &recall),
        };
        per_class.push((class_names[c].clone(), ap));
    }
    let map = if per_class.is_empty() {
        f64::NAN
    } else {
        per_class.iter().fold(0.0, |s, (_, ap)| s + ap) / per_class.len() as f64
    };
    ApResult {
        metric,
        per_class,
        map,
        images,
        num_gt: num_gt.get(1..).map(<[usize]>::to_vec).unwrap_or_default(),
    }
}

/// The `[n]` precision and recall curves of one class's sorted detections.
fn precision_recall(
    dets: &[&Detection],
    gt: &mut HashMap<&str, ImageGt>,
    num_gt: usize,
    nan: NanPolicy,
) -> (Vec<f64>, Vec<f64>) {
    let (mut tp, mut fp) = (0.0f64, 0.0f64);
    let mut precision = Vec::with_capacity(dets.len());
    let mut recall = Vec::with_capacity(dets.len());
    for d in dets {
        match gt.get_mut(d.image.as_str()) {
            None => fp += 1.0,
            Some(img) => {
                let b = comp4_round_trip(d.bbox);
                let mut best = (0usize, f32::NEG_INFINITY);
                for (i, g) in img.boxes.iter().enumerate() {
                    let iou = iou_reference(b, *g);
                    if iou.is_nan() {
                        best = (i, f32::NAN);
                        break;
                    }
                    if iou > best.1 {
                        best = (i, iou);
                    }
                }
                let (i, max_iou) = best;
                if max_iou > IOU_THRESHOLD {
                    if !img.difficult[i] {
                        if img.matched[i] {
                            fp += 1.0;
                        } else {
                            img.matched[i] = true;
                            tp += 1.0;
                        }
                    }
                } else {
                    fp += 1.0;
                }
            }
        }
        let denom = match nan {
            NanPolicy::Strict => tp + fp,
            NanPolicy::Safe => (tp + fp).max(f64::EPSILON),
        };
        precision.push(tp / denom);
        recall.push(tp / num_gt as f64);
    }
    (precision, recall)
}

/// Ground truth from VOC annotations (difficult boxes kept, flagged), one
/// [`GroundTruth`] per object, image = the id.
pub fn ground_truth_from_voc(items: &[(String, Annotation)]) -> Vec<GroundTruth> {
    items
        .iter()
        .flat_map(|(id, a)| {
            a.objects.iter().map(move |o| GroundTruth {
                image: id.clone(),
                class_index: o.class_index,
                bbox: o.bbox,
                difficult: o.difficult,
            })
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn comp4_round_trip_drops_low_bits() {
        // 0.1 + 1 in f32 keeps fewer fraction bits than 0.1 itself.
        assert_eq!(comp4_round_trip([0.1; 4])[0], 0.100_000_024);
        assert_eq!(
            comp4_round_trip([262.0, 0.0, -1.0, 1e-9]),
            [262.0, 0.0, -1.0, 0.0]
        );
    }

    #[test]
    fn nan_scores_sort_last() {
        let d = |score| Detection {
            image: String::new(),
            class_index: 1,
            score,
            bbox: [0.0; 4],
        };
        let mut v = [d(f32::NAN), d(0.2), d(0.9)];
        v.sort_by(by_score_desc);
        assert_eq!(v[0].score, 0.9);
        assert_eq!(v[1].score, 0.2);
        assert!(v[2].score.is_nan());
    }
}
