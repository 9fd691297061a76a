//! Cross-check against ONNX Runtime through `tests/ort_check.py`: our exported models
//! must run in ORT and give our outputs, and our importer must agree with ORT on a
//! third-party file. Skipped (with a message, asserting nothing) when the Python
//! `onnxruntime` package is not installed.

mod common;

use std::path::Path;

use common::*;
use slimdet_models::Detector;
use slimdet_onnx::{OnnxModel, export_detector};

/// Whether Python's `onnxruntime` (or `numpy`) is missing, saying that the test is
/// skipped when it is.
fn skip_without_ort() -> bool {
    let missing = !python_has("onnxruntime, numpy");
    if missing {
        eprintln!("skipped: onnxruntime missing");
    }
    missing
}

/// Runs `model` in ORT and in our engine on the same NCHW input; returns the max
/// difference per output.
fn compare(model: &Path, input_nchw: &[f32], dir: &Path) -> Vec<(String, f32)> {
    let out_dir = dir.join(model.file_stem().unwrap());
    ort_check(model, input_nchw, dir, &out_dir);
    let ours = OnnxModel::load(model, 1)
        .unwrap()
        .run_nchw(input_nchw)
        .unwrap();
    ours.into_iter()
        .map(|(name, shape, data)| {
            let theirs = read_f32(out_dir.join(format!("{name}.bin")));
            let their_shape =
                std::fs::read_to_string(out_dir.join(format!("{name}.shape"))).unwrap();
            let their_shape: Vec<usize> =
                their_shape.split(',').map(|d| d.parse().unwrap()).collect();
            assert_eq!(shape, their_shape, "{name}");
            (name, max_abs_diff(&data, &theirs))
        })
        .collect()
}

/// `(model, NCHW input, tolerance per output)`.
type Case = (std::path::PathBuf, Vec<f32>, Vec<(&'static str, f32)>);

#[test]
fn onnx_runtime_agrees_with_export_and_import() {
    if skip_without_ort() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let mut cases: Vec<Case> = Vec::new();
    // UltraFace (real weights): our export of the RFB `.pth`, and the third-party slim file.
    let rfb = Detector::load(&ultraface("models/version-RFB-320.pth"), None).unwrap();
    let path = dir.path().join("rfb.onnx");
    export_detector(&rfb, &path, false).unwrap();
    cases.push((
        path,
        ultraface_input_nchw(),
        vec![("scores", 1e-4), ("boxes", 1e-4)],
    ));
    let slim = ultraface("models/version-slim-320.onnx");
    cases.push((
        slim,
        ultraface_input_nchw(),
        vec![("scores", 1e-4), ("boxes", 1e-4)],
    ));
    // MobileNetV2-SSD-Lite with the golden's random weights on a real image. This network
    // is ill-conditioned (golden README): ONNX Runtime itself differs from the PyTorch
    // golden by up to 1.6e-4 in boxes and 1e-3 in logits on these inputs, so boxes get
    // 2.5e-4 and the raw heads the README's logits tolerance, 1e-3. Why 1e-4 cannot hold
    // for boxes: see `box_differences_come_from_the_network_not_the_decoding` below.
    let det = Detector::load(&mb2_model(), None).unwrap();
    let x = nhwc_to_nchw(&mb2_golden_input_nhwc("000004"), 300, 300, 3);
    for raw in [false, true] {
        let path = dir
            .path()
            .join(if raw { "mb2_raw.onnx" } else { "mb2.onnx" });
        export_detector(&det, &path, raw).unwrap();
        let tol = if raw {
            vec![("logits", 1e-3), ("locations", 1e-3)]
        } else {
            vec![("scores", 1e-4), ("boxes", 2.5e-4)]
        };
        cases.push((path, x.clone(), tol));
    }
    for (model, input, tol) in cases {
        let diffs = compare(&model, &input, dir.path());
        assert_eq!(diffs.len(), tol.len());
        for ((name, d), (want, limit)) in diffs.into_iter().zip(tol) {
            let file = model.file_name().unwrap().to_string_lossy().into_owned();
            eprintln!("ORT vs slimdet, {file}: {name} max |Δ| {d:.2e} (limit {limit:e})");
            assert_eq!(name, want);
            assert!(d <= limit, "{file}: {name} differs by {d}");
        }
    }
}

/// pytorch-ssd's other networks (the zoo goldens' weights, a real photo): our export runs
/// in ONNX Runtime with our outputs, and imports back as the same network.
#[test]
fn onnx_runtime_runs_the_exported_zoo_networks() {
    if skip_without_ort() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    for net in slimdet_models::arch::PYTORCH_SSD_NETS {
        if net == "mb2-ssd-lite" {
            continue; // its own golden, in the test above
        }
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let x = zoo_input_nchw(net, "000002", det.config.mean, det.config.std);
        for raw in [false, true] {
            let path = dir.path().join(format!("{net}-{raw}.onnx"));
            export_detector(&det, &path, raw).unwrap();
            let back = slimdet_onnx::detector_from_onnx(&path, None).unwrap();
            assert_eq!(back.name, net, "{net}: re-imported as another network");
            let tol = if raw {
                [("logits", 1e-3), ("locations", 1e-3)]
            } else {
                [("scores", 1e-4), ("boxes", 1e-4)]
            };
            let diffs = compare(&path, &x, dir.path());
            for ((name, d), (want, limit)) in diffs.into_iter().zip(tol) {
                eprintln!(
                    "ORT vs slimdet, {net} raw={raw}: {name} max |Δ| {d:.2e} (limit {limit:e})"
                );
                assert_eq!(name, want);
                assert!(d <= limit, "{net}: {name} differs by {d}");
            }
        }
    }
}

/// Runs `model` in ORT on `input_nchw`; returns its outputs by name.
fn ort_run(model: &Path, input_nchw: &[f32], dir: &Path) -> Vec<(String, Vec<f32>)> {
    let out = dir.join("out");
    let _ = std::fs::remove_dir_all(&out);
    ort_check(model, input_nchw, dir, &out);
    ["scores", "boxes", "logits", "locations"]
        .iter()
        .filter_map(|n| {
            let p = out.join(format!("{n}.bin"));
            p.exists().then(|| (n.to_string(), read_f32(p)))
        })
        .collect()
}

/// The exported MobileNetV2-SSD-Lite's boxes differ from ours by more than 1e-4 because
/// the network's raw locations differ (convolution summation order, which neither side
/// can match: ONNX Runtime's MLAS kernels block and fuse differently from ours and from
/// PyTorch), not because of the decoding: the graph decodes in our runtime's order
/// (`cx = l·0.1·w_p + cx_p`, `w = exp(l·0.2)·w_p`, corners `c ∓ w / 2`), and our decoding
/// of ONNX Runtime's own locations reproduces its boxes to ~1e-7 (one f32 rounding in
/// `exp`). A location error δ moves a box corner by up to `0.1·w_p·δ + 0.1·w·δ`, with
/// `w_p` up to 0.95 here, so the ~1e-3 location differences (the golden README's logits
/// tolerance) become ~1e-4 box differences. ONNX Runtime itself misses the PyTorch golden
/// boxes by more than 1e-4 on these inputs, while our runtime holds it.
#[test]
fn box_differences_come_from_the_network_not_the_decoding() {
    if skip_without_ort() {
        return;
    }
    let dir = tempfile::tempdir().unwrap();
    let det = Detector::load(&mb2_model(), None).unwrap();
    let (full, raw) = (dir.path().join("mb2.onnx"), dir.path().join("mb2_raw.onnx"));
    export_detector(&det, &full, false).unwrap();
    export_detector(&det, &raw, true).unwrap();
    let (cv, sv) = (det.config.center_variance, det.config.size_variance);
    let mut p = slimdet_models::Predictor::new(&det, 1).unwrap();
    let (mut worst_ours_ort, mut worst_ort_golden) = (0f32, 0f32);
    for id in ["000002", "000003", "000004", "000005"] {
        let x = mb2_golden_input_nhwc(id);
        p.forward(&x).unwrap();
        let ours: Vec<f32> = p.boxes().iter().flatten().copied().collect();
        let golden = mb2_golden(&format!("{id}.boxes"));
        let x = nhwc_to_nchw(&x, 300, 300, 3);
        let ort_boxes = ort_run(&full, &x, dir.path()).remove(1).1;
        let ort_loc = ort_run(&raw, &x, dir.path()).remove(1).1;
        let redecoded: Vec<f32> = ort_loc
            .chunks(4)
            .zip(&det.priors)
            .flat_map(|(l, pr)| slimdet_models::box_coding::decode(l, pr, cv, sv))
            .collect();
        let decode = max_abs_diff(&redecoded, &ort_boxes);
        let loc = max_abs_diff(p.locations(), &ort_loc);
        let ours_ort = max_abs_diff(&ours, &ort_boxes);
        let ours_golden = max_abs_diff(&ours, &golden);
        let ort_golden = max_abs_diff(&ort_boxes, &golden);
        eprintln!(
            "{id}: boxes ours vs ORT {ours_ort:.2e} | ours vs golden {ours_golden:.2e} | ORT vs golden {ort_golden:.2e} | locations ours vs ORT {loc:.2e} | our decoding of ORT's locations vs ORT's boxes {decode:.2e}"
        );
        assert!(
            decode <= 1e-6,
            "{id}: the graph decodes differently ({decode})"
        );
        assert!(
            ours_golden <= 1e-4,
            "{id}: our boxes miss the golden by {ours_golden}"
        );
        assert!(ours_ort <= 2.5e-4, "{id}: {ours_ort}");
        worst_ours_ort = worst_ours_ort.max(ours_ort);
        worst_ort_golden = worst_ort_golden.max(ort_golden);
    }
    eprintln!(
        "worst: boxes ours vs ORT {worst_ours_ort:.2e}, ORT vs PyTorch golden {worst_ort_golden:.2e}"
    );
}

/// The TF SSDLite-MobileNetV2 person detector imported from its frozen graph and exported
/// to ONNX (SAME padding as asymmetric `pads`, sigmoid scores, clipped boxes) runs in ONNX
/// Runtime and gives TensorFlow's scores and our decoded boxes on TF's own input.
#[test]
fn onnx_runtime_runs_the_exported_tf_ssdlite() {
    if skip_without_ort() {
        return;
    }
    let det = Detector::load(
        &slimdet_testkit::tf_ssdlite("frozen_inference_graph.pb"),
        None,
    )
    .unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("tf.onnx");
    export_detector(&det, &path, false).unwrap();
    let (golden, _) = slimdet_formats::load_safetensors(&slimdet_testkit::tf_ssdlite(
        "golden/golden.safetensors",
    ))
    .unwrap();
    let nhwc = golden.get("004545.input").unwrap().as_f32().unwrap();
    ort_check(
        &path,
        &nhwc_to_nchw(nhwc, 300, 300, 3),
        dir.path(),
        dir.path(),
    );
    let scores = read_f32(dir.path().join("scores.bin"));
    let boxes = read_f32(dir.path().join("boxes.bin"));
    let ds = max_abs_diff(
        &scores,
        golden.get("004545.scores").unwrap().as_f32().unwrap(),
    );
    let mut pred = slimdet_models::Predictor::new(&det, 1).unwrap();
    pred.forward(nhwc).unwrap();
    let ours: Vec<f32> = pred.boxes().iter().flatten().copied().collect();
    let db = max_abs_diff(&boxes, &ours);
    eprintln!("tf-ssdlite export in ORT: scores vs TF {ds:.2e}, boxes vs ours {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "scores {ds}, boxes {db}");
}
