//! VGG16-SSD, exactly as pytorch-ssd's `create_vgg_ssd` builds it: VGG16's convolutions
//! (3x3, bias, ReLU; no batch norm) with max pools, the third in `ceil_mode` (75 → 38),
//! pool5 3x3 stride 1 padded by 1, conv6 3x3 with dilation 6 (512 → 1024) and conv7 1x1,
//! both with ReLU. The first source is conv4_3's ReLU output through a batch norm
//! (`source_layer_add_ons.0`; pytorch-ssd uses it instead of SSD's L2 normalisation; the
//! trunk continues on the unnormalised value); the second is conv7's output. Four extras
//! (1x1 + ReLU, then 3x3 + ReLU: stride 2 padded twice, then unpadded twice) and plain 3x3
//! heads with 4, 6, 6, 6, 4, 4 anchors: 8,732 priors (`vgg_ssd_config`). Input: RGB minus
//! the mean (123, 117, 104), not scaled.

use slimdet_core::{Graph, Op, Pool2d, ValueId};

use crate::blocks::{ConvSpec, bn, conv, ssd_outputs, to_priors};
use crate::mobilenet_v1::conv_relu;

/// `vgg(cfg)`'s configuration: output channels of a 3x3 conv, `0` for a max pool, `1`
/// for the `ceil_mode` max pool (pytorch-ssd's `'C'`).
const CFG: [usize; 17] = [
    64, 64, 0, 128, 128, 0, 256, 256, 256, 1, 512, 512, 512, 0, 512, 512, 512,
];

/// `(hidden, out, stride, padding)` of the extras' 1x1 and 3x3 convolutions.
const EXTRAS: [(usize, usize, usize, usize); 4] = [
    (256, 512, 2, 1),
    (128, 256, 2, 1),
    (128, 256, 1, 0),
    (128, 256, 1, 0),
];

/// Anchors per location of each level.
const ANCHORS: [usize; 6] = [4, 6, 6, 6, 4, 4];

fn pool(
    g: &mut Graph,
    name: String,
    x: ValueId,
    k: usize,
    stride: usize,
    pad: usize,
    ceil: bool,
) -> ValueId {
    let p = Pool2d {
        kernel: [k, k],
        stride: [stride, stride],
        pad: [pad, pad],
        ceil,
    };
    g.push(name, Op::MaxPool(p), &[x])
}

/// Both heads of level `i` (3x3 convolutions) on `x`; returns (confidence, location).
fn heads(g: &mut Graph, i: usize, x: ValueId, cin: usize, classes: usize) -> (ValueId, ValueId) {
    let a = ANCHORS[i];
    let head = |g: &mut Graph, name: String, cout: usize| {
        conv(g, &name, x, ConvSpec::dense(cin, cout, 3, 1, 1).with_bias())
    };
    let c = head(g, format!("classification_headers.{i}"), a * classes);
    let l = head(g, format!("regression_headers.{i}"), a * 4);
    (
        to_priors(g, &format!("conf.{i}"), c, classes),
        to_priors(g, &format!("loc.{i}"), l, 4),
    )
}

/// Builds the graph with zero weights. Input NHWC `[N, 300, 300, 3]`; outputs `logits`
/// `[N, 8732, num_classes]` and `locations` `[N, 8732, 4]` (raw head outputs).
pub fn build(num_classes: usize) -> Graph {
    let mut g = Graph::new();
    let mut x = g.input;
    let mut cin = 3;
    let mut idx = 0;
    let (mut confs, mut locs) = (Vec::new(), Vec::new());
    for c in CFG {
        let name = format!("base_net.{idx}");
        if c <= 1 {
            x = pool(&mut g, name, x, 2, 2, 0, c == 1);
            idx += 1;
        } else {
            x = conv_relu(&mut g, &name, x, ConvSpec::dense(cin, c, 3, 1, 1));
            cin = c;
            idx += 2;
        }
        if idx == 23 {
            // conv4_3's ReLU output, batch-normalised for the first heads only.
            let s = bn(&mut g, "source_layer_add_ons.0", x, cin);
            let (cf, lc) = heads(&mut g, 0, s, cin, num_classes);
            confs.push(cf);
            locs.push(lc);
        }
    }
    x = pool(&mut g, "base_net.30".into(), x, 3, 1, 1, false);
    let conv6 = ConvSpec::dense(512, 1024, 3, 1, 1).dilated(6);
    x = conv_relu(&mut g, "base_net.31", x, conv6);
    x = conv_relu(&mut g, "base_net.33", x, ConvSpec::pointwise(1024, 1024));
    let (cf, lc) = heads(&mut g, 1, x, 1024, num_classes);
    confs.push(cf);
    locs.push(lc);
    cin = 1024;
    for (e, (hidden, out, stride, pad)) in EXTRAS.into_iter().enumerate() {
        let p = format!("extras.{e}");
        let y = conv_relu(
            &mut g,
            &format!("{p}.0"),
            x,
            ConvSpec::pointwise(cin, hidden),
        );
        let s = ConvSpec::dense(hidden, out, 3, stride, pad);
        x = conv_relu(&mut g, &format!("{p}.2"), y, s);
        cin = out;
        let (cf, lc) = heads(&mut g, e + 2, x, out, num_classes);
        confs.push(cf);
        locs.push(lc);
    }
    ssd_outputs(&mut g, &confs, &locs);
    g
}
