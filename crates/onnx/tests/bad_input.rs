//! Hostile input: truncated files, random bytes, mutated models, unsupported and
//! quantized operators. Every case must return an error (or, for mutations that keep
//! the file valid, a model), never panic.

mod common;

use common::build::*;
use common::*;
use slimdet_onnx::proto::{ModelProto, NodeProto, TensorProto};
use slimdet_onnx::{OnnxError, import_bytes};

const MODEL: &str = "models/version-slim-320.onnx";

/// A model (opset 13) of the `[1, 3, 4, 4]` input `x`, the given nodes and initializers,
/// and the output `y` of shape `y_shape`.
fn model_4x4(nodes: Vec<NodeProto>, inits: Vec<TensorProto>, y_shape: &[i64]) -> ModelProto {
    model(13, &[1, 3, 4, 4], nodes, inits, &[("y", y_shape)])
}

/// The float weight `w` `[2, 3, 1, 1]`, all 0.5.
fn half_weight() -> TensorProto {
    f32_init("w", &[2, 3, 1, 1], vec![0.5; 6])
}

/// Asserts that `err` is an unsupported-operator error naming `want_node` and `want_op`.
#[track_caller]
fn assert_unsupported(err: &OnnxError, want_node: &str, want_op: &str) {
    assert!(
        matches!(err, OnnxError::Unsupported { node, op, .. } if node == want_node && op == want_op),
        "{err:?}"
    );
}

/// Asserts that importing each model (as `file`) is an error whose message holds the
/// text paired with it.
fn assert_import_errors<'a>(cases: impl IntoIterator<Item = (ModelProto, &'a str)>, file: &str) {
    for (m, want) in cases {
        let msg = import_bytes(&bytes(&m), file).unwrap_err().to_string();
        eprintln!("{msg}");
        assert!(msg.contains(want), "{msg} (wanted `{want}`)");
    }
}

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

/// A 1x1 conv of `x` followed by the node `name` of type `op` (attributes `extra`), encoded.
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
    bytes(&model_4x4(nodes, vec![half_weight()], &[1, 2, 4, 4]))
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

/// An initializer of element type `dtype` with little-endian `raw` bytes.
fn typed(name: &str, shape: &[usize], dtype: i32, raw: Vec<u8>) -> TensorProto {
    let mut t = i64_init(name, shape, vec![0; shape.iter().product()]);
    t.int64_data.clear();
    t.data_type = dtype;
    t.raw_data = raw;
    t
}

/// `x` → QuantizeLinear → `op` (inputs given) → DequantizeLinear → `y`, with uint8
/// activations (scale 0.1, zero point 0), int8 weights `w` `[2, 3, 1, 1]` and int32 bias.
fn qop_model(op_node: NodeProto, extra: Vec<TensorProto>) -> Vec<u8> {
    use slimdet_onnx::proto::data_type::{INT8, INT32, UINT8};
    let mut inits = vec![
        f32_init("s", &[], vec![0.1]),
        typed("z", &[], UINT8, vec![0]),
        f32_init("ws", &[2], vec![0.01, 0.02]),
        typed("wz", &[2], INT8, vec![0, 0]),
        typed("w", &[2, 3, 1, 1], INT8, vec![1, 2, 3, 0xff, 0x81, 5]),
        typed(
            "b",
            &[2],
            INT32,
            [7i32, -3].iter().flat_map(|v| v.to_le_bytes()).collect(),
        ),
    ];
    inits.extend(extra);
    let nodes = vec![
        node("QuantizeLinear", "q", &["x", "s", "z"], &["xq"], vec![]),
        op_node,
        node("DequantizeLinear", "dq", &["yq", "s", "z"], &["y"], vec![]),
    ];
    bytes(&model_4x4(nodes, inits, &[1, 2, 4, 4]))
}

/// The QLinearConv node `qconv` of the given inputs, output `yq`.
fn qconv(ins: &[&str]) -> NodeProto {
    node("QLinearConv", "qconv", ins, &["yq"], vec![])
}

/// A [`qop_model`] whose QLinearConv reads uint8 weights `wu` (`codes`, `[2, 3, 1, 1]`)
/// with per-channel zero points `wuz` (`zeros`).
fn uint8_weight_qconv(codes: Vec<u8>, zeros: Vec<u8>) -> Vec<u8> {
    use slimdet_onnx::proto::data_type::UINT8;
    qop_model(
        qconv(&["xq", "s", "z", "wu", "ws", "wuz", "s", "z", "b"]),
        vec![
            typed("wu", &[2, 3, 1, 1], UINT8, codes),
            typed("wuz", &[2], UINT8, zeros),
        ],
    )
}

/// The com.microsoft node `name` of type `op` with the given inputs, output `yq`.
fn ms_node(op: &str, name: &str, ins: &[&str]) -> NodeProto {
    let mut n = node(op, name, ins, &["yq"], vec![]);
    n.domain = "com.microsoft".into();
    n
}

#[test]
fn qoperator_convolution_imports_with_its_integer_parameters() {
    let b = qop_model(
        qconv(&["xq", "s", "z", "w", "ws", "wz", "s", "z", "b"]),
        vec![],
    );
    let imp = import_bytes(&b, "qconv.onnx").unwrap();
    assert!(imp.is_quantized());
    let (name, cq) = imp.conv_quant.iter().next().expect("one quantized conv");
    assert_eq!(name, "qconv");
    assert_eq!(cq.weight, [1, 2, 3, -1, -127, 5]);
    assert_eq!(cq.weight_scale, [0.01, 0.02]);
    assert_eq!(cq.bias.as_deref(), Some(&[7, -3][..]));
    // The network input and the conv output.
    assert_eq!(
        imp.act_quant.values().collect::<Vec<_>>(),
        [&(0.1, 0), &(0.1, 0)]
    );
    // The float view holds the dequantized weights; the float runner refuses the model.
    let conv = imp
        .graph
        .nodes
        .iter()
        .find_map(|n| match &n.op {
            slimdet_core::Op::Conv(c) => Some(c.clone()),
            _ => None,
        })
        .unwrap();
    assert_eq!(conv.weight.data()[3], -0.02);
    let err = slimdet_onnx::OnnxModel::new(imp, &Default::default())
        .err()
        .unwrap();
    assert!(err.to_string().contains("int8"), "{err}");
}

#[test]
fn quantized_forms_the_int8_engine_cannot_run_are_refused() {
    use slimdet_onnx::proto::data_type::{INT8, UINT8};
    let refused = |b: Vec<u8>, want_node: &str, want_op: &str, want_text: &str| {
        let err = import_bytes(&b, "q.onnx").unwrap_err();
        assert_unsupported(&err, want_node, want_op);
        assert!(err.to_string().contains(want_text), "{err}");
    };
    // uint8 weights with a non-zero zero point (asymmetric).
    refused(
        uint8_weight_qconv(vec![128, 130, 120, 0, 255, 128], vec![128, 128]),
        "`qconv`",
        "QLinearConv",
        "non-zero zero point",
    );
    // uint8 weights with zero point 0 but codes above 127.
    refused(
        uint8_weight_qconv(vec![1, 2, 200, 0, 5, 6], vec![0, 0]),
        "`qconv`",
        "QLinearConv",
        "does not fit int8",
    );
    // The conv reads the input with other parameters than it was quantized with.
    refused(
        qop_model(
            qconv(&["xq", "s2", "z", "w", "ws", "wz", "s", "z", "b"]),
            vec![f32_init("s2", &[], vec![0.2])],
        ),
        "`qconv`",
        "QLinearConv",
        "it was quantized with",
    );
    // Operators with no exact integer equivalent here, in either domain.
    for (op, ins) in [
        (
            "QLinearConcat",
            &["s", "z", "xq", "s", "z", "xq", "s", "z"][..],
        ),
        ("QLinearSigmoid", &["xq", "s", "z", "s", "z"][..]),
        (
            "QLinearMul",
            &["xq", "s", "z", "xq", "s", "z", "s", "z"][..],
        ),
    ] {
        refused(
            qop_model(ms_node(op, "n", ins), vec![]),
            "`n`",
            op,
            "no exact equivalent",
        );
    }
    refused(
        qop_model(
            node(
                "QLinearMatMul",
                "mm",
                &["xq", "s", "z", "w", "ws", "wz", "s", "z"],
                &["yq"],
                vec![],
            ),
            vec![],
        ),
        "`mm`",
        "QLinearMatMul",
        "no exact equivalent",
    );
    // A quantized add of a constant (post-processing).
    refused(
        qop_model(
            ms_node(
                "QLinearAdd",
                "add",
                &["xq", "s", "z", "c", "s", "z", "s", "z"],
            ),
            vec![typed("c", &[1, 3, 4, 4], UINT8, vec![3; 48])],
        ),
        "`add`",
        "QLinearAdd",
        "constant operand",
    );
    // 16-bit activations (element type 5, INT16).
    let m = model_4x4(
        vec![
            node("QuantizeLinear", "q", &["x", "s", "z16"], &["xq"], vec![]),
            node(
                "DequantizeLinear",
                "dq",
                &["xq", "s", "z16"],
                &["y"],
                vec![],
            ),
        ],
        vec![
            f32_init("s", &[], vec![0.1]),
            typed("z16", &[], INT8, vec![0]),
        ],
        &[1, 3, 4, 4],
    );
    let mut m = m;
    if let Some(g) = m.graph.as_mut() {
        g.initializer[1].data_type = 5;
        g.initializer[1].raw_data = vec![0, 0];
    }
    let err = import_bytes(&bytes(&m), "q16.onnx").unwrap_err();
    assert!(
        matches!(
            &err,
            OnnxError::Invalid { .. } | OnnxError::Unsupported { .. }
        ),
        "{err:?}"
    );
}

#[test]
fn quantized_operators_outside_qdq_pairs_are_refused() {
    let inits = vec![f32_init("scale", &[], vec![0.1])];
    let refused = |nodes, inits, out: &[i64]| {
        import_bytes(&bytes(&model_4x4(nodes, inits, out)), "q.onnx").unwrap_err()
    };
    // A float operator reading the integer output of a QuantizeLinear.
    let err = refused(
        vec![
            node("QuantizeLinear", "q", &["x", "scale"], &["xq"], vec![]),
            node("Relu", "relu", &["xq"], &["y"], vec![]),
        ],
        inits.clone(),
        &[1, 3, 4, 4],
    );
    assert_unsupported(&err, "`relu`", "Relu");
    assert!(err.to_string().contains("integer tensor `xq`"), "{err}");
    // A DequantizeLinear whose parameters differ from its QuantizeLinear's.
    let mut inits2 = inits.clone();
    inits2.push(f32_init("scale2", &[], vec![0.2]));
    let err = refused(
        vec![
            node("QuantizeLinear", "q", &["x", "scale"], &["xq"], vec![]),
            node("DequantizeLinear", "dq", &["xq", "scale2"], &["y"], vec![]),
        ],
        inits2,
        &[1, 3, 4, 4],
    );
    assert_unsupported(&err, "`dq`", "DequantizeLinear");
}

/// Asymmetric padding (TensorFlow's `SAME` as exported to ONNX) imports and runs: with
/// pads `[0, 0, 1, 1]` a 3x3 conv of an all-ones 4x4 input reads rows `oy..oy + 2`, the
/// last of them padding for the last output row.
#[test]
fn asymmetric_padding_imports_and_runs() {
    let nodes = vec![node(
        "Conv",
        "padded",
        &["x", "w"],
        &["y"],
        vec![ints("pads", &[0, 0, 1, 1])],
    )];
    let inits = vec![f32_init("w", &[2, 3, 3, 3], vec![0.5; 54])];
    let imp = import_bytes(&bytes(&model_4x4(nodes, inits, &[1, 2, 3, 3])), "pad.onnx").unwrap();
    let mut m = slimdet_onnx::OnnxModel::new(imp, &Default::default()).unwrap();
    let out = m.run_nchw(&[1.0; 48]).unwrap();
    assert_eq!(out[0].1, [1, 2, 3, 3]);
    // Taps inside the input per output position, times 3 channels · 0.5.
    let taps = |o: usize| if o < 2 { 3.0 } else { 2.0 };
    for ch in 0..2 {
        for oy in 0..3 {
            for ox in 0..3 {
                let want = taps(oy) * taps(ox) * 1.5;
                assert_eq!(out[0].2[(ch * 3 + oy) * 3 + ox], want, "({ch}, {oy}, {ox})");
            }
        }
    }
}

#[test]
fn malformed_graphs_are_errors() {
    // Undefined input value, a weight whose data does not fit its dims, a bad stride.
    let undefined = vec![node("Relu", "r", &["nope"], &["y"], vec![])];
    let mut short = half_weight();
    short.raw_data.truncate(20);
    let conv = |attrs| vec![node("Conv", "c", &["x", "w"], &["y"], attrs)];
    let cases = [
        (model_4x4(undefined, vec![], &[1, 3, 4, 4]), "never defined"),
        (model_4x4(conv(vec![]), vec![short], &[1, 2, 4, 4]), "holds"),
        (
            model_4x4(
                conv(vec![ints("strides", &[0, 1])]),
                vec![half_weight()],
                &[1, 2, 4, 4],
            ),
            "strides",
        ),
        (
            model_4x4(
                conv(vec![int("group", 2)]),
                vec![half_weight()],
                &[1, 2, 4, 4],
            ),
            "groups",
        ),
        (model_4x4(vec![], vec![], &[1]), "never defined"),
    ];
    assert_import_errors(cases, "bad.onnx");
}

#[test]
fn a_cycle_is_an_error_naming_a_node() {
    let nodes = vec![
        node("Relu", "a", &["x", "c"], &["b"], vec![]),
        node("Relu", "c_node", &["b"], &["c"], vec![]),
        node("Relu", "out", &["c"], &["y"], vec![]),
    ];
    let err = import_bytes(
        &bytes(&model_4x4(nodes, vec![], &[1, 3, 4, 4])),
        "cycle.onnx",
    )
    .unwrap_err();
    let msg = err.to_string();
    assert!(
        msg.contains("cycle") && (msg.contains("`a`") || msg.contains("`c_node`")),
        "{msg}"
    );
}

/// Sizes a corrupt file may declare (billions of elements, negative dimensions) and
/// values of the wrong element type are errors, checked before any allocation.
#[test]
fn huge_sizes_and_wrong_types_are_errors() {
    let conv = |w: TensorProto| {
        model_4x4(
            vec![node("Conv", "c", &["x", "w"], &["y"], vec![])],
            vec![w],
            &[1, 2, 4, 4],
        )
    };
    let mut huge_w = half_weight();
    huge_w.dims = vec![1 << 20, 1 << 20, 1 << 20, 1];
    let mut negative_w = half_weight();
    negative_w.dims = vec![2, -3, 1, 1];
    let int_w = i64_init("w", &[2, 3, 1, 1], vec![1; 6]);
    let mut string_w = half_weight();
    string_w.data_type = 8;
    let big_input = model(
        13,
        &[1, 3, 65536, 65536],
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        &[("y", &[1, 3, 65536, 65536])],
    );
    let mut int_input = model_4x4(
        vec![node("Relu", "r", &["x"], &["y"], vec![])],
        vec![],
        &[1, 3, 4, 4],
    );
    if let Some(slimdet_onnx::proto::type_proto::Value::TensorType(t)) = int_input
        .graph
        .as_mut()
        .and_then(|g| g.input[0].r#type.as_mut())
        .and_then(|t| t.value.as_mut())
    {
        t.elem_type = slimdet_onnx::proto::data_type::INT64;
    }
    let fill = |shape: Vec<i64>| {
        model_4x4(
            vec![
                node("ConstantOfShape", "big", &["s"], &["k"], vec![]),
                node("Add", "a", &["x", "k"], &["y"], vec![]),
            ],
            vec![i64_init("s", &[shape.len()], shape)],
            &[1, 3, 4, 4],
        )
    };
    let reshape = model_4x4(
        vec![node("Reshape", "rs", &["x", "s"], &["y"], vec![])],
        vec![i64_init("s", &[2], vec![1 << 40, -1])],
        &[1, 48],
    );
    let cases = [
        (conv(huge_w), "elements"),
        (conv(negative_w), "dimension -3"),
        (conv(int_w), "float"),
        (conv(string_w), "element type 8"),
        (big_input, "elements"),
        (int_input, "only float inputs"),
        (fill(vec![1 << 30, 1 << 30]), "elements"),
        (fill(vec![-1, 4]), "bad dimension"),
        (reshape, "rs"),
    ];
    assert_import_errors(cases, "huge.onnx");
}
