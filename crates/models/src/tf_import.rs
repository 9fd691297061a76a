//! A TensorFlow Object Detection API SSDLite-MobileNetV2 frozen graph (`.pb`) as a
//! [`Detector`] of [`Arch::TfSsdLiteMobileNetV2`].
//!
//! The class count comes from the first class predictor's filter (3 anchors × classes).
//! Every convolution of [`crate::tf_ssdlite::build`]'s graph is then found in the frozen
//! graph as the `Conv2D` / `DepthwiseConv2dNative` of the same name scope; its filter, its
//! `BiasAdd` and the `FusedBatchNorm` that reads it are followed by data flow (through the
//! `Identity` reads of frozen variables), and its strides and `SAME` padding are checked
//! against the built graph. Filters go from HWIO to OIHW; each batch norm keeps the graph's
//! own epsilon. The box predictors' output channels are permuted per anchor from TF's
//! `(ty, tx, th, tw)` to pytorch-ssd's `(tx, ty, tw, th)`, so that the detector's
//! `locations` decode as every other SSD's.

use slimdet_core::{Graph, Op};
use slimdet_formats::tf::{TfGraph, TfNode, filter_to_oihw, load_graphdef_bytes};
use slimdet_formats::{NamedTensor, StateDict, TensorData};

use crate::Detector;
use crate::arch::Arch;
use crate::error::{ModelError, Result};
use crate::weights;

/// Loads the frozen graph in `bytes`; `path` names the file in errors.
pub fn load(bytes: &[u8], path: &str) -> Result<Detector> {
    let tf = load_graphdef_bytes(bytes, path)?;
    let bad = |reason: String| ModelError::Arch {
        path: path.into(),
        reason,
    };
    let cls = conv_node(&tf, "BoxPredictor_0/ClassPredictor")
        .and_then(|n| tf.input(n, 1))
        .and_then(TfNode::const_value)
        .ok_or_else(|| {
            bad(
                "not a TF Object Detection API SSDLite-MobileNetV2 graph (no \
                 BoxPredictor_0/ClassPredictor convolution)"
                    .into(),
            )
        })?;
    let a = crate::tf_ssdlite::ANCHORS[0];
    let outputs = cls.shape.last().copied().unwrap_or(0);
    if cls.shape.len() != 4 || outputs < 2 * a || !outputs.is_multiple_of(a) {
        return Err(bad(format!(
            "BoxPredictor_0/ClassPredictor has a filter of shape {:?}",
            cls.shape
        )));
    }
    let mut det = Detector::new(Arch::TfSsdLiteMobileNetV2 {
        num_classes: outputs / a,
    });
    let sd = state_dict(&tf, &mut det.graph).map_err(bad)?;
    weights::load_into(&mut det.graph, &sd, path, &det.name)?;
    Ok(det)
}

/// The convolution of name scope `scope`.
fn conv_node<'a>(tf: &'a TfGraph, scope: &str) -> Option<&'a TfNode> {
    ["Conv2D", "depthwise"]
        .iter()
        .filter_map(|op| tf.node(&format!("{scope}/{op}")))
        .find(|n| matches!(n.op.as_str(), "Conv2D" | "DepthwiseConv2dNative"))
}

/// The parameters of every conv and batch norm of `g`, read from `tf`; batch-norm
/// epsilons are set on `g` from the graph.
fn state_dict(tf: &TfGraph, g: &mut Graph) -> std::result::Result<StateDict, String> {
    let mut sd = StateDict::default();
    let mut eps = Vec::new();
    for node in &g.nodes {
        let Op::Conv(c) = &node.op else { continue };
        let scope = &node.name;
        let tc = conv_node(tf, scope).ok_or_else(|| format!("no convolution `{scope}`"))?;
        let depthwise = tc.op == "DepthwiseConv2dNative";
        let strides = tc.attr_ints("strides").unwrap_or(&[]);
        if tc.attr_str("padding") != Some("SAME")
            || strides != [1, c.stride[0] as i64, c.stride[1] as i64, 1]
            || tc.attr_str("data_format").is_some_and(|f| f != "NHWC")
        {
            return Err(format!(
                "`{}`: padding {:?}, strides {strides:?}, expected SAME and stride {:?} (NHWC)",
                tc.name,
                tc.attr_str("padding"),
                c.stride
            ));
        }
        let filter = tf
            .input(tc, 1)
            .and_then(TfNode::const_value)
            .ok_or_else(|| format!("`{}` has no constant filter", tc.name))?;
        let mut w = filter_to_oihw(filter, depthwise)
            .ok_or_else(|| format!("`{}`: filter of shape {:?}", tc.name, filter.shape))?;
        w.name = format!("{scope}.weight");
        let consumer = |op: &str| tf.consumers(&tc.name).find(|n| n.op.starts_with(op));
        let mut bias = match (c.bias.is_some(), consumer("BiasAdd")) {
            (false, _) => None,
            (true, Some(b)) => Some(const_f32(tf, b, 1)?),
            (true, None) => return Err(format!("`{}` has no BiasAdd", tc.name)),
        };
        if scope.ends_with("/BoxEncodingPredictor") {
            permute_box_channels(&mut w, bias.as_mut());
        }
        sd.push(w);
        if let Some(b) = bias {
            sd.push(NamedTensor::vector(format!("{scope}.bias"), b));
        }
        let bn_name = format!("{scope}/BatchNorm");
        if g.nodes.iter().any(|n| n.name == bn_name) {
            let bn = consumer("FusedBatchNorm")
                .ok_or_else(|| format!("`{}` is not followed by a FusedBatchNorm", tc.name))?;
            for (k, suffix) in ["weight", "bias", "running_mean", "running_var"]
                .into_iter()
                .enumerate()
            {
                sd.push(NamedTensor::vector(
                    format!("{bn_name}.{suffix}"),
                    const_f32(tf, bn, k + 1)?,
                ));
            }
            eps.push((bn_name, bn.attr_f32("epsilon").unwrap_or(1e-3)));
        }
    }
    for (name, e) in eps {
        if let Some(Op::BatchNorm(b)) = g
            .nodes
            .iter_mut()
            .find(|n| n.name == name)
            .map(|n| &mut n.op)
        {
            b.eps = e;
        }
    }
    Ok(sd)
}

/// Data input `k` of `node` as a constant f32 vector.
fn const_f32(tf: &TfGraph, node: &TfNode, k: usize) -> std::result::Result<Vec<f32>, String> {
    tf.input(node, k)
        .and_then(TfNode::const_value)
        .and_then(NamedTensor::as_f32)
        .map(<[f32]>::to_vec)
        .ok_or_else(|| format!("`{}`: input {k} is not a float constant", node.name))
}

/// Swaps output channels `4a, 4a+1` and `4a+2, 4a+3` of a box predictor (OIHW weight and
/// bias): TF's `(ty, tx, th, tw)` becomes `(tx, ty, tw, th)`.
fn permute_box_channels(w: &mut NamedTensor, bias: Option<&mut Vec<f32>>) {
    let per_out: usize = w.shape[1..].iter().product();
    if let TensorData::F32(v) = &mut w.data {
        for a in 0..w.shape[0] / 4 {
            for (p, q) in [(0, 1), (2, 3)] {
                let (i, j) = ((4 * a + p) * per_out, (4 * a + q) * per_out);
                for t in 0..per_out {
                    v.swap(i + t, j + t);
                }
            }
        }
    }
    if let Some(b) = bias {
        for a in 0..b.len() / 4 {
            b.swap(4 * a, 4 * a + 1);
            b.swap(4 * a + 2, 4 * a + 3);
        }
    }
}
