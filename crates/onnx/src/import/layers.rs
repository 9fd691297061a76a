//! Parametric layers: Conv (grouped, dilated, strided, symmetric padding, with or
//! without bias), BatchNormalization, and Gemm/MatMul of a `[N, K]` engine value by
//! constant weights (run as a 1x1 convolution). Parameters must be constants.

use std::rc::Rc;

use slimdet_core::{Act, BatchNorm, Conv2d, Op, Tensor, ValueId};

use super::attrs::Attrs;
use super::convert::{node_label_name, node_name};
use super::{Importer, Val};
use crate::error::Result;
use crate::proto::NodeProto;
use crate::value::{Data, Value};

/// Largest stride, dilation or padding accepted.
const MAX_GEOM: i64 = 4096;

impl Importer<'_> {
    /// The feature-map input of a layer (transposing a plain 4-D value if needed).
    fn layer_input(&mut self, label: &str, op: &str, v: Option<&Option<Val>>) -> Result<ValueId> {
        match v.cloned().flatten() {
            Some(Val::Core { id, nhwc: true }) => Ok(id),
            Some(Val::Core { id, nhwc: false }) if self.shapes[id].len() == 4 => {
                let name = self.unique(format!("{}.to_nhwc", node_label_name(label)));
                self.push(label, name, Op::Transpose(vec![0, 2, 3, 1]), &[id])
            }
            Some(Val::Core { id, .. }) => Err(self.node_err(
                label,
                op,
                format!("expects a 4-D feature map, got shape {:?}", self.shapes[id]),
            )),
            Some(Val::Tail { slot, .. }) => Err(self.tail_input_err(label, op, slot)),
            Some(Val::Const(_)) => {
                Err(self.unsupported(label, op, "a constant data input is not supported"))
            }
            None => Err(self.node_err(label, op, "missing data input")),
        }
    }

    /// A constant f32 parameter input of rank `rank`.
    fn const_param(
        &self,
        label: &str,
        node: &NodeProto,
        k: usize,
        rank: usize,
    ) -> Result<Rc<Value>> {
        let op = node.op_type.as_str();
        match node.input.get(k).and_then(|n| self.env.get(n.as_str())) {
            Some(Val::Const(c)) if matches!(c.data, Data::F32(_)) && c.shape.len() == rank => {
                Ok(c.clone())
            }
            Some(Val::Const(c)) => Err(self.node_err(
                label,
                op,
                format!(
                    "input {k} has shape {:?} / wrong type; a rank-{rank} float tensor is needed",
                    c.shape
                ),
            )),
            _ => Err(self.unsupported(
                label,
                op,
                format!("input {k} must be a constant (initializer)"),
            )),
        }
    }

    /// Engine node name: the weight initializer's module path, else the node's own name.
    fn param_name(&mut self, node: &NodeProto, k: usize) -> String {
        let base = match self.init_name(node, k) {
            Some(n) if n.ends_with(".weight") => n.trim_end_matches(".weight").to_string(),
            _ => node_name(node),
        };
        self.unique(base)
    }

    pub(super) fn conv(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Val> {
        let op = "Conv";
        let x = self.layer_input(label, op, ins.first())?;
        let w = self
            .const_param(label, node, 1, 4)
            .map_err(|e| match ins.get(1) {
                Some(Some(Val::Const(c))) if c.shape.len() != 4 => self.unsupported(
                    label,
                    op,
                    "only 2-D convolutions (4-D weights) are supported",
                ),
                _ => e,
            })?;
        let bias = match ins.get(2) {
            Some(Some(_)) => Some(self.const_param(label, node, 2, 1)?),
            _ => None,
        };
        let name = self.param_name(node, 1);
        let id = self.conv_layer(label, node, x, &w, bias.as_deref(), name)?;
        Ok(Val::Core { id, nhwc: true })
    }

    /// The data input of a quantized layer, as an engine feature map.
    pub(super) fn feature_map(&mut self, label: &str, op: &str, v: Val) -> Result<ValueId> {
        self.layer_input(label, op, Some(&Some(v)))
    }

    /// Pushes a convolution of `x` (NHWC) by the OIHW `w` (f32, rank 4) and optional
    /// bias, with the geometry attributes of `node` (Conv and QLinearConv share them).
    pub(super) fn conv_layer(
        &mut self,
        label: &str,
        node: &NodeProto,
        x: ValueId,
        w: &Value,
        bias: Option<&Value>,
        name: String,
    ) -> Result<ValueId> {
        let op = node.op_type.as_str();
        let a = Attrs(&node.attribute);
        let bad = |what: &str, v: &Vec<i64>| {
            self.node_err(label, op, format!("unsupported {what} {v:?}"))
        };
        let two = |name: &str, lo: i64| -> Result<[usize; 2]> {
            let v = a.ints(name).unwrap_or_else(|| vec![1, 1]);
            match v.as_slice() {
                &[p, q] if (lo..=MAX_GEOM).contains(&p) && (lo..=MAX_GEOM).contains(&q) => {
                    Ok([p as usize, q as usize])
                }
                _ => Err(bad(name, &v)),
            }
        };
        let (stride, dilation) = (two("strides", 1)?, two("dilations", 1)?);
        let k = [w.shape[2], w.shape[3]];
        if let Some(ks) = a.ints("kernel_shape")
            && ks != [k[0] as i64, k[1] as i64]
        {
            return Err(self.node_err(
                label,
                op,
                format!("kernel_shape {ks:?} does not match weight {:?}", w.shape),
            ));
        }
        let auto = a.string("auto_pad").unwrap_or_default();
        let pads: Vec<i64> = match auto.as_str() {
            "" | "NOTSET" => a.ints("pads").unwrap_or_else(|| vec![0; 4]),
            "VALID" => vec![0; 4],
            "SAME_UPPER" | "SAME_LOWER" => {
                let hw = [self.shapes[x][1], self.shapes[x][2]];
                let total: Vec<i64> = (0..2)
                    .map(|i| {
                        let (n, s) = (hw[i] as i64, stride[i] as i64);
                        let span = (k[i] as i64 - 1) * dilation[i] as i64 + 1;
                        (((n + s - 1) / s - 1) * s + span - n).max(0)
                    })
                    .collect();
                let lo: Vec<i64> = total
                    .iter()
                    .map(|t| {
                        if auto == "SAME_UPPER" {
                            t / 2
                        } else {
                            t - t / 2
                        }
                    })
                    .collect();
                vec![lo[0], lo[1], total[0] - lo[0], total[1] - lo[1]]
            }
            other => return Err(self.node_err(label, op, format!("unknown auto_pad `{other}`"))),
        };
        if pads.len() != 4 || pads.iter().any(|p| !(0..=MAX_GEOM).contains(p)) {
            return Err(bad("pads", &pads));
        }
        let groups = a.int("group").unwrap_or(1);
        if !(1..=1 << 20).contains(&groups) {
            return Err(self.node_err(label, op, format!("bad group {groups}")));
        }
        let f32s = |v: &Value| {
            v.as_f32()
                .map(<[f32]>::to_vec)
                .ok_or_else(|| self.node_err(label, op, "a float tensor is needed"))
        };
        let weight = Tensor::new(w.shape.clone(), f32s(w)?).map_err(crate::OnnxError::from)?;
        let bias = match bias {
            Some(b) => {
                Some(Tensor::new(b.shape.clone(), f32s(b)?).map_err(crate::OnnxError::from)?)
            }
            None => None,
        };
        let conv = Conv2d {
            weight,
            bias,
            stride,
            pad: [pads[0] as usize, pads[1] as usize],
            pad_end: [pads[2] as usize, pads[3] as usize],
            dilation,
            groups: groups as usize,
            act: Act::None,
        };
        self.push(label, name, Op::Conv(conv), &[x])
    }

    pub(super) fn batch_norm(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Val> {
        let op = "BatchNormalization";
        let a = Attrs(&node.attribute);
        if a.int("training_mode").unwrap_or(0) != 0 {
            return Err(self.unsupported(label, op, "training mode"));
        }
        let (x, nhwc) = match ins.first().cloned().flatten() {
            Some(Val::Core { id, nhwc: false }) if self.shapes[id].len() == 2 => (id, false),
            v => (self.layer_input(label, op, Some(&v))?, true),
        };
        let p: Vec<Tensor> = (1..5)
            .map(|k| {
                let v = self.const_param(label, node, k, 1)?;
                Ok(Tensor::new(
                    v.shape.clone(),
                    v.as_f32().expect("checked").to_vec(),
                )?)
            })
            .collect::<Result<_>>()?;
        let name = self.param_name(node, 1);
        let counter = self
            .init_name(node, 1)
            .and_then(|n| n.strip_suffix(".weight"))
            .map(|prefix| format!("{prefix}.num_batches_tracked"));
        let num_batches_tracked = match counter.and_then(|c| self.get(&c, label).ok()) {
            Some(Val::Const(c)) => c.to_i64s().ok().and_then(|v| v.first().copied()),
            _ => None,
        };
        let [gamma, beta, mean, var]: [Tensor; 4] = p.try_into().expect("four parameters");
        let bn = BatchNorm {
            gamma,
            beta,
            mean,
            var,
            eps: a.float("epsilon").unwrap_or(1e-5),
            num_batches_tracked,
        };
        let id = self.push(label, name, Op::BatchNorm(bn), &[x])?;
        Ok(Val::Core { id, nhwc })
    }

    /// `Gemm` / `MatMul` of a `[M, K]` engine value by constant weights, as a 1x1 conv.
    pub(super) fn gemm(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Val> {
        let op = node.op_type.clone();
        let a = Attrs(&node.attribute);
        let x = match ins.first().cloned().flatten() {
            Some(v @ Val::Core { .. }) => self.materialize(label, v)?,
            Some(Val::Tail { slot, .. }) => return Err(self.tail_input_err(label, &op, slot)),
            _ => {
                return Err(self.unsupported(
                    label,
                    &op,
                    "only an engine value times constant weights is supported",
                ));
            }
        };
        let &[m, kk] = self.shapes[x].as_slice() else {
            return Err(self.unsupported(
                label,
                &op,
                format!(
                    "only 2-D [N, K] inputs are supported, got {:?}",
                    self.shapes[x]
                ),
            ));
        };
        if a.int("transA").unwrap_or(0) != 0 {
            return Err(self.unsupported(label, &op, "transA = 1"));
        }
        let b = self.const_param(label, node, 1, 2)?;
        let trans_b = op == "Gemm" && a.int("transB").unwrap_or(0) != 0;
        let (bk, o) = if trans_b {
            (b.shape[1], b.shape[0])
        } else {
            (b.shape[0], b.shape[1])
        };
        if bk != kk {
            return Err(self.node_err(
                label,
                &op,
                format!("weight {:?} does not fit input [{m}, {kk}]", b.shape),
            ));
        }
        let alpha = if op == "Gemm" {
            a.float("alpha").unwrap_or(1.0)
        } else {
            1.0
        };
        let bd = b.as_f32().expect("checked");
        let w: Vec<f32> = (0..o * kk)
            .map(|i| {
                let (r, c) = (i / kk, i % kk);
                alpha
                    * if trans_b {
                        bd[r * kk + c]
                    } else {
                        bd[c * o + r]
                    }
            })
            .collect();
        let bias = match ins.get(2).cloned().flatten() {
            None => None,
            Some(Val::Const(c))
                if op == "Gemm"
                    && matches!(c.data, Data::F32(_))
                    && (c.numel() == o || c.numel() == 1) =>
            {
                let beta = a.float("beta").unwrap_or(1.0);
                let cd = c.as_f32().expect("checked");
                Some(Tensor::new(
                    vec![o],
                    (0..o).map(|i| beta * cd[i % cd.len()]).collect(),
                )?)
            }
            Some(_) => {
                return Err(self.unsupported(label, &op, "bias C must be a constant of N values"));
            }
        };
        let mut conv = Conv2d::new(Tensor::new(vec![o, kk, 1, 1], w)?, 1, 0, 1, 1);
        conv.bias = bias;
        let name = self.param_name(node, 1);
        let r = self.unique(format!("{name}.to_nhwc"));
        let r = self.push(label, r, Op::Reshape(vec![m as i64, 1, 1, kk as i64]), &[x])?;
        let y = self.push(label, name.clone(), Op::Conv(conv), &[r])?;
        let flat = self.unique(format!("{name}.flatten"));
        let id = self.push(label, flat, Op::Reshape(vec![m as i64, o as i64]), &[y])?;
        Ok(Val::Core { id, nhwc: false })
    }
}
