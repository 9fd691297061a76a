//! ONNX import: an NCHW ONNX graph becomes an NHWC engine [`Graph`] plus a [`Tail`].
//!
//! Every ONNX value is tracked as one of three kinds ([`Val`]):
//! - a constant (initializers, `Constant` nodes, and every node whose inputs are all
//!   constant, folded with the interpreter, e.g. the `Shape`/`Gather`/`Unsqueeze`/`Concat`
//!   chains that PyTorch emits to compute reshape targets);
//! - an engine value, with its layout: `nhwc` (an ONNX `[N, C, H, W]` feature map stored
//!   `[N, H, W, C]`) or plain (stored in ONNX axis order);
//! - a tail value, computed after the engine by the interpreter.
//!
//! Layers the engine has (Conv, BatchNormalization, Relu, Clip(0, 6), Add, Concat, the
//! heads' Transpose + Reshape, Softmax over the last axis, Gemm/MatMul with constant
//! weights, HardSwish, HardSigmoid (PyTorch's decomposed forms are fused first, see
//! `fuse.rs`), GlobalAveragePool and squeeze-and-excite's channel-wise Mul) become engine
//! nodes; other supported operators go to the tail, which reads
//! engine values converted to ONNX layout. An engine layer cannot read a tail value.
//!
//! Nodes are imported in a topological order computed from tensor names
//! ([`crate::order::topological`]), so the file's node list need not be sorted.
//! Quantized models come in two forms: QDQ (QuantizeLinear / DequantizeLinear around
//! float operators, see `qdq.rs`) and QOperator (QLinearConv, QLinearAdd, see
//! `qop.rs`); both import as the float graph plus integer parameters.

mod attrs;
mod convert;
mod fuse;
mod io;
mod layers;
mod qdq;
mod qop;
mod route;

pub use qdq::ConvQuant;

use std::collections::HashMap;
use std::path::Path;
use std::rc::Rc;

use prost::Message;
use slimdet_core::{Graph, Op, ValueId};

use crate::error::{OnnxError, Result};
use crate::proto::{ModelProto, NodeProto, TensorProto};
use crate::tail::Tail;
use crate::value::{Value, from_proto};

/// Integer operators of quantized ONNX models that are refused (besides every
/// `QLinear*` other than QLinearConv and QLinearAdd): the integer engine has no exact
/// equivalent, and running them in float would silently change the model.
const QUANTIZED: [&str; 6] = [
    "DynamicQuantizeLinear",
    "ConvInteger",
    "MatMulInteger",
    "QGemm",
    "QAttention",
    "QEmbedLayerNormalization",
];

/// Whether `op` (in `domain`) is a quantized operator this importer maps onto the integer
/// engine: `QLinearConv` (ONNX) and `QLinearAdd` (`com.microsoft`, ONNX Runtime's).
fn supported_qop(domain: &str, op: &str) -> bool {
    let onnx = domain.is_empty() || domain == "ai.onnx";
    (onnx && op == "QLinearConv") || ((onnx || domain == "com.microsoft") && op == "QLinearAdd")
}

/// Where an output of the ONNX model is computed.
#[derive(Clone, Debug, PartialEq)]
pub enum OutputKind {
    /// Engine graph output `index` (`graph.outputs[index]`), already in ONNX layout.
    Engine(usize),
    /// Tail slot.
    Tail(usize),
    /// A constant.
    Constant(Value),
}

/// An imported model.
#[derive(Clone, Debug)]
pub struct Imported {
    /// The file it came from (for messages).
    pub file: String,
    /// Engine graph: NHWC input `[N, H, W, C]`; outputs are the ONNX outputs it computes
    /// and the tail's feeds, all in ONNX layout.
    pub graph: Graph,
    /// Name of the ONNX data input.
    pub input_name: String,
    /// ONNX input shape `[N, C, H, W]`.
    pub input_shape_nchw: [usize; 4],
    /// The ONNX outputs, in file order.
    pub outputs: Vec<(String, OutputKind)>,
    /// Their shapes (ONNX layout), same order.
    pub output_shapes: Vec<Vec<usize>>,
    /// Shapes of the engine graph's outputs, same order as `graph.outputs`.
    pub engine_output_shapes: Vec<Vec<usize>>,
    /// Post-processing run after the engine.
    pub tail: Tail,
    /// Version of the default operator set.
    pub opset: i64,
    /// IR version of the file.
    pub ir_version: i64,
    /// `producer_name producer_version`.
    pub producer: String,
    /// Quantized models: `(scale, zero point)` of each quantized engine value, in the
    /// uint8 domain (int8 activations are shifted by 128: code `c` becomes `c + 128`,
    /// zero point `z` becomes `z + 128`, the same real values).
    pub act_quant: std::collections::BTreeMap<ValueId, (f32, u8)>,
    /// Quantized models: integer weights (and biases) of each quantized convolution, by
    /// engine node name.
    pub conv_quant: std::collections::BTreeMap<String, ConvQuant>,
}

impl Imported {
    /// Whether the file is a quantized (QDQ or QOperator) model, whose float graph is not
    /// the model.
    pub fn is_quantized(&self) -> bool {
        !self.act_quant.is_empty() || !self.conv_quant.is_empty()
    }
}

/// What an ONNX value is during import.
#[derive(Clone, Debug)]
pub(crate) enum Val {
    Const(Rc<Value>),
    Core { id: ValueId, nhwc: bool },
    Tail { slot: usize, shape: Vec<usize> },
}

/// Reads and imports an ONNX file.
pub fn import(path: &Path) -> Result<Imported> {
    let file = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|source| OnnxError::Io {
        file: file.clone(),
        source,
    })?;
    import_bytes(&bytes, &file)
}

/// Imports an ONNX model from memory; `file` names it in errors.
pub fn import_bytes(bytes: &[u8], file: &str) -> Result<Imported> {
    let model = ModelProto::decode(bytes).map_err(|source| OnnxError::Decode {
        file: file.to_string(),
        source,
    })?;
    Importer::run(&model, file)
}

pub(crate) struct Importer<'m> {
    pub(crate) file: String,
    pub(crate) opset: i64,
    inits: HashMap<&'m str, &'m TensorProto>,
    env: HashMap<String, Val>,
    pub(crate) graph: Graph,
    /// Shape of every engine value, in its stored layout.
    pub(crate) shapes: Vec<Vec<usize>>,
    tail: Tail,
    tail_shapes: Vec<Vec<usize>>,
    tail_producer: Vec<String>,
    feeds: HashMap<ValueId, usize>,
    used_names: HashMap<String, usize>,
    /// Integer codes behind constants made by `DequantizeLinear`, by `Rc` address.
    dq_consts: HashMap<usize, qdq::QConst>,
    /// Quantized tensors (`QuantizeLinear`, `QLinearConv`, `QLinearAdd` outputs, and
    /// reshapes of them): the float value and its uint8-domain `(scale, zero point)`.
    quantized: HashMap<String, (Val, (f32, u8))>,
    /// Element types of the tensors made by `Constant` nodes (initializers carry theirs).
    const_types: HashMap<String, i32>,
    act_quant: std::collections::BTreeMap<ValueId, (f32, u8)>,
    conv_quant: std::collections::BTreeMap<String, ConvQuant>,
}

/// `name` (or `#i`, output `x` when unnamed), for messages.
fn label(i: usize, n: &NodeProto) -> String {
    match (n.name.is_empty(), n.output.first()) {
        (false, _) => format!("`{}`", n.name),
        (true, Some(o)) => format!("#{i} (output `{o}`)"),
        (true, None) => format!("#{i}"),
    }
}

impl<'m> Importer<'m> {
    pub(crate) fn invalid(&self, reason: impl Into<String>) -> OnnxError {
        OnnxError::Invalid {
            file: self.file.clone(),
            reason: reason.into(),
        }
    }

    pub(crate) fn node_err(&self, node: &str, op: &str, reason: impl Into<String>) -> OnnxError {
        OnnxError::Node {
            file: self.file.clone(),
            node: node.to_string(),
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    pub(crate) fn unsupported(&self, node: &str, op: &str, reason: impl Into<String>) -> OnnxError {
        OnnxError::Unsupported {
            file: self.file.clone(),
            node: node.to_string(),
            op: op.to_string(),
            reason: reason.into(),
        }
    }

    fn run(model: &'m ModelProto, file: &str) -> Result<Imported> {
        let g = model.graph.as_ref().ok_or_else(|| OnnxError::Invalid {
            file: file.into(),
            reason: "the model has no graph".into(),
        })?;
        let opset = model
            .opset_import
            .iter()
            .find(|o| o.domain.is_empty() || o.domain == "ai.onnx")
            .map(|o| o.version)
            .ok_or_else(|| OnnxError::Invalid {
                file: file.into(),
                reason: "no opset imported for the default ONNX domain".into(),
            })?;
        let mut imp = Importer {
            file: file.to_string(),
            opset,
            inits: g.initializer.iter().map(|t| (t.name.as_str(), t)).collect(),
            env: HashMap::new(),
            graph: Graph::new(),
            shapes: Vec::new(),
            tail: Tail::default(),
            tail_shapes: Vec::new(),
            tail_producer: Vec::new(),
            feeds: HashMap::new(),
            used_names: HashMap::new(),
            dq_consts: HashMap::new(),
            quantized: HashMap::new(),
            const_types: HashMap::new(),
            act_quant: Default::default(),
            conv_quant: Default::default(),
        };
        let (input_name, nchw) = imp.input(&g.input)?;
        let [n, c, h, w] = nchw;
        imp.shapes.push(vec![n, h, w, c]);
        imp.env.insert(
            input_name.clone(),
            Val::Core {
                id: imp.graph.input,
                nhwc: true,
            },
        );
        let outputs: Vec<&str> = g.output.iter().map(|o| o.name.as_str()).collect();
        let nodes = fuse::fuse_hard_activations(&g.node, &imp.inits, &outputs, opset);
        let order =
            crate::order::topological(&nodes, &outputs).map_err(|i| OnnxError::Invalid {
                file: file.into(),
                reason: format!(
                    "the graph has a cycle: node {} depends on its own output",
                    label(i, &nodes[i])
                ),
            })?;
        for i in order {
            imp.node(&label(i, &nodes[i]), &nodes[i])?;
        }
        imp.finish(model, g, input_name, nchw)
    }

    /// The value named `name`: defined earlier, or an initializer (decoded on first use).
    /// `who` describes the reader in errors.
    pub(crate) fn get(&mut self, name: &str, who: &str) -> Result<Val> {
        if let Some(v) = self.env.get(name) {
            return Ok(v.clone());
        }
        let t = self
            .inits
            .get(name)
            .ok_or_else(|| self.invalid(format!("{who} reads `{name}`, which is never defined")))?;
        let v = Val::Const(Rc::new(from_proto(t).map_err(|e| self.invalid(e))?));
        self.env.insert(name.to_string(), v.clone());
        Ok(v)
    }

    /// The initializer name of input `k` of `node`, if it is one.
    pub(crate) fn init_name(&self, node: &NodeProto, k: usize) -> Option<&'m str> {
        node.input
            .get(k)
            .and_then(|n| self.inits.get_key_value(n.as_str()))
            .map(|(k, _)| *k)
    }

    /// A unique engine node name: `base` if free, else `base_2`, ...
    pub(crate) fn unique(&mut self, base: String) -> String {
        let n = self.used_names.entry(base.clone()).or_insert(0);
        *n += 1;
        if *n == 1 { base } else { format!("{base}_{n}") }
    }

    fn define(&mut self, node: &NodeProto, label: &str, v: Val) -> Result<()> {
        let out = node
            .output
            .first()
            .filter(|o| !o.is_empty())
            .ok_or_else(|| self.invalid(format!("node {label} has no output")))?;
        if self.env.contains_key(out) || self.inits.contains_key(out.as_str()) {
            return Err(self.invalid(format!("value `{out}` is defined twice (node {label})")));
        }
        self.env.insert(out.clone(), v);
        Ok(())
    }

    /// The element type of tensor `name` when it is an initializer or a `Constant`.
    pub(crate) fn elem_type(&self, name: &str) -> Option<i32> {
        self.inits
            .get(name)
            .map(|t| t.data_type)
            .or_else(|| self.const_types.get(name).copied())
    }

    fn node(&mut self, label: &str, node: &NodeProto) -> Result<()> {
        let op = node.op_type.as_str();
        let quantized_op = QUANTIZED.contains(&op) || op.starts_with("QLinear");
        if quantized_op && !supported_qop(&node.domain, op) {
            return Err(self.unsupported(
                label,
                op,
                "the int8 engine has no exact equivalent of this quantized operator, and it \
                 is not run in float; quantize only Conv and Add (QLinearConv, QLinearAdd), \
                 or export the model in QDQ form",
            ));
        }
        if !(quantized_op || node.domain.is_empty() || node.domain == "ai.onnx") {
            return Err(self.unsupported(label, op, format!("custom domain `{}`", node.domain)));
        }
        self.check_not_integer(label, node)?;
        let v = match op {
            "Constant" => {
                let a = attrs::Attrs(&node.attribute);
                if let (Some(t), Some(o)) = (a.tensor("value"), node.output.first()) {
                    self.const_types.insert(o.clone(), t.data_type);
                }
                Val::Const(Rc::new(
                    a.constant().map_err(|e| self.node_err(label, op, e))?,
                ))
            }
            "Shape" => {
                let x = self
                    .input_val(node, 0, label)?
                    .ok_or_else(|| self.node_err(label, op, "missing input"))?;
                let shape = self.onnx_shape(&x);
                let v = Value::i64(vec![shape.len()], shape.iter().map(|&d| d as i64).collect());
                Val::Const(Rc::new(
                    shape_slice(v, node).map_err(|e| self.node_err(label, op, e))?,
                ))
            }
            _ => {
                let ins: Vec<Option<Val>> = (0..node.input.len())
                    .map(|k| self.input_val(node, k, label))
                    .collect::<Result<_>>()?;
                if let Some(v) = self.qdq(label, node, &ins)? {
                    return self.define(node, label, v);
                }
                if let Some(v) = self.qop(label, node, &ins)? {
                    return self.define(node, label, v);
                }
                let moved_q = self.moved_quantized(node);
                let all_const = ins.iter().all(|v| matches!(v, None | Some(Val::Const(_))));
                let v = match attrs::interp_arity(op, ins.len()) {
                    Some(arity) if all_const => self.fold(label, node, arity, &ins)?,
                    _ => match self.convert(label, node, &ins)? {
                        Some(v) => v,
                        None => self.lower_tail(label, node, &ins)?,
                    },
                };
                if let Some(q) = moved_q {
                    self.keep_quantized(label, node, &v, q)?;
                }
                v
            }
        };
        self.define(node, label, v)
    }

    fn input_val(&mut self, node: &NodeProto, k: usize, label: &str) -> Result<Option<Val>> {
        match node.input.get(k).map(String::as_str) {
            None | Some("") => Ok(None),
            Some(name) => self.get(name, &format!("node {label}")).map(Some),
        }
    }

    /// The ONNX shape of a value.
    pub(crate) fn onnx_shape(&self, v: &Val) -> Vec<usize> {
        match v {
            Val::Const(c) => c.shape.clone(),
            Val::Tail { shape, .. } => shape.clone(),
            Val::Core { id, nhwc: true } => {
                let s = &self.shapes[*id];
                vec![s[0], s[3], s[1], s[2]]
            }
            Val::Core { id, nhwc: false } => self.shapes[*id].clone(),
        }
    }

    /// The engine value of `v` in ONNX axis order (transposing a feature map).
    pub(crate) fn materialize(&mut self, label: &str, v: Val) -> Result<ValueId> {
        match v {
            Val::Core { id, nhwc: false } => Ok(id),
            Val::Core { id, nhwc: true } => {
                let name = self.unique(format!("{}.to_nchw", self.value_name(id)));
                self.push(label, name, Op::Transpose(vec![0, 3, 1, 2]), &[id])
            }
            Val::Tail { slot, .. } => Err(self.tail_input_err(label, "engine", slot)),
            Val::Const(_) => Err(self.unsupported(
                label,
                "engine",
                "constant input where a computed value is expected",
            )),
        }
    }

    fn value_name(&self, id: ValueId) -> String {
        self.graph
            .nodes
            .iter()
            .find(|n| n.output == id)
            .map_or_else(|| "input".to_string(), |n| n.name.clone())
    }

    /// Appends an engine node, inferring (and checking) its output shape.
    pub(crate) fn push(
        &mut self,
        label: &str,
        name: String,
        op: Op,
        inputs: &[ValueId],
    ) -> Result<ValueId> {
        let out = self.graph.push(name, op, inputs);
        let node = self.graph.nodes.last().expect("just pushed");
        let ins: Vec<&[usize]> = inputs.iter().map(|&i| self.shapes[i].as_slice()).collect();
        let shape = slimdet_core::shape::node_shape(node, &ins).map_err(|source| match source {
            slimdet_core::CoreError::Shape { reason, .. } => {
                self.node_err(label, node.op.kind(), reason)
            }
            source => OnnxError::Core {
                file: self.file.clone(),
                node: label.to_string(),
                source,
            },
        })?;
        crate::value::numel(&shape).map_err(|e| self.node_err(label, node.op.kind(), e))?;
        self.shapes.push(shape);
        debug_assert_eq!(self.shapes.len(), self.graph.num_values);
        Ok(out)
    }
}

/// `Shape` with the opset-15 `start`/`end` attributes.
fn shape_slice(v: Value, node: &NodeProto) -> std::result::Result<Value, String> {
    let a = attrs::Attrs(&node.attribute);
    let (start, end) = (a.int("start"), a.int("end"));
    if start.is_none() && end.is_none() {
        return Ok(v);
    }
    crate::interp::Op::Slice {
        starts: vec![start.unwrap_or(0)],
        ends: vec![end.unwrap_or(i64::MAX)],
        axes: vec![0],
        steps: vec![1],
    }
    .eval(&[&v])
}
