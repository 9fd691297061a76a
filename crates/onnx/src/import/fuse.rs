//! Rewrites of ONNX subgraphs into the single operators the engine has, before import.
//!
//! PyTorch exports pytorch-ssd's MobileNetV3 modules operator by operator: h-swish
//! `x * relu6(x + 3) / 6` as `Add(x, 3)`, `Clip(0, 6)`, `Mul(x, ·)`, `Div(·, 6)`, and
//! h-sigmoid `relu6(x + 3) / 6` as `Add`, `Clip`, `Div`. Each such chain whose intermediate
//! values nothing else reads becomes one `HardSwish` or `HardSigmoid` node (named and
//! outputting as the chain's `Div`), which the importer maps onto the engine's ops; they
//! compute in the same order as the chain, so the import is exact.

use std::collections::{HashMap, HashSet};

use super::attrs::Attrs;
use crate::proto::{AttributeProto, NodeProto, TensorProto};
use crate::value::from_proto;

/// The nodes of a graph with the h-swish and h-sigmoid chains fused. `inits` are the
/// graph's initializers, `outputs` its output names, `opset` the default-domain opset
/// (Clip takes attributes before 11).
pub(super) fn fuse_hard_activations(
    nodes: &[NodeProto],
    inits: &HashMap<&str, &TensorProto>,
    outputs: &[&str],
    opset: i64,
) -> Vec<NodeProto> {
    // Only one-element tensors are decoded here (a hostile file's large constants are
    // left to the importer, which decodes each once).
    let one = |t: &TensorProto| t.dims.iter().try_fold(1i64, |a, &d| a.checked_mul(d)) == Some(1);
    let consts: HashMap<&str, f32> = nodes
        .iter()
        .filter(|n| n.op_type == "Constant")
        .filter(|n| Attrs(&n.attribute).tensor("value").is_none_or(one))
        .filter_map(|n| {
            let v = Attrs(&n.attribute).constant().ok()?.scalar_f32().ok()?;
            Some((n.output.first()?.as_str(), v))
        })
        .collect();
    let scalar = |name: &str| -> Option<f32> {
        consts.get(name).copied().or_else(|| {
            let t = inits.get(name).filter(|t| one(t))?;
            from_proto(t).ok()?.scalar_f32().ok()
        })
    };
    let mut producer: HashMap<&str, usize> = HashMap::new();
    let mut uses: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in &n.output {
            producer.entry(o.as_str()).or_insert(i);
        }
        for x in &n.input {
            *uses.entry(x.as_str()).or_default() += 1;
        }
    }
    for o in outputs {
        *uses.entry(o).or_default() += 1;
    }
    let single = |name: &str| uses.get(name) == Some(&1);
    let made_by = |name: &str, op: &str| {
        producer
            .get(name)
            .copied()
            .filter(|&i| nodes[i].op_type == op && single(name))
    };
    // `relu6(x + 3)` ending at value `name`: (x, [Clip, Add] node indices).
    let relu6_plus3 = |name: &str| -> Option<(&str, [usize; 2])> {
        let c = made_by(name, "Clip")?;
        let clip = &nodes[c];
        let bounds = if opset < 11 {
            let a = Attrs(&clip.attribute);
            (a.float("min")?, a.float("max")?)
        } else {
            (scalar(clip.input.get(1)?)?, scalar(clip.input.get(2)?)?)
        };
        if bounds != (0.0, 6.0) {
            return None;
        }
        let a = made_by(clip.input.first()?, "Add")?;
        let add = &nodes[a];
        let x = match add.input.as_slice() {
            [x, t] | [t, x] if scalar(t) == Some(3.0) => x.as_str(),
            _ => return None,
        };
        Some((x, [c, a]))
    };
    let mut fused: HashMap<usize, NodeProto> = HashMap::new();
    let mut removed: HashSet<usize> = HashSet::new();
    for (d, div) in nodes.iter().enumerate() {
        let [num, six] = div.input.as_slice() else {
            continue;
        };
        if div.op_type != "Div" || scalar(six) != Some(6.0) {
            continue;
        }
        let (op, x, parts) = if let Some((x, parts)) = relu6_plus3(num) {
            ("HardSigmoid", x, parts.to_vec())
        } else if let Some(m) = made_by(num, "Mul")
            && let [p, q] = nodes[m].input.as_slice()
            && let Some((x, parts)) = [(p, q), (q, p)]
                .into_iter()
                .find_map(|(x, r)| relu6_plus3(r).filter(|(y, _)| y == x))
        {
            ("HardSwish", x, [&parts[..], &[m]].concat())
        } else {
            continue;
        };
        let attribute = if op == "HardSigmoid" {
            vec![float_attr("alpha", 1.0 / 6.0), float_attr("beta", 0.5)]
        } else {
            Vec::new()
        };
        fused.insert(
            d,
            NodeProto {
                op_type: op.to_string(),
                name: div.name.clone(),
                input: vec![x.to_string()],
                output: div.output.clone(),
                attribute,
                ..Default::default()
            },
        );
        removed.extend(parts);
    }
    nodes
        .iter()
        .enumerate()
        .filter(|(i, _)| !removed.contains(i))
        .map(|(i, n)| fused.remove(&i).unwrap_or_else(|| n.clone()))
        .collect()
}

fn float_attr(name: &str, f: f32) -> AttributeProto {
    AttributeProto {
        name: name.to_string(),
        f,
        r#type: crate::proto::attr_type::FLOAT,
        ..Default::default()
    }
}
