//! MobileNetV1-SSD and MobileNetV1-SSD-Lite, exactly as pytorch-ssd's
//! `create_mobilenetv1_ssd` and `create_mobilenetv1_ssd_lite` build them: the MobileNetV1
//! backbone (`conv_bn`, then 13 `conv_dw` blocks, ReLU), heads on blocks 11 (512
//! channels, 19x19) and 13 (1024, 10x10), and four extras (1x1 with bias and ReLU, then a
//! stride-2 3x3). SSD uses plain 3x3 convolutions (with ReLU after the extras'); SSD-Lite
//! uses `SeperableConv2d` (3x3 depthwise with bias, ReLU, 1x1 with bias) for the extras'
//! 3x3 and the first five heads, and 1x1 convolutions for the last heads. Both have the
//! same 3,000 priors as MobileNetV2-SSD-Lite (pytorch-ssd's `mobilenetv1_ssd_config`).
//!
//! MobileNetV1-SSD is the network of NVIDIA's jetson-inference re-training tutorial.

use slimdet_core::{Act, Graph, ValueId};

use crate::blocks::{ConvSpec, conv, conv_bn_act, ssd_outputs, to_priors};

/// `(output channels, stride)` of the 13 `conv_dw` blocks (`base_net.1` .. `base_net.13`).
const DW_BLOCKS: [(usize, usize); 13] = [
    (64, 1),
    (128, 2),
    (128, 1),
    (256, 2),
    (256, 1),
    (512, 2),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (512, 1),
    (1024, 2),
    (1024, 1),
];

/// `(in, hidden, out)` channels of the extras (`Conv2d(in, hidden, 1)`, ReLU,
/// `Conv2d(hidden, out, 3, stride 2, padding 1)`, ReLU).
const EXTRAS: [(usize, usize, usize); 4] = [
    (1024, 256, 512),
    (512, 128, 256),
    (256, 128, 256),
    (256, 128, 256),
];

/// Anchors per location on every level.
const ANCHORS: usize = 6;

/// `Conv2d` with bias, then ReLU at module index + 1 (the extras' pattern).
pub(crate) fn conv_relu(g: &mut Graph, name: &str, x: ValueId, s: ConvSpec) -> ValueId {
    let y = conv(g, name, x, s.with_bias());
    g.act(&format!("{name}.relu"), y, Act::Relu)
}

/// `SeperableConv2d(cin, cout, 3, stride, padding)` of pytorch-ssd's
/// `mobilenet_v1_ssd_lite` (and `squeezenet_ssd_lite`): depthwise 3x3 with bias, ReLU,
/// pointwise with bias.
pub(crate) fn separable(
    g: &mut Graph,
    name: &str,
    x: ValueId,
    (cin, cout): (usize, usize),
    stride: usize,
    pad: usize,
) -> ValueId {
    let dw = ConvSpec {
        pad,
        ..ConvSpec::depthwise(cin, stride)
    };
    let y = conv(g, &format!("{name}.0"), x, dw.with_bias());
    let y = g.act(&format!("{name}.1"), y, Act::Relu);
    conv(
        g,
        &format!("{name}.2"),
        y,
        ConvSpec::pointwise(cin, cout).with_bias(),
    )
}

/// Both heads of level `i` on `x` (3x3 convolutions; separable for SSD-Lite, 1x1 on its
/// last level); returns (confidence, location) `[N, P_i, K]`. SqueezeNet-SSD-Lite has
/// the same heads.
pub(crate) fn heads(
    g: &mut Graph,
    i: usize,
    x: ValueId,
    cin: usize,
    classes: usize,
    lite: bool,
) -> (ValueId, ValueId) {
    let head = |g: &mut Graph, name: String, cout: usize| match (lite, i) {
        (false, _) => conv(g, &name, x, ConvSpec::dense(cin, cout, 3, 1, 1).with_bias()),
        (true, 5) => conv(g, &name, x, ConvSpec::pointwise(cin, cout).with_bias()),
        (true, _) => separable(g, &name, x, (cin, cout), 1, 1),
    };
    let c = head(g, format!("classification_headers.{i}"), ANCHORS * classes);
    let l = head(g, format!("regression_headers.{i}"), ANCHORS * 4);
    (
        to_priors(g, &format!("conf.{i}"), c, classes),
        to_priors(g, &format!("loc.{i}"), l, 4),
    )
}

/// Builds the graph with zero weights (`lite`: SSD-Lite). Input NHWC `[N, 300, 300, 3]`;
/// outputs `logits` `[N, 3000, num_classes]` and `locations` `[N, 3000, 4]` (raw head
/// outputs).
pub fn build(num_classes: usize, lite: bool) -> Graph {
    let mut g = Graph::new();
    let input = g.input;
    let stem = ConvSpec::dense(3, 32, 3, 2, 1);
    let mut x = conv_bn_act(&mut g, "base_net.0", 0, input, stem, Act::Relu);
    let mut cin = 32;
    let (mut confs, mut locs) = (Vec::new(), Vec::new());
    for (b, (cout, stride)) in DW_BLOCKS.into_iter().enumerate() {
        let p = format!("base_net.{}", b + 1);
        let y = conv_bn_act(
            &mut g,
            &p,
            0,
            x,
            ConvSpec::depthwise(cin, stride),
            Act::Relu,
        );
        x = conv_bn_act(&mut g, &p, 3, y, ConvSpec::pointwise(cin, cout), Act::Relu);
        cin = cout;
        // Heads read the outputs of blocks 11 and 13 (source_layer_indexes 12 and 14).
        if b + 1 == 11 || b + 1 == 13 {
            let (c, l) = heads(&mut g, confs.len(), x, cin, num_classes, lite);
            confs.push(c);
            locs.push(l);
        }
    }
    for (e, (inp, hidden, out)) in EXTRAS.into_iter().enumerate() {
        let p = format!("extras.{e}");
        let y = conv_relu(
            &mut g,
            &format!("{p}.0"),
            x,
            ConvSpec::pointwise(inp, hidden),
        );
        x = if lite {
            separable(&mut g, &format!("{p}.2"), y, (hidden, out), 2, 1)
        } else {
            conv_relu(
                &mut g,
                &format!("{p}.2"),
                y,
                ConvSpec::dense(hidden, out, 3, 2, 1),
            )
        };
        let (c, l) = heads(&mut g, e + 2, x, out, num_classes, lite);
        confs.push(c);
        locs.push(l);
    }
    ssd_outputs(&mut g, &confs, &locs);
    g
}
