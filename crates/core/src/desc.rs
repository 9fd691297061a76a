//! The graph without its weights, as a serialisable description.
//!
//! A model file stores its network as a [`GraphDesc`] (JSON in the file's metadata) beside
//! the parameter tensors, so loading it needs no architecture name: [`Graph::from_desc`]
//! rebuilds the nodes with zero parameters of the declared shapes and the loader fills
//! them by key (`<node name>.weight`, ...). [`Graph::describe`] is the inverse; a graph
//! described and rebuilt equals the original once its parameters are copied back.
//!
//! The description is hostile input: ids, attributes and shapes are bounded and
//! checked before anything is allocated, and the result is validated (every value
//! produced once, before use).

use serde::{Deserialize, Serialize};

use crate::error::{CoreError, Result};
use crate::graph::{Graph, Node};
use crate::ops::{BatchNorm, Conv2d, Op, Pool2d};
use crate::tensor::Tensor;
use slimdet_kernels::Act;

/// Largest stride, padding or dilation a description may declare.
const MAX_GEOMETRY: usize = 1 << 12;
/// Largest size of one weight or reshape axis a description may declare.
const MAX_AXIS: usize = 1 << 24;
/// Most values (node outputs, including those a pass removed) a description may declare.
const MAX_VALUES: usize = 1 << 20;
/// Largest tensor rank (reshape, transpose, concat axis).
const MAX_RANK: usize = 8;

/// A graph's topology and operator attributes; parameters are named by their keys and
/// described by their shapes only.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct GraphDesc {
    /// The input value.
    pub input: usize,
    /// Values in the graph (input and node outputs).
    pub num_values: usize,
    /// Nodes in execution order.
    pub nodes: Vec<NodeDesc>,
    /// Named outputs.
    pub outputs: Vec<(String, usize)>,
}

/// One node of a [`GraphDesc`].
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct NodeDesc {
    /// Module path (parameter keys are `<name>.<param>`).
    pub name: String,
    /// Input values.
    pub inputs: Vec<usize>,
    /// Output value.
    pub output: usize,
    /// Operator and attributes.
    #[serde(flatten)]
    pub op: OpDesc,
}

/// An operator's attributes; an unknown `op` is refused by name when read.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "op", deny_unknown_fields)]
pub enum OpDesc {
    /// [`Op::Conv`]: `weight` is the OIHW shape of `<name>.weight`; `bias` says whether
    /// `<name>.bias` exists.
    Conv {
        /// `[out_c, in_c / groups, kh, kw]`.
        weight: [usize; 4],
        /// Whether the layer has a bias.
        bias: bool,
        /// `[stride_h, stride_w]`.
        stride: [usize; 2],
        /// Padding before `[top, left]`.
        pad: [usize; 2],
        /// Padding after `[bottom, right]`.
        pad_end: [usize; 2],
        /// `[dil_h, dil_w]`.
        dilation: [usize; 2],
        /// Channel groups.
        groups: usize,
        /// Fused activation: `none`, `relu`, `relu6`.
        act: String,
    },
    /// [`Op::BatchNorm`] of `channels`, with `<name>.weight/bias/running_mean/running_var`.
    BatchNorm {
        /// Channels.
        channels: usize,
        /// Variance epsilon.
        eps: f32,
    },
    /// [`Op::Act`].
    Act {
        /// `none`, `relu`, `relu6`.
        act: String,
    },
    /// [`Op::Add`] with a fused activation.
    Add {
        /// `none`, `relu`, `relu6`.
        act: String,
    },
    /// [`Op::Concat`].
    Concat {
        /// Axis.
        axis: usize,
    },
    /// [`Op::Reshape`].
    Reshape {
        /// Target shape (`-1` inferred, `0` kept).
        shape: Vec<i64>,
    },
    /// [`Op::Transpose`].
    Transpose {
        /// Output axis `i` is input axis `perm[i]`.
        perm: Vec<usize>,
    },
    /// [`Op::Softmax`] over the last axis.
    Softmax,
    /// [`Op::HardSwish`].
    HardSwish,
    /// [`Op::HardSigmoid`].
    HardSigmoid,
    /// [`Op::GlobalAvgPool`].
    GlobalAvgPool,
    /// [`Op::ChannelMul`].
    ChannelMul,
    /// [`Op::MaxPool`].
    MaxPool {
        /// `[kh, kw]`.
        kernel: [usize; 2],
        /// `[stride_h, stride_w]`.
        stride: [usize; 2],
        /// Padding on both sides, `[h, w]`.
        pad: [usize; 2],
        /// PyTorch's `ceil_mode`.
        ceil: bool,
    },
}

fn act_name(a: Act) -> String {
    match a {
        Act::None => "none",
        Act::Relu => "relu",
        Act::Relu6 => "relu6",
    }
    .to_string()
}

fn parse_act(node: &str, s: &str) -> Result<Act> {
    match s {
        "none" => Ok(Act::None),
        "relu" => Ok(Act::Relu),
        "relu6" => Ok(Act::Relu6),
        other => Err(CoreError::Graph(format!(
            "node `{node}`: unknown activation `{other}`"
        ))),
    }
}

impl Graph {
    /// The graph without its parameter values.
    pub fn describe(&self) -> GraphDesc {
        let nodes = self
            .nodes
            .iter()
            .map(|n| NodeDesc {
                name: n.name.clone(),
                inputs: n.inputs.clone(),
                output: n.output,
                op: match &n.op {
                    Op::Conv(c) => {
                        let s = c.weight.shape();
                        OpDesc::Conv {
                            weight: [s[0], s[1], s[2], s[3]],
                            bias: c.bias.is_some(),
                            stride: c.stride,
                            pad: c.pad,
                            pad_end: c.pad_end,
                            dilation: c.dilation,
                            groups: c.groups,
                            act: act_name(c.act),
                        }
                    }
                    Op::BatchNorm(b) => OpDesc::BatchNorm {
                        channels: b.channels(),
                        eps: b.eps,
                    },
                    Op::Act(a) => OpDesc::Act { act: act_name(*a) },
                    Op::Add(a) => OpDesc::Add { act: act_name(*a) },
                    Op::Concat { axis } => OpDesc::Concat { axis: *axis },
                    Op::Reshape(d) => OpDesc::Reshape { shape: d.clone() },
                    Op::Transpose(p) => OpDesc::Transpose { perm: p.clone() },
                    Op::Softmax => OpDesc::Softmax,
                    Op::HardSwish => OpDesc::HardSwish,
                    Op::HardSigmoid => OpDesc::HardSigmoid,
                    Op::GlobalAvgPool => OpDesc::GlobalAvgPool,
                    Op::ChannelMul => OpDesc::ChannelMul,
                    Op::MaxPool(p) => OpDesc::MaxPool {
                        kernel: p.kernel,
                        stride: p.stride,
                        pad: p.pad,
                        ceil: p.ceil,
                    },
                },
            })
            .collect();
        GraphDesc {
            input: self.input,
            num_values: self.num_values,
            nodes,
            outputs: self.outputs.clone(),
        }
    }

    /// Rebuilds a graph from its description with zero parameters. The parameters it
    /// declares may hold at most `max_params` values in all (the caller bounds this by
    /// what its file can hold), so a hostile description cannot make it allocate more.
    pub fn from_desc(d: &GraphDesc, max_params: usize) -> Result<Graph> {
        if d.num_values > MAX_VALUES {
            return Err(CoreError::Graph(format!(
                "{} values declared, more than {MAX_VALUES}",
                d.num_values
            )));
        }
        let declared = declared_params(d)?;
        if declared > max_params {
            return Err(CoreError::Graph(format!(
                "the graph declares {declared} parameter values, more than the {max_params} \
                 its file can hold"
            )));
        }
        let mut nodes = Vec::with_capacity(d.nodes.len());
        for n in &d.nodes {
            nodes.push(Node {
                name: n.name.clone(),
                op: build_op(n)?,
                inputs: n.inputs.clone(),
                output: n.output,
            });
        }
        let g = Graph {
            nodes,
            input: d.input,
            outputs: d.outputs.clone(),
            num_values: d.num_values,
        };
        g.validate()?;
        Ok(g)
    }
}

/// Parameter values the description declares, each attribute checked against the bounds
/// first so that no product overflows.
fn declared_params(d: &GraphDesc) -> Result<usize> {
    let mut total: usize = 0;
    for n in &d.nodes {
        let bad = |what: String| CoreError::Graph(format!("node `{}`: {what}", n.name));
        let count = match &n.op {
            OpDesc::Conv {
                weight,
                bias,
                groups,
                ..
            } => {
                if weight.iter().any(|&a| a == 0 || a > MAX_AXIS) || *groups == 0 {
                    return Err(bad(format!(
                        "weight shape {weight:?} or groups {groups} out of range"
                    )));
                }
                let w = weight
                    .iter()
                    .try_fold(1usize, |acc, &a| acc.checked_mul(a))
                    .ok_or_else(|| bad(format!("weight shape {weight:?} overflows")))?;
                w + if *bias { weight[0] } else { 0 }
            }
            OpDesc::BatchNorm { channels, .. } => {
                if *channels == 0 || *channels > MAX_AXIS {
                    return Err(bad(format!("{channels} channels out of range")));
                }
                4 * channels
            }
            OpDesc::Reshape { shape } => {
                if shape.len() > MAX_RANK || shape.iter().any(|&v| v < -1 || v > MAX_AXIS as i64) {
                    return Err(bad(format!("reshape {shape:?} out of range")));
                }
                0
            }
            OpDesc::Transpose { perm } => {
                let mut seen = [false; MAX_RANK];
                if perm.len() > MAX_RANK
                    || perm
                        .iter()
                        .any(|&p| p >= perm.len() || std::mem::replace(&mut seen[p], true))
                {
                    return Err(bad(format!("{perm:?} is not a permutation")));
                }
                0
            }
            OpDesc::Concat { axis } if *axis >= MAX_RANK => {
                return Err(bad(format!("concat axis {axis} out of range")));
            }
            _ => 0,
        };
        total = total
            .checked_add(count)
            .ok_or_else(|| CoreError::Graph("parameter count overflows".into()))?;
    }
    Ok(total)
}

fn build_op(n: &NodeDesc) -> Result<Op> {
    Ok(match &n.op {
        OpDesc::Conv {
            weight,
            bias,
            stride,
            pad,
            pad_end,
            dilation,
            groups,
            act,
        } => {
            let mut geometry = stride.iter().chain(pad).chain(pad_end).chain(dilation);
            if geometry.any(|&v| v > MAX_GEOMETRY) {
                return Err(CoreError::Graph(format!(
                    "node `{}`: stride, padding or dilation above {MAX_GEOMETRY}",
                    n.name
                )));
            }
            Op::Conv(Conv2d {
                weight: Tensor::zeros(weight.to_vec()),
                bias: bias.then(|| Tensor::zeros(vec![weight[0]])),
                stride: *stride,
                pad: *pad,
                pad_end: *pad_end,
                dilation: *dilation,
                groups: *groups,
                act: parse_act(&n.name, act)?,
            })
        }
        OpDesc::BatchNorm { channels, eps } => {
            if !(eps.is_finite() && *eps >= 0.0) {
                return Err(CoreError::Graph(format!(
                    "node `{}`: batch norm epsilon {eps}",
                    n.name
                )));
            }
            let z = || Tensor::zeros(vec![*channels]);
            Op::BatchNorm(BatchNorm {
                gamma: z(),
                beta: z(),
                mean: z(),
                var: z(),
                eps: *eps,
                num_batches_tracked: None,
            })
        }
        OpDesc::Act { act } => Op::Act(parse_act(&n.name, act)?),
        OpDesc::Add { act } => Op::Add(parse_act(&n.name, act)?),
        OpDesc::Concat { axis } => Op::Concat { axis: *axis },
        OpDesc::Reshape { shape } => Op::Reshape(shape.clone()),
        OpDesc::Transpose { perm } => Op::Transpose(perm.clone()),
        OpDesc::Softmax => Op::Softmax,
        OpDesc::HardSwish => Op::HardSwish,
        OpDesc::HardSigmoid => Op::HardSigmoid,
        OpDesc::GlobalAvgPool => Op::GlobalAvgPool,
        OpDesc::ChannelMul => Op::ChannelMul,
        OpDesc::MaxPool {
            kernel,
            stride,
            pad,
            ceil,
        } => {
            if kernel
                .iter()
                .chain(stride)
                .chain(pad)
                .any(|&v| v > MAX_GEOMETRY)
            {
                return Err(CoreError::Graph(format!(
                    "node `{}`: pooling window, stride or padding above {MAX_GEOMETRY}",
                    n.name
                )));
            }
            Op::MaxPool(Pool2d {
                kernel: *kernel,
                stride: *stride,
                pad: *pad,
                ceil: *ceil,
            })
        }
    })
}
