//! The last step of import: route each ONNX output to the engine, the tail or a constant,
//! and expose the tail's feeds as engine outputs.

use std::collections::HashMap;

use slimdet_core::{Graph, ValueId};

use super::{Imported, Importer, OutputKind, Val};
use crate::error::Result;
use crate::proto::{GraphProto, ModelProto};

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
                    let id = self.to_plain(&label, core)?;
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
        })
    }
}
