//! Unit tests of the GraphDef reader on hand-built graphs.

use prost::Message;

use super::proto::{self, AttrValue, GraphDef, NodeDef, TensorProto, TensorShapeProto, attr_value};
use super::*;

fn shape(d: &[i64]) -> TensorShapeProto {
    TensorShapeProto {
        dim: d
            .iter()
            .map(|&size| proto::tensor_shape_proto::Dim {
                size,
                name: String::new(),
            })
            .collect(),
        unknown_rank: false,
    }
}

fn const_node(name: &str, t: TensorProto) -> NodeDef {
    NodeDef {
        name: name.to_string(),
        op: "Const".to_string(),
        input: vec![],
        attr: [(
            "value".to_string(),
            AttrValue {
                value: Some(attr_value::Value::Tensor(t)),
            },
        )]
        .into(),
    }
}

fn f32_tensor(d: &[i64], vals: &[f32], packed: bool) -> TensorProto {
    TensorProto {
        dtype: proto::dtype::FLOAT,
        tensor_shape: Some(shape(d)),
        tensor_content: if packed {
            vals.iter().flat_map(|v| v.to_le_bytes()).collect()
        } else {
            Vec::new()
        },
        float_val: if packed { Vec::new() } else { vals.to_vec() },
        ..Default::default()
    }
}

fn encode(nodes: Vec<NodeDef>) -> Vec<u8> {
    GraphDef { node: nodes }.encode_to_vec()
}

fn op(name: &str, op: &str, inputs: &[&str]) -> NodeDef {
    NodeDef {
        name: name.to_string(),
        op: op.to_string(),
        input: inputs.iter().map(|s| s.to_string()).collect(),
        attr: Default::default(),
    }
}

#[test]
fn packed_and_listed_constants_decode_and_identities_are_followed() {
    let mut conv = op("conv", "Conv2D", &["x", "w/read", "^ctl"]);
    conv.attr.insert(
        "padding".into(),
        AttrValue {
            value: Some(attr_value::Value::S(b"SAME".to_vec())),
        },
    );
    conv.attr.insert(
        "strides".into(),
        AttrValue {
            value: Some(attr_value::Value::List(proto::ListValue {
                i: vec![1, 2, 2, 1],
                ..Default::default()
            })),
        },
    );
    let bytes = encode(vec![
        op("x", "Placeholder", &[]),
        const_node(
            "w",
            f32_tensor(&[1, 1, 2, 3], &[1., 2., 3., 4., 5., 6.], true),
        ),
        op("w/read", "Identity", &["w"]),
        const_node("fill", f32_tensor(&[2, 2], &[7.0], false)),
        conv,
    ]);
    assert!(looks_like_graphdef(&bytes));
    let g = load_graphdef_bytes(&bytes, "g.pb").unwrap();
    let conv = g.node("conv:0").unwrap();
    assert_eq!(conv.inputs, ["x", "w/read"], "control inputs are dropped");
    assert_eq!(conv.attr_str("padding"), Some("SAME"));
    assert_eq!(conv.attr_ints("strides"), Some(&[1i64, 2, 2, 1][..]));
    let w = g.input(conv, 1).unwrap().const_value().unwrap();
    assert_eq!(w.shape, [1, 1, 2, 3]);
    assert_eq!(w.as_f32().unwrap(), [1., 2., 3., 4., 5., 6.]);
    let fill = g.node("fill").unwrap().const_value().unwrap();
    assert_eq!(
        fill.as_f32().unwrap(),
        [7.0; 4],
        "a short list repeats its last value"
    );
    assert_eq!(
        g.consumers("w")
            .map(|n| n.name.as_str())
            .collect::<Vec<_>>(),
        ["w/read"]
    );
}

#[test]
fn integer_half_and_double_constants_convert() {
    let mk = |dtype, content: Vec<u8>| TensorProto {
        dtype,
        tensor_shape: Some(shape(&[2])),
        tensor_content: content,
        ..Default::default()
    };
    let bytes = encode(vec![
        const_node(
            "i32",
            mk(
                proto::dtype::INT32,
                [-3i32, 9].iter().flat_map(|v| v.to_le_bytes()).collect(),
            ),
        ),
        const_node("i8", mk(proto::dtype::INT8, vec![0xff, 0x05])),
        const_node(
            "h",
            mk(
                proto::dtype::HALF,
                [0x3c00u16, 0x0001]
                    .iter()
                    .flat_map(|v| v.to_le_bytes())
                    .collect(),
            ),
        ),
        const_node(
            "d",
            TensorProto {
                dtype: proto::dtype::DOUBLE,
                tensor_shape: Some(shape(&[2])),
                double_val: vec![0.5, -2.0],
                ..Default::default()
            },
        ),
    ]);
    let g = load_graphdef_bytes(&bytes, "g.pb").unwrap();
    let v = |n: &str| g.node(n).unwrap().const_value().unwrap().clone();
    assert_eq!(v("i32").as_i64().unwrap(), [-3, 9]);
    assert_eq!(v("i8").as_i64().unwrap(), [-1, 5]);
    assert_eq!(v("h").as_f32().unwrap(), [1.0, 2f32.powi(-24)]);
    assert_eq!(v("d").as_f32().unwrap(), [0.5, -2.0]);
}

fn err_of(nodes: Vec<NodeDef>) -> String {
    let e = load_graphdef_bytes(&encode(nodes), "bad.pb")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.pb"), "error does not name the file: {e}");
    e
}

#[test]
fn hostile_tensors_are_refused_with_the_cause() {
    let e = err_of(vec![const_node("neg", f32_tensor(&[-1, 4], &[1.0], false))]);
    assert!(e.contains("negative"), "{e}");
    let e = err_of(vec![const_node(
        "huge",
        f32_tensor(&[1 << 20, 1 << 20], &[1.0], false),
    )]);
    assert!(e.contains("more than"), "{e}");
    let e = err_of(vec![const_node(
        "fill",
        f32_tensor(&[1 << 27], &[1.0], false),
    )]);
    assert!(e.contains("fill budget"), "{e}");
    let mut t = f32_tensor(&[4], &[1.0, 2.0], true);
    t.tensor_content.truncate(8);
    let e = err_of(vec![const_node("short", t)]);
    assert!(e.contains("tensor_content holds 8 bytes"), "{e}");
    let e = err_of(vec![const_node(
        "many",
        f32_tensor(&[1], &[1.0, 2.0], false),
    )]);
    assert!(e.contains("2 values listed"), "{e}");
    let e = err_of(vec![op("a", "Add", &[]), op("a", "Add", &[])]);
    assert!(e.contains("two nodes"), "{e}");
    // Only a `versions` field (4, empty message): a GraphDef without nodes.
    let e = load_graphdef_bytes(&[0x22, 0x00], "bad.pb")
        .unwrap_err()
        .to_string();
    assert!(e.contains("bad.pb") && e.contains("no nodes"), "{e}");
}

#[test]
fn truncated_empty_and_deeply_nested_files_are_errors() {
    let bytes = encode(vec![const_node("w", f32_tensor(&[8], &[1.0; 8], true))]);
    for cut in 1..bytes.len() {
        let e = load_graphdef_bytes(&bytes[..cut], "cut.pb")
            .unwrap_err()
            .to_string();
        assert!(e.contains("cut.pb"), "{e}");
    }
    assert!(
        load_graphdef_bytes(&[], "e.pb")
            .unwrap_err()
            .to_string()
            .contains("empty")
    );
    // 200 levels of ListValue-in-AttrValue nesting are not expressible, but nested
    // length-delimited fields are: field 1 (node) → field 5 (attr) ... beyond prost's limit.
    let mut deep = Vec::new();
    for _ in 0..200 {
        let mut outer = vec![0x0A];
        let mut len = deep.len();
        loop {
            let b = (len & 0x7f) as u8;
            len >>= 7;
            if len == 0 {
                outer.push(b);
                break;
            }
            outer.push(b | 0x80);
        }
        outer.extend_from_slice(&deep);
        deep = outer;
    }
    assert!(load_graphdef_bytes(&deep, "deep.pb").is_err());
}

#[test]
fn input_names_strip_ports_and_control_marks() {
    assert_eq!(input_node_name("a/b:1"), "a/b");
    assert_eq!(input_node_name("^a"), "a");
    assert_eq!(input_node_name("a:b"), "a:b");
}

#[test]
fn filters_transpose_to_oihw() {
    // HWIO [1, 2, 2, 3]: value = 100·x + 10·i + o.
    let mut v = Vec::new();
    for x in 0..2 {
        for i in 0..2 {
            for o in 0..3 {
                v.push((100 * x + 10 * i + o) as f32);
            }
        }
    }
    let t = NamedTensor {
        name: "w".into(),
        shape: vec![1, 2, 2, 3],
        data: TensorData::F32(v),
    };
    let w = filter_to_oihw(&t, false).unwrap();
    assert_eq!(w.shape, [3, 2, 1, 2]);
    // [o=2, i=1, y=0, x=1] (kh = 1) → 100 + 10 + 2.
    assert_eq!(w.as_f32().unwrap()[(2 * 2 + 1) * 2 + 1], 112.0);
    let dw = NamedTensor {
        name: "d".into(),
        shape: vec![1, 2, 3, 1],
        data: TensorData::F32(vec![0., 1., 2., 10., 11., 12.]),
    };
    let w = filter_to_oihw(&dw, true).unwrap();
    assert_eq!(w.shape, [3, 1, 1, 2]);
    assert_eq!(w.as_f32().unwrap(), [0., 10., 1., 11., 2., 12.]);
}
