//! Helpers shared by the integration tests: fixture paths, raw f32 files, comparisons,
//! the Python checks against ONNX Runtime.
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::process::Command;

pub use slimdet_testkit::{mb2_model, ultraface};

/// A float tensor of the MobileNetV2-SSD-Lite golden file (`<id>.scores` `[1, 3000, 21]`,
/// `<id>.boxes` `[1, 3000, 4]`, ...).
pub fn mb2_golden(name: &str) -> Vec<f32> {
    slimdet_testkit::golden_f32(&mb2_model().with_file_name("golden.safetensors"), name).1
}

/// The golden network input of image `id`, NHWC `[1, 300, 300, 3]`. (`<id>.input` is
/// declared `[1, 3, 300, 300]` but holds the values in the resized image's HWC order, as
/// `slimdet-models`' golden test checks.)
pub fn mb2_golden_input_nhwc(id: &str) -> Vec<f32> {
    mb2_golden(&format!("{id}.input"))
}

/// A little-endian f32 file.
pub fn read_f32(path: PathBuf) -> Vec<f32> {
    slimdet_testkit::read_f32(&path)
}

/// Writes `v` as a little-endian f32 file.
pub fn write_f32(path: &Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// The largest element-wise difference (the shared test helper).
#[allow(unused_imports)]
pub use slimdet_testkit::max_abs_diff;

/// The UltraFace golden input `(v − 127) / 128` in NCHW `[1, 3, 240, 320]`.
pub fn ultraface_input_nchw() -> Vec<f32> {
    let hwc = std::fs::read(ultraface("golden/13_resized_320x240_rgb_u8.bin")).unwrap();
    assert_eq!(hwc.len(), 240 * 320 * 3);
    let mut out = vec![0.0; hwc.len()];
    for y in 0..240 {
        for x in 0..320 {
            for c in 0..3 {
                out[(c * 240 + y) * 320 + x] = (hwc[(y * 320 + x) * 3 + c] as f32 - 127.0) / 128.0;
            }
        }
    }
    out
}

/// NHWC `[1, H, W, C]` to NCHW.
pub fn nhwc_to_nchw(x: &[f32], h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                out[(ch * h + y) * w + xx] = x[(y * w + xx) * c + ch];
            }
        }
    }
    out
}

/// Whether `python3` runs `import {modules}` (e.g. `"onnxruntime, numpy"`).
pub fn python_has(modules: &str) -> bool {
    Command::new("python3")
        .args(["-c", &format!("import {modules}")])
        .output()
        .map(|o| o.status.success())
        .unwrap_or(false)
}

/// The file `name` of this crate's `tests` folder (the Python helper scripts).
pub fn test_file(name: &str) -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("tests")
        .join(name)
}

/// Runs `model` in ONNX Runtime through `tests/ort_check.py` on the NCHW input
/// `input_nchw` (written to `dir/input.bin`); the script writes each output `<name>` to
/// `out/<name>.bin` and its shape to `out/<name>.shape` (`out` is created if missing).
pub fn ort_check(model: &Path, input_nchw: &[f32], dir: &Path, out: &Path) {
    let input = dir.join("input.bin");
    write_f32(&input, input_nchw);
    std::fs::create_dir_all(out).unwrap();
    let o = Command::new("python3")
        .arg(test_file("ort_check.py"))
        .args([model, &input, out])
        .output()
        .unwrap();
    assert!(
        o.status.success(),
        "ort_check.py failed on {}:\n{}",
        model.display(),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// Deterministic xorshift64* generator.
pub struct XorShift(pub u64);

impl XorShift {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}

/// Builders for small hand-made ONNX models.
pub mod build {
    use slimdet_onnx::proto::*;
    use slimdet_onnx::value::{Value, to_proto};

    /// A float tensor type of static shape.
    pub fn vi(name: &str, shape: &[i64]) -> ValueInfoProto {
        let dim = shape
            .iter()
            .map(|&d| tensor_shape_proto::Dimension {
                value: Some(tensor_shape_proto::dimension::Value::DimValue(d)),
                ..Default::default()
            })
            .collect();
        ValueInfoProto {
            name: name.into(),
            r#type: Some(TypeProto {
                value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                    elem_type: data_type::FLOAT,
                    shape: Some(TensorShapeProto { dim }),
                })),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// A node.
    pub fn node(
        op: &str,
        name: &str,
        ins: &[&str],
        outs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> NodeProto {
        NodeProto {
            input: ins.iter().map(|s| s.to_string()).collect(),
            output: outs.iter().map(|s| s.to_string()).collect(),
            name: name.into(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        }
    }

    /// An INTS attribute.
    pub fn ints(name: &str, v: &[i64]) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attr_type::INTS,
            ints: v.to_vec(),
            ..Default::default()
        }
    }

    /// An INT attribute.
    pub fn int(name: &str, i: i64) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attr_type::INT,
            i,
            ..Default::default()
        }
    }

    /// A FLOAT attribute.
    pub fn float(name: &str, f: f32) -> AttributeProto {
        AttributeProto {
            name: name.into(),
            r#type: attr_type::FLOAT,
            f,
            ..Default::default()
        }
    }

    /// A float initializer.
    pub fn f32_init(name: &str, shape: &[usize], data: Vec<f32>) -> TensorProto {
        to_proto(name, &Value::f32(shape.to_vec(), data))
    }

    /// An int64 initializer.
    pub fn i64_init(name: &str, shape: &[usize], data: Vec<i64>) -> TensorProto {
        to_proto(name, &Value::i64(shape.to_vec(), data))
    }

    /// A model with input `x` of `shape`, and the given nodes, initializers and outputs.
    pub fn model(
        opset: i64,
        shape: &[i64],
        nodes: Vec<NodeProto>,
        inits: Vec<TensorProto>,
        outputs: &[(&str, &[i64])],
    ) -> ModelProto {
        ModelProto {
            ir_version: 7,
            opset_import: vec![OperatorSetIdProto {
                domain: String::new(),
                version: opset,
            }],
            graph: Some(GraphProto {
                node: nodes,
                initializer: inits,
                input: vec![vi("x", shape)],
                output: outputs.iter().map(|(n, s)| vi(n, s)).collect(),
                ..Default::default()
            }),
            ..Default::default()
        }
    }

    /// Encoded bytes of `m`.
    pub fn bytes(m: &ModelProto) -> Vec<u8> {
        prost::Message::encode_to_vec(m)
    }
}

/// The network input `(pixel − mean) / std` of photo `id` for pytorch-ssd zoo network
/// `net` (`testdata/golden/pytorch-ssd/<net>-voc21-seed0`, from the golden's
/// OpenCV-resized pixels), NCHW `[1, 3, 300, 300]`.
pub fn zoo_input_nchw(net: &str, id: &str, mean: [f32; 3], std: f32) -> Vec<f32> {
    let file = slimdet_testkit::zoo(&format!("{net}-voc21-seed0/golden.safetensors"));
    let bytes = std::fs::read(&file).unwrap();
    let st = safetensors::SafeTensors::deserialize(&bytes).unwrap();
    let resized = st.tensor(&format!("{id}.resized")).unwrap();
    let hwc: Vec<f32> = resized
        .data()
        .iter()
        .enumerate()
        .map(|(i, &v)| (v as f32 - mean[i % 3]) / std)
        .collect();
    nhwc_to_nchw(&hwc, 300, 300, 3)
}
