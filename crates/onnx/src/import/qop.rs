//! Quantized models in QOperator form, as ONNX Runtime's `quantize_static` writes them
//! with `QuantFormat.QOperator`: a `QuantizeLinear` of the input, `QLinearConv` and
//! `QLinearAdd` (domain `com.microsoft`) on integer tensors, and `DequantizeLinear`
//! where float operators take over (the heads' concatenation, box decoding).
//!
//! Each such node becomes the float engine layer it stands for (a convolution with the
//! dequantized weights and bias, an add), and its integer parameters are recorded as for
//! a QDQ model: the output's `(scale, zero point)` in [`crate::Imported::act_quant`], the
//! convolution's int8 codes, per-channel or per-tensor scales and int32 bias in
//! [`crate::Imported::conv_quant`]. The integer engine then runs exactly this arithmetic:
//! `y = requant(Σ (x − z_x) · w + b, s_x · s_w / s_y) + z_y`, clamped to the codes.
//!
//! Activations are uint8, or int8 shifted by 128 onto uint8 (the same real values).
//! Refused, with the node and the reason: weights with a non-zero zero point or codes
//! outside int8 (uint8 weights), a node reading a tensor with other scale or zero point
//! than its producer wrote, constant operands of `QLinearAdd` (post-processing), and
//! broadcasting adds. Other quantized operators (`QLinearConcat`, `QLinearMul`,
//! `QLinearMatMul`, `QLinearSigmoid`, ...) are refused before reaching here.

use std::rc::Rc;

use slimdet_core::{Act, Op};

use super::convert::node_name;
use super::qdq::check_weight_codes;
use super::{ConvQuant, Importer, Val};
use crate::error::Result;
use crate::proto::{NodeProto, data_type};
use crate::value::Value;

impl Importer<'_> {
    /// Imports `QLinearConv` and `QLinearAdd`; `None` for other operators.
    pub(super) fn qop(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Option<Val>> {
        let v = match node.op_type.as_str() {
            "QLinearConv" => self.qlinear_conv(label, node, ins)?,
            "QLinearAdd" => self.qlinear_add(label, node, ins)?,
            _ => return Ok(None),
        };
        let out = node.output.first().cloned().unwrap_or_default();
        if let Val::Core { id, .. } = v
            && let Some(&q) = self.act_quant.get(&id)
        {
            self.quantized.insert(out, (v.clone(), q));
        }
        Ok(Some(v))
    }

    /// A constant input `k`, or an error naming it.
    fn qconst(
        &self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
        k: usize,
    ) -> Result<Rc<Value>> {
        match ins.get(k) {
            Some(Some(Val::Const(c))) => Ok(c.clone()),
            Some(Some(_)) => Err(self.unsupported(
                label,
                &node.op_type,
                format!("input {k} (`{}`) must be a constant", node.input[k]),
            )),
            _ => Err(self.node_err(label, &node.op_type, format!("missing input {k}"))),
        }
    }

    /// The per-tensor `(scale, zero point)` at inputs `k`, `k + 1`, in the uint8 domain.
    fn qparam(
        &self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
        k: usize,
    ) -> Result<(f32, u8)> {
        let op = node.op_type.as_str();
        let scale = self.qconst(label, node, ins, k)?;
        let scale = match scale.as_f32() {
            Some(&[s]) if s.is_finite() && s > 0.0 => s,
            _ => {
                return Err(self.unsupported(
                    label,
                    op,
                    format!("input {k} must be one positive float scale (per-tensor activations)"),
                ));
            }
        };
        let zp = match ins.get(k + 1) {
            Some(Some(_)) => {
                let z = self.qconst(label, node, ins, k + 1)?;
                match z
                    .to_i64s()
                    .map_err(|e| self.node_err(label, op, e))?
                    .as_slice()
                {
                    &[z] => z,
                    _ => {
                        return Err(self.unsupported(
                            label,
                            op,
                            format!("input {} must be one zero point", k + 1),
                        ));
                    }
                }
            }
            _ => 0,
        };
        Ok((scale, self.act_zero_point(label, node, k + 1, zp)?))
    }

    /// The float value behind quantized input `k`, read with parameters `q`.
    fn qinput(&self, label: &str, node: &NodeProto, k: usize, q: (f32, u8)) -> Result<Val> {
        let op = node.op_type.as_str();
        let name = node.input.get(k).map(String::as_str).unwrap_or("");
        match self.quantized.get(name) {
            Some((v, pq)) if *pq == q => Ok(v.clone()),
            Some((_, pq)) => Err(self.unsupported(
                label,
                op,
                format!("reads `{name}` with (scale, zero point) {q:?}, but it was quantized with {pq:?}"),
            )),
            None => Err(self.unsupported(
                label,
                op,
                format!("input `{name}` is not a quantized tensor (an output of QuantizeLinear or of a QLinear operator)"),
            )),
        }
    }

    /// `QLinearConv(x, x_scale, x_zp, w, w_scale, w_zp, y_scale, y_zp, B)`.
    fn qlinear_conv(&mut self, label: &str, node: &NodeProto, ins: &[Option<Val>]) -> Result<Val> {
        let op = "QLinearConv";
        let qx = self.qparam(label, node, ins, 1)?;
        let qy = self.qparam(label, node, ins, 6)?;
        let x = self.qinput(label, node, 0, qx)?;
        let x = self.feature_map(label, op, x)?;
        let w = self.qconst(label, node, ins, 3)?;
        let wty = self.elem_type(&node.input[3]);
        if w.shape.len() != 4 {
            return Err(self.unsupported(
                label,
                op,
                "only 2-D convolutions (4-D weights) are supported",
            ));
        }
        if !matches!(wty, Some(data_type::INT8) | Some(data_type::UINT8)) {
            return Err(self.node_err(
                label,
                op,
                format!("weight element type {wty:?}; int8 is needed"),
            ));
        }
        let codes = w.to_i64s().map_err(|e| self.node_err(label, op, e))?;
        let o = w.shape[0];
        let ws = self.qconst(label, node, ins, 4)?;
        let ws: Vec<f32> = match ws.as_f32() {
            Some(s) if s.len() == 1 => vec![s[0]; o],
            Some(s) if s.len() == o => s.to_vec(),
            _ => {
                return Err(self.node_err(label, op, format!("w_scale must be 1 or {o} floats")));
            }
        };
        if ws.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
            return Err(self.node_err(label, op, "w_scale must be positive"));
        }
        let wz = self.qconst(label, node, ins, 5)?;
        let wz = wz.to_i64s().map_err(|e| self.node_err(label, op, e))?;
        if wz.iter().any(|&z| z != 0) {
            return Err(self.unsupported(
                label,
                op,
                "weights with a non-zero zero point; the int8 kernels take symmetric weights (zero point 0)",
            ));
        }
        check_weight_codes(&codes).map_err(|e| self.unsupported(label, op, e))?;
        let per = codes.len() / o.max(1);
        let wf: Vec<f32> = codes
            .iter()
            .enumerate()
            .map(|(i, &q)| q as f32 * ws[i / per.max(1)])
            .collect();
        let bias = match ins.get(8) {
            Some(Some(_)) => {
                let b = self.qconst(label, node, ins, 8)?;
                if self.elem_type(&node.input[8]) != Some(data_type::INT32) || b.numel() != o {
                    return Err(self.node_err(
                        label,
                        op,
                        format!("the bias must be {o} int32 values"),
                    ));
                }
                Some(b.to_i64s().map_err(|e| self.node_err(label, op, e))?)
            }
            _ => None,
        };
        let bias_i32: Option<Vec<i32>> = bias
            .map(|b| b.iter().map(|&v| i32::try_from(v)).collect())
            .transpose()
            .map_err(|_| self.node_err(label, op, "bias value out of the int32 range"))?;
        let bias_f = bias_i32.as_ref().map(|b| {
            let v = b
                .iter()
                .zip(&ws)
                .map(|(&b, &sw)| (b as f64 * qx.0 as f64 * sw as f64) as f32)
                .collect();
            Value::f32(vec![o], v)
        });
        let name = self.unique(node_name(node).trim_end_matches("_quant").to_string());
        let wv = Value::f32(w.shape.clone(), wf);
        let id = self.conv_layer(label, node, x, &wv, bias_f.as_ref(), name.clone())?;
        self.conv_quant.insert(
            name,
            ConvQuant {
                weight: codes.iter().map(|&q| q as i8).collect(),
                weight_scale: ws,
                bias: Some(bias_i32.unwrap_or_else(|| vec![0; o])),
            },
        );
        self.set_act_quant(label, op, id, qy)?;
        Ok(Val::Core { id, nhwc: true })
    }

    /// `QLinearAdd(A, A_scale, A_zp, B, B_scale, B_zp, C_scale, C_zp)` of two engine
    /// values of the same shape.
    fn qlinear_add(&mut self, label: &str, node: &NodeProto, ins: &[Option<Val>]) -> Result<Val> {
        let op = "QLinearAdd";
        let (qa, qb, qc) = (
            self.qparam(label, node, ins, 1)?,
            self.qparam(label, node, ins, 4)?,
            self.qparam(label, node, ins, 6)?,
        );
        let operand = |k: usize, q| -> Result<Val> {
            if matches!(ins.get(k), Some(Some(Val::Const(_)))) {
                return Err(self.unsupported(
                    label,
                    op,
                    "a constant operand (a quantized post-processing add) is not supported; quantize only the network's adds",
                ));
            }
            self.qinput(label, node, k, q)
        };
        let (a, b) = (operand(0, qa)?, operand(3, qb)?);
        if self.onnx_shape(&a) != self.onnx_shape(&b) {
            return Err(self.unsupported(label, op, "broadcasting (operands of different shapes)"));
        }
        let name = self.unique(node_name(node).trim_end_matches("_quant").to_string());
        let (v, nhwc) = match (a, b) {
            (Val::Core { id: x, nhwc: true }, Val::Core { id: y, nhwc: true }) => {
                (self.push(label, name, Op::Add(Act::None), &[x, y])?, true)
            }
            (a @ Val::Core { .. }, b @ Val::Core { .. }) => {
                let (x, y) = (self.materialize(label, a)?, self.materialize(label, b)?);
                (self.push(label, name, Op::Add(Act::None), &[x, y])?, false)
            }
            (Val::Tail { slot, .. }, _) | (_, Val::Tail { slot, .. }) => {
                return Err(self.tail_input_err(label, op, slot));
            }
            _ => return Err(self.unsupported(label, op, "constant operands")),
        };
        self.set_act_quant(label, op, v, qc)?;
        Ok(Val::Core { id: v, nhwc })
    }
}
