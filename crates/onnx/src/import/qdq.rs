//! QDQ import: `QuantizeLinear` / `DequantizeLinear` as ONNX Runtime's quantizer and
//! `slimdet export --quantized` write them.
//!
//! - `DequantizeLinear` of a constant (int8 weights, int32 biases) folds to the float
//!   constant `(q − zp) · scale` and remembers the integer codes, so the convolution that
//!   reads it can run on int8 kernels with exactly those codes.
//! - `QuantizeLinear` of a computed (engine) value followed by `DequantizeLinear` with the
//!   same parameters is the quantization of that value: the pair becomes the identity in
//!   the float graph and the value's uint8 `(scale, zero point)` is recorded
//!   ([`crate::Imported::act_quant`]).
//! - Anything else that reads the integer output of a `QuantizeLinear` is refused, as
//!   are integer tensors other than uint8 activations and int8/int32 constants.
//!
//! The float graph of a QDQ model is therefore not the model: [`crate::OnnxModel`]
//! refuses to run it in float, and [`crate::detector_from_onnx`] runs it on the integer
//! engine.

use std::rc::Rc;

use super::{Importer, Val};
use crate::error::Result;
use crate::proto::NodeProto;
use crate::value::Value;

/// The integer codes behind a dequantized constant.
#[derive(Clone, Debug, PartialEq)]
pub(crate) struct QConst {
    /// Codes minus their zero point, row-major.
    pub(crate) codes: Vec<i64>,
    /// One scale per slice along `axis` (or one for the whole tensor).
    pub(crate) scales: Vec<f32>,
    /// Whether some zero point is not 0 (refused for convolution weights).
    pub(crate) asymmetric: bool,
}

/// Int8 parameters of an imported convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct ConvQuant {
    /// Weight codes, OIHW, in `-128..=127`.
    pub weight: Vec<i8>,
    /// `[O]` weight scales.
    pub weight_scale: Vec<f32>,
    /// `[O]` int32 bias codes, when the bias was given through `DequantizeLinear`.
    pub bias: Option<Vec<i32>>,
}

impl Importer<'_> {
    /// The scalar-or-vector scale and zero point inputs 1 and 2 of a Q/DQ node.
    fn qparams(
        &self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<(Vec<f32>, Vec<i64>)> {
        let op = node.op_type.as_str();
        let scale = match ins.get(1) {
            Some(Some(Val::Const(c))) => c
                .as_f32()
                .map(<[f32]>::to_vec)
                .ok_or_else(|| self.node_err(label, op, "scale is not float"))?,
            _ => return Err(self.unsupported(label, op, "the scale must be a constant")),
        };
        let zp = match ins.get(2) {
            Some(Some(Val::Const(c))) => c.to_i64s().map_err(|e| self.node_err(label, op, e))?,
            None | Some(None) => vec![0; scale.len()],
            _ => return Err(self.unsupported(label, op, "the zero point must be a constant")),
        };
        if scale.is_empty()
            || zp.len() != scale.len()
            || scale.iter().any(|s| s.is_nan() || *s <= 0.0)
        {
            return Err(self.node_err(
                label,
                op,
                "scale and zero point must be non-empty, of equal length, with scales > 0",
            ));
        }
        Ok((scale, zp))
    }

    /// The zero point `zp` of input `k` of `node` (an activation's) in the uint8 domain:
    /// uint8 as is, int8 shifted by 128 (same real values, codes `c + 128`).
    pub(super) fn act_zero_point(
        &self,
        label: &str,
        node: &NodeProto,
        k: usize,
        zp: i64,
    ) -> Result<u8> {
        let op = node.op_type.as_str();
        let ty = match node.input.get(k).filter(|n| !n.is_empty()) {
            None => crate::proto::data_type::UINT8,
            Some(name) => self
                .elem_type(name)
                .unwrap_or(crate::proto::data_type::UINT8),
        };
        let shifted = match ty {
            crate::proto::data_type::UINT8 => zp,
            crate::proto::data_type::INT8 => zp + 128,
            other => {
                return Err(self.unsupported(
                    label,
                    op,
                    format!("activations of element type {other}; only uint8 and int8 activations are supported"),
                ));
            }
        };
        u8::try_from(shifted)
            .map_err(|_| self.node_err(label, op, format!("zero point {zp} is out of range")))
    }

    /// Handles `QuantizeLinear` and `DequantizeLinear`; `None` for other operators.
    pub(super) fn qdq(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Option<Val>> {
        let op = node.op_type.as_str();
        if op != "QuantizeLinear" && op != "DequantizeLinear" {
            return Ok(None);
        }
        let (scale, zp) = self.qparams(label, node, ins)?;
        let axis = super::attrs::Attrs(&node.attribute)
            .int("axis")
            .unwrap_or(1);
        let input_name = node.input.first().cloned().unwrap_or_default();
        match (op, ins.first()) {
            ("DequantizeLinear", Some(Some(Val::Const(c)))) => {
                let codes = c.to_i64s().map_err(|e| self.node_err(label, op, e))?;
                let (per, groups) = split(&c.shape, axis, scale.len())
                    .ok_or_else(|| self.node_err(label, op, format!("{} scales do not fit shape {:?} on axis {axis}", scale.len(), c.shape)))?;
                let data: Vec<f32> = codes
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| {
                        let g = (i / per) % groups;
                        (q - zp[g]) as f32 * scale[g]
                    })
                    .collect();
                let codes = codes
                    .iter()
                    .enumerate()
                    .map(|(i, &q)| q - zp[(i / per) % groups])
                    .collect();
                let asymmetric = zp.iter().any(|&z| z != 0);
                let v = Rc::new(Value::f32(c.shape.clone(), data));
                self.dq_consts.insert(Rc::as_ptr(&v) as usize, QConst { codes, scales: scale, asymmetric });
                Ok(Some(Val::Const(v)))
            }
            ("DequantizeLinear", Some(Some(_))) => {
                let Some((inner, q)) = self.quantized.get(&input_name).cloned() else {
                    return Err(self.unsupported(label, op, format!("its input `{input_name}` is not the output of a QuantizeLinear")));
                };
                let zp0 = self.act_zero_point(label, node, 2, zp[0])?;
                if scale.len() != 1 || (scale[0], zp0) != q {
                    return Err(self.unsupported(label, op, "its scale and zero point differ from those of the QuantizeLinear before it"));
                }
                match inner {
                    // Post-processing runs in the tail: the pair is applied there, exactly.
                    Val::Tail { slot, shape } => {
                        let out = self.new_tail_slot(shape.clone(), format!("{label} (`{op}`)"));
                        self.tail.steps.push(crate::tail::TailStep {
                            node: label.to_string(),
                            op: crate::interp::Op::FakeQuant { scale: q.0, zero_point: q.1 as i32 },
                            inputs: vec![crate::tail::Src::Slot(slot)],
                            output: out,
                        });
                        Ok(Some(Val::Tail { slot: out, shape }))
                    }
                    inner => Ok(Some(inner)),
                }
            }
            ("QuantizeLinear", Some(Some(Val::Tail { slot, shape }))) => {
                if scale.len() != 1 {
                    return Err(self.unsupported(label, op, "only per-tensor quantization of post-processing values is supported"));
                }
                let zp0 = self.act_zero_point(label, node, 2, zp[0])?;
                let inner = Val::Tail { slot: *slot, shape: shape.clone() };
                let out = node.output.first().cloned().unwrap_or_default();
                self.quantized.insert(out, (inner.clone(), (scale[0], zp0)));
                Ok(Some(inner))
            }
            ("QuantizeLinear", Some(Some(Val::Core { id, nhwc }))) => {
                if scale.len() != 1 {
                    return Err(self.unsupported(label, op, "per-channel activation quantization"));
                }
                let q = (scale[0], self.act_zero_point(label, node, 2, zp[0])?);
                self.set_act_quant(label, op, *id, q)?;
                let inner = Val::Core { id: *id, nhwc: *nhwc };
                let out = node.output.first().cloned().unwrap_or_default();
                self.quantized.insert(out, (inner.clone(), q));
                Ok(Some(inner))
            }
            _ => Err(self.unsupported(label, op, "only QuantizeLinear of a network value and DequantizeLinear of a constant or of such a QuantizeLinear are supported")),
        }
    }

    /// Refuses a node that reads a quantized (integer) tensor, other than
    /// `DequantizeLinear`, the supported QOperator nodes, and the operators that only move
    /// codes ([`MOVES_CODES`], data input 0).
    pub(super) fn check_not_integer(&self, label: &str, node: &NodeProto) -> Result<()> {
        let op = node.op_type.as_str();
        if op == "DequantizeLinear" || op == "QLinearConv" || op == "QLinearAdd" {
            return Ok(());
        }
        let skip = usize::from(MOVES_CODES.contains(&op));
        match node.input.iter().skip(skip).find(|i| self.quantized.contains_key(i.as_str())) {
            Some(i) => Err(self.unsupported(
                label,
                op,
                format!("reads the integer tensor `{i}` (a quantized value); an integer tensor may only be dequantized, fed to QLinearConv / QLinearAdd, or reshaped"),
            )),
            None => Ok(()),
        }
    }

    /// The quantization of `node`'s output when it only moves the codes of a quantized
    /// data input (a reshape or transpose of integer codes is the same on real values).
    pub(super) fn moved_quantized(&self, node: &NodeProto) -> Option<(f32, u8)> {
        if !MOVES_CODES.contains(&node.op_type.as_str()) {
            return None;
        }
        node.input
            .first()
            .and_then(|i| self.quantized.get(i))
            .map(|(_, q)| *q)
    }

    /// Records `v`, the output of a code-moving `node`, as quantized with `q`.
    pub(super) fn keep_quantized(
        &mut self,
        label: &str,
        node: &NodeProto,
        v: &Val,
        q: (f32, u8),
    ) -> Result<()> {
        if let Val::Core { id, .. } = v {
            self.set_act_quant(label, &node.op_type, *id, q)?;
        }
        if let Some(out) = node.output.first() {
            self.quantized.insert(out.clone(), (v.clone(), q));
        }
        Ok(())
    }

    /// Records the quantization of engine value `id`; a value quantized twice must have
    /// the same parameters.
    pub(super) fn set_act_quant(
        &mut self,
        label: &str,
        op: &str,
        id: slimdet_core::ValueId,
        q: (f32, u8),
    ) -> Result<()> {
        if let Some(old) = self.act_quant.insert(id, q)
            && old != q
        {
            return Err(self.unsupported(label, op, format!("the same value is quantized twice with different parameters ({old:?} and {q:?})")));
        }
        Ok(())
    }

    /// Records the integer codes of the weight and bias of the convolution just imported.
    pub(super) fn record_conv_quant(&mut self, label: &str, ins: &[Option<Val>]) -> Result<()> {
        let code_of = |k: usize| match ins.get(k) {
            Some(Some(Val::Const(c))) => self.dq_consts.get(&(Rc::as_ptr(c) as usize)).cloned(),
            _ => None,
        };
        let (Some(w), b) = (code_of(1), code_of(2)) else {
            return Ok(());
        };
        if w.asymmetric {
            return Err(self.unsupported(label, "Conv", "its weight is dequantized with a non-zero zero point; the int8 kernels take symmetric weights (zero point 0)"));
        }
        check_weight_codes(&w.codes).map_err(|e| self.unsupported(label, "Conv", e))?;
        if b.as_ref().is_some_and(|b| b.asymmetric) {
            return Err(self.unsupported(
                label,
                "Conv",
                "its bias is dequantized with a non-zero zero point",
            ));
        }
        let Some(name) = self
            .graph
            .nodes
            .iter()
            .rev()
            .find(|n| matches!(n.op, slimdet_core::Op::Conv(_)))
            .map(|n| n.name.clone())
        else {
            return Ok(());
        };
        let o = match ins.get(1) {
            Some(Some(Val::Const(c))) => c.shape.first().copied().unwrap_or(0),
            _ => 0,
        };
        let weight_scale = if w.scales.len() == 1 {
            vec![w.scales[0]; o]
        } else {
            w.scales
        };
        self.conv_quant.insert(
            name,
            ConvQuant {
                weight: w.codes.iter().map(|&q| q as i8).collect(),
                weight_scale,
                bias: b.map(|b| {
                    b.codes
                        .iter()
                        .map(|&q| q.clamp(i32::MIN as i64, i32::MAX as i64) as i32)
                        .collect()
                }),
            },
        );
        Ok(())
    }
}

/// Operators that only move the codes of a quantized tensor (input 0), so their output
/// is quantized like their input.
pub(super) const MOVES_CODES: [&str; 6] = [
    "Transpose",
    "Reshape",
    "Flatten",
    "Squeeze",
    "Unsqueeze",
    "Identity",
];

/// Weight codes must be int8 (`-128..=127`; -128 is refused later, with the layer name,
/// as the kernels need symmetric weights). uint8 codes above 127 do not fit.
pub(super) fn check_weight_codes(codes: &[i64]) -> std::result::Result<(), String> {
    match codes.iter().find(|q| !(-128..=127).contains(*q)) {
        Some(q) => Err(format!(
            "weight code {q} does not fit int8 (uint8 weights are not supported: the int8 kernels take symmetric int8 weights)"
        )),
        None => Ok(()),
    }
}

/// `(elements per slice, number of slices)` of `shape` along `axis` for `n` scales: one
/// scale covers everything, else `n` must equal the axis size.
fn split(shape: &[usize], axis: i64, n: usize) -> Option<(usize, usize)> {
    let total: usize = shape.iter().product();
    if n == 1 {
        return Some((total.max(1), 1));
    }
    let rank = shape.len() as i64;
    let a = if axis < 0 { axis + rank } else { axis };
    if !(0..rank).contains(&a) || shape[a as usize] != n {
        return None;
    }
    let inner: usize = shape[a as usize + 1..].iter().product();
    Some((inner.max(1), n))
}
