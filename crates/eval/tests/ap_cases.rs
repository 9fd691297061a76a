//! Hand-computed VOC AP cases: each one pins one rule of pytorch-ssd's
//! `compute_average_precision_per_class` (spec section 10).

use slimdet_eval::{
    ApMetric, Detection, GroundTruth, NanPolicy, average_precision_all_point,
    average_precision_voc07, evaluate, iou_reference,
};

const TOL: f64 = 1e-12;

fn names(n: usize) -> Vec<String> {
    std::iter::once("BACKGROUND".to_string())
        .chain((1..n).map(|i| format!("c{i}")))
        .collect()
}

fn gt(image: &str, class_index: usize, bbox: [f32; 4], difficult: bool) -> GroundTruth {
    GroundTruth {
        image: image.into(),
        class_index,
        bbox,
        difficult,
    }
}

fn det(image: &str, class_index: usize, score: f32, bbox: [f32; 4]) -> Detection {
    Detection {
        image: image.into(),
        class_index,
        score,
        bbox,
    }
}

/// AP of class 1 with one named class.
fn ap1(gts: &[GroundTruth], dets: &[Detection], metric: ApMetric, nan: NanPolicy) -> f64 {
    let r = evaluate(gts, dets, &names(2), metric, nan, 1);
    assert_eq!(r.per_class.len(), 1);
    assert_eq!(r.per_class[0].0, "c1");
    r.per_class[0].1
}

/// Both metrics, strict NaN policy.
fn both(gts: &[GroundTruth], dets: &[Detection]) -> (f64, f64) {
    (
        ap1(gts, dets, ApMetric::Voc07, NanPolicy::Strict),
        ap1(gts, dets, ApMetric::Voc10, NanPolicy::Strict),
    )
}

const A: [f32; 4] = [10.0, 10.0, 50.0, 50.0];
const B: [f32; 4] = [100.0, 100.0, 150.0, 140.0];

#[test]
fn one_perfect_detection_is_ap_one() {
    let (v07, v10) = both(&[gt("i", 1, A, false)], &[det("i", 1, 0.9, A)]);
    assert!((v07 - 1.0).abs() < TOL, "{v07}");
    assert_eq!(v10, 1.0);
}

#[test]
fn duplicate_detection_is_false_positive() {
    // tp = [1, 1, 2], fp = [0, 1, 1]: precision [1, 1/2, 2/3], recall [1/2, 1/2, 1].
    let gts = [gt("i", 1, A, false), gt("i", 1, B, false)];
    let dets = [
        det("i", 1, 0.9, A),
        det("i", 1, 0.8, A),
        det("i", 1, 0.7, B),
    ];
    let (v07, v10) = both(&gts, &dets);
    let (p, r) = ([1.0, 0.5, 2.0 / 3.0], [0.5, 0.5, 1.0]);
    assert_eq!(v07, average_precision_voc07(&p, &r));
    assert_eq!(v10, average_precision_all_point(&p, &r));
    // 6 thresholds (0..=0.5) at precision 1, 5 at 2/3: 28/33.
    assert!((v07 - 28.0 / 33.0).abs() < TOL, "{v07}");
    // 0.5 * 1 + 0.5 * 2/3.
    assert!((v10 - 5.0 / 6.0).abs() < TOL, "{v10}");
}

#[test]
fn best_gt_already_matched_makes_false_positive() {
    // The second detection's argmax is g1 (IoU 1), already taken; it also
    // overlaps g2 with IoU 0.82 > 0.5, but only the argmax counts.
    let g1 = [0.0, 0.0, 10.0, 10.0];
    let g2 = [1.0, 0.0, 11.0, 10.0];
    assert!(iou_reference(g1, g2) > 0.8);
    let gts = [gt("i", 1, g1, false), gt("i", 1, g2, false)];
    let dets = [det("i", 1, 0.9, g1), det("i", 1, 0.8, g1)];
    let (v07, v10) = both(&gts, &dets);
    // precision [1, 1/2], recall [1/2, 1/2]: thresholds 0..=0.5 give 1.
    assert!((v07 - 6.0 / 11.0).abs() < TOL, "{v07}");
    assert_eq!(v10, 0.5);
}

#[test]
fn difficult_only_class() {
    // Matching a difficult box is ignored: tp = fp = 0, so precision = 0/0
    // and recall = 0/0 (no non-difficult gt). voc07: no recall >= t -> 0;
    // voc10: the NaN recall step enters the sum -> NaN.
    let gts = [gt("i", 1, A, true)];
    let dets = [det("i", 1, 0.9, A)];
    for nan in [NanPolicy::Strict, NanPolicy::Safe] {
        assert_eq!(ap1(&gts, &dets, ApMetric::Voc07, nan), 0.0);
        assert!(ap1(&gts, &dets, ApMetric::Voc10, nan).is_nan());
    }
    // Without detections the class gets 0 either way.
    assert_eq!(both(&gts, &[]), (0.0, 0.0));
    let r = evaluate(
        &gts,
        &dets,
        &names(2),
        ApMetric::Voc07,
        NanPolicy::Strict,
        1,
    );
    assert_eq!(r.num_gt, [0]);
}

#[test]
fn difficult_match_first_gives_nan_precision() {
    // d1 hits the difficult box (ignored), d2 the normal one (TP):
    // strict precision [NaN, 1], recall [0, 1].
    let gts = [gt("i", 1, A, true), gt("i", 1, B, false)];
    let dets = [det("i", 1, 0.9, A), det("i", 1, 0.8, B)];
    let strict07 = ap1(&gts, &dets, ApMetric::Voc07, NanPolicy::Strict);
    assert!(strict07.is_nan(), "np.max propagates NaN at t = 0");
    // All-point: the NaN only spreads leftwards, to a point never summed.
    assert_eq!(ap1(&gts, &dets, ApMetric::Voc10, NanPolicy::Strict), 1.0);
    // Devkit policy: precision [0, 1].
    let safe07 = ap1(&gts, &dets, ApMetric::Voc07, NanPolicy::Safe);
    assert!((safe07 - 1.0).abs() < TOL, "{safe07}");
    assert_eq!(ap1(&gts, &dets, ApMetric::Voc10, NanPolicy::Safe), 1.0);
    // And the mAP follows the NaN.
    let r = evaluate(
        &gts,
        &dets,
        &names(3),
        ApMetric::Voc07,
        NanPolicy::Strict,
        1,
    );
    assert!(r.map.is_nan());
}

#[test]
fn no_detections_is_zero() {
    assert_eq!(both(&[gt("i", 1, A, false)], &[]), (0.0, 0.0));
}

#[test]
fn ties_keep_input_order() {
    // Equal scores: the sort is stable. FP first -> precision [0, 1/2];
    // TP first -> precision [1, 1/2]; recall [0, 1] / [1, 1].
    let gts = [gt("i", 1, A, false)];
    let fp = det("other", 1, 0.5, A);
    let tp = det("i", 1, 0.5, A);
    let (v07, v10) = both(&gts, &[fp.clone(), tp.clone()]);
    assert!((v07 - 0.5).abs() < TOL, "{v07}");
    assert_eq!(v10, 0.5);
    let (v07, v10) = both(&gts, &[tp, fp]);
    assert!((v07 - 1.0).abs() < TOL, "{v07}");
    assert_eq!(v10, 1.0);
}

#[test]
fn iou_is_strictly_above_half_and_without_plus_one() {
    // IoU of [0,0,10,20] with [0,0,10,10] is 100 / (200 + 1e-5) < 0.5: FP.
    let gts = [gt("i", 1, [0.0, 0.0, 10.0, 10.0], false)];
    assert_eq!(
        both(&gts, &[det("i", 1, 0.9, [0.0, 0.0, 10.0, 20.0])]),
        (0.0, 0.0)
    );
    // Large boxes: the 1e-5 vanishes in f32 and the IoU is exactly 0.5,
    // which still is not a match (strict >).
    let big = [gt("i", 1, [0.0, 0.0, 1024.0, 1024.0], false)];
    let half = det("i", 1, 0.9, [0.0, 0.0, 1024.0, 2048.0]);
    assert_eq!(iou_reference(half.bbox, big[0].bbox), 0.5);
    assert_eq!(both(&big, &[half]), (0.0, 0.0));
    // Touching boxes do not overlap (no +1 pixel).
    assert_eq!(
        iou_reference([0.0, 0.0, 1.0, 1.0], [1.0, 1.0, 2.0, 2.0]),
        0.0
    );
    let want = 1.0f32 / (4.0 + 4.0 - 1.0 + 1e-5);
    assert_eq!(
        iou_reference([0.0, 0.0, 2.0, 2.0], [1.0, 1.0, 3.0, 3.0]),
        want
    );
    // Degenerate boxes have zero area.
    assert_eq!(
        iou_reference([5.0, 5.0, 1.0, 1.0], [0.0, 0.0, 9.0, 9.0]),
        0.0
    );
}

#[test]
fn eleven_point_vs_all_point_on_one_curve() {
    let p = [1.0, 0.5, 2.0 / 3.0, 0.5];
    let r = [0.25, 0.25, 0.5, 0.5];
    // t = 0, .1, .2 -> 1; t = .3, .4, .5 -> 2/3; t >= .6 -> 0: 5/11.
    let v07 = average_precision_voc07(&p, &r);
    assert!((v07 - 5.0 / 11.0).abs() < TOL, "{v07}");
    // Envelope [1, 2/3, 2/3, 1/2]: 0.25 * 1 + 0.25 * 2/3 + 0.5 * 0 = 5/12.
    let v10 = average_precision_all_point(&p, &r);
    assert!((v10 - 5.0 / 12.0).abs() < TOL, "{v10}");
    assert_eq!(average_precision_voc07(&[], &[]), 0.0);
    assert_eq!(average_precision_all_point(&[], &[]), 0.0);
}

#[test]
fn eleven_point_thresholds_are_k_times_point_one() {
    // 3 * 0.1 = 0.30000000000000004 > 0.3 = 3 / 10, so a recall of exactly
    // 3/10 does not count at t = 0.3: 3 points at 1 and 8 at 1/2 -> 7/11
    // (with t = 3/10 it would be 8/11).
    let v = average_precision_voc07(&[1.0, 0.5], &[3.0 / 10.0, 1.0]);
    assert!((v - 7.0 / 11.0).abs() < TOL, "{v}");
}

#[test]
fn nan_in_curves_follows_numpy() {
    // NaN precision at a reachable recall poisons voc07.
    assert!(average_precision_voc07(&[f64::NAN, 1.0], &[0.0, 1.0]).is_nan());
    // NaN recall never satisfies >= t.
    assert_eq!(average_precision_voc07(&[1.0], &[f64::NAN]), 0.0);
    assert!(average_precision_all_point(&[1.0], &[f64::NAN]).is_nan());
}

#[test]
fn map_is_mean_over_classes_and_ignores_background() {
    let gts = [
        gt("i", 1, A, false),
        gt("i", 2, B, false),
        gt("i", 0, A, false),
    ];
    let dets = [
        det("i", 1, 0.9, A),
        det("i", 0, 0.9, A),
        det("i", 7, 0.9, A),
    ];
    let r = evaluate(
        &gts,
        &dets,
        &names(3),
        ApMetric::Voc10,
        NanPolicy::Strict,
        1,
    );
    assert_eq!(
        r.per_class,
        [("c1".to_string(), 1.0), ("c2".to_string(), 0.0)]
    );
    assert_eq!(r.map, 0.5);
    assert_eq!(r.num_gt, [1, 1]);
    assert_eq!(r.metric.to_string(), "voc10");
    assert_eq!(r.images, 1);
    let empty = evaluate(
        &gts,
        &dets,
        &names(1),
        ApMetric::Voc07,
        NanPolicy::Strict,
        0,
    );
    assert!(empty.per_class.is_empty() && empty.map.is_nan());
}

#[test]
fn metric_names_round_trip() {
    for m in [ApMetric::Voc07, ApMetric::Voc10] {
        assert_eq!(m.to_string().parse::<ApMetric>().unwrap(), m);
    }
    assert!("voc12".parse::<ApMetric>().is_err());
}
