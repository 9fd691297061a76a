//! Export round trip: MobileNetV2-SSD-Lite (the seed-0 golden weights) exported to ONNX,
//! re-imported, and run against our own runtime (`Predictor::forward`).

mod common;

use std::path::PathBuf;

use common::*;
use slimdet_models::{Detector, Predictor};
use slimdet_onnx::{OnnxModel, OutputKind, export_detector, import};

/// The golden input of VOC image 000004 (seven cars), NHWC `[1, 300, 300, 3]`.
fn input_nhwc() -> Vec<f32> {
    mb2_golden_input_nhwc("000004")
}

/// The MobileNetV2-SSD-Lite golden model, exported (`raw`: without the decoding tail) to
/// `name` in a new temporary folder: `(model, folder, file)`.
fn export_mb2(name: &str, raw: bool) -> (Detector, tempfile::TempDir, PathBuf) {
    let det = Detector::load(&mb2_model(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(name);
    export_detector(&det, &path, raw).unwrap();
    (det, dir, path)
}

/// Our predictor after a forward pass of `det` on the NHWC input `x`.
fn reference(det: &Detector, x: &[f32]) -> Predictor {
    let mut p = Predictor::new(det, 1).unwrap();
    p.forward(x).unwrap();
    p
}

#[test]
fn exported_scores_and_boxes_match_our_runtime() {
    let (det, dir, path) = export_mb2("mb2.onnx", false);
    let x = input_nhwc();
    let p = reference(&det, &x);
    let mut m = OnnxModel::load(&path, 1).unwrap();
    assert_eq!(m.imported().input_name, "input");
    assert_eq!(m.imported().input_shape_nchw, [1, 3, 300, 300]);
    let outs = m.run_nchw(&nhwc_to_nchw(&x, 300, 300, 3)).unwrap();
    assert_eq!(outs[0].0, "scores");
    assert_eq!(outs[0].1, [1, 3000, 21]);
    assert_eq!(outs[1].0, "boxes");
    assert_eq!(outs[1].1, [1, 3000, 4]);
    let ds = max_abs_diff(&outs[0].2, p.scores());
    let boxes: Vec<f32> = p.boxes().iter().flatten().copied().collect();
    let db = max_abs_diff(&outs[1].2, &boxes);
    eprintln!("mb2 export (decoded): max |Δscores| {ds:.2e}, max |Δboxes| {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "scores {ds}, boxes {db}");
    // And against PyTorch (golden README tolerance 1e-4).
    let ps = max_abs_diff(&outs[0].2, &mb2_golden("000004.scores"));
    let pb = max_abs_diff(&outs[1].2, &mb2_golden("000004.boxes"));
    eprintln!("mb2 export vs PyTorch: max |Δscores| {ps:.2e}, max |Δboxes| {pb:.2e}");
    assert!(
        ps <= 1e-4 && pb <= 1e-4,
        "vs PyTorch: scores {ps}, boxes {pb}"
    );
    // The same run through NHWC entry gives the same values.
    let again = m.run_nhwc(&x).unwrap();
    assert_eq!(again, outs);
    // No temporary file is left behind.
    let names: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name())
        .collect();
    assert_eq!(names, [std::ffi::OsString::from("mb2.onnx")]);
}

#[test]
fn exported_raw_outputs_match_our_runtime() {
    let (det, _dir, path) = export_mb2("mb2_raw.onnx", true);
    let x = input_nhwc();
    let p = reference(&det, &x);
    let imp = import(&path).unwrap();
    assert!(imp.tail.steps.is_empty(), "raw export needs no tail");
    assert!(
        imp.outputs
            .iter()
            .all(|(_, k)| matches!(k, OutputKind::Engine(_)))
    );
    let mut m = OnnxModel::new(imp, &Default::default()).unwrap();
    let outs = m.run_nchw(&nhwc_to_nchw(&x, 300, 300, 3)).unwrap();
    let names: Vec<&str> = outs.iter().map(|o| o.0.as_str()).collect();
    assert_eq!(names, ["logits", "locations"]);
    let dl = max_abs_diff(&outs[0].2, p.logits());
    let dc = max_abs_diff(&outs[1].2, p.locations());
    eprintln!("mb2 export (raw): max |Δlogits| {dl:.2e}, max |Δlocations| {dc:.2e}");
    assert!(dl <= 1e-4 && dc <= 1e-4, "logits {dl}, locations {dc}");
}

#[test]
fn export_keeps_parameter_names_and_values() {
    let (det, _dir, path) = export_mb2("mb2.onnx", true);
    let imp = import(&path).unwrap();
    // The imported graph lists layers in data-flow order (heads after the backbone
    // layers they read), so compare by name.
    let mut ours = det.graph.params();
    let mut back = imp.graph.params();
    ours.sort_by(|a, b| a.0.cmp(&b.0));
    back.sort_by(|a, b| a.0.cmp(&b.0));
    assert_eq!(
        ours.len(),
        478 - 74,
        "478 state_dict keys minus 74 BN counters"
    );
    assert_eq!(back.len(), ours.len());
    for ((k1, t1), (k2, t2)) in ours.iter().zip(&back) {
        assert_eq!(k1, k2);
        assert_eq!(t1, t2, "{k1}");
    }
}

#[test]
fn export_ultraface_round_trip() {
    let det = Detector::load(&ultraface("models/version-RFB-320.pth"), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("rfb.onnx");
    export_detector(&det, &path, false).unwrap();
    let input = ultraface_input_nchw();
    let outs = OnnxModel::load(&path, 1).unwrap().run_nchw(&input).unwrap();
    let ds = max_abs_diff(
        &outs[0].2,
        &read_f32(ultraface("golden/13_RFB_scores_1x4420x2_f32.bin")),
    );
    let db = max_abs_diff(
        &outs[1].2,
        &read_f32(ultraface("golden/13_RFB_boxes_1x4420x4_f32.bin")),
    );
    eprintln!("RFB .pth → ONNX → import: max |Δscores| {ds:.2e}, max |Δboxes| {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "scores {ds}, boxes {db}");
}
