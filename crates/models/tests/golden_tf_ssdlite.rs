//! The TF Object Detection API SSDLite-MobileNetV2 person detector, imported from its
//! frozen graph, against TensorFlow's own outputs on three photos
//! (`testdata/fixtures/tf-ssdlite-person/golden`, TensorFlow 2.21): anchors, TF's resize
//! and scaling, raw box encodings and class logits, sigmoid scores, and the final
//! detections after per-class NMS.

use std::path::PathBuf;

use slimdet_data::{Resize, preprocess_into};
use slimdet_formats::StateDict;
use slimdet_models::{Detector, Predictor};
use slimdet_testkit::max_abs_diff;

const IDS: [&str; 3] = ["004545", "001150", "2"];

fn fixture(rel: &str) -> PathBuf {
    let p = slimdet_testkit::root()
        .join("fixtures/tf-ssdlite-person")
        .join(rel);
    assert!(p.exists(), "fixture missing: {}", p.display());
    p
}

fn golden() -> StateDict {
    slimdet_formats::load_safetensors(&fixture("golden/golden.safetensors"))
        .unwrap()
        .0
}

fn g<'a>(sd: &'a StateDict, key: &str) -> &'a [f32] {
    sd.get(key)
        .unwrap_or_else(|| panic!("golden key {key}"))
        .as_f32()
        .unwrap()
}

fn detector() -> Detector {
    Detector::load(&fixture("frozen_inference_graph.pb"), None).unwrap()
}

#[test]
fn imports_as_a_two_class_ssdlite_with_tf_anchors() {
    let det = detector();
    assert_eq!(
        (det.name.as_str(), det.class_names.len()),
        ("tf-ssdlite-mobilenet-v2", 2)
    );
    assert_eq!(det.class_names, ["BACKGROUND", "person"]);
    let sd = golden();
    let want = g(&sd, "004545.anchors");
    assert_eq!(det.priors.len(), 1917);
    // Ours are centre form [cx, cy, w, h]; TF's are [ymin, xmin, ymax, xmax].
    let ours: Vec<f32> = det
        .priors
        .iter()
        .flat_map(|&[cx, cy, w, h]| [cy - h / 2.0, cx - w / 2.0, cy + h / 2.0, cx + w / 2.0])
        .collect();
    let d = max_abs_diff(&ours, want);
    eprintln!("anchors: max |ours - TF| = {d:.2e}");
    assert!(d <= 1e-6, "anchors differ by {d}");
}

#[test]
fn tf_resize_reproduces_the_network_input() {
    let sd = golden();
    for id in IDS {
        let img = slimdet_data::load_rgb(&fixture(&format!("golden/{id}.png"))).unwrap();
        let mut x = vec![0.0f32; 300 * 300 * 3];
        preprocess_into(&img, 300, 300, Resize::TfLegacy, [127.5; 3], 127.5, &mut x);
        let d = max_abs_diff(&x, g(&sd, &format!("{id}.input")));
        eprintln!("{id}: input max |ours - TF| = {d:.2e}");
        assert!(d <= 1e-5, "{id}: input differs by {d}");
    }
}

#[test]
fn raw_heads_scores_and_detections_match_tensorflow() {
    let det = detector();
    let sd = golden();
    let mut pred = Predictor::new(&det, 1).unwrap();
    for id in IDS {
        pred.forward(g(&sd, &format!("{id}.input"))).unwrap();
        let dl = max_abs_diff(pred.logits(), g(&sd, &format!("{id}.class_logits")));
        // Our locations are (tx, ty, tw, th); TF's encodings (ty, tx, th, tw).
        let tf_order: Vec<f32> = pred
            .locations()
            .chunks(4)
            .flat_map(|l| [l[1], l[0], l[3], l[2]])
            .collect();
        let db = max_abs_diff(&tf_order, g(&sd, &format!("{id}.box_encodings")));
        let ds = max_abs_diff(pred.scores(), g(&sd, &format!("{id}.scores")));
        eprintln!("{id}: logits {dl:.2e}, box encodings {db:.2e}, scores {ds:.2e}");
        assert!(
            dl <= 1e-3 && db <= 1e-3,
            "{id}: logits {dl}, encodings {db}"
        );
        assert!(ds <= 1e-4, "{id}: scores {ds}");

        // Final detections at score ≥ 0.05: the same set, boxes within 0.5 px (and within
        // 1e-4 in normalised units).
        let img = slimdet_data::load_rgb(&fixture(&format!("golden/{id}.png"))).unwrap();
        let (w, h) = (img.width as f32, img.height as f32);
        let ours: Vec<_> = pred
            .postprocess(img.width, img.height, 0.0, 0)
            .into_iter()
            .filter(|d| d.score >= 0.05)
            .collect();
        let n = g(&sd, &format!("{id}.num_detections"))[0] as usize;
        let (boxes, scores, classes) = (
            g(&sd, &format!("{id}.detection_boxes")),
            g(&sd, &format!("{id}.detection_scores")),
            g(&sd, &format!("{id}.detection_classes")),
        );
        let theirs: Vec<usize> = (0..n).filter(|&i| scores[i] >= 0.05).collect();
        assert_eq!(ours.len(), theirs.len(), "{id}: {ours:?}");
        for (d, &i) in ours.iter().zip(&theirs) {
            let b = &boxes[i * 4..i * 4 + 4];
            let tf_px = [b[1] * w, b[0] * h, b[3] * w, b[2] * h];
            let tf_norm = [b[1], b[0], b[3], b[2]];
            let px = max_abs_diff(&d.bbox, &tf_px);
            let norm = max_abs_diff(
                &[d.bbox[0] / w, d.bbox[1] / h, d.bbox[2] / w, d.bbox[3] / h],
                &tf_norm,
            );
            eprintln!(
                "{id}: class {} score {:.6} vs {:.6}, box {px:.3} px ({norm:.1e})",
                d.label, d.score, scores[i]
            );
            assert_eq!(d.label, classes[i] as usize, "{id}: class");
            assert!((d.score - scores[i]).abs() <= 1e-4, "{id}: score");
            assert!(px <= 0.5 && norm <= 1e-4, "{id}: box {px} px, {norm}");
        }
    }
}
