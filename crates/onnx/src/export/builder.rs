//! The pieces of an ONNX graph under construction: attributes, value infos, and a
//! builder that hands out unique value names for nodes and initializers.

use std::collections::HashSet;

use slimdet_core::Act;

use crate::proto::{
    AttributeProto, NodeProto, TensorProto, TensorShapeProto, TypeProto, ValueInfoProto, attr_type,
    data_type, tensor_shape_proto, type_proto,
};
use crate::value::{Value, to_proto};

pub(super) fn ints(name: &str, v: &[i64]) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INTS,
        ints: v.to_vec(),
        ..Default::default()
    }
}

pub(super) fn int(name: &str, i: i64) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::INT,
        i,
        ..Default::default()
    }
}

pub(super) fn float(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.into(),
        r#type: attr_type::FLOAT,
        f,
        ..Default::default()
    }
}

/// Collects nodes and initializers with unique value names.
pub(super) struct Builder {
    pub(super) file: String,
    pub(super) nodes: Vec<NodeProto>,
    pub(super) inits: Vec<TensorProto>,
    pub(super) names: HashSet<String>,
}

impl Builder {
    pub(super) fn fresh(&mut self, base: &str) -> String {
        let mut name = base.to_string();
        let mut k = 1;
        while !self.names.insert(name.clone()) {
            k += 1;
            name = format!("{base}_{k}");
        }
        name
    }

    /// Adds an initializer named `name` (made unique) and returns its name.
    pub(super) fn init(&mut self, name: &str, v: &Value) -> String {
        let name = self.fresh(name);
        self.inits.push(to_proto(&name, v));
        name
    }

    pub(super) fn tensor(&mut self, name: &str, t: &slimdet_core::Tensor) -> String {
        self.init(name, &Value::f32(t.shape().to_vec(), t.data().to_vec()))
    }

    /// Adds a node whose output value is named `out` (made unique); returns the output.
    pub(super) fn node(
        &mut self,
        op: &str,
        out: &str,
        inputs: &[&str],
        attribute: Vec<AttributeProto>,
    ) -> String {
        let output = self.fresh(out);
        self.nodes.push(NodeProto {
            input: inputs.iter().map(|s| s.to_string()).collect(),
            output: vec![output.clone()],
            name: output.clone(),
            op_type: op.into(),
            attribute,
            ..Default::default()
        });
        output
    }

    /// Applies `act` (none, Relu, or Clip(0, 6)) to `x`.
    pub(super) fn act(&mut self, act: Act, x: String, out: &str) -> String {
        match act {
            Act::None => x,
            Act::Relu => self.node("Relu", out, &[&x], vec![]),
            Act::Relu6 => {
                let lo = self.shared_scalar("clip.min", 0.0);
                let hi = self.shared_scalar("clip.max", 6.0);
                self.node("Clip", out, &[&x, &lo, &hi], vec![])
            }
        }
    }

    /// MobileNetV3's h-swish (`gate: false`, `x · relu6(x + 3) / 6`) or h-sigmoid (`gate:
    /// true`, `relu6(x + 3) / 6`) as PyTorch exports pytorch-ssd's modules: `Add`, `Clip`,
    /// [`Mul`,] `Div`, in the same order of operations as the engine.
    pub(super) fn hard_act(&mut self, x: &str, out: &str, gate: bool) -> String {
        let three = self.shared_scalar("hard.three", 3.0);
        let lo = self.shared_scalar("clip.min", 0.0);
        let six = self.shared_scalar("clip.max", 6.0);
        let a = self.node("Add", &format!("{out}.add"), &[x, &three], vec![]);
        let c = self.node("Clip", &format!("{out}.relu6"), &[&a, &lo, &six], vec![]);
        let num = if gate {
            c
        } else {
            self.node("Mul", &format!("{out}.mul"), &[x, &c], vec![])
        };
        self.node("Div", out, &[&num, &six], vec![])
    }

    /// A scalar f32 initializer shared by name.
    pub(super) fn shared_scalar(&mut self, name: &str, v: f32) -> String {
        if !self.names.contains(name) {
            self.init(name, &Value::f32(vec![], vec![v]));
        }
        name.to_string()
    }

    pub(super) fn i64s(&mut self, name: &str, v: &[i64]) -> String {
        if !self.names.contains(name) {
            self.init(name, &Value::i64(vec![v.len()], v.to_vec()));
        }
        name.to_string()
    }
}

pub(super) fn value_info(name: &str, shape: &[usize]) -> ValueInfoProto {
    let dim = shape
        .iter()
        .map(|&d| tensor_shape_proto::Dimension {
            value: Some(tensor_shape_proto::dimension::Value::DimValue(d as i64)),
            ..Default::default()
        })
        .collect();
    ValueInfoProto {
        name: name.into(),
        r#type: Some(TypeProto {
            value: Some(type_proto::Value::TensorType(type_proto::Tensor {
                elem_type: data_type::FLOAT,
                shape: Some(TensorShapeProto { dim }),
            })),
            ..Default::default()
        }),
        ..Default::default()
    }
}
