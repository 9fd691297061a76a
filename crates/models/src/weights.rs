//! Filling a graph from a state_dict, and the reverse.
//!
//! Loading is strict, like PyTorch's `load_state_dict(strict=True)`: every parameter of the
//! graph must be present with the same shape, and nothing else may be in the file except
//! BN `num_batches_tracked` counters (optional, as files before PyTorch 0.4.1 lack them).
//! All mismatches are collected and reported together.

use std::collections::HashMap;

use slimdet_core::{Graph, Op};
use slimdet_formats::{NamedTensor, StateDict, TensorData};

use crate::error::{ModelError, Result};

/// Copies every parameter of `sd` into `g`, or fails listing every missing key,
/// unexpected key and shape or dtype mismatch. `path` and `arch` name the file and the
/// model in the error.
pub fn load_into(g: &mut Graph, sd: &StateDict, path: &str, arch: &str) -> Result<()> {
    let by_name: HashMap<&str, &NamedTensor> = sd.iter().map(|t| (t.name.as_str(), t)).collect();
    let mut report = Vec::new();
    let mut used = std::collections::HashSet::new();
    let counters: Vec<String> = g
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::BatchNorm(_)))
        .map(|n| format!("{}.num_batches_tracked", n.name))
        .collect();
    for (key, t) in g.params_mut() {
        let Some(src) = by_name.get(key.as_str()) else {
            report.push(format!("  missing key: {key} {:?}", t.shape()));
            continue;
        };
        used.insert(key.clone());
        if src.shape != t.shape() {
            report.push(format!(
                "  shape mismatch: {key}: file has {:?}, model expects {:?}",
                src.shape,
                t.shape()
            ));
            continue;
        }
        match &src.data {
            TensorData::F32(v) => t.data_mut().copy_from_slice(v),
            TensorData::I64(_) => report.push(format!(
                "  dtype mismatch: {key}: file has int64, model expects float32"
            )),
        }
    }
    for c in &counters {
        if let Some(src) = by_name.get(c.as_str()) {
            used.insert(c.clone());
            let node = c.trim_end_matches(".num_batches_tracked");
            if let (TensorData::I64(v), Some(n)) =
                (&src.data, g.nodes.iter_mut().find(|n| n.name == node))
                && let Op::BatchNorm(bn) = &mut n.op
            {
                bn.num_batches_tracked = v.first().copied();
            }
        }
    }
    for t in sd.iter() {
        if !used.contains(&t.name) {
            report.push(format!("  unexpected key: {} {:?}", t.name, t.shape));
        }
    }
    if report.is_empty() {
        Ok(())
    } else {
        Err(ModelError::StateDictMismatch {
            path: path.to_string(),
            arch: arch.to_string(),
            report,
        })
    }
}

/// The graph's parameters as a PyTorch-style state_dict (BN `num_batches_tracked` included
/// where known).
pub fn to_state_dict(g: &Graph) -> StateDict {
    let mut sd = StateDict {
        tensors: Vec::new(),
    };
    for n in &g.nodes {
        let mut push = |suffix: &str, t: &slimdet_core::Tensor| {
            sd.push(NamedTensor {
                name: format!("{}.{suffix}", n.name),
                shape: t.shape().to_vec(),
                data: TensorData::F32(t.data().to_vec()),
            })
        };
        match &n.op {
            Op::Conv(c) => {
                push("weight", &c.weight);
                if let Some(b) = &c.bias {
                    push("bias", b);
                }
            }
            Op::BatchNorm(b) => {
                push("weight", &b.gamma);
                push("bias", &b.beta);
                push("running_mean", &b.mean);
                push("running_var", &b.var);
                if let Some(k) = b.num_batches_tracked {
                    sd.push(NamedTensor {
                        name: format!("{}.num_batches_tracked", n.name),
                        shape: vec![],
                        data: TensorData::I64(vec![k]),
                    });
                }
            }
            _ => {}
        }
    }
    sd
}
