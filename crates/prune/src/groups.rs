//! Channel dependency groups (DepGraph, Fang et al. 2023) over the graph IR.
//!
//! Removing output channel `c` of a conv forces the same removal wherever that channel
//! flows: through BN and activations, through depthwise convs (one channel in, the same
//! channel out), across residual adds and squeeze-and-excite's channel-wise multiply
//! (both operands and the result share channels; the global average pool keeps them), and in
//! the input dimension of every regular conv that reads it. Values connected this way
//! share one *channel space*; a [`Group`] is one channel space with every parameter slice
//! it couples. A group is prunable when it is produced by regular convs only and never
//! reaches anything that needs its channels intact: the graph input and outputs, reshapes
//! (the class and box head outputs), concatenations, transposes, softmax and grouped
//! (non-depthwise) convs pin their channel spaces.
//!
//! For MobileNetV2-SSD-Lite this yields: each expansion conv with its depthwise conv
//! (and, for block 14, the head-0 depthwise convs that read the expansion); the projection
//! convs of a stage tied together by the residual adds, with the next expansion's and the
//! heads' inputs; and never the head outputs.

use std::collections::HashMap;

use slimdet_core::{Graph, Op, ValueId};

/// One channel space and the parameters it couples (node indices into `Graph::nodes`).
#[derive(Clone, Debug, PartialEq)]
pub struct Group {
    /// Regular (groups = 1) convs whose output channels are this space: their filters.
    pub producers: Vec<usize>,
    /// Depthwise convs inside the space: their filters and biases.
    pub depthwise: Vec<usize>,
    /// Batch norms inside the space: their four vectors.
    pub batch_norms: Vec<usize>,
    /// Regular convs reading the space: their input channels.
    pub consumers: Vec<usize>,
    /// Channels in the space.
    pub channels: usize,
    /// Why the group cannot be pruned, if it cannot.
    pub pinned: Option<String>,
}

impl Group {
    /// A readable name: the first producer's node name.
    pub fn name<'a>(&self, g: &'a Graph) -> &'a str {
        self.producers
            .first()
            .map_or("?", |&i| g.nodes[i].name.as_str())
    }
}

struct UnionFind(Vec<usize>);

impl UnionFind {
    fn find(&mut self, mut x: usize) -> usize {
        while self.0[x] != x {
            self.0[x] = self.0[self.0[x]];
            x = self.0[x];
        }
        x
    }
    fn union(&mut self, a: usize, b: usize) {
        let (ra, rb) = (self.find(a), self.find(b));
        if ra != rb {
            self.0[rb] = ra;
        }
    }
}

fn is_regular(op: &Op) -> bool {
    matches!(op, Op::Conv(c) if c.groups == 1)
}

/// The dependency groups of `g`, one per channel space produced by a regular conv, in
/// the order of their first producer.
pub fn dependency_groups(g: &Graph) -> Vec<Group> {
    let mut uf = UnionFind((0..g.num_values).collect());
    let mut pins: Vec<(ValueId, String)> = vec![(g.input, "graph input".into())];
    for (name, v) in &g.outputs {
        pins.push((*v, format!("graph output `{name}`")));
    }
    for n in &g.nodes {
        match &n.op {
            Op::Conv(c) if c.is_depthwise() => uf.union(n.output, n.inputs[0]),
            Op::Conv(c) if c.groups > 1 => {
                pins.push((n.inputs[0], format!("grouped conv `{}`", n.name)));
                pins.push((n.output, format!("grouped conv `{}`", n.name)));
            }
            Op::Conv(_) => {}
            Op::BatchNorm(_)
            | Op::Act(_)
            | Op::HardSwish
            | Op::HardSigmoid
            | Op::GlobalAvgPool
            | Op::MaxPool(_) => uf.union(n.output, n.inputs[0]),
            // Squeeze-and-excite's gate multiplies channel c by its own gate c: the block's
            // output, the gate's producer and the product share one space.
            Op::Add(_) | Op::ChannelMul => {
                for &i in &n.inputs {
                    uf.union(n.output, i);
                }
            }
            Op::Concat { .. } | Op::Reshape(_) | Op::Transpose(_) | Op::Softmax => {
                for &i in &n.inputs {
                    pins.push((i, format!("{} `{}`", n.op.kind(), n.name)));
                }
                pins.push((n.output, format!("{} `{}`", n.op.kind(), n.name)));
            }
        }
    }
    // Producers define the groups: one per channel space, keyed by its root value.
    let mut index: HashMap<usize, usize> = HashMap::new();
    let mut groups: Vec<Group> = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        if let Op::Conv(c) = &n.op
            && c.groups == 1
        {
            let r = uf.find(n.output);
            let k = *index.entry(r).or_insert_with(|| {
                groups.push(Group {
                    producers: Vec::new(),
                    depthwise: Vec::new(),
                    batch_norms: Vec::new(),
                    consumers: Vec::new(),
                    channels: c.out_channels(),
                    pinned: None,
                });
                groups.len() - 1
            });
            groups[k].producers.push(i);
        }
    }
    for (i, n) in g.nodes.iter().enumerate() {
        let out_group = index.get(&uf.find(n.output)).copied();
        match &n.op {
            Op::Conv(c) if c.is_depthwise() => {
                if let Some(k) = out_group {
                    groups[k].depthwise.push(i);
                }
            }
            Op::BatchNorm(_) => {
                if let Some(k) = out_group {
                    groups[k].batch_norms.push(i);
                }
            }
            _ => {}
        }
        if is_regular(&n.op)
            && let Some(&k) = index.get(&uf.find(n.inputs[0]))
        {
            groups[k].consumers.push(i);
        }
    }
    for (v, why) in pins {
        if let Some(&k) = index.get(&uf.find(v))
            && groups[k].pinned.is_none()
        {
            groups[k].pinned = Some(why);
        }
    }
    groups
}
