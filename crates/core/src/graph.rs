//! The graph IR: nodes in execution order, connected by value ids.
//!
//! Value 0.. are produced by graph inputs and nodes; every value has exactly one
//! producer. Nodes that carry parameters are named after their PyTorch module path
//! (`base_net.0.0`), so the state_dict key of a parameter is `<node name>.<param>`.

use slimdet_kernels::Act;

use crate::error::{CoreError, Result};
use crate::ops::{BatchNorm, Conv2d, Op};
use crate::tensor::Tensor;

/// Index of a value (tensor) in a graph.
pub type ValueId = usize;

/// One operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct Node {
    /// Module path for parametric nodes, a descriptive name otherwise.
    pub name: String,
    /// The operator and its parameters.
    pub op: Op,
    /// Input values, in operator order.
    pub inputs: Vec<ValueId>,
    /// The value this node produces.
    pub output: ValueId,
}

/// A model: one NHWC input, nodes in execution order, named outputs.
#[derive(Clone, Debug, PartialEq, Default)]
pub struct Graph {
    /// Nodes in execution order.
    pub nodes: Vec<Node>,
    /// The graph input value (`[N, H, W, C]`).
    pub input: ValueId,
    /// Output values with their names.
    pub outputs: Vec<(String, ValueId)>,
    /// Number of values allocated so far.
    pub num_values: usize,
}

impl Graph {
    /// An empty graph with its input value.
    pub fn new() -> Self {
        Self {
            nodes: Vec::new(),
            input: 0,
            outputs: Vec::new(),
            num_values: 1,
        }
    }

    /// Appends a node and returns its output value.
    pub fn push(&mut self, name: impl Into<String>, op: Op, inputs: &[ValueId]) -> ValueId {
        let output = self.num_values;
        self.num_values += 1;
        self.nodes.push(Node {
            name: name.into(),
            op,
            inputs: inputs.to_vec(),
            output,
        });
        output
    }

    /// Appends a convolution.
    pub fn conv(&mut self, name: &str, x: ValueId, conv: Conv2d) -> ValueId {
        self.push(name, Op::Conv(conv), &[x])
    }

    /// Appends a batch norm.
    pub fn bn(&mut self, name: &str, x: ValueId, bn: BatchNorm) -> ValueId {
        self.push(name, Op::BatchNorm(bn), &[x])
    }

    /// Appends an activation.
    pub fn act(&mut self, name: &str, x: ValueId, act: Act) -> ValueId {
        self.push(name, Op::Act(act), &[x])
    }

    /// Declares a graph output.
    pub fn output(&mut self, name: &str, v: ValueId) {
        self.outputs.push((name.to_string(), v));
    }

    /// The node producing `v`, if any (None for the graph input).
    pub fn producer(&self, v: ValueId) -> Option<usize> {
        self.nodes.iter().position(|n| n.output == v)
    }

    /// How many node inputs and graph outputs read each value.
    pub fn use_counts(&self) -> Vec<usize> {
        let mut uses = vec![0; self.num_values];
        for n in &self.nodes {
            for &i in &n.inputs {
                uses[i] += 1;
            }
        }
        for (_, v) in &self.outputs {
            uses[*v] += 1;
        }
        uses
    }

    /// Checks that every value is produced once, before it is used.
    pub fn validate(&self) -> Result<()> {
        let mut defined = vec![false; self.num_values];
        if self.input >= self.num_values {
            return Err(CoreError::Graph("input value out of range".into()));
        }
        defined[self.input] = true;
        for n in &self.nodes {
            for &i in &n.inputs {
                if i >= self.num_values || !defined[i] {
                    return Err(CoreError::Graph(format!(
                        "node `{}` reads value {i} before it is produced",
                        n.name
                    )));
                }
            }
            if n.output >= self.num_values || defined[n.output] {
                return Err(CoreError::Graph(format!(
                    "node `{}` output {} is produced twice",
                    n.name, n.output
                )));
            }
            defined[n.output] = true;
        }
        for (name, v) in &self.outputs {
            if *v >= self.num_values || !defined[*v] {
                return Err(CoreError::Graph(format!(
                    "output `{name}` is never produced"
                )));
            }
        }
        Ok(())
    }

    /// Every named parameter, as `(state_dict key, tensor)`, in node order: conv `weight`,
    /// `bias`; BN `weight`, `bias`, `running_mean`, `running_var`.
    pub fn params(&self) -> Vec<(String, &Tensor)> {
        let mut out = Vec::new();
        for n in &self.nodes {
            match &n.op {
                Op::Conv(c) => {
                    out.push((format!("{}.weight", n.name), &c.weight));
                    if let Some(b) = &c.bias {
                        out.push((format!("{}.bias", n.name), b));
                    }
                }
                Op::BatchNorm(b) => {
                    out.push((format!("{}.weight", n.name), &b.gamma));
                    out.push((format!("{}.bias", n.name), &b.beta));
                    out.push((format!("{}.running_mean", n.name), &b.mean));
                    out.push((format!("{}.running_var", n.name), &b.var));
                }
                _ => {}
            }
        }
        out
    }

    /// Mutable access to every named parameter, same keys and order as [`Graph::params`].
    pub fn params_mut(&mut self) -> Vec<(String, &mut Tensor)> {
        let mut out = Vec::new();
        for n in &mut self.nodes {
            match &mut n.op {
                Op::Conv(c) => {
                    out.push((format!("{}.weight", n.name), &mut c.weight));
                    if let Some(b) = &mut c.bias {
                        out.push((format!("{}.bias", n.name), b));
                    }
                }
                Op::BatchNorm(b) => {
                    out.push((format!("{}.weight", n.name), &mut b.gamma));
                    out.push((format!("{}.bias", n.name), &mut b.beta));
                    out.push((format!("{}.running_mean", n.name), &mut b.mean));
                    out.push((format!("{}.running_var", n.name), &mut b.var));
                }
                _ => {}
            }
        }
        out
    }
}
