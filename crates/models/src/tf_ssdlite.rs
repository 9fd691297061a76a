//! SSDLite-MobileNetV2 as the TensorFlow Object Detection API builds it
//! (`ssdlite_mobilenet_v2`, 300x300), with TensorFlow's conventions: every convolution
//! pads `SAME` (stride-2 3x3 convs on even sizes pad 0 before and 1 after), batch norms use
//! epsilon 0.001, the extras end in ReLU6, the first feature map has 3 anchors per cell
//! and the others 6, and every box predictor is separable (depthwise 3x3 + BN + ReLU6,
//! then a 1x1 conv with bias).
//!
//! Nodes are named after their TF name scopes (`FeatureExtractor/MobilenetV2/Conv`,
//! `…/Conv/BatchNorm`, `BoxPredictor_0/ClassPredictor`), so a saved model's keys read like
//! the TF checkpoint's. The graph outputs `logits` `[N, 1917, classes]` and `locations`
//! `[N, 1917, 4]` in pytorch-ssd's `(cx, cy, w, h)` delta order: the importer permutes
//! the box predictors' `(ty, tx, th, tw)` output channels (see [`crate::tf_import`]), so
//! that box decoding, pruning and export are those of every other SSD here.

use slimdet_core::{Act, Graph, Op, ValueId, passes};

use crate::blocks::{ConvSpec, bn, conv, ssd_outputs, to_priors};
use crate::mobilenet_v2::SETTINGS;

/// The name scope of the feature extractor.
pub const FE: &str = "FeatureExtractor/MobilenetV2";
/// TF's batch-norm epsilon.
pub const BN_EPS: f32 = 1e-3;
/// Network input side.
pub const INPUT: usize = 300;
/// SSDLite extras: `(1x1 depth, output depth)` of `layer_19_{1,2}_Conv2d_{2..5}`.
const EXTRAS: [(usize, usize); 4] = [(256, 512), (128, 256), (128, 256), (64, 128)];
/// Anchors per cell of each feature map.
pub const ANCHORS: [usize; 6] = [3, 6, 6, 6, 6, 6];

/// `conv` + `BatchNorm` (+ `Relu6`) named `scope`, `scope/BatchNorm`, `scope/Relu6`.
fn conv_bn(g: &mut Graph, scope: &str, x: ValueId, s: ConvSpec, relu6: bool) -> ValueId {
    let y = conv(g, scope, x, s);
    let y = bn(g, &format!("{scope}/BatchNorm"), y, s.cout);
    if relu6 {
        g.act(&format!("{scope}/Relu6"), y, Act::Relu6)
    } else {
        y
    }
}

/// Box and class predictors of feature map `i` (`cin` channels).
fn predictors(
    g: &mut Graph,
    i: usize,
    x: ValueId,
    cin: usize,
    num_classes: usize,
) -> (ValueId, ValueId) {
    let a = ANCHORS[i];
    let mut head = |kind: &str, k: usize| {
        let scope = format!("BoxPredictor_{i}/{kind}");
        let d = conv_bn(
            g,
            &format!("{scope}_depthwise"),
            x,
            ConvSpec::depthwise(cin, 1),
            true,
        );
        let y = conv(g, &scope, d, ConvSpec::pointwise(cin, a * k).with_bias());
        to_priors(g, &format!("{scope}/Reshape"), y, k)
    };
    let c = head("ClassPredictor", num_classes);
    let l = head("BoxEncodingPredictor", 4);
    (c, l)
}

/// Builds the graph with zero weights for `num_classes` classes (with background).
/// Input NHWC `[N, 300, 300, 3]`.
pub fn build(num_classes: usize) -> Graph {
    let mut g = Graph::new();
    let input = g.input;
    let mut x = conv_bn(
        &mut g,
        &format!("{FE}/Conv"),
        input,
        ConvSpec::dense(3, 32, 3, 2, 1),
        true,
    );
    let (mut confs, mut locs) = (Vec::new(), Vec::new());
    let mut cin = 32;
    let mut block = 0;
    for (t, c, n, s) in SETTINGS {
        let t = t as usize;
        for r in 0..n {
            let stride = if r == 0 { s } else { 1 };
            let scope = match block {
                0 => format!("{FE}/expanded_conv"),
                k => format!("{FE}/expanded_conv_{k}"),
            };
            let hidden = cin * t;
            let e = if t == 1 {
                x
            } else {
                let e = conv_bn(
                    &mut g,
                    &format!("{scope}/expand"),
                    x,
                    ConvSpec::pointwise(cin, hidden),
                    true,
                );
                if block == 13 {
                    // The first feature map is this expansion output (576 channels).
                    let (cf, lc) = predictors(&mut g, 0, e, hidden, num_classes);
                    confs.push(cf);
                    locs.push(lc);
                }
                e
            };
            let d = conv_bn(
                &mut g,
                &format!("{scope}/depthwise"),
                e,
                ConvSpec::depthwise(hidden, stride),
                true,
            );
            let y = conv_bn(
                &mut g,
                &format!("{scope}/project"),
                d,
                ConvSpec::pointwise(hidden, c),
                false,
            );
            x = if stride == 1 && cin == c {
                g.push(format!("{scope}/add"), Op::Add(Act::None), &[x, y])
            } else {
                y
            };
            cin = c;
            block += 1;
        }
    }
    x = conv_bn(
        &mut g,
        &format!("{FE}/Conv_1"),
        x,
        ConvSpec::pointwise(cin, 1280),
        true,
    );
    cin = 1280;
    let (cf, lc) = predictors(&mut g, 1, x, cin, num_classes);
    confs.push(cf);
    locs.push(lc);
    for (j, (mid, out)) in EXTRAS.into_iter().enumerate() {
        let n = j + 2;
        let a = conv_bn(
            &mut g,
            &format!("{FE}/layer_19_1_Conv2d_{n}_1x1_{mid}"),
            x,
            ConvSpec::pointwise(cin, mid),
            true,
        );
        let d = conv_bn(
            &mut g,
            &format!("{FE}/layer_19_2_Conv2d_{n}_3x3_s2_{out}_depthwise"),
            a,
            ConvSpec::depthwise(mid, 2),
            true,
        );
        x = conv_bn(
            &mut g,
            &format!("{FE}/layer_19_2_Conv2d_{n}_3x3_s2_{out}"),
            d,
            ConvSpec::pointwise(mid, out),
            true,
        );
        cin = out;
        let (cf, lc) = predictors(&mut g, n, x, cin, num_classes);
        confs.push(cf);
        locs.push(lc);
    }
    ssd_outputs(&mut g, &confs, &locs);
    for n in &mut g.nodes {
        if let Op::BatchNorm(b) = &mut n.op {
            b.eps = BN_EPS;
        }
    }
    passes::tf_same_padding(&mut g, &[1, INPUT, INPUT, 3])
        .expect("the SSDLite graph is well formed");
    g
}

/// TF OD API `ssd_anchor_generator` anchors (`num_layers` 6, scales 0.2–0.95, aspect
/// ratios 1, 2, 0.5, 3 and 0.3333 as the ssdlite config writes it, interpolated scale √(s·s′) at ratio 1, 3 boxes on the lowest
/// layer) on the feature maps 19, 10, 5, 3, 2, 1, in output order (cell row, cell column,
/// box), as pytorch-ssd's centre form `[cx, cy, w, h]` (0..1 units). Computed in f32 as
/// TensorFlow does.
pub fn anchors() -> Vec<[f32; 4]> {
    const MAPS: [usize; 6] = [19, 10, 5, 3, 2, 1];
    let (min, max) = (0.2f32, 0.95f32);
    let n = MAPS.len();
    let mut scales: Vec<f32> = (0..n)
        .map(|i| min + (max - min) * i as f32 / (n - 1) as f32)
        .collect();
    scales.push(1.0);
    let mut out = Vec::new();
    for (layer, &size) in MAPS.iter().enumerate() {
        let (s, s_next) = (scales[layer], scales[layer + 1]);
        let boxes: Vec<(f32, f32)> = if layer == 0 {
            vec![(0.1, 1.0), (s, 2.0), (s, 0.5)]
        } else {
            [1.0, 2.0, 0.5, 3.0, 0.3333]
                .into_iter()
                .map(|ar| (s, ar))
                .chain([((s * s_next).sqrt(), 1.0)])
                .collect()
        };
        let stride = 1.0 / size as f32;
        let offset = 0.5 * stride;
        for row in 0..size {
            for col in 0..size {
                let cy = row as f32 * stride + offset;
                let cx = col as f32 * stride + offset;
                for &(scale, ar) in &boxes {
                    let r = ar.sqrt();
                    out.push([cx, cy, scale * r, scale / r]);
                }
            }
        }
    }
    out
}
