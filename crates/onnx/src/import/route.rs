//! Routing of operators that are not engine layers: constant folding (every input
//! constant: evaluate now with the interpreter) and the tail (some input computed: run
//! after the engine, reading engine values converted to ONNX layout).

use std::rc::Rc;

use super::{Importer, Val, attrs};
use crate::error::{OnnxError, Result};
use crate::proto::NodeProto;
use crate::tail::{Src, TailStep};
use crate::value::Value;

impl Importer<'_> {
    /// Splits `ins` into data inputs (first `arity`) and constant parameters.
    fn params(
        &self,
        label: &str,
        node: &NodeProto,
        arity: usize,
        ins: &[Option<Val>],
    ) -> Result<Vec<Option<Rc<Value>>>> {
        ins.iter()
            .enumerate()
            .skip(arity)
            .map(|(k, v)| match v {
                None => Ok(None),
                Some(Val::Const(c)) => Ok(Some(c.clone())),
                Some(_) => Err(self.unsupported(
                    label,
                    &node.op_type,
                    format!("input {k} (`{}`) must be a constant", node.input[k]),
                )),
            })
            .collect()
    }

    pub(super) fn fold(
        &mut self,
        label: &str,
        node: &NodeProto,
        arity: usize,
        ins: &[Option<Val>],
    ) -> Result<Val> {
        let op_type = node.op_type.as_str();
        let params = self.params(label, node, arity, ins)?;
        let op = attrs::interp_op(node, self.opset, &params)
            .map_err(|e| self.node_err(label, op_type, e))?;
        let data: Vec<&Value> = ins[..arity.min(ins.len())]
            .iter()
            .map(|v| match v {
                Some(Val::Const(c)) => Ok(c.as_ref()),
                _ => Err(self.node_err(label, op_type, "missing input")),
            })
            .collect::<Result<_>>()?;
        let v = op
            .eval(&data)
            .map_err(|e| self.node_err(label, op_type, e))?;
        Ok(Val::Const(Rc::new(v)))
    }

    /// Runs `node` in the tail; engine inputs become feeds.
    pub(super) fn lower_tail(
        &mut self,
        label: &str,
        node: &NodeProto,
        ins: &[Option<Val>],
    ) -> Result<Val> {
        let op_type = node.op_type.as_str();
        let arity = attrs::interp_arity(op_type, ins.len())
            .ok_or_else(|| self.unsupported(label, op_type, "no translation for this operator"))?;
        let params = self.params(label, node, arity, ins)?;
        let op = attrs::interp_op(node, self.opset, &params)
            .map_err(|e| self.node_err(label, op_type, e))?;
        let mut srcs = Vec::new();
        let mut shapes = Vec::new();
        for v in ins.iter().take(arity) {
            let v = v
                .clone()
                .ok_or_else(|| self.node_err(label, op_type, "missing input"))?;
            shapes.push(self.onnx_shape(&v));
            srcs.push(match v {
                Val::Const(c) => {
                    self.tail.consts.push((*c).clone());
                    Src::Const(self.tail.consts.len() - 1)
                }
                Val::Tail { slot, .. } => Src::Slot(slot),
                core @ Val::Core { .. } => Src::Slot(self.feed(label, core)?),
            });
        }
        let refs: Vec<&[usize]> = shapes.iter().map(Vec::as_slice).collect();
        let shape = op
            .out_shape(&refs)
            .map_err(|e| self.node_err(label, op_type, e))?;
        let slot = self.new_tail_slot(shape.clone(), format!("{label} (`{op_type}`)"));
        self.tail.steps.push(TailStep {
            node: label.to_string(),
            op,
            inputs: srcs,
            output: slot,
        });
        Ok(Val::Tail { slot, shape })
    }

    pub(super) fn new_tail_slot(&mut self, shape: Vec<usize>, producer: String) -> usize {
        self.tail_shapes.push(shape);
        self.tail_producer.push(producer);
        self.tail.new_slot()
    }

    /// The tail slot holding engine value `v` in ONNX layout.
    pub(super) fn feed(&mut self, label: &str, v: Val) -> Result<usize> {
        let id = self.materialize(label, v)?;
        if let Some(&s) = self.feeds.get(&id) {
            return Ok(s);
        }
        let shape = self.shapes[id].clone();
        let slot = self.new_tail_slot(shape, "the engine".into());
        self.feeds.insert(id, slot);
        Ok(slot)
    }

    /// Error for an engine layer reading a tail value.
    pub(crate) fn tail_input_err(&self, label: &str, op: &str, slot: usize) -> OnnxError {
        self.unsupported(
            label,
            op,
            format!(
                "its input is computed by node {}, which runs only as float post-processing \
                 after the engine; an engine layer cannot follow it",
                self.tail_producer[slot]
            ),
        )
    }
}
