//! MobileNetV3-SSD-Lite, Large and Small, exactly as pytorch-ssd's
//! `create_mobilenetv3_large_ssd_lite` and `create_mobilenetv3_small_ssd_lite` build them
//! (`vision/nn/mobilenetv3.py`): a 3x3 stride-2 stem with h-swish, the bottleneck
//! `Block`s (1x1 expand, k×k depthwise, 1x1 project, each with BN; ReLU or h-swish after
//! the first two; squeeze-and-excite after the projection on some blocks; a residual, through
//! a 1x1 conv + BN when the widths differ, on stride-1 blocks), a 1x1 conv to 960 (Large) or
//! 576 (Small) with h-swish, and four stride-2 `Block`s as extras. Heads as
//! MobileNetV2-SSD-Lite's (separable with BN and ReLU6, the last 1x1) on the output of
//! block 11 (Large, 112 channels) or 7 (Small, 48), both 19x19, and on the backbone's
//! output (10x10); the same 3,000 priors.
//!
//! Squeeze-and-excite (`SeModule`): global average pool, 1x1 conv to C/4, BN, ReLU, 1x1
//! conv back to C, BN, h-sigmoid, then the block's output multiplied channel-wise by it.

use slimdet_core::{Act, Graph, Op, ValueId};

use crate::blocks::{ConvSpec, bn, conv, conv_bn_act, ssd_outputs};
use crate::mobilenet_v2::heads;

/// The non-linearity of a block.
#[derive(Clone, Copy, Debug, PartialEq)]
enum Nl {
    Relu,
    HardSwish,
}

/// One `Block(kernel, in, expand, out, nolinear, semodule, stride)` of pytorch-ssd's
/// `mobilenetv3.py`.
#[derive(Clone, Copy, Debug)]
struct BlockSpec {
    k: usize,
    cin: usize,
    expand: usize,
    cout: usize,
    nl: Nl,
    se: bool,
    stride: usize,
}

const fn b(
    k: usize,
    cin: usize,
    expand: usize,
    cout: usize,
    nl: Nl,
    se: bool,
    stride: usize,
) -> BlockSpec {
    BlockSpec {
        k,
        cin,
        expand,
        cout,
        nl,
        se,
        stride,
    }
}

use Nl::{HardSwish as H, Relu as R};

/// `MobileNetV3_Large().bneck`.
const LARGE: [BlockSpec; 15] = [
    b(3, 16, 16, 16, R, false, 1),
    b(3, 16, 64, 24, R, false, 2),
    b(3, 24, 72, 24, R, false, 1),
    b(5, 24, 72, 40, R, true, 2),
    b(5, 40, 120, 40, R, true, 1),
    b(5, 40, 120, 40, R, true, 1),
    b(3, 40, 240, 80, H, false, 2),
    b(3, 80, 200, 80, H, false, 1),
    b(3, 80, 184, 80, H, false, 1),
    b(3, 80, 184, 80, H, false, 1),
    b(3, 80, 480, 112, H, true, 1),
    b(3, 112, 672, 112, H, true, 1),
    b(5, 112, 672, 160, H, true, 1),
    b(5, 160, 672, 160, H, true, 2),
    b(5, 160, 960, 160, H, true, 1),
];

/// `MobileNetV3_Small().bneck`.
const SMALL: [BlockSpec; 11] = [
    b(3, 16, 16, 16, R, true, 2),
    b(3, 16, 72, 24, R, false, 2),
    b(3, 24, 88, 24, R, false, 1),
    b(5, 24, 96, 40, H, true, 2),
    b(5, 40, 240, 40, H, true, 1),
    b(5, 40, 240, 40, H, true, 1),
    b(5, 40, 120, 48, H, true, 1),
    b(5, 48, 144, 48, H, true, 1),
    b(5, 48, 288, 96, H, true, 2),
    b(5, 96, 576, 96, H, true, 1),
    b(5, 96, 576, 96, H, true, 1),
];

/// The extras: `Block(3, in, expand, out, hswish(), None, stride=2)`.
const EXTRAS: [BlockSpec; 4] = [
    b(3, 960, 256, 512, H, false, 2),
    b(3, 512, 128, 256, H, false, 2),
    b(3, 256, 128, 256, H, false, 2),
    b(3, 256, 64, 64, H, false, 2),
];

/// The block's non-linearity on `x`, named `name`.
fn nonlinear(g: &mut Graph, name: &str, x: ValueId, nl: Nl) -> ValueId {
    match nl {
        Nl::Relu => g.act(name, x, Act::Relu),
        Nl::HardSwish => g.push(name, Op::HardSwish, &[x]),
    }
}

/// `SeModule(c)` at `prefix` (`<block>.se`) applied to `x` `[N, H, W, c]`.
fn squeeze_excite(g: &mut Graph, prefix: &str, x: ValueId, c: usize) -> ValueId {
    let p = format!("{prefix}.se");
    let pooled = g.push(format!("{p}.0"), Op::GlobalAvgPool, &[x]);
    let s = conv_bn_act(g, &p, 1, pooled, ConvSpec::pointwise(c, c / 4), Act::Relu);
    let s = conv(g, &format!("{p}.4"), s, ConvSpec::pointwise(c / 4, c));
    let s = bn(g, &format!("{p}.5"), s, c);
    let gate = g.push(format!("{p}.6"), Op::HardSigmoid, &[s]);
    g.push(format!("{prefix}.mul"), Op::ChannelMul, &[x, gate])
}

/// One bottleneck `Block` at `prefix` on `x`.
fn block(g: &mut Graph, prefix: &str, x: ValueId, s: BlockSpec) -> ValueId {
    let y = conv(
        g,
        &format!("{prefix}.conv1"),
        x,
        ConvSpec::pointwise(s.cin, s.expand),
    );
    let y = bn(g, &format!("{prefix}.bn1"), y, s.expand);
    let y = nonlinear(g, &format!("{prefix}.nolinear1"), y, s.nl);
    let dw = ConvSpec {
        k: s.k,
        pad: s.k / 2,
        ..ConvSpec::depthwise(s.expand, s.stride)
    };
    let y = conv(g, &format!("{prefix}.conv2"), y, dw);
    let y = bn(g, &format!("{prefix}.bn2"), y, s.expand);
    let y = nonlinear(g, &format!("{prefix}.nolinear2"), y, s.nl);
    let y = conv(
        g,
        &format!("{prefix}.conv3"),
        y,
        ConvSpec::pointwise(s.expand, s.cout),
    );
    let mut y = bn(g, &format!("{prefix}.bn3"), y, s.cout);
    if s.se {
        y = squeeze_excite(g, &format!("{prefix}.se"), y, s.cout);
    }
    if s.stride != 1 {
        return y;
    }
    let shortcut = if s.cin == s.cout {
        x
    } else {
        let p = format!("{prefix}.shortcut");
        conv_bn_act(g, &p, 0, x, ConvSpec::pointwise(s.cin, s.cout), Act::None)
    };
    g.push(format!("{prefix}.add"), Op::Add(Act::None), &[y, shortcut])
}

/// Builds MobileNetV3-SSD-Lite (`large` or Small) with zero weights. Input NHWC
/// `[N, 300, 300, 3]`; outputs `logits` `[N, 3000, num_classes]` and `locations`
/// `[N, 3000, 4]` (raw head outputs).
pub fn build(num_classes: usize, large: bool) -> Graph {
    let (blocks, tap, last): (&[BlockSpec], usize, usize) = if large {
        (&LARGE, 11, 960)
    } else {
        (&SMALL, 7, 576)
    };
    let mut g = Graph::new();
    let input = g.input;
    let stem = ConvSpec::dense(3, 16, 3, 2, 1);
    let x = conv(&mut g, "base_net.0", input, stem);
    let x = bn(&mut g, "base_net.1", x, 16);
    let mut x = g.push("base_net.2", Op::HardSwish, &[x]);
    let (mut confs, mut locs) = (Vec::new(), Vec::new());
    for (i, s) in blocks.iter().enumerate() {
        x = block(&mut g, &format!("base_net.{}", i + 3), x, *s);
        if i == tap {
            let (c, l) = heads(&mut g, 0, x, s.cout, num_classes, false);
            confs.push(c);
            locs.push(l);
        }
    }
    let n = blocks.len() + 3;
    let cin = blocks[blocks.len() - 1].cout;
    let x = conv(
        &mut g,
        &format!("base_net.{n}"),
        x,
        ConvSpec::pointwise(cin, last),
    );
    let x = bn(&mut g, &format!("base_net.{}", n + 1), x, last);
    let mut x = g.push(format!("base_net.{}", n + 2), Op::HardSwish, &[x]);
    let (c, l) = heads(&mut g, 1, x, last, num_classes, false);
    confs.push(c);
    locs.push(l);
    for (e, s) in EXTRAS.iter().enumerate() {
        let s = BlockSpec {
            cin: if e == 0 { last } else { s.cin },
            ..*s
        };
        x = block(&mut g, &format!("extras.{e}"), x, s);
        let (c, l) = heads(&mut g, e + 2, x, s.cout, num_classes, e == 3);
        confs.push(c);
        locs.push(l);
    }
    ssd_outputs(&mut g, &confs, &locs);
    g
}
