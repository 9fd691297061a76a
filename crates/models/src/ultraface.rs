//! UltraFace (Ultra-Light-Fast-Generic-Face-Detector-1MB), slim and RFB, 320x240: a
//! pytorch-ssd-family detector whose real pretrained weights test the engine and loader
//! on a network nobody here trained (architecture in `testdata/fixtures/SOURCES.md` §2a).

use slimdet_core::{Act, Graph, Op, ValueId};

use crate::blocks::{ConvSpec, bn, conv, conv_bn_act, ssd_outputs, to_priors};

/// `conv_dw(in, out, stride)`: dw 3x3 + BN + ReLU, pw 1x1 + BN + ReLU.
fn conv_dw(
    g: &mut Graph,
    prefix: &str,
    x: ValueId,
    cin: usize,
    cout: usize,
    stride: usize,
) -> ValueId {
    let y = conv_bn_act(g, prefix, 0, x, ConvSpec::depthwise(cin, stride), Act::Relu);
    conv_bn_act(g, prefix, 3, y, ConvSpec::pointwise(cin, cout), Act::Relu)
}

/// `BasicConv`: conv (no bias) at `<prefix>.conv`, BN at `<prefix>.bn`, optional ReLU.
fn basic_conv(g: &mut Graph, prefix: &str, x: ValueId, s: ConvSpec, relu: bool) -> ValueId {
    let y = conv(g, &format!("{prefix}.conv"), x, s);
    let y = bn(g, &format!("{prefix}.bn"), y, s.cout);
    if relu {
        g.act(&format!("{prefix}.relu"), y, Act::Relu)
    } else {
        y
    }
}

/// `BasicRFB(c, c, stride 1, scale 1.0)` with `vision = 1` (dilations 2, 3, 5).
fn basic_rfb(g: &mut Graph, p: &str, x: ValueId, c: usize) -> ValueId {
    let i = c / 8;
    let pw = |cin, cout| ConvSpec::pointwise(cin, cout);
    let k3 = |cin, cout| ConvSpec::dense(cin, cout, 3, 1, 1);
    let b0 = basic_conv(g, &format!("{p}.branch0.0"), x, pw(c, i), false);
    let b0 = basic_conv(g, &format!("{p}.branch0.1"), b0, k3(i, 2 * i), true);
    let b0 = basic_conv(
        g,
        &format!("{p}.branch0.2"),
        b0,
        k3(2 * i, 2 * i).dilated(2),
        false,
    );
    let b1 = basic_conv(g, &format!("{p}.branch1.0"), x, pw(c, i), false);
    let b1 = basic_conv(g, &format!("{p}.branch1.1"), b1, k3(i, 2 * i), true);
    let b1 = basic_conv(
        g,
        &format!("{p}.branch1.2"),
        b1,
        k3(2 * i, 2 * i).dilated(3),
        false,
    );
    let b2 = basic_conv(g, &format!("{p}.branch2.0"), x, pw(c, i), false);
    let b2 = basic_conv(g, &format!("{p}.branch2.1"), b2, k3(i, i / 2 * 3), true);
    let b2 = basic_conv(g, &format!("{p}.branch2.2"), b2, k3(i / 2 * 3, 2 * i), true);
    let b2 = basic_conv(
        g,
        &format!("{p}.branch2.3"),
        b2,
        k3(2 * i, 2 * i).dilated(5),
        false,
    );
    let cat = g.push(format!("{p}.cat"), Op::Concat { axis: 3 }, &[b0, b1, b2]);
    let lin = basic_conv(g, &format!("{p}.ConvLinear"), cat, pw(6 * i, c), false);
    let short = basic_conv(g, &format!("{p}.shortcut"), x, pw(c, c), false);
    g.push(format!("{p}.add"), Op::Add(Act::Relu), &[lin, short])
}

/// Separable head without BN: dw 3x3 (bias), ReLU, pw 1x1 (bias).
fn sep_head(g: &mut Graph, p: &str, x: ValueId, cin: usize, cout: usize) -> ValueId {
    let y = conv(
        g,
        &format!("{p}.0"),
        x,
        ConvSpec::depthwise(cin, 1).with_bias(),
    );
    let y = g.act(&format!("{p}.1"), y, Act::Relu);
    conv(
        g,
        &format!("{p}.2"),
        y,
        ConvSpec::pointwise(cin, cout).with_bias(),
    )
}

/// Builds UltraFace (slim, or RFB when `rfb`) with zero weights. Input NHWC
/// `[N, 240, 320, 3]`; outputs `logits` `[N, 4420, 2]` and `locations` `[N, 4420, 4]`.
pub fn build(rfb: bool) -> Graph {
    let mut g = Graph::new();
    let input = g.input;
    let mut x = conv_bn_act(
        &mut g,
        "base_net.0",
        0,
        input,
        ConvSpec::dense(3, 16, 3, 2, 1),
        Act::Relu,
    );
    let layers = [
        (16, 32, 1),
        (32, 32, 2),
        (32, 32, 1),
        (32, 64, 2),
        (64, 64, 1),
        (64, 64, 1),
        (64, 64, 1),
        (64, 128, 2),
        (128, 128, 1),
        (128, 128, 1),
        (128, 256, 2),
        (256, 256, 1),
    ];
    let anchors = [3, 2, 2, 3];
    let chans = [64, 128, 256, 256];
    let mut confs = Vec::new();
    let mut locs = Vec::new();
    let mut push_heads = |g: &mut Graph, h: usize, x: ValueId| {
        let (c, l) = if h == 3 {
            let s = ConvSpec::dense(chans[h], anchors[h] * 2, 3, 1, 1).with_bias();
            let c = conv(g, "classification_headers.3", x, s);
            let s = ConvSpec::dense(chans[h], anchors[h] * 4, 3, 1, 1).with_bias();
            (c, conv(g, "regression_headers.3", x, s))
        } else {
            let c = sep_head(
                g,
                &format!("classification_headers.{h}"),
                x,
                chans[h],
                anchors[h] * 2,
            );
            (
                c,
                sep_head(
                    g,
                    &format!("regression_headers.{h}"),
                    x,
                    chans[h],
                    anchors[h] * 4,
                ),
            )
        };
        confs.push(to_priors(g, &format!("conf.{h}"), c, 2));
        locs.push(to_priors(g, &format!("loc.{h}"), l, 4));
    };
    for (i, (cin, cout, s)) in layers.into_iter().enumerate() {
        let idx = i + 1;
        x = if rfb && idx == 7 {
            basic_rfb(&mut g, "base_net.7", x, 64)
        } else {
            conv_dw(&mut g, &format!("base_net.{idx}"), x, cin, cout, s)
        };
        match idx {
            7 => push_heads(&mut g, 0, x),
            10 => push_heads(&mut g, 1, x),
            12 => push_heads(&mut g, 2, x),
            _ => {}
        }
    }
    let y = conv(
        &mut g,
        "extras.0.0",
        x,
        ConvSpec::pointwise(256, 64).with_bias(),
    );
    let y = g.act("extras.0.1", y, Act::Relu);
    let y = conv(
        &mut g,
        "extras.0.2.0",
        y,
        ConvSpec::depthwise(64, 2).with_bias(),
    );
    let y = g.act("extras.0.2.1", y, Act::Relu);
    let y = conv(
        &mut g,
        "extras.0.2.2",
        y,
        ConvSpec::pointwise(64, 256).with_bias(),
    );
    let y = g.act("extras.0.3", y, Act::Relu);
    push_heads(&mut g, 3, y);
    ssd_outputs(&mut g, &confs, &locs);
    g
}
