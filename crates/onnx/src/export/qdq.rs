//! QDQ ("quantize-dequantize") int8 export: the integer model as ONNX Runtime, TensorRT
//! and OpenVINO expect it.
//!
//! The float graph is exported as usual, and the quantization is written around it:
//! - every quantized activation `v` is followed by `QuantizeLinear` (uint8, its scale and
//!   zero point) and `DequantizeLinear`, so consumers see exactly the values our integer
//!   engine represents;
//! - a quantized convolution reads its weight through `DequantizeLinear` of an int8
//!   initializer (zero point 0, one scale per output channel, `axis = 0`), and its bias
//!   through `DequantizeLinear` of an int32 initializer with scale `s_in · s_w[o]`.
//!
//! Runtimes fuse these patterns into integer convolutions (`QLinearConv`); a runtime that
//! does not still computes the same function in float. What stays float in our engine
//! (layers kept in f32, the heads' softmax and box decoding) stays float here.

use std::collections::BTreeMap;

use crate::proto::{TensorProto, data_type};

use super::builder::{Builder, int};

/// The int8 parameters of one convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct QdqConv {
    /// Weights in `-127..=127`, OIHW like the graph's conv weight.
    pub weight: Vec<i8>,
    /// `[O]` weight scales (real weight = `q · scale[o]`).
    pub weight_scale: Vec<f32>,
    /// `[O]` int32 bias in accumulator units, if the conv has a bias.
    pub bias: Option<Vec<i32>>,
    /// `[O]` bias scales, `s_in · s_w[o]`.
    pub bias_scale: Vec<f32>,
}

/// What the QDQ export needs of a quantized detector. The graph it applies to is the
/// detector's (BN folded, activations fused), with value ids as there.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct QdqSpec {
    /// Per value of the graph: `(scale, zero point)` of its uint8 quantization, or `None`
    /// for values that stay float.
    pub act: Vec<Option<(f32, u8)>>,
    /// Quantized convolutions by node name.
    pub convs: BTreeMap<String, QdqConv>,
}

fn raw(name: &str, dtype: i32, dims: &[usize], bytes: Vec<u8>) -> TensorProto {
    TensorProto {
        dims: dims.iter().map(|&d| d as i64).collect(),
        data_type: dtype,
        name: name.to_string(),
        raw_data: bytes,
        ..TensorProto::default()
    }
}

impl Builder {
    fn raw_init(&mut self, name: &str, dtype: i32, dims: &[usize], bytes: Vec<u8>) -> String {
        let name = self.fresh(name);
        self.inits.push(raw(&name, dtype, dims, bytes));
        name
    }

    fn f32s(&mut self, name: &str, v: &[f32], dims: &[usize]) -> String {
        let bytes = v.iter().flat_map(|f| f.to_le_bytes()).collect();
        self.raw_init(name, data_type::FLOAT, dims, bytes)
    }

    /// `x → QuantizeLinear → DequantizeLinear` with a uint8 `(scale, zero point)`.
    pub(super) fn qdq(&mut self, x: &str, (scale, zp): (f32, u8)) -> String {
        let s = self.f32s(&format!("{x}.scale"), &[scale], &[]);
        let z = self.raw_init(&format!("{x}.zero_point"), data_type::UINT8, &[], vec![zp]);
        let q = self.node("QuantizeLinear", &format!("{x}.q"), &[x, &s, &z], vec![]);
        self.node(
            "DequantizeLinear",
            &format!("{x}.dq"),
            &[&q, &s, &z],
            vec![],
        )
    }

    /// The int8 weight of conv `node`, dequantized per output channel.
    pub(super) fn qdq_weight(&mut self, node: &str, c: &QdqConv, shape: &[usize]) -> String {
        let o = shape[0];
        let q = self.raw_init(
            &format!("{node}.weight_quantized"),
            data_type::INT8,
            shape,
            c.weight.iter().map(|&w| w as u8).collect(),
        );
        let s = self.f32s(&format!("{node}.weight_scale"), &c.weight_scale, &[o]);
        let z = self.raw_init(
            &format!("{node}.weight_zero_point"),
            data_type::INT8,
            &[o],
            vec![0; o],
        );
        self.node(
            "DequantizeLinear",
            &format!("{node}.weight"),
            &[&q, &s, &z],
            vec![int("axis", 0)],
        )
    }

    /// The int32 bias of conv `node`, dequantized per output channel.
    pub(super) fn qdq_bias(&mut self, node: &str, bias: &[i32], scale: &[f32]) -> String {
        let o = bias.len();
        let q = self.raw_init(
            &format!("{node}.bias_quantized"),
            data_type::INT32,
            &[o],
            bias.iter().flat_map(|b| b.to_le_bytes()).collect(),
        );
        let s = self.f32s(&format!("{node}.bias_scale"), scale, &[o]);
        let z = self.raw_init(
            &format!("{node}.bias_zero_point"),
            data_type::INT32,
            &[o],
            vec![0; 4 * o],
        );
        self.node(
            "DequantizeLinear",
            &format!("{node}.bias"),
            &[&q, &s, &z],
            vec![int("axis", 0)],
        )
    }
}
