//! Node attributes, and the translation of an ONNX node into an interpreter operator
//! with its parameters resolved across opsets (attributes in old opsets, constant inputs
//! in new ones).

use std::rc::Rc;

use crate::interp::{BinOp, Op, UnOp};
use crate::proto::{AttributeProto, NodeProto, data_type};
use crate::value::{Value, from_proto};

/// Typed access to a node's attributes.
pub struct Attrs<'a>(pub &'a [AttributeProto]);

impl Attrs<'_> {
    fn get(&self, name: &str) -> Option<&AttributeProto> {
        self.0.iter().find(|a| a.name == name)
    }

    /// An INT attribute.
    pub fn int(&self, name: &str) -> Option<i64> {
        self.get(name).map(|a| a.i)
    }

    /// An INTS attribute.
    pub fn ints(&self, name: &str) -> Option<Vec<i64>> {
        self.get(name).map(|a| a.ints.clone())
    }

    /// A FLOAT attribute.
    pub fn float(&self, name: &str) -> Option<f32> {
        self.get(name).map(|a| a.f)
    }

    /// A TENSOR attribute.
    pub fn tensor(&self, name: &str) -> Option<&crate::proto::TensorProto> {
        self.get(name).and_then(|a| a.t.as_ref())
    }

    /// A STRING attribute.
    pub fn string(&self, name: &str) -> Option<String> {
        self.get(name)
            .map(|a| String::from_utf8_lossy(&a.s).into_owned())
    }

    /// The value of a `Constant` node (any of its attribute forms).
    pub fn constant(&self) -> Result<Value, String> {
        if let Some(t) = self.get("value").and_then(|a| a.t.as_ref()) {
            return from_proto(t);
        }
        if let Some(f) = self.float("value_float") {
            return Ok(Value::f32(vec![], vec![f]));
        }
        if let Some(v) = self.get("value_floats") {
            return Ok(Value::f32(vec![v.floats.len()], v.floats.clone()));
        }
        if let Some(i) = self.int("value_int") {
            return Ok(Value::i64(vec![], vec![i]));
        }
        if let Some(v) = self.ints("value_ints") {
            return Ok(Value::i64(vec![v.len()], v));
        }
        Err("Constant without a supported value attribute".into())
    }
}

/// Operators the interpreter can run, as `(op_type, data inputs)`; the remaining inputs
/// are parameters that must be constants.
pub fn interp_arity(op: &str, n_inputs: usize) -> Option<usize> {
    Some(match op {
        "Add" | "Sub" | "Mul" | "Div" | "Gather" => 2,
        "Exp" | "Log" | "Sqrt" | "Neg" | "Abs" | "Relu" | "Sigmoid" | "Tanh" | "Identity"
        | "Clip" | "Slice" | "Softmax" | "Reshape" | "Flatten" | "Transpose" | "Unsqueeze"
        | "Squeeze" | "Cast" | "ConstantOfShape" | "Dropout" => 1,
        "Concat" => n_inputs,
        _ => return None,
    })
}

/// Builds the interpreter operator of `node`. `params[k]` is the constant value of input
/// `arity + k` (None when absent or empty).
pub fn interp_op(node: &NodeProto, opset: i64, params: &[Option<Rc<Value>>]) -> Result<Op, String> {
    let a = Attrs(&node.attribute);
    let p = |k: usize| params.get(k).cloned().flatten();
    let ints_param = |k: usize| p(k).map(|v| v.to_i64s()).transpose();
    Ok(match node.op_type.as_str() {
        "Add" => Op::Binary(BinOp::Add),
        "Sub" => Op::Binary(BinOp::Sub),
        "Mul" => Op::Binary(BinOp::Mul),
        "Div" => Op::Binary(BinOp::Div),
        "Exp" => Op::Unary(UnOp::Exp),
        "Log" => Op::Unary(UnOp::Log),
        "Sqrt" => Op::Unary(UnOp::Sqrt),
        "Neg" => Op::Unary(UnOp::Neg),
        "Abs" => Op::Unary(UnOp::Abs),
        "Relu" => Op::Unary(UnOp::Relu),
        "Sigmoid" => Op::Unary(UnOp::Sigmoid),
        "Tanh" => Op::Unary(UnOp::Tanh),
        "Identity" | "Dropout" => Op::Unary(UnOp::Identity),
        "Clip" => {
            let (min, max) = clip_bounds(node, opset, params)?;
            Op::Clip { min, max }
        }
        "Slice" => {
            let (starts, ends, axes, steps) = if opset < 10 {
                let starts = a.ints("starts").ok_or("missing `starts`")?;
                let ends = a.ints("ends").ok_or("missing `ends`")?;
                (starts, ends, a.ints("axes"), None)
            } else {
                let starts = ints_param(0)?.ok_or("missing `starts` input")?;
                let ends = ints_param(1)?.ok_or("missing `ends` input")?;
                (starts, ends, ints_param(2)?, ints_param(3)?)
            };
            let n = starts.len() as i64;
            Op::Slice {
                axes: axes.unwrap_or_else(|| (0..n).collect()),
                steps: steps.unwrap_or_else(|| vec![1; starts.len()]),
                starts,
                ends,
            }
        }
        "Concat" => Op::Concat {
            axis: a.int("axis").ok_or("missing `axis`")?,
        },
        "Softmax" => Op::Softmax {
            axis: a.int("axis").unwrap_or(if opset < 13 { 1 } else { -1 }),
            legacy: opset < 13,
        },
        "Reshape" => Op::Reshape {
            shape: if opset < 5 {
                a.ints("shape").ok_or("missing `shape`")?
            } else {
                ints_param(0)?.ok_or("missing `shape` input")?
            },
            allowzero: a.int("allowzero").unwrap_or(0) != 0,
        },
        "Flatten" => Op::Flatten {
            axis: a.int("axis").unwrap_or(1),
        },
        "Transpose" => Op::Transpose {
            perm: a.ints("perm"),
        },
        "Unsqueeze" => Op::Unsqueeze {
            axes: if opset < 13 {
                a.ints("axes").ok_or("missing `axes`")?
            } else {
                ints_param(0)?.ok_or("missing `axes` input")?
            },
        },
        "Squeeze" => Op::Squeeze {
            axes: if opset < 13 {
                a.ints("axes")
            } else {
                ints_param(0)?
            },
        },
        "Gather" => Op::Gather {
            axis: a.int("axis").unwrap_or(0),
        },
        "Cast" => {
            let to = a.int("to").ok_or("missing `to`")? as i32;
            let to_float = match to {
                data_type::FLOAT | data_type::DOUBLE | 10 | 16 => true,
                data_type::INT64
                | data_type::INT32
                | data_type::INT8
                | data_type::UINT8
                | 4
                | 5
                | 12
                | 13
                | data_type::BOOL => false,
                other => return Err(format!("Cast to element type {other} is not supported")),
            };
            Op::Cast { to_float }
        }
        "ConstantOfShape" => {
            let fill = match a
                .0
                .iter()
                .find(|x| x.name == "value")
                .and_then(|x| x.t.as_ref())
            {
                Some(t) => from_proto(t)?,
                None => Value::f32(vec![1], vec![0.0]),
            };
            Op::ConstantOfShape(fill)
        }
        other => return Err(format!("operator `{other}` has no interpreter")),
    })
}

/// `(min, max)` of a `Clip` node: attributes before opset 11, optional constant inputs
/// from opset 11 on; absent bounds are infinite.
pub fn clip_bounds(
    node: &NodeProto,
    opset: i64,
    params: &[Option<Rc<Value>>],
) -> Result<(f32, f32), String> {
    if opset < 11 {
        let a = Attrs(&node.attribute);
        return Ok((
            a.float("min").unwrap_or(f32::NEG_INFINITY),
            a.float("max").unwrap_or(f32::INFINITY),
        ));
    }
    let bound = |k: usize, default: f32| -> Result<f32, String> {
        match params.get(k).cloned().flatten() {
            Some(v) => v.scalar_f32(),
            None => Ok(default),
        }
    };
    Ok((bound(0, f32::NEG_INFINITY)?, bound(1, f32::INFINITY)?))
}
