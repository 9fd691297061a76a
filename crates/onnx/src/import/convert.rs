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
            "Add" => 2,
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
