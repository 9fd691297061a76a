//! The imported UltraFace graph carries the same parameters, under the same state_dict
//! keys, as the `.pth` file loaded by `slimdet_models` (SOURCES.md: the ONNX initializers
//! are bit-identical to the `.pth` tensors).

mod common;

use std::collections::BTreeMap;

use common::*;
use slimdet_core::{Graph, Op};
use slimdet_models::Detector;
use slimdet_onnx::import;

fn params(g: &Graph) -> BTreeMap<String, (Vec<usize>, Vec<u32>)> {
    g.params()
        .into_iter()
        .map(|(k, t)| {
            (
                k,
                (
                    t.shape().to_vec(),
                    t.data().iter().map(|v| v.to_bits()).collect(),
                ),
            )
        })
        .collect()
}

fn counters(g: &Graph) -> BTreeMap<String, Option<i64>> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::BatchNorm(b) => Some((n.name.clone(), b.num_batches_tracked)),
            _ => None,
        })
        .collect()
}

fn check(onnx: &str, pth: &str) {
    let imp = import(&ultraface(&format!("models/{onnx}"))).unwrap();
    let det = Detector::load(&ultraface(&format!("models/{pth}")), None).unwrap();
    let (ours, theirs) = (params(&imp.graph), params(&det.graph));
    let only_onnx: Vec<_> = ours.keys().filter(|k| !theirs.contains_key(*k)).collect();
    let only_pth: Vec<_> = theirs.keys().filter(|k| !ours.contains_key(*k)).collect();
    assert!(
        only_onnx.is_empty() && only_pth.is_empty(),
        "{only_onnx:?} / {only_pth:?}"
    );
    for (k, v) in &ours {
        assert!(v == &theirs[k], "{onnx}: {k} differs");
    }
    let convs = imp
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv(_)))
        .count();
    eprintln!(
        "{onnx}: {} parameters bit-identical ({convs} convs)",
        ours.len()
    );
    let c = counters(&imp.graph);
    assert!(
        c.values().all(Option::is_some),
        "num_batches_tracked recovered"
    );
    assert_eq!(c, counters(&det.graph));
}

#[test]
fn slim_weights_equal_pth() {
    check("version-slim-320.onnx", "version-slim-320.pth");
}

#[test]
fn rfb_weights_equal_pth() {
    check("version-RFB-320.onnx", "version-RFB-320.pth");
}
