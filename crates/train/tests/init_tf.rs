//! `--init X.pb`: pytorch-ssd's mb2-ssd-lite holding the weights mapped from the real TF
//! SSDLite-MobileNetV2 person detector, run with TF's `SAME` padding, must reproduce the TF
//! graph's `expanded_conv_13/expansion_output` (576 channels, 19x19) on TensorFlow's own
//! input within 1e-3; and the init report must list exactly what cannot map.
//!
//! `SAME` padding of a stride-2 3x3 conv on an even size pads 0 before and 1 after, where
//! pytorch-ssd pads 1 and 1: the test sets it with `passes::tf_same_padding`.

use std::path::PathBuf;

use slimdet_core::{Graph, Op, Plan, PlanOptions, passes};
use slimdet_models::{Arch, Detector};
use slimdet_train::init::{init_ssd, load_compatible};

fn fixture(rel: &str) -> PathBuf {
    slimdet_testkit::path(&format!("fixtures/{rel}"))
}

fn mapped_model() -> (Detector, slimdet_train::init::InitReport) {
    let mut det = Detector::new(Arch::Mb2SsdLite {
        width_mult: 1.0,
        num_classes: 21,
    });
    init_ssd(&mut det.graph, 0);
    let report = load_compatible(
        &mut det.graph,
        &fixture("tf-ssdlite-person/frozen_inference_graph.pb"),
    )
    .unwrap();
    (det, report)
}

/// The graph cut after `base_net.14`'s expansion ReLU6, with TF's `SAME` padding.
fn same_padded_backbone(full: &Graph, input: &[usize]) -> Graph {
    let mut g = full.clone();
    let bn = g
        .nodes
        .iter()
        .position(|n| n.name == "base_net.14.conv.1")
        .expect("base_net.14.conv.1");
    let relu = g.nodes[bn + 1..]
        .iter()
        .position(|n| n.inputs == [g.nodes[bn].output] && matches!(n.op, Op::Act(_)))
        .map(|i| bn + 1 + i)
        .expect("the ReLU6 after base_net.14.conv.1");
    g.nodes.truncate(relu + 1);
    g.outputs = vec![("tap".to_string(), g.nodes[relu].output)];
    // base_net.0.0 (300), base_net.2.conv.3 (150) and base_net.7.conv.3 (38) pad 0 before
    // and 1 after; 75 is odd and pads 1 and 1 either way.
    assert_eq!(passes::tf_same_padding(&mut g, input).unwrap(), 3);
    g
}

#[test]
fn mapped_backbone_reproduces_tensorflow_features() {
    let (det, _) = mapped_model();
    let (golden, _) =
        slimdet_formats::load_safetensors(&fixture("tf-ssdlite-person/golden/golden.safetensors"))
            .unwrap();
    let input = golden.get("004545.input").unwrap();
    let want = golden
        .get("004545.expanded_conv_13_expansion_output")
        .unwrap();
    assert_eq!(input.shape, [1, 300, 300, 3]);
    assert_eq!(want.shape, [1, 19, 19, 576]);
    let g = same_padded_backbone(&det.graph, &input.shape);
    let mut plan = Plan::new(&g, &input.shape, &PlanOptions::default()).unwrap();
    let got = plan.run(input.as_f32().unwrap()).unwrap()[0].to_vec();
    let want = want.as_f32().unwrap();
    assert_eq!(got.len(), want.len());
    let max = got
        .iter()
        .zip(want)
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    let scale = want.iter().fold(0.0f32, |m, v| m.max(v.abs()));
    eprintln!("max |ours - TF| = {max:.3e} (values up to {scale:.2})");
    assert!(scale > 1.0, "the golden features are not trivial");
    assert!(max <= 1e-3, "max abs difference {max} > 1e-3");
}

#[test]
fn init_report_lists_exactly_what_cannot_map() {
    let (det, r) = mapped_model();
    let mut missing: Vec<&str> = r.missing.iter().map(String::as_str).collect();
    missing.sort();
    let mut want = Vec::new();
    for head in ["classification_headers", "regression_headers"] {
        for i in 0..5 {
            want.push(format!("{head}.{i}.3.bias"));
            want.push(format!("{head}.{i}.3.weight"));
        }
        want.push(format!("{head}.5.bias"));
        want.push(format!("{head}.5.weight"));
    }
    want.sort();
    assert_eq!(missing, want);
    let mut mismatch = r.shape_mismatch.clone();
    mismatch.sort();
    assert_eq!(
        mismatch,
        [
            "extras.3.conv.6.weight",
            "extras.3.conv.7.bias",
            "extras.3.conv.7.running_mean",
            "extras.3.conv.7.running_var",
            "extras.3.conv.7.weight",
        ]
    );
    let total = det.graph.params().len();
    assert_eq!(r.loaded + r.missing.len() + r.shape_mismatch.len(), total);
}
