//! TensorFlow frozen inference graphs (`GraphDef` protobuf, `.pb`), as the TensorFlow
//! Object Detection API exports them: every variable is a `Const` node, so the file is the
//! whole model (operations, attributes and weights).
//!
//! [`load_graphdef`] decodes the file into a [`TfGraph`]: nodes with their op, data inputs
//! and attributes, `Const` values converted to [`NamedTensor`]s in TensorFlow's layouts
//! (conv weights HWIO `[kh, kw, in, out]`, depthwise `[kh, kw, in, multiplier]`). Mapping
//! the nodes onto a layer graph is the model importer's job, not this module's.
//!
//! A `.pb` is hostile input. Decoding is bounded: prost limits message nesting (100
//! levels); tensor shapes must be non-negative with at most 2^28 elements; packed bytes
//! must match the shape exactly; and the elements produced by expanding short value lists
//! (TensorFlow repeats the last value to fill a shape) are limited, over the whole file, to
//! 16 per byte of the file plus 2^20, so a small file cannot ask for gigabytes.

mod proto;

use std::collections::{BTreeMap, HashMap};
use std::path::Path;

use prost::Message;

use crate::error::{FormatError, Result};
use crate::{NamedTensor, TensorData, read_file};
use proto::{attr_value::Value, dtype};

/// The largest tensor a graph may declare, in elements.
const MAX_ELEMENTS: u64 = 1 << 28;

/// One attribute of a node.
#[derive(Clone, Debug, PartialEq)]
pub enum TfAttr {
    /// A string (e.g. `padding` = `SAME`, `data_format` = `NHWC`), lossily UTF-8.
    Str(String),
    /// An integer.
    Int(i64),
    /// A float (e.g. batch norm `epsilon`).
    Float(f32),
    /// A boolean.
    Bool(bool),
    /// A data type (TensorFlow's `DataType` number).
    Type(i32),
    /// A shape (`None`: unknown rank; `-1`: unknown size).
    Shape(Option<Vec<i64>>),
    /// A constant tensor in TensorFlow's layout.
    Tensor(NamedTensor),
    /// A tensor of a type this reader does not convert (strings, complex): its dtype.
    UnsupportedTensor(i32),
    /// An integer list (e.g. `strides`, `dilations`).
    Ints(Vec<i64>),
    /// A float list.
    Floats(Vec<f32>),
    /// A string list.
    Strs(Vec<String>),
    /// Another list or kind the importer never reads.
    Other,
}

/// One operation of the graph.
#[derive(Clone, Debug, PartialEq)]
pub struct TfNode {
    /// Unique name, e.g. `FeatureExtractor/MobilenetV2/Conv/Conv2D`.
    pub name: String,
    /// Operation, e.g. `Conv2D`, `FusedBatchNorm`, `Const`.
    pub op: String,
    /// Data inputs as written (`node` or `node:k`); control inputs (`^node`) are dropped.
    pub inputs: Vec<String>,
    /// Attributes by name.
    pub attrs: BTreeMap<String, TfAttr>,
}

impl TfNode {
    /// The attribute `name`, if present.
    pub fn attr(&self, name: &str) -> Option<&TfAttr> {
        self.attrs.get(name)
    }

    /// The string attribute `name`.
    pub fn attr_str(&self, name: &str) -> Option<&str> {
        match self.attrs.get(name) {
            Some(TfAttr::Str(s)) => Some(s),
            _ => None,
        }
    }

    /// The float attribute `name`.
    pub fn attr_f32(&self, name: &str) -> Option<f32> {
        match self.attrs.get(name) {
            Some(TfAttr::Float(f)) => Some(*f),
            _ => None,
        }
    }

    /// The integer-list attribute `name`.
    pub fn attr_ints(&self, name: &str) -> Option<&[i64]> {
        match self.attrs.get(name) {
            Some(TfAttr::Ints(v)) => Some(v),
            _ => None,
        }
    }

    /// The value of a `Const` node.
    pub fn const_value(&self) -> Option<&NamedTensor> {
        match (self.op.as_str(), self.attrs.get("value")) {
            ("Const", Some(TfAttr::Tensor(t))) => Some(t),
            _ => None,
        }
    }
}

/// A decoded frozen graph: its nodes in file order and an index by name.
#[derive(Clone, Debug, Default)]
pub struct TfGraph {
    /// The nodes, in file order (not necessarily topological).
    pub nodes: Vec<TfNode>,
    by_name: HashMap<String, usize>,
}

/// The node name of an input reference (`node:1` → `node`, `^node` → `node`).
pub fn input_node_name(input: &str) -> &str {
    let s = input.strip_prefix('^').unwrap_or(input);
    match s.rsplit_once(':') {
        Some((n, port)) if port.bytes().all(|b| b.is_ascii_digit()) => n,
        _ => s,
    }
}

impl TfGraph {
    /// The node called `name` (an input reference such as `x:0` is accepted).
    pub fn node(&self, name: &str) -> Option<&TfNode> {
        self.by_name
            .get(input_node_name(name))
            .map(|&i| &self.nodes[i])
    }

    /// The node producing data input `k` of `node`, looking through `Identity` nodes
    /// (frozen graphs read every weight through `<var>/read`).
    pub fn input(&self, node: &TfNode, k: usize) -> Option<&TfNode> {
        let mut n = self.node(node.inputs.get(k)?)?;
        // A cycle of Identities is not a valid graph; the bound keeps a hostile one finite.
        for _ in 0..self.nodes.len() {
            if n.op != "Identity" {
                return Some(n);
            }
            n = self.node(n.inputs.first()?)?;
        }
        None
    }

    /// Nodes that read an output of `name` as a data input, in file order.
    pub fn consumers<'a>(&'a self, name: &'a str) -> impl Iterator<Item = &'a TfNode> + 'a {
        self.nodes
            .iter()
            .filter(move |n| n.inputs.iter().any(|i| input_node_name(i) == name))
    }
}

/// True if `bytes` start like a `GraphDef`: field 1 (`node`), length-delimited.
pub fn looks_like_graphdef(bytes: &[u8]) -> bool {
    bytes.first() == Some(&0x0A)
}

/// Loads a frozen `GraphDef` (`.pb`).
pub fn load_graphdef(path: &Path) -> Result<TfGraph> {
    let bytes = read_file(path)?;
    load_graphdef_at(&bytes, path)
}

/// [`load_graphdef`] on bytes in memory; `name_for_errors` is the path reported in errors.
pub fn load_graphdef_bytes(bytes: &[u8], name_for_errors: &str) -> Result<TfGraph> {
    load_graphdef_at(bytes, Path::new(name_for_errors))
}

fn load_graphdef_at(bytes: &[u8], path: &Path) -> Result<TfGraph> {
    let bad = |reason: String| FormatError::GraphDef {
        path: path.to_path_buf(),
        reason,
    };
    if bytes.is_empty() {
        return Err(bad("the file is empty".to_string()));
    }
    let def = proto::GraphDef::decode(bytes).map_err(|e| {
        bad(format!(
            "not a valid TensorFlow GraphDef protobuf (truncated or corrupt?): {e}"
        ))
    })?;
    if def.node.is_empty() {
        return Err(bad("the graph has no nodes".to_string()));
    }
    let mut fill_budget = (bytes.len() as u64).saturating_mul(16) + (1 << 20);
    let mut nodes = Vec::with_capacity(def.node.len());
    let mut by_name = HashMap::with_capacity(def.node.len());
    for n in def.node {
        if by_name.insert(n.name.clone(), nodes.len()).is_some() {
            return Err(bad(format!("two nodes are named `{}`", n.name)));
        }
        let mut attrs = BTreeMap::new();
        for (k, v) in n.attr {
            let a = convert_attr(&n.name, &k, v, &mut fill_budget).map_err(&bad)?;
            attrs.insert(k, a);
        }
        nodes.push(TfNode {
            inputs: n
                .input
                .into_iter()
                .filter(|i| !i.starts_with('^'))
                .collect(),
            name: n.name,
            op: n.op,
            attrs,
        });
    }
    Ok(TfGraph { nodes, by_name })
}

fn convert_attr(
    node: &str,
    key: &str,
    v: proto::AttrValue,
    budget: &mut u64,
) -> std::result::Result<TfAttr, String> {
    let text = |b: Vec<u8>| String::from_utf8_lossy(&b).into_owned();
    Ok(match v.value {
        None => TfAttr::Other,
        Some(Value::S(s)) => TfAttr::Str(text(s)),
        Some(Value::I(i)) => TfAttr::Int(i),
        Some(Value::F(f)) => TfAttr::Float(f),
        Some(Value::B(b)) => TfAttr::Bool(b),
        Some(Value::Type(t)) => TfAttr::Type(t),
        Some(Value::Shape(s)) => {
            TfAttr::Shape((!s.unknown_rank).then(|| s.dim.iter().map(|d| d.size).collect()))
        }
        Some(Value::Tensor(t)) => match convert_tensor(node, t, budget)? {
            Some(t) => TfAttr::Tensor(t),
            None => TfAttr::UnsupportedTensor(0),
        },
        Some(Value::List(l)) => {
            if !l.i.is_empty() {
                TfAttr::Ints(l.i)
            } else if !l.f.is_empty() {
                TfAttr::Floats(l.f)
            } else if !l.s.is_empty() {
                TfAttr::Strs(l.s.into_iter().map(text).collect())
            } else if l.b.is_empty() && l.r#type.is_empty() && l.shape.is_empty() {
                TfAttr::Ints(Vec::new())
            } else {
                TfAttr::Other
            }
        }
    })
    .map_err(|e: String| format!("node `{node}` attribute `{key}`: {e}"))
}

/// Converts a `TensorProto` to a tensor named after its node; `Ok(None)` for a dtype this
/// reader does not convert.
fn convert_tensor(
    node: &str,
    t: proto::TensorProto,
    budget: &mut u64,
) -> std::result::Result<Option<NamedTensor>, String> {
    let dims = match &t.tensor_shape {
        None => Vec::new(),
        Some(s) if s.unknown_rank => return Err("a constant of unknown rank".to_string()),
        Some(s) => s.dim.iter().map(|d| d.size).collect::<Vec<i64>>(),
    };
    let mut numel: u64 = 1;
    for &d in &dims {
        if d < 0 {
            return Err(format!("shape {dims:?} has a negative dimension"));
        }
        numel = numel.saturating_mul(d as u64);
    }
    if numel > MAX_ELEMENTS {
        return Err(format!(
            "shape {dims:?} holds {numel} elements (more than {MAX_ELEMENTS})"
        ));
    }
    let n = numel as usize;
    let shape: Vec<usize> = dims.iter().map(|&d| d as usize).collect();
    let packed = !t.tensor_content.is_empty();
    let width = match t.dtype {
        dtype::FLOAT | dtype::INT32 => 4,
        dtype::DOUBLE | dtype::INT64 => 8,
        dtype::HALF | dtype::INT16 => 2,
        dtype::UINT8 | dtype::INT8 | dtype::BOOL => 1,
        _ => return Ok(None),
    };
    if packed && t.tensor_content.len() as u64 != numel * width {
        return Err(format!(
            "tensor_content holds {} bytes but shape {dims:?} of dtype {} needs {}",
            t.tensor_content.len(),
            t.dtype,
            numel * width
        ));
    }
    let listed = match t.dtype {
        dtype::FLOAT => t.float_val.len(),
        dtype::DOUBLE => t.double_val.len(),
        dtype::HALF => t.half_val.len(),
        dtype::INT64 => t.int64_val.len(),
        dtype::BOOL => t.bool_val.len(),
        _ => t.int_val.len(),
    };
    if !packed {
        if listed > n {
            return Err(format!(
                "{listed} values listed for shape {dims:?} ({n} elements)"
            ));
        }
        let expanded = (n - listed) as u64;
        if expanded > *budget {
            return Err(format!(
                "filling shape {dims:?} from {listed} values exceeds the file's fill budget"
            ));
        }
        *budget -= expanded;
    }
    let data = if packed {
        decode_packed(t.dtype, &t.tensor_content)
    } else {
        match t.dtype {
            dtype::FLOAT => TensorData::F32(fill(&t.float_val, n, |&v| v)),
            dtype::DOUBLE => TensorData::F32(fill(&t.double_val, n, |&v| v as f32)),
            dtype::HALF => TensorData::F32(fill(&t.half_val, n, |&v| half_to_f32(v as u16))),
            dtype::INT64 => TensorData::I64(fill(&t.int64_val, n, |&v| v)),
            dtype::BOOL => TensorData::I64(fill(&t.bool_val, n, |&v| v as i64)),
            _ => TensorData::I64(fill(&t.int_val, n, |&v| v as i64)),
        }
    };
    Ok(Some(NamedTensor {
        name: node.to_string(),
        shape,
        data,
    }))
}

/// `n` values from `vals`, the last repeated to fill (zeros when `vals` is empty).
fn fill<S, T: Copy + Default>(vals: &[S], n: usize, f: impl Fn(&S) -> T) -> Vec<T> {
    let mut out: Vec<T> = vals.iter().map(&f).collect();
    let last = out.last().copied().unwrap_or_default();
    out.resize(n, last);
    out
}

/// Little-endian packed elements (length already checked against the shape).
fn decode_packed(dt: i32, b: &[u8]) -> TensorData {
    fn chunks<const W: usize>(b: &[u8]) -> impl Iterator<Item = [u8; W]> + '_ {
        b.chunks_exact(W)
            .map(|c| <[u8; W]>::try_from(c).unwrap_or([0; W]))
    }
    match dt {
        dtype::FLOAT => TensorData::F32(chunks::<4>(b).map(f32::from_le_bytes).collect()),
        dtype::DOUBLE => TensorData::F32(
            chunks::<8>(b)
                .map(|c| f64::from_le_bytes(c) as f32)
                .collect(),
        ),
        dtype::HALF => TensorData::F32(
            chunks::<2>(b)
                .map(|c| half_to_f32(u16::from_le_bytes(c)))
                .collect(),
        ),
        dtype::INT32 => TensorData::I64(
            chunks::<4>(b)
                .map(|c| i32::from_le_bytes(c) as i64)
                .collect(),
        ),
        dtype::INT64 => TensorData::I64(chunks::<8>(b).map(i64::from_le_bytes).collect()),
        dtype::INT16 => TensorData::I64(
            chunks::<2>(b)
                .map(|c| i16::from_le_bytes(c) as i64)
                .collect(),
        ),
        dtype::INT8 => TensorData::I64(b.iter().map(|&v| v as i8 as i64).collect()),
        _ => TensorData::I64(b.iter().map(|&v| v as i64).collect()),
    }
}

/// A TensorFlow filter in PyTorch's layout: `Conv2D`'s HWIO `[kh, kw, in, out]` to OIHW,
/// `DepthwiseConv2dNative`'s `[kh, kw, C, 1]` to `[C, 1, kh, kw]`. `None` for another rank,
/// a depth multiplier other than 1, or a non-float tensor.
pub fn filter_to_oihw(t: &NamedTensor, depthwise: bool) -> Option<NamedTensor> {
    let w = t.as_f32()?;
    let &[kh, kw, ci, co] = t.shape.as_slice() else {
        return None;
    };
    let (o_n, i_n) = if depthwise {
        if co != 1 {
            return None;
        }
        (ci, 1)
    } else {
        (co, ci)
    };
    let mut out = vec![0.0f32; w.len()];
    for y in 0..kh {
        for x in 0..kw {
            for i in 0..ci {
                for o in 0..co {
                    let src = w[((y * kw + x) * ci + i) * co + o];
                    let (oo, ii) = if depthwise { (i, 0) } else { (o, i) };
                    out[((oo * i_n + ii) * kh + y) * kw + x] = src;
                }
            }
        }
    }
    Some(NamedTensor {
        name: t.name.clone(),
        shape: vec![o_n, i_n, kh, kw],
        data: TensorData::F32(out),
    })
}

/// IEEE half to f32 (exact).
fn half_to_f32(h: u16) -> f32 {
    half::f16::from_bits(h).to_f32()
}

#[cfg(test)]
mod tests;
