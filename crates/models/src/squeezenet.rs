//! SqueezeNet-SSD-Lite, exactly as pytorch-ssd's `create_squeezenet_ssd_lite` builds it:
//! pytorch-ssd's own SqueezeNet 1.1 `features` (3x3 stride-2 unpadded stem with bias and
//! ReLU, floor-mode 3x3 stride-2 max pools, `Fire` modules: 1x1 squeeze + ReLU, then the
//! ReLU'd 1x1 and 3x3 expansions concatenated), heads on the output of the second-to-last
//! Fire (512 channels, 17x17), five extras (1x1 with bias and ReLU, then a stride-2
//! separable, the first padded by 2 so 17x17 becomes 10x10; linear outputs) and
//! MobileNetV1-SSD-Lite's heads. 2,568 priors (`squeezenet_ssd_config`). No batch norm.

use slimdet_core::{Act, Graph, Op, Pool2d, ValueId};

use crate::blocks::{ConvSpec, conv, ssd_outputs};
use crate::mobilenet_v1::{conv_relu, heads, separable};

/// `features` after the stem: `Some((squeeze, expand))` for a `Fire(in, squeeze, expand,
/// expand)`, `None` for a max pool (module indices 2 ..= 12).
const FEATURES: [Option<(usize, usize)>; 11] = [
    None,
    Some((16, 64)),
    Some((16, 64)),
    None,
    Some((32, 128)),
    Some((32, 128)),
    None,
    Some((48, 192)),
    Some((48, 192)),
    Some((64, 256)),
    Some((64, 256)),
];

/// `(in, hidden, out, separable padding)` of the extras.
const EXTRAS: [(usize, usize, usize, usize); 5] = [
    (512, 256, 512, 2),
    (512, 256, 512, 1),
    (512, 128, 256, 1),
    (256, 128, 256, 1),
    (256, 128, 256, 1),
];

/// `Fire(cin, squeeze, expand, expand)` at `p` on `x`: `[N, H, W, 2·expand]`.
fn fire(g: &mut Graph, p: &str, x: ValueId, cin: usize, squeeze: usize, expand: usize) -> ValueId {
    let s = conv_relu(
        g,
        &format!("{p}.squeeze"),
        x,
        ConvSpec::pointwise(cin, squeeze),
    );
    let e1 = conv_relu(
        g,
        &format!("{p}.expand1x1"),
        s,
        ConvSpec::pointwise(squeeze, expand),
    );
    let e3 = conv_relu(
        g,
        &format!("{p}.expand3x3"),
        s,
        ConvSpec::dense(squeeze, expand, 3, 1, 1),
    );
    g.push(format!("{p}.cat"), Op::Concat { axis: 3 }, &[e1, e3])
}

/// Builds the graph with zero weights. Input NHWC `[N, 300, 300, 3]`; outputs `logits`
/// `[N, 2568, num_classes]` and `locations` `[N, 2568, 4]` (raw head outputs).
pub fn build(num_classes: usize) -> Graph {
    let mut g = Graph::new();
    let input = g.input;
    let stem = ConvSpec::dense(3, 64, 3, 2, 0).with_bias();
    let x = conv(&mut g, "base_net.0", input, stem);
    let mut x = g.act("base_net.1", x, Act::Relu);
    let mut cin = 64;
    let (mut confs, mut locs) = (Vec::new(), Vec::new());
    for (k, f) in FEATURES.into_iter().enumerate() {
        let p = format!("base_net.{}", k + 2);
        x = match f {
            Some((squeeze, expand)) => {
                let y = fire(&mut g, &p, x, cin, squeeze, expand);
                cin = 2 * expand;
                y
            }
            None => {
                let pool = Pool2d {
                    kernel: [3, 3],
                    stride: [2, 2],
                    pad: [0, 0],
                    ceil: false,
                };
                g.push(p, Op::MaxPool(pool), &[x])
            }
        };
        // Head 0 reads `features[0:12]`, the output of module 11.
        if k + 2 == 11 {
            let (c, l) = heads(&mut g, 0, x, cin, num_classes, true);
            confs.push(c);
            locs.push(l);
        }
    }
    for (e, (inp, hidden, out, pad)) in EXTRAS.into_iter().enumerate() {
        let p = format!("extras.{e}");
        let y = conv_relu(
            &mut g,
            &format!("{p}.0"),
            x,
            ConvSpec::pointwise(inp, hidden),
        );
        x = separable(&mut g, &format!("{p}.2"), y, (hidden, out), 2, pad);
        let (c, l) = heads(&mut g, e + 1, x, out, num_classes, true);
        confs.push(c);
        locs.push(l);
    }
    ssd_outputs(&mut g, &confs, &locs);
    g
}
