//! Building blocks shared by the architectures: conv, BN and activation nodes created
//! with zero weights of the right shapes, to be filled from a state_dict.

use slimdet_core::{Act, BatchNorm, Conv2d, Graph, Tensor, ValueId};

/// Parameters of one convolution node.
#[derive(Clone, Copy, Debug)]
pub struct ConvSpec {
    /// Input channels.
    pub cin: usize,
    /// Output channels.
    pub cout: usize,
    /// Square kernel size.
    pub k: usize,
    /// Stride.
    pub stride: usize,
    /// Symmetric padding.
    pub pad: usize,
    /// Dilation.
    pub dil: usize,
    /// Groups.
    pub groups: usize,
    /// Whether the layer has a bias.
    pub bias: bool,
}

impl ConvSpec {
    /// A dense k×k conv without bias, dilation 1.
    pub fn dense(cin: usize, cout: usize, k: usize, stride: usize, pad: usize) -> Self {
        Self {
            cin,
            cout,
            k,
            stride,
            pad,
            dil: 1,
            groups: 1,
            bias: false,
        }
    }

    /// A 3x3 depthwise conv with padding 1, without bias.
    pub fn depthwise(c: usize, stride: usize) -> Self {
        Self {
            cin: c,
            cout: c,
            k: 3,
            stride,
            pad: 1,
            dil: 1,
            groups: c,
            bias: false,
        }
    }

    /// A 1x1 conv without bias.
    pub fn pointwise(cin: usize, cout: usize) -> Self {
        Self::dense(cin, cout, 1, 1, 0)
    }

    /// The same conv with a bias.
    pub fn with_bias(mut self) -> Self {
        self.bias = true;
        self
    }

    /// The same conv with dilation `d` and padding `d`.
    pub fn dilated(mut self, d: usize) -> Self {
        self.dil = d;
        self.pad = d;
        self
    }
}

/// Appends a zero-initialised conv named `name` (its weight key is `<name>.weight`).
pub fn conv(g: &mut Graph, name: &str, x: ValueId, s: ConvSpec) -> ValueId {
    let w = Tensor::zeros(vec![s.cout, s.cin / s.groups, s.k, s.k]);
    let mut c = Conv2d::new(w, s.stride, s.pad, s.dil, s.groups);
    if s.bias {
        c.bias = Some(Tensor::zeros(vec![s.cout]));
    }
    g.conv(name, x, c)
}

/// Appends an identity-initialised batch norm over `c` channels (eps 1e-5).
pub fn bn(g: &mut Graph, name: &str, x: ValueId, c: usize) -> ValueId {
    let b = BatchNorm {
        gamma: Tensor::full(vec![c], 1.0),
        beta: Tensor::zeros(vec![c]),
        mean: Tensor::zeros(vec![c]),
        var: Tensor::full(vec![c], 1.0),
        eps: 1e-5,
        num_batches_tracked: None,
    };
    g.bn(name, x, b)
}

/// Conv, then BN at module index + 1, then an optional activation: the
/// `Sequential(Conv2d, BatchNorm2d, ReLU)` pattern. `prefix` is the Sequential's path and
/// `index` the conv's position in it.
pub fn conv_bn_act(
    g: &mut Graph,
    prefix: &str,
    index: usize,
    x: ValueId,
    s: ConvSpec,
    act: Act,
) -> ValueId {
    let y = conv(g, &format!("{prefix}.{index}"), x, s);
    let y = bn(g, &format!("{prefix}.{}", index + 1), y, s.cout);
    if act == Act::None {
        y
    } else {
        g.act(&format!("{prefix}.{}", index + 2), y, act)
    }
}

/// Head output `[N, H, W, A·K]` viewed as `[N, H·W·A, K]` (pytorch-ssd's permute + view; a
/// plain reshape in NHWC).
pub fn to_priors(g: &mut Graph, name: &str, x: ValueId, k: usize) -> ValueId {
    g.push(name, slimdet_core::Op::Reshape(vec![0, -1, k as i64]), &[x])
}

/// The SSD outputs: the per-level head tensors concatenated along the priors into `logits`
/// `[N, P, classes]` and `locations` `[N, P, 4]`, declared as the graph's outputs.
pub fn ssd_outputs(g: &mut Graph, confs: &[ValueId], locs: &[ValueId]) {
    let logits = g.push("logits", slimdet_core::Op::Concat { axis: 1 }, confs);
    let locations = g.push("locations", slimdet_core::Op::Concat { axis: 1 }, locs);
    g.output("logits", logits);
    g.output("locations", locations);
}
