//! UltraFace ONNX files (PyTorch 1.2 export, opset 9) against the ONNX Runtime goldens
//! of `testdata/fixtures/ultraface/golden` (SOURCES.md §2b).

mod common;

use common::*;
use slimdet_onnx::{OnnxModel, OutputKind, import};

fn run(model: &str) -> Vec<slimdet_onnx::NamedOutput> {
    let mut m = OnnxModel::load(&ultraface(&format!("models/{model}")), 1).unwrap();
    assert_eq!(m.imported().input_name, "input");
    assert_eq!(m.imported().input_shape_nchw, [1, 3, 240, 320]);
    m.run_nchw(&ultraface_input_nchw()).unwrap()
}

fn check_golden(model: &str, tag: &str) {
    let outs = run(model);
    let names: Vec<&str> = outs.iter().map(|o| o.0.as_str()).collect();
    assert_eq!(names, ["scores", "boxes"]);
    assert_eq!(outs[0].1, [1, 4420, 2]);
    assert_eq!(outs[1].1, [1, 4420, 4]);
    let ds = max_abs_diff(
        &outs[0].2,
        &read_f32(ultraface(&format!(
            "golden/13_{tag}_scores_1x4420x2_f32.bin"
        ))),
    );
    let db = max_abs_diff(
        &outs[1].2,
        &read_f32(ultraface(&format!(
            "golden/13_{tag}_boxes_1x4420x4_f32.bin"
        ))),
    );
    eprintln!("{model}: max |Δscores| {ds:.2e}, max |Δboxes| {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "{model}: scores {ds}, boxes {db}");
}

#[test]
fn slim_matches_onnx_runtime_golden() {
    check_golden("version-slim-320.onnx", "slim");
}

#[test]
fn rfb_matches_onnx_runtime_golden() {
    check_golden("version-RFB-320.onnx", "RFB");
}

#[test]
fn decoding_runs_in_the_tail_and_softmax_in_the_engine() {
    let imp = import(&ultraface("models/version-slim-320.onnx")).unwrap();
    assert_eq!(imp.opset, 9);
    assert!(
        matches!(imp.outputs[0].1, OutputKind::Engine(_)),
        "{:?}",
        imp.outputs[0]
    );
    assert!(
        matches!(imp.outputs[1].1, OutputKind::Tail(_)),
        "{:?}",
        imp.outputs[1]
    );
    let ops: Vec<String> = imp
        .tail
        .steps
        .iter()
        .map(|s| format!("{:?}", s.op))
        .collect();
    assert!(ops.iter().any(|o| o.starts_with("Unary(Exp")), "{ops:?}");
    // The shape subgraphs were folded: no Shape/Gather/Unsqueeze left anywhere.
    assert!(
        ops.iter()
            .all(|o| !o.starts_with("Gather") && !o.starts_with("Shape"))
    );
}

#[test]
fn without_postprocessing_scores_and_decoded_boxes_match() {
    let outs = run("version-slim-320_without_postprocessing.onnx");
    let ds = max_abs_diff(
        &outs[0].2,
        &read_f32(ultraface("golden/13_slim_scores_1x4420x2_f32.bin")),
    );
    assert_eq!(outs[1].1, [1, 4420, 4]);
    let priors = slimdet_models::Arch::UltrafaceSlim.priors();
    let decoded: Vec<f32> = outs[1]
        .2
        .chunks(4)
        .zip(&priors)
        .flat_map(|(l, p)| slimdet_models::box_coding::decode(l, p, 0.1, 0.2))
        .collect();
    let db = max_abs_diff(
        &decoded,
        &read_f32(ultraface("golden/13_slim_boxes_1x4420x4_f32.bin")),
    );
    eprintln!("without_postprocessing: max |Δscores| {ds:.2e}, max |Δdecoded boxes| {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "scores {ds}, boxes {db}");
    let imp = import(&ultraface(
        "models/version-slim-320_without_postprocessing.onnx",
    ))
    .unwrap();
    assert!(imp.tail.steps.is_empty(), "nothing left for the tail");
}
