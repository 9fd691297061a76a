//! ONNX operators onto engine nodes, with the NCHW → NHWC layout bookkeeping; the
//! parametric layers (Conv, BatchNormalization, Gemm/MatMul) are in `layers.rs`.
//!
//! A feature map (`nhwc`) keeps ONNX shape `[N, C, H, W]` but is stored `[N, H, W, C]`, so
//! ONNX axis `a` is stored at axis `[0, 3, 1, 2][a]`. The pytorch-ssd head pattern
//! `Transpose(0, 2, 3, 1)` is therefore free (the data already is NHWC) and the following
//! `Reshape([N, -1, K])` is a plain engine reshape. Parametric nodes are named after their
//! weight initializer (`base_net.0.0.weight` → `base_net.0.0`) so that `Graph::params`
//! gives PyTorch state_dict keys.

use std::rc::Rc;

use slimdet_core::{Act, Op};

use super::attrs::{Attrs, clip_bounds};
use super::{Importer, Val};
use crate::error::Result;
use crate::interp::{norm_axis, perm_of, reshape_dims};
use crate::proto::NodeProto;
use crate::value::Value;

/// Stored axis of ONNX axis `a` of a feature map.
const NHWC_AXIS: [usize; 4] = [0, 3, 1, 2];

impl Importer<'_> {
    /// Translates `node` into engine nodes when its inputs live in the engine; `None`
    /// sends it to the tail.
    pub(super) fn convert(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Option<Val>> {
        let op = node.op_type.as_str();
        match op {
            "Conv" => {
                let v = self.conv(label, node, ins)?;
                self.record_conv_quant(label, ins)?;
                return Ok(Some(v));
            }
            "BatchNormalization" => return self.batch_norm(label, node, ins).map(Some),
            "Gemm" | "MatMul" => return self.gemm(label, node, ins).map(Some),
            _ => {}
        }
        let data = match op {
            "Add" | "Mul" => 2,
            "Concat" => ins.len(),
            _ => 1,
        };
        let mut xs = Vec::new();
        for v in ins.iter().take(data) {
            match v {
                Some(Val::Core { id, nhwc }) => xs.push((*id, *nhwc)),
                _ => return Ok(None),
            }
        }
        if xs.len() < data {
            // Too few inputs (a malformed node): the interpreter's route reports it.
            return Ok(None);
        }
        let Some(&(x, nhwc)) = xs.first() else {
            return Ok(None);
        };
        let core = |id| Ok(Some(Val::Core { id, nhwc }));
        let name = self.unique(node_name(node));
        match op {
            "Identity" | "Dropout" => core(x),
            "Relu" => core(self.push(label, name, Op::Act(Act::Relu), &[x])?),
            "Clip" => {
                let params: Vec<Option<Rc<Value>>> = ins[1..]
                    .iter()
                    .map(|v| match v {
                        Some(Val::Const(c)) => Some(c.clone()),
                        _ => None,
                    })
                    .collect();
                let act = match clip_bounds(node, self.opset, &params) {
                    Ok((lo, hi)) if lo == 0.0 && hi == 6.0 => Act::Relu6,
                    Ok((lo, hi)) if lo == 0.0 && hi == f32::INFINITY => Act::Relu,
                    _ => return Ok(None),
                };
                core(self.push(label, name, Op::Act(act), &[x])?)
            }
            "Add" => {
                let (a, b) = (
                    ins[0].clone().expect("checked"),
                    ins[1].clone().expect("checked"),
                );
                if self.onnx_shape(&a) != self.onnx_shape(&b) {
                    return Ok(None);
                }
                if xs[0].1 && xs[1].1 {
                    return core(self.push(
                        label,
                        name,
                        Op::Add(Act::None),
                        &[xs[0].0, xs[1].0],
                    )?);
                }
                let (a, b) = (self.materialize(label, a)?, self.materialize(label, b)?);
                let id = self.push(label, name, Op::Add(Act::None), &[a, b])?;
                Ok(Some(Val::Core { id, nhwc: false }))
            }
            "Concat" => {
                let axis = Attrs(&node.attribute)
                    .int("axis")
                    .ok_or_else(|| self.node_err(label, op, "missing `axis`"))?;
                let rank = self.shapes[x].len();
                let a = norm_axis(axis, rank).map_err(|e| self.node_err(label, op, e))?;
                if xs.iter().all(|&(_, n)| n) {
                    return core(self.push(
                        label,
                        name,
                        Op::Concat { axis: NHWC_AXIS[a] },
                        &xs.iter().map(|p| p.0).collect::<Vec<_>>(),
                    )?);
                }
                let ids = ins
                    .iter()
                    .map(|v| self.materialize(label, v.clone().expect("checked")))
                    .collect::<Result<Vec<_>>>()?;
                let id = self.push(label, name, Op::Concat { axis: a }, &ids)?;
                Ok(Some(Val::Core { id, nhwc: false }))
            }
            "Transpose" => {
                let rank = self.shapes[x].len();
                let perm = Attrs(&node.attribute).ints("perm");
                let p = perm_of(perm.as_deref(), rank).map_err(|e| self.node_err(label, op, e))?;
                let identity = |q: &[usize]| q.iter().enumerate().all(|(i, &v)| i == v);
                if identity(&p) {
                    return core(x);
                }
                // Output axis i reads ONNX axis p[i], stored at NHWC_AXIS[p[i]].
                let q: Vec<usize> = if nhwc {
                    p.iter().map(|&a| NHWC_AXIS[a]).collect()
                } else {
                    p
                };
                let id = if identity(&q) {
                    x
                } else {
                    self.push(label, name, Op::Transpose(q), &[x])?
                };
                Ok(Some(Val::Core { id, nhwc: false }))
            }
            "Reshape" | "Flatten" => {
                let shape = self.onnx_shape(&ins[0].clone().expect("checked"));
                let dims = if op == "Flatten" {
                    let axis = Attrs(&node.attribute).int("axis").unwrap_or(1);
                    let a = if axis == shape.len() as i64 {
                        shape.len()
                    } else {
                        norm_axis(axis, shape.len()).map_err(|e| self.node_err(label, op, e))?
                    };
                    vec![shape[..a].iter().product(), shape[a..].iter().product()]
                } else {
                    let target = match (self.opset < 5, ins.get(1)) {
                        (true, _) => Attrs(&node.attribute).ints("shape"),
                        (false, Some(Some(Val::Const(c)))) => {
                            Some(c.to_i64s().map_err(|e| self.node_err(label, op, e))?)
                        }
                        _ => None,
                    };
                    let Some(target) = target else {
                        return Ok(None);
                    };
                    let allowzero = Attrs(&node.attribute).int("allowzero").unwrap_or(0) != 0;
                    reshape_dims(&shape, &target, allowzero)
                        .map_err(|e| self.node_err(label, op, e))?
                };
                let x = self.materialize(label, ins[0].clone().expect("checked"))?;
                let dims = dims.iter().map(|&d| d as i64).collect();
                let id = self.push(label, name, Op::Reshape(dims), &[x])?;
                Ok(Some(Val::Core { id, nhwc: false }))
            }
            "HardSwish" => core(self.push(label, name, Op::HardSwish, &[x])?),
            "HardSigmoid" => {
                // ONNX's `max(0, min(1, αx + β))`; the engine's h-sigmoid is the same
                // function at α = 1/6, β = 1/2 (computed as `relu6(x + 3) / 6`).
                let a = Attrs(&node.attribute);
                let alpha = a.float("alpha").unwrap_or(0.2);
                let beta = a.float("beta").unwrap_or(0.5);
                if (alpha - 1.0 / 6.0).abs() > 1e-6 || beta != 0.5 {
                    return Ok(None);
                }
                core(self.push(label, name, Op::HardSigmoid, &[x])?)
            }
            "MaxPool" if nhwc && node.output.len() == 1 => {
                let a = Attrs(&node.attribute);
                let pair = |name: &str, default: i64| -> Option<[usize; 2]> {
                    match a.ints(name) {
                        None => Some([default as usize; 2]),
                        Some(v) if v.len() == 2 && v.iter().all(|&d| d >= 0) => {
                            Some([v[0] as usize, v[1] as usize])
                        }
                        _ => None,
                    }
                };
                let pads = a.ints("pads").unwrap_or_else(|| vec![0; 4]);
                let symmetric = pads.len() == 4 && pads[0] == pads[2] && pads[1] == pads[3];
                let auto_pad = a.string("auto_pad").unwrap_or_default();
                let (Some(kernel), Some(stride), Some([1, 1])) = (
                    pair("kernel_shape", 0),
                    pair("strides", 1),
                    pair("dilations", 1),
                ) else {
                    return Ok(None);
                };
                let plain_pad = auto_pad.is_empty() || auto_pad == "NOTSET";
                if !symmetric || !plain_pad || pads.iter().any(|&p| p < 0) || kernel.contains(&0) {
                    return Ok(None);
                }
                let p = slimdet_core::Pool2d {
                    kernel,
                    stride,
                    pad: [pads[0] as usize, pads[1] as usize],
                    ceil: a.int("ceil_mode").unwrap_or(0) != 0,
                };
                core(self.push(label, name, Op::MaxPool(p), &[x])?)
            }
            "GlobalAveragePool" if nhwc => core(self.push(label, name, Op::GlobalAvgPool, &[x])?),
            "Mul" => {
                // Squeeze-and-excite: a feature map times a per-channel `[N, C, 1, 1]` one.
                let shape = |k: usize| self.onnx_shape(&ins[k].clone().expect("checked"));
                let (a, b) = (shape(0), shape(1));
                let gate = |s: &[usize], x: &[usize]| s == [x[0], x[1], 1, 1];
                let (x, s) = match (xs[0], xs[1]) {
                    ((p, true), (q, true)) if gate(&b, &a) => (p, q),
                    ((p, true), (q, true)) if gate(&a, &b) => (q, p),
                    _ => return Ok(None),
                };
                core(self.push(label, name, Op::ChannelMul, &[x, s])?)
            }
            "Softmax" => {
                let rank = self.shapes[x].len();
                let legacy = self.opset < 13;
                let axis =
                    Attrs(&node.attribute)
                        .int("axis")
                        .unwrap_or(if legacy { 1 } else { -1 });
                let a = norm_axis(axis, rank).map_err(|e| self.node_err(label, op, e))?;
                let last = if nhwc {
                    !legacy && a == 1
                } else {
                    a + 1 == rank
                };
                if !last {
                    return Ok(None);
                }
                core(self.push(label, name, Op::Softmax, &[x])?)
            }
            _ => Ok(None),
        }
    }
}

/// A descriptive engine node name: the ONNX node name, else `<op>:<first output>`.
pub(super) fn node_name(node: &NodeProto) -> String {
    if !node.name.is_empty() {
        node.name.clone()
    } else {
        format!(
            "{}:{}",
            node.op_type,
            node.output.first().map_or("", String::as_str)
        )
    }
}

pub(super) fn node_label_name(label: &str) -> String {
    label.trim_matches('`').to_string()
}
