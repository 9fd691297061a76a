//! The same network with its nodes listed in another order imports to the same model:
//! random valid topological orders (as ONNX Runtime's `quant_pre_process` or another
//! exporter may write) and even a reversed, unsorted node list give bit-identical
//! outputs, for float and quantized files, through both the ONNX runner and the
//! detector mapping.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use prost::Message;
use slimdet_models::{Detector, Predictor};
use slimdet_onnx::proto::{ModelProto, NodeProto};
use slimdet_onnx::{OnnxModel, detector_from_onnx, export_detector, export_quantized_detector};

/// A random topological order of `nodes` (Kahn's algorithm, picking a random ready node).
fn shuffled_topological(nodes: &[NodeProto], rng: &mut XorShift) -> Vec<NodeProto> {
    let producer: std::collections::HashMap<&str, usize> = nodes
        .iter()
        .enumerate()
        .flat_map(|(i, n)| n.output.iter().map(move |o| (o.as_str(), i)))
        .collect();
    let deps: Vec<Vec<usize>> = nodes
        .iter()
        .map(|n| {
            n.input
                .iter()
                .filter_map(|i| producer.get(i.as_str()).copied())
                .collect()
        })
        .collect();
    let mut done = vec![false; nodes.len()];
    let mut out = Vec::with_capacity(nodes.len());
    while out.len() < nodes.len() {
        let ready: Vec<usize> = (0..nodes.len())
            .filter(|&i| !done[i] && deps[i].iter().all(|&d| done[d]))
            .collect();
        assert!(!ready.is_empty(), "the fixture has a cycle");
        let pick = ready[(rng.next_u64() % ready.len() as u64) as usize];
        done[pick] = true;
        out.push(nodes[pick].clone());
    }
    out
}

/// Writes `model` with its nodes replaced by `nodes` to `dir/name`.
fn write_with(model: &ModelProto, nodes: Vec<NodeProto>, dir: &Path, name: &str) -> PathBuf {
    let mut m = model.clone();
    m.graph.as_mut().unwrap().node = nodes;
    let p = dir.join(name);
    std::fs::write(&p, m.encode_to_vec()).unwrap();
    p
}

fn predictor_outputs(det: &Detector, input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut p = Predictor::new(det, 1).unwrap();
    p.forward(input).unwrap();
    (
        p.scores().to_vec(),
        p.boxes().iter().flatten().copied().collect(),
    )
}

/// Checks that every reordering of `path` gives bit-identical outputs; `float` also
/// runs the ONNX runner (float files only). Returns how many reorderings moved some node.
fn check(path: &Path, input_nhwc: &[f32], float: bool, dir: &Path) -> usize {
    let model = ModelProto::decode(std::fs::read(path).unwrap().as_slice()).unwrap();
    let nodes = model.graph.as_ref().unwrap().node.clone();
    let want_det = predictor_outputs(&detector_from_onnx(path, None).unwrap(), input_nhwc);
    let want_run = float.then(|| {
        OnnxModel::load(path, 1)
            .unwrap()
            .run_nhwc(input_nhwc)
            .unwrap()
    });
    let mut rng = XorShift(0x005e_ed0f_0de5);
    let mut orders: Vec<Vec<NodeProto>> = (0..3)
        .map(|_| shuffled_topological(&nodes, &mut rng))
        .collect();
    // Not even topologically sorted: the importer sorts by tensor names.
    orders.push(nodes.iter().rev().cloned().collect());
    let mut moved = 0;
    for (k, order) in orders.into_iter().enumerate() {
        if order.iter().zip(&nodes).any(|(a, b)| a.output != b.output) {
            moved += 1;
        }
        let p = write_with(&model, order, dir, &format!("reordered{k}.onnx"));
        let got = predictor_outputs(&detector_from_onnx(&p, None).unwrap(), input_nhwc);
        assert!(
            got == want_det,
            "{}: order {k}: detector outputs differ",
            path.display()
        );
        if let Some(want) = &want_run {
            let got = OnnxModel::load(&p, 1)
                .unwrap()
                .run_nhwc(input_nhwc)
                .unwrap();
            assert!(
                &got == want,
                "{}: order {k}: ONNX outputs differ",
                path.display()
            );
        }
    }
    moved
}

#[test]
fn reordered_nodes_give_identical_outputs() {
    let dir = tempfile::tempdir().unwrap();
    let uf_in = {
        let x = ultraface_input_nchw();
        let mut out = vec![0.0; x.len()];
        for c in 0..3 {
            for y in 0..240 {
                for xx in 0..320 {
                    out[(y * 320 + xx) * 3 + c] = x[(c * 240 + y) * 320 + xx];
                }
            }
        }
        out
    };
    for m in ["version-slim-320.onnx", "version-RFB-320.onnx"] {
        let moved = check(&ultraface(&format!("models/{m}")), &uf_in, true, dir.path());
        assert_eq!(moved, 4, "{m}: every order differs from the file's");
    }
    // MobileNetV2-SSD-Lite: its heads branch off the backbone, so node-list order and
    // data-flow order differ most here. Float, then static int8 (QDQ).
    let det = Detector::load(&mb2_model(), None).unwrap();
    let mb2 = dir.path().join("mb2.onnx");
    export_detector(&det, &mb2, false).unwrap();
    let input = mb2_golden_input_nhwc("000004");
    assert_eq!(check(&mb2, &input, true, dir.path()), 4);
    let calib = vec![
        mb2_golden_input_nhwc("000002"),
        mb2_golden_input_nhwc("000003"),
    ];
    let opts = slimdet_quant::QuantOptions {
        calib_images: 2,
        ..Default::default()
    };
    let q = slimdet_quant::quantize(&det, &calib, &opts).unwrap();
    let qpath = dir.path().join("mb2_qdq.onnx");
    export_quantized_detector(&q, &qpath, false).unwrap();
    assert_eq!(check(&qpath, &input, false, dir.path()), 4);
}
