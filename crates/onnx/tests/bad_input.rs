//! Hostile input: truncated files, random bytes, mutated models, unsupported and
//! quantized operators. Every case must return an error (or, for mutations that keep
//! the file valid, a model), never panic.

mod common;

use common::build::*;
use common::*;
use slimdet_onnx::{OnnxError, import_bytes};

const MODEL: &str = "models/version-slim-320.onnx";

#[test]
fn truncated_files_are_errors() {
    let bytes = std::fs::read(ultraface(MODEL)).unwrap();
    let n = bytes.len();
    for cut in [
        0,
        1,
        2,
        7,
        16,
        100,
        1000,
        4096,
        n / 3,
        n / 2,
        n - 5000,
        n - 100,
        n - 3,
        n - 1,
    ] {
        let err = import_bytes(&bytes[..cut], "cut.onnx")
            .err()
            .unwrap_or_else(|| panic!("cut at {cut} of {n} imported"));
        let msg = err.to_string();
        assert!(msg.starts_with("cut.onnx: "), "{msg}");
        eprintln!("cut at {cut}: {msg}");
    }
}

#[test]
fn random_bytes_are_errors() {
    let mut rng = XorShift(0x00c0_ffee);
    let mut kinds = std::collections::BTreeMap::new();
    for i in 0..200 {
        let len = (rng.next_u64() % 4096) as usize;
        let buf: Vec<u8> = (0..len).map(|_| rng.next_u64() as u8).collect();
        let err = import_bytes(&buf, "garbage.onnx")
            .err()
            .unwrap_or_else(|| panic!("garbage buffer {i} imported"));
        let kind = match err {
            OnnxError::Decode { .. } => "decode",
            OnnxError::Invalid { .. } => "invalid",
            _ => "other",
        };
        *kinds.entry(kind).or_insert(0) += 1;
    }
    eprintln!("200 garbage buffers: {kinds:?}");
}

#[test]
fn mutated_models_never_panic() {
    let bytes = std::fs::read(ultraface(
        "models/version-slim-320_without_postprocessing.onnx",
    ))
    .unwrap();
    let mut rng = XorShift(0xbad_5eed);
    let (mut ok, mut err) = (0, 0);
    for _ in 0..60 {
        let mut b = bytes.clone();
        for _ in 0..1 + rng.next_u64() % 8 {
            // Mostly hit the structure (the first 20 KiB hold few weights).
            let at = if rng.next_u64().is_multiple_of(2) {
                rng.next_u64() as usize % 20_000
            } else {
                rng.next_u64() as usize % b.len()
            };
            b[at] = rng.next_u64() as u8;
        }
        match import_bytes(&b, "mutated.onnx") {
            Ok(_) => ok += 1,
            Err(_) => err += 1,
        }
    }
    eprintln!("60 mutated models: {ok} imported, {err} errors");
}

fn conv_then(op: &str, name: &str, extra: Vec<slimdet_onnx::proto::AttributeProto>) -> Vec<u8> {
    let nodes = vec![
        node(
            "Conv",
            "conv0",
            &["x", "w"],
            &["c"],
            vec![ints("kernel_shape", &[1, 1])],
        ),
        node(op, name, &["c"], &["y"], extra),
    ];
    let inits = vec![f32_init("w", &[2, 3, 1, 1], vec![0.5; 6])];
    bytes(&model(
        13,
        &[1, 3, 4, 4],
        nodes,
        inits,
        &[("y", &[1, 2, 4, 4])],
    ))
}

#[test]
fn unsupported_operator_names_node_and_op() {
    for (op, name) in [("NonMaxSuppression", "nms_1"), ("LSTM", "")] {
        let err = import_bytes(&conv_then(op, name, vec![]), "crafted.onnx").unwrap_err();
        let msg = err.to_string();
        eprintln!("{msg}");
        assert!(
            matches!(&err, OnnxError::Unsupported { op: o, .. } if o == op),
            "{err:?}"
        );
        assert!(msg.contains(op) && msg.contains("crafted.onnx"), "{msg}");
        let node = if name.is_empty() {
            "#1 (output `y`)".to_string()
        } else {
            format!("`{name}`")
        };
        assert!(msg.contains(&node), "{msg}");
    }
}

#[test]
fn quantized_operators_outside_qdq_pairs_are_refused() {
    let inits = vec![
        f32_init("scale", &[], vec![0.1]),
        i64_init("zp", &[], vec![0]),
        f32_init("w", &[2, 3, 1, 1], vec![0.5; 6]),
    ];
    let refused = |nodes, out: &[i64]| {
        import_bytes(
            &bytes(&model(
                13,
                &[1, 3, 4, 4],
                nodes,
                inits.clone(),
                &[("y", out)],
            )),
            "q.onnx",
        )
        .unwrap_err()
    };
    // The QOperator form: QLinearConv after a QuantizeLinear.
    let err = refused(
        vec![
            node("QuantizeLinear", "q", &["x", "scale"], &["xq"], vec![]),
            node(
                "QLinearConv",
                "qconv",
                &["xq", "scale", "zp", "w", "scale", "zp", "scale", "zp"],
                &["y"],
                vec![],
            ),
        ],
        &[1, 2, 4, 4],
    );
    assert!(
        matches!(&err, OnnxError::Unsupported { node, op, .. } if node == "`qconv`" && op == "QLinearConv"),
        "{err:?}"
    );
    assert!(err.to_string().contains("QDQ form"), "{err}");
    // A float operator reading the integer output of a QuantizeLinear.
    let err = refused(
        vec![
            node("QuantizeLinear", "q", &["x", "scale"], &["xq"], vec![]),
            node("Relu", "relu", &["xq"], &["y"], vec![]),
        ],
        &[1, 3, 4, 4],
    );
    assert!(
        matches!(&err, OnnxError::Unsupported { node, op, .. } if node == "`relu`" && op == "Relu"),
        "{err:?}"
    );
    assert!(err.to_string().contains("integer tensor `xq`"), "{err}");
    // A DequantizeLinear whose parameters differ from its QuantizeLinear's.
    let mut inits2 = inits.clone();
    inits2.push(f32_init("scale2", &[], vec![0.2]));
    let err = import_bytes(
        &bytes(&model(
            13,
            &[1, 3, 4, 4],
            vec![
                node("QuantizeLinear", "q", &["x", "scale"], &["xq"], vec![]),
                node("DequantizeLinear", "dq", &["xq", "scale2"], &["y"], vec![]),
            ],
            inits2,
            &[("y", &[1, 3, 4, 4])],
        )),
        "q.onnx",
    )
    .unwrap_err();
    assert!(
        matches!(&err, OnnxError::Unsupported { node, op, .. } if node == "`dq`" && op == "DequantizeLinear"),
        "{err:?}"
    );
}

#[test]
fn asymmetric_padding_is_a_clear_error() {
    let nodes = vec![node(
        "Conv",
        "padded",
        &["x", "w"],
        &["y"],
        vec![ints("pads", &[0, 0, 1, 1])],
    )];
    let inits = vec![f32_init("w", &[2, 3, 3, 3], vec![0.5; 54])];
    let err = import_bytes(
        &bytes(&model(
            13,
            &[1, 3, 4, 4],
            nodes,
            inits,
            &[("y", &[1, 2, 3, 3])],
        )),
        "pad.onnx",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("asymmetric padding") && msg.contains("`padded`"),
        "{msg}"
    );
}

#[test]
fn malformed_graphs_are_errors() {
    // Undefined input value, a weight whose data does not fit its dims, a bad stride.
    let undefined = vec![node("Relu", "r", &["nope"], &["y"], vec![])];
    let mut short = f32_init("w", &[2, 3, 1, 1], vec![0.5; 6]);
    short.raw_data.truncate(20);
    let conv = |attrs| vec![node("Conv", "c", &["x", "w"], &["y"], attrs)];
    let cases = [
        (
            model(
                13,
                &[1, 3, 4, 4],
                undefined,
                vec![],
                &[("y", &[1, 3, 4, 4])],
            ),
            "never defined",
        ),
        (
            model(
                13,
                &[1, 3, 4, 4],
                conv(vec![]),
                vec![short],
                &[("y", &[1, 2, 4, 4])],
            ),
            "holds",
        ),
        (
            model(
                13,
                &[1, 3, 4, 4],
                conv(vec![ints("strides", &[0, 1])]),
                vec![f32_init("w", &[2, 3, 1, 1], vec![0.5; 6])],
                &[("y", &[1, 2, 4, 4])],
            ),
            "strides",
        ),
        (
            model(
                13,
                &[1, 3, 4, 4],
                conv(vec![int("group", 2)]),
                vec![f32_init("w", &[2, 3, 1, 1], vec![0.5; 6])],
                &[("y", &[1, 2, 4, 4])],
            ),
            "groups",
        ),
        (
            model(13, &[1, 3, 4, 4], vec![], vec![], &[("y", &[1])]),
            "never defined",
        ),
    ];
    for (m, want) in cases {
        let msg = import_bytes(&bytes(&m), "bad.onnx")
            .unwrap_err()
            .to_string();
        eprintln!("{msg}");
        assert!(msg.contains(want), "{msg} (wanted `{want}`)");
    }
}
