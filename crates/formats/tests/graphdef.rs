//! The TensorFlow GraphDef reader on the real SSDLite-MobileNetV2 frozen graph and on
//! broken copies of it: truncated and bit-flipped files give errors naming the file (or,
//! for a flip inside tensor bytes, a graph), never a panic.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::fixture;
use slimdet_formats::tf::{load_graphdef, load_graphdef_bytes, looks_like_graphdef};

const PB: &str = "fixtures/tf-ssdlite-person/frozen_inference_graph.pb";

#[test]
fn real_frozen_graph_decodes_with_its_weights() {
    let g = load_graphdef(&fixture(PB)).unwrap();
    let count = |op: &str| g.nodes.iter().filter(|n| n.op == op).count();
    assert_eq!(count("Conv2D"), 55);
    assert_eq!(count("DepthwiseConv2dNative"), 33);
    assert_eq!(count("FusedBatchNorm"), 76);
    let conv = g.node("FeatureExtractor/MobilenetV2/Conv/Conv2D").unwrap();
    assert_eq!(conv.attr_str("padding"), Some("SAME"));
    assert_eq!(conv.attr_ints("strides"), Some(&[1i64, 2, 2, 1][..]));
    let w = g.input(conv, 1).unwrap().const_value().unwrap();
    assert_eq!(w.shape, [3, 3, 3, 32]);
    assert!(
        w.as_f32().unwrap().iter().any(|v| v.abs() > 0.1),
        "trained weights"
    );
    let bn = g.consumers(&conv.name).next().unwrap();
    assert_eq!(bn.op, "FusedBatchNorm");
    assert_eq!(bn.attr_f32("epsilon"), Some(0.001));
}

#[test]
fn truncated_and_flipped_copies_never_panic() {
    let bytes = std::fs::read(fixture(PB)).unwrap();
    assert!(looks_like_graphdef(&bytes));
    for cut in [1, 2, 100, 4096, bytes.len() / 2, bytes.len() - 1] {
        let e = load_graphdef_bytes(&bytes[..cut], "cut.pb").unwrap_err();
        assert!(e.to_string().contains("cut.pb"), "{e}");
    }
    // 24 flips spread over the whole file, one at a time: any result but a panic.
    let mut flipped = bytes.clone();
    for i in (0..flipped.len())
        .step_by(flipped.len() / 24 + 1)
        .chain([0, 1, 3, 7])
    {
        flipped[i] ^= 0x5a;
        let r = catch_unwind(AssertUnwindSafe(|| {
            load_graphdef_bytes(&flipped, "flip.pb")
        }));
        assert!(r.is_ok(), "panic with byte {i} flipped");
        flipped[i] ^= 0x5a;
    }
}
