//! The graph's boundary: the data input (an NCHW float image tensor of static size, a
//! symbolic batch taken as 1), and the outputs, each routed to the engine, the tail or a
//! constant, with the tail's feeds exposed as engine outputs.

use std::collections::HashMap;

use slimdet_core::{Graph, ValueId};

use super::{Imported, Importer, OutputKind, Val};
use crate::error::Result;
use crate::proto::{GraphProto, ModelProto, ValueInfoProto, type_proto};

/// Index of engine value `id` among the graph outputs, adding it as `name` if new.
fn engine_out(
    g: &mut Graph,
    index: &mut HashMap<ValueId, usize>,
    id: ValueId,
    name: String,
) -> usize {
    *index.entry(id).or_insert_with(|| {
        g.output(&name, id);
        g.outputs.len() - 1
    })
}

impl Importer<'_> {
    /// The data input: the first graph input that is not an initializer, `[N, C, H, W]`.
    pub(super) fn input(&self, inputs: &[ValueInfoProto]) -> Result<(String, [usize; 4])> {
        let data: Vec<&ValueInfoProto> = inputs
            .iter()
            .filter(|i| !self.inits.contains_key(i.name.as_str()))
            .collect();
        let vi = match data.as_slice() {
            [one] => *one,
            [] => return Err(self.invalid("the graph has no data input")),
            more => {
                return Err(self.invalid(format!(
                    "the graph has {} data inputs; only single-input models are supported",
                    more.len()
                )));
            }
        };
        let Some(type_proto::Value::TensorType(t)) =
            vi.r#type.as_ref().and_then(|t| t.value.as_ref())
        else {
            return Err(self.invalid(format!("input `{}` is not a tensor", vi.name)));
        };
        if t.elem_type != crate::proto::data_type::FLOAT {
            return Err(self.invalid(format!(
                "input `{}` has element type {}; only float inputs are supported",
                vi.name, t.elem_type
            )));
        }
        let dims = t.shape.as_ref().map(|s| s.dim.as_slice()).unwrap_or(&[]);
        if dims.len() != 4 {
            return Err(self.invalid(format!(
                "input `{}` has rank {}; an NCHW image input of rank 4 is needed",
                vi.name,
                dims.len()
            )));
        }
        let mut out = [0usize; 4];
        for (k, d) in dims.iter().enumerate() {
            use crate::proto::tensor_shape_proto::dimension::Value as D;
            out[k] = match &d.value {
                Some(D::DimValue(v)) if (1..=1 << 16).contains(v) => *v as usize,
                // A symbolic batch runs with one image.
                Some(D::DimParam(_)) | None if k == 0 => 1,
                other => {
                    return Err(self.invalid(format!(
                        "input `{}` dimension {k} is {other:?}; a static size is needed",
                        vi.name
                    )));
                }
            };
        }
        crate::value::numel(&out).map_err(|e| self.invalid(format!("input `{}`: {e}", vi.name)))?;
        Ok((vi.name.clone(), out))
    }

    pub(super) fn finish(
        mut self,
        model: &ModelProto,
        g: &GraphProto,
        input_name: String,
        input_shape_nchw: [usize; 4],
    ) -> Result<Imported> {
        if g.output.is_empty() {
            return Err(self.invalid("the graph has no outputs"));
        }
        let mut index = HashMap::new();
        let mut outputs = Vec::new();
        let mut output_shapes = Vec::new();
        for o in &g.output {
            let label = format!("graph output `{}`", o.name);
            let v = self.get(&o.name, &label)?;
            output_shapes.push(self.onnx_shape(&v));
            let kind = match v {
                Val::Const(c) => OutputKind::Constant((*c).clone()),
                Val::Tail { slot, .. } => OutputKind::Tail(slot),
                core @ Val::Core { .. } => {
                    let id = self.materialize(&label, core)?;
                    OutputKind::Engine(engine_out(&mut self.graph, &mut index, id, o.name.clone()))
                }
            };
            outputs.push((o.name.clone(), kind));
        }
        let mut feeds: Vec<(ValueId, usize)> = self.feeds.iter().map(|(&v, &s)| (v, s)).collect();
        feeds.sort_by_key(|&(_, s)| s);
        for (id, slot) in feeds {
            let i = engine_out(&mut self.graph, &mut index, id, format!("tail_feed.{slot}"));
            self.tail.feeds.push((i, slot));
        }
        self.graph
            .validate()
            .map_err(|e| self.invalid(e.to_string()))?;
        let engine_output_shapes = self
            .graph
            .outputs
            .iter()
            .map(|(_, v)| self.shapes[*v].clone())
            .collect();
        Ok(Imported {
            file: self.file,
            graph: self.graph,
            input_name,
            input_shape_nchw,
            outputs,
            output_shapes,
            engine_output_shapes,
            tail: self.tail,
            opset: self.opset,
            ir_version: model.ir_version,
            producer: format!("{} {}", model.producer_name, model.producer_version)
                .trim()
                .to_string(),
            act_quant: self.act_quant,
            conv_quant: self.conv_quant,
        })
    }
}
