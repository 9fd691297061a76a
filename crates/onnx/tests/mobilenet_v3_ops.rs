//! Import of the operators pytorch-ssd's MobileNetV3 and SqueezeNet/VGG networks add, as
//! PyTorch exports them: h-swish and h-sigmoid as `Add`, `Clip`, [`Mul`,] `Div` chains
//! (fused back into one engine op each), squeeze-and-excite's `GlobalAveragePool` and
//! broadcast `Mul`, and `MaxPool` with `ceil_mode`. Checked against a direct computation.

mod common;

use common::build::*;
use slimdet_onnx::{OnnxModel, import_bytes};

/// `x [1, 2, 5, 5]` → h-swish → (global average pool → h-sigmoid) gate → `Mul` → 3x3
/// stride-2 ceil-mode max pool padded by 1 → `y [1, 2, 3, 3]`. `reuse` gives the first
/// `Clip` a second reader (an extra output), which must stop its chain from fusing.
fn onnx(reuse: bool) -> Vec<u8> {
    let s = |n: &str, v: f32| f32_init(n, &[], vec![v]);
    let mut nodes = vec![
        node("Add", "hs.add", &["x", "three"], &["a"], vec![]),
        node("Clip", "hs.clip", &["a", "zero", "six"], &["c"], vec![]),
        node("Mul", "hs.mul", &["x", "c"], &["m"], vec![]),
        node("Div", "hs.div", &["m", "six"], &["h"], vec![]),
        node("GlobalAveragePool", "se.pool", &["h"], &["p"], vec![]),
        node("Add", "sig.add", &["three", "p"], &["pa"], vec![]),
        node("Clip", "sig.clip", &["pa", "zero", "six"], &["pc"], vec![]),
        node("Div", "sig.div", &["pc", "six"], &["g"], vec![]),
        node("Mul", "se.mul", &["h", "g"], &["e"], vec![]),
        node(
            "MaxPool",
            "pool",
            &["e"],
            &["y"],
            vec![
                ints("kernel_shape", &[3, 3]),
                ints("strides", &[2, 2]),
                ints("pads", &[1, 1, 1, 1]),
                int("ceil_mode", 1),
            ],
        ),
    ];
    let mut outs: Vec<(&str, &[i64])> = vec![("y", &[1, 2, 3, 3])];
    if reuse {
        nodes.push(node("Identity", "extra", &["c"], &["c2"], vec![]));
        outs.push(("c2", &[1, 2, 5, 5]));
    }
    let inits = vec![s("three", 3.0), s("zero", 0.0), s("six", 6.0)];
    bytes(&model(13, &[1, 2, 5, 5], nodes, inits, &outs))
}

fn hswish(v: f32) -> f32 {
    v * (v + 3.0).clamp(0.0, 6.0) / 6.0
}

/// The direct computation, NCHW.
fn reference(x: &[f32]) -> Vec<f32> {
    let h: Vec<f32> = x.iter().map(|&v| hswish(v)).collect();
    let mut y = Vec::new();
    for c in 0..2 {
        let plane = &h[c * 25..(c + 1) * 25];
        let mean = plane.iter().sum::<f32>() / 25.0;
        let gate = (mean + 3.0).clamp(0.0, 6.0) / 6.0;
        // 5 → ceil((5 + 2 - 3) / 2) + 1 = 3 windows, starting at -1, 1, 3.
        for oy in 0usize..3 {
            for ox in 0usize..3 {
                let mut best = f32::NEG_INFINITY;
                for iy in (2 * oy).saturating_sub(1)..(2 * oy + 2).min(5) {
                    for ix in (2 * ox).saturating_sub(1)..(2 * ox + 2).min(5) {
                        best = best.max(plane[iy * 5 + ix] * gate);
                    }
                }
                y.push(best);
            }
        }
    }
    y
}

#[test]
fn pytorch_patterns_import_as_engine_ops_and_compute_exactly() {
    let bytes = onnx(false);
    let imported = import_bytes(&bytes, "mbv3.onnx").unwrap();
    let kinds: Vec<&str> = imported.graph.nodes.iter().map(|n| n.op.kind()).collect();
    assert_eq!(
        kinds,
        [
            "HardSwish",
            "GlobalAvgPool",
            "HardSigmoid",
            "ChannelMul",
            "MaxPool",
            "Transpose"
        ],
        "one engine op per PyTorch pattern (and the output back to NCHW)"
    );
    assert!(
        imported.tail.steps.is_empty(),
        "nothing left to the interpreter"
    );
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mbv3.onnx");
    std::fs::write(&path, &bytes).unwrap();
    let x: Vec<f32> = (0..50).map(|i| (i as f32 - 23.5) * 0.29).collect();
    let out = OnnxModel::load(&path, 1).unwrap().run_nchw(&x).unwrap();
    let (name, shape, y) = &out[0];
    assert_eq!(
        (name.as_str(), shape.as_slice()),
        ("y", &[1usize, 2, 3, 3][..])
    );
    let want = reference(&x);
    for (a, b) in y.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-6, "{a} vs {b}");
    }
}

#[test]
fn a_chain_whose_values_are_read_elsewhere_is_not_fused() {
    // The h-swish chain's `Clip` output is read twice, so the chain stays element-wise
    // (run by the interpreter after the engine), and the engine layer after it cannot
    // read an interpreter value: a clear error naming that node.
    let e = import_bytes(&onnx(true), "reuse.onnx")
        .unwrap_err()
        .to_string();
    assert!(e.contains("reuse.onnx") && e.contains("se.pool"), "{e}");
}
