//! MobileNetV2-SSD-Lite, exactly as pytorch-ssd's `create_mobilenetv2_ssd_lite`
//! (spec §2): same modules, same 478 state_dict keys, same head order.

use slimdet_core::{Act, Graph, Op, ValueId};

use crate::blocks::{ConvSpec, bn, conv, conv_bn_act, ssd_outputs, to_priors};

/// `(expand ratio t, channels c, repeats n, first stride s)` of the backbone.
pub(crate) const SETTINGS: [(f64, usize, usize, usize); 7] = [
    (1.0, 16, 1, 1),
    (6.0, 24, 2, 2),
    (6.0, 32, 3, 2),
    (6.0, 64, 4, 2),
    (6.0, 96, 3, 1),
    (6.0, 160, 3, 2),
    (6.0, 320, 1, 1),
];

/// Python's `round` (half to even) for the hidden widths.
fn py_round(x: f64) -> usize {
    let r = x.round();
    let r = if (x - x.trunc()).abs() == 0.5 && r % 2.0 != 0.0 {
        r - x.signum()
    } else {
        r
    };
    r as usize
}

/// One `InvertedResidual`. When `tap` is set, returns the post-ReLU6 expansion output too
/// (the GraphPath(14, 'conv', 3) head input).
fn inverted_residual(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    inp: usize,
    oup: usize,
    stride: usize,
    t: f64,
) -> (ValueId, Option<ValueId>) {
    let hidden = py_round(inp as f64 * t);
    let p = format!("{prefix}.conv");
    let (y, tap) = if t == 1.0 {
        let y = conv_bn_act(g, &p, 0, x, ConvSpec::depthwise(hidden, stride), Act::Relu6);
        let y = conv(g, &format!("{p}.3"), y, ConvSpec::pointwise(hidden, oup));
        (bn(g, &format!("{p}.4"), y, oup), None)
    } else {
        let e = conv_bn_act(g, &p, 0, x, ConvSpec::pointwise(inp, hidden), Act::Relu6);
        let y = conv_bn_act(g, &p, 3, e, ConvSpec::depthwise(hidden, stride), Act::Relu6);
        let y = conv(g, &format!("{p}.6"), y, ConvSpec::pointwise(hidden, oup));
        (bn(g, &format!("{p}.7"), y, oup), Some(e))
    };
    if stride == 1 && inp == oup {
        (
            g.push(format!("{prefix}.add"), Op::Add(Act::None), &[x, y]),
            tap,
        )
    } else {
        (y, tap)
    }
}

/// `SeperableConv2d(in, out)`: dw 3x3 with bias, BN, ReLU6, 1x1 with bias.
fn separable_head(g: &mut Graph, prefix: &str, x: ValueId, cin: usize, cout: usize) -> ValueId {
    let y = conv_bn_act(
        g,
        prefix,
        0,
        x,
        ConvSpec::depthwise(cin, 1).with_bias(),
        Act::Relu6,
    );
    conv(
        g,
        &format!("{prefix}.3"),
        y,
        ConvSpec::pointwise(cin, cout).with_bias(),
    )
}

/// Both heads of level `i` on `x`; returns (confidence, location) tensors `[N, P_i, K]`.
/// MobileNetV3-SSD-Lite has the same heads.
pub(crate) fn heads(
    g: &mut Graph,
    i: usize,
    x: ValueId,
    cin: usize,
    num_classes: usize,
    last: bool,
) -> (ValueId, ValueId) {
    let (c, l) = if last {
        let c = conv(
            g,
            &format!("classification_headers.{i}"),
            x,
            ConvSpec::pointwise(cin, 6 * num_classes).with_bias(),
        );
        let l = conv(
            g,
            &format!("regression_headers.{i}"),
            x,
            ConvSpec::pointwise(cin, 24).with_bias(),
        );
        (c, l)
    } else {
        let c = separable_head(
            g,
            &format!("classification_headers.{i}"),
            x,
            cin,
            6 * num_classes,
        );
        let l = separable_head(g, &format!("regression_headers.{i}"), x, cin, 24);
        (c, l)
    };
    (
        to_priors(g, &format!("conf.{i}"), c, num_classes),
        to_priors(g, &format!("loc.{i}"), l, 4),
    )
}

/// Builds the graph with zero weights. Input NHWC `[N, 300, 300, 3]`; outputs `logits`
/// `[N, 3000, num_classes]` and `locations` `[N, 3000, 4]` (raw head outputs).
///
/// `width_mult` scales channels as pytorch-ssd does (`int(c·wm)`; the 1280 layer and the
/// extras keep their widths, so only 1.0, 0.75 and 0.5 build valid models).
pub fn build(width_mult: f64, num_classes: usize) -> Graph {
    let mut g = Graph::new();
    let scaled = |c: usize| (c as f64 * width_mult) as usize;
    let mut cin = scaled(32);
    let input = g.input;
    let mut x = conv_bn_act(
        &mut g,
        "base_net.0",
        0,
        input,
        ConvSpec::dense(3, cin, 3, 2, 1),
        Act::Relu6,
    );
    let mut idx = 1;
    let mut confs = Vec::new();
    let mut locs = Vec::new();
    let head0_in = py_round(576.0 * width_mult);
    for (t, c, n, s) in SETTINGS {
        let cout = scaled(c);
        for r in 0..n {
            let stride = if r == 0 { s } else { 1 };
            let (y, tap) =
                inverted_residual(&mut g, &format!("base_net.{idx}"), x, cin, cout, stride, t);
            if idx == 14 {
                // Head 0 reads the expansion activation of block 14; emitted here so the
                // node list stays in execution order.
                let tap = tap.expect("block 14 has an expansion conv");
                let (cf, lc) = heads(&mut g, 0, tap, head0_in, num_classes, false);
                confs.push(cf);
                locs.push(lc);
            }
            x = y;
            cin = cout;
            idx += 1;
        }
    }
    let last = if width_mult > 1.0 { scaled(1280) } else { 1280 };
    x = conv_bn_act(
        &mut g,
        "base_net.18",
        0,
        x,
        ConvSpec::pointwise(cin, last),
        Act::Relu6,
    );
    let (cf, lc) = heads(&mut g, 1, x, 1280, num_classes, false);
    confs.push(cf);
    locs.push(lc);
    let extras = [
        (1280, 512, 0.2),
        (512, 256, 0.25),
        (256, 256, 0.5),
        (256, 64, 0.25),
    ];
    for (e, (inp, oup, t)) in extras.into_iter().enumerate() {
        x = inverted_residual(&mut g, &format!("extras.{e}"), x, inp, oup, 2, t).0;
        let (cf, lc) = heads(&mut g, e + 2, x, oup, num_classes, e == 3);
        confs.push(cf);
        locs.push(lc);
    }
    ssd_outputs(&mut g, &confs, &locs);
    g
}
