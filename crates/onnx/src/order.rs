//! Orders that depend on a graph's data flow only, never on the order its nodes are
//! listed in. Two files holding the same network with their nodes listed in different
//! (valid, topological) orders must import to the same detector: ONNX Runtime's
//! `quant_pre_process`, for one, writes the nodes in another order than PyTorch.
//!
//! - [`topological`]: the order to import ONNX nodes in, computed from tensor names: the
//!   same for every listing of the graph (a file whose node list is not topologically
//!   sorted still imports).
//! - [`canonical`]: the order in which convolutions of an imported graph are paired with
//!   those of a known architecture: a depth-first walk from the outputs that visits the
//!   inputs of every node in operand order and lists a node after all of its inputs.
//!   A residual `Add(x, f(x))` lists `x`'s producers before `f`'s whatever the operand
//!   order, as `x` is upstream of `f(x)`; concatenations keep their (meaningful) order.

use std::collections::HashMap;

use slimdet_core::{Graph, ValueId};

use crate::proto::NodeProto;

/// A topological order of `nodes` (indices) that depends on the data flow only: a
/// depth-first post-order from the producers of `outputs` (in order), visiting each
/// node's inputs in operand order, by tensor name; nodes no output depends on follow,
/// in list order. Any listing of the same graph, sorted or not, gives the same order,
/// so the imported engine graph (and its floating-point results) does not depend on it.
/// Inputs that no node produces (graph inputs, initializers, undefined names) are
/// leaves; the first producer of a name wins (a second is reported by the importer).
///
/// # Errors
/// The index of a node on a cycle.
pub fn topological(nodes: &[NodeProto], outputs: &[&str]) -> Result<Vec<usize>, usize> {
    let mut producer: HashMap<&str, usize> = HashMap::new();
    for (i, n) in nodes.iter().enumerate() {
        for o in n.output.iter().filter(|o| !o.is_empty()) {
            producer.entry(o.as_str()).or_insert(i);
        }
    }
    // 0: not visited, 1: on the stack, 2: done.
    let mut state = vec![0u8; nodes.len()];
    let mut order = Vec::with_capacity(nodes.len());
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let starts = outputs
        .iter()
        .filter_map(|o| producer.get(o).copied())
        .chain(0..nodes.len());
    for start in starts {
        if state[start] != 0 {
            continue;
        }
        state[start] = 1;
        stack.push((start, 0));
        while let Some(top) = stack.last_mut() {
            let (node, k) = *top;
            match nodes[node].input.get(k) {
                Some(name) => {
                    top.1 += 1;
                    match producer.get(name.as_str()).map(|&p| (p, state[p])) {
                        Some((p, 0)) => {
                            state[p] = 1;
                            stack.push((p, 0));
                        }
                        Some((p, 1)) => return Err(p),
                        _ => {}
                    }
                }
                None => {
                    state[node] = 2;
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    Ok(order)
}

/// The nodes of `g` (indices) in depth-first post-order from `roots`, visiting each
/// node's inputs in operand order; nodes no root depends on follow in list order.
/// The result is a topological order that depends on the data flow only.
pub fn canonical(g: &Graph, roots: &[ValueId]) -> Vec<usize> {
    let mut producer = vec![None; g.num_values];
    for (i, n) in g.nodes.iter().enumerate() {
        if let Some(p) = producer.get_mut(n.output) {
            *p = Some(i);
        }
    }
    let mut done = vec![false; g.nodes.len()];
    let mut order = Vec::with_capacity(g.nodes.len());
    // Explicit stack of (node, next input to visit): deep graphs must not overflow.
    let mut stack: Vec<(usize, usize)> = Vec::new();
    let starts = roots
        .iter()
        .filter_map(|&v| producer.get(v).copied().flatten())
        .chain(0..g.nodes.len());
    for start in starts {
        if done[start] {
            continue;
        }
        done[start] = true;
        stack.push((start, 0));
        while let Some(top) = stack.last_mut() {
            let (node, k) = *top;
            match g.nodes[node].inputs.get(k) {
                Some(&v) => {
                    top.1 += 1;
                    if let Some(p) = producer.get(v).copied().flatten()
                        && !done[p]
                    {
                        done[p] = true;
                        stack.push((p, 0));
                    }
                }
                None => {
                    order.push(node);
                    stack.pop();
                }
            }
        }
    }
    order
}

/// Roots for [`canonical`] on a detector graph: its outputs, class outputs (last
/// dimension ≠ 4) before box outputs (last dimension 4), each group in its own order.
pub fn detector_roots(outputs: &[ValueId], shapes: &[Vec<usize>]) -> Vec<ValueId> {
    let is_box = |i: usize| shapes.get(i).and_then(|s| s.last()) == Some(&4);
    let mut roots: Vec<ValueId> = (0..outputs.len())
        .filter(|&i| !is_box(i))
        .map(|i| outputs[i])
        .collect();
    roots.extend(
        (0..outputs.len())
            .filter(|&i| is_box(i))
            .map(|i| outputs[i]),
    );
    roots
}
