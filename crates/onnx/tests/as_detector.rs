//! ONNX files loaded as [`slimdet_models::Detector`]s (what `--model X.onnx` does) run the
//! same network as the PyTorch weights: same scores and boxes through the predictor.

mod common;

use common::*;
use slimdet_models::{Detector, Predictor};
use slimdet_onnx::{detector_from_onnx, export_detector};

/// Max |Δ| of scores and boxes between two detectors on one input.
fn compare(a: &Detector, b: &Detector, input_nhwc: &[f32]) -> (f32, f32) {
    let mut pa = Predictor::new(a, 1).unwrap();
    let mut pb = Predictor::new(b, 1).unwrap();
    pa.forward(input_nhwc).unwrap();
    pb.forward(input_nhwc).unwrap();
    let ba: Vec<f32> = pa.boxes().iter().flatten().copied().collect();
    let bb: Vec<f32> = pb.boxes().iter().flatten().copied().collect();
    (
        max_abs_diff(pa.scores(), pb.scores()),
        max_abs_diff(&ba, &bb),
    )
}

fn input_for(det: &Detector, seed: u64) -> Vec<f32> {
    let n: usize = det.input_shape().iter().product();
    let mut s = seed;
    (0..n)
        .map(|_| {
            s = s
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

#[test]
fn ultraface_onnx_files_load_as_the_pth_detectors() {
    for (onnx, pth, arch) in [
        (
            "models/version-slim-320.onnx",
            "models/version-slim-320.pth",
            "ultraface-slim",
        ),
        (
            "models/version-slim-320_without_postprocessing.onnx",
            "models/version-slim-320.pth",
            "ultraface-slim",
        ),
        (
            "models/version-RFB-320.onnx",
            "models/version-RFB-320.pth",
            "ultraface-rfb",
        ),
    ] {
        let from_onnx = detector_from_onnx(&ultraface(onnx), None).unwrap();
        assert_eq!(from_onnx.name, arch, "{onnx}");
        let from_pth = Detector::load(&ultraface(pth), None).unwrap();
        let (ds, db) = compare(&from_onnx, &from_pth, &input_for(&from_pth, 7));
        eprintln!("{onnx}: max |Δscores| {ds:.2e}, max |Δboxes| {db:.2e}");
        assert!(ds <= 1e-4 && db <= 1e-4, "{onnx}: scores {ds}, boxes {db}");
    }
}

#[test]
fn exported_mb2_round_trips_through_onnx() {
    let det = Detector::load(&mb2_model(), None).unwrap();
    let dir = tempfile::tempdir().unwrap();
    for raw in [false, true] {
        let path = dir.path().join(format!("mb2_{raw}.onnx"));
        export_detector(&det, &path, raw).unwrap();
        let back = detector_from_onnx(&path, None).unwrap();
        assert_eq!((&back.name, &back.priors), (&det.name, &det.priors));
        let (ds, db) = compare(&back, &det, &input_for(&det, 3));
        eprintln!("mb2 raw={raw}: max |Δscores| {ds:.2e}, max |Δboxes| {db:.2e}");
        assert!(
            ds <= 1e-4 && db <= 1e-4,
            "raw={raw}: scores {ds}, boxes {db}"
        );
    }
}

#[test]
fn a_wrong_arch_hint_is_refused() {
    let e = detector_from_onnx(
        &ultraface("models/version-slim-320.onnx"),
        Some("mb2-ssd-lite"),
    )
    .unwrap_err()
    .to_string();
    assert!(
        e.contains("version-slim-320.onnx") && e.contains("mb2-ssd-lite"),
        "{e}"
    );
}
