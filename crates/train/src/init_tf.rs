//! `--init X.pb`: the weights of a TensorFlow Object Detection API SSDLite-MobileNetV2
//! frozen graph as a pytorch-ssd `mb2-ssd-lite` state dict, so that training can start
//! from a real pretrained backbone.
//!
//! Layers are found by data flow and op type: every `Conv2D` / `DepthwiseConv2dNative`
//! with a constant filter, and the `FusedBatchNorm` that consumes it (its γ, β, moving
//! mean and variance and its `epsilon` come from the node's inputs and attributes). The
//! layer's TF name scope, which the OD API builds from the same MobileNetV2 definition as
//! torchvision's, then gives its pytorch-ssd module:
//!
//! | TF scope (`FeatureExtractor/MobilenetV2/…`)       | pytorch-ssd            |
//! |---------------------------------------------------|------------------------|
//! | `Conv`                                            | `base_net.0.{0,1}`     |
//! | `expanded_conv/{depthwise,project}`               | `base_net.1.conv.{0,1 / 3,4}` |
//! | `expanded_conv_k/{expand,depthwise,project}`      | `base_net.{k+1}.conv.{0,1 / 3,4 / 6,7}` |
//! | `Conv_1`                                          | `base_net.18.{0,1}`    |
//! | `layer_19_1_Conv2d_j_1x1_*`                       | `extras.{j-2}.conv.{0,1}` |
//! | `layer_19_2_Conv2d_j_3x3_s2_*_depthwise`          | `extras.{j-2}.conv.{3,4}` |
//! | `layer_19_2_Conv2d_j_3x3_s2_*`                    | `extras.{j-2}.conv.{6,7}` |
//! | `BoxPredictor_i/ClassPredictor_depthwise`         | `classification_headers.i.{0,1}` |
//! | `BoxPredictor_i/BoxEncodingPredictor_depthwise`   | `regression_headers.i.{0,1}` |
//!
//! Conversions: HWIO filters to OIHW, depthwise `[kh, kw, C, 1]` to `[C, 1, kh, kw]`; TF's
//! batch-norm epsilon (0.001) is folded into the running variance so that the result is
//! exact with pytorch-ssd's epsilon; a pytorch-ssd conv with a bias where TF has none gets a
//! zero bias. The heads' final 1x1 predictors are not mapped (TF predicts 3 anchors on the
//! first map and box encodings in `(ty, tx, th, tw)` order, pytorch-ssd 6 anchors and
//! `(cx, cy, w, h)`), nor is anything whose shape differs (the last extra: 128 channels in
//! TF, 64 in pytorch-ssd): the caller leaves those as initialised and lists them.
//!
//! TF pads `SAME` (stride-2 3x3 convs on even sizes pad 0 before and 1 after) where
//! pytorch-ssd pads 1 on both sides: the mapped weights see features shifted by one pixel
//! on those layers, which fine-tuning absorbs.

use std::path::Path;

use slimdet_formats::tf::{TfGraph, TfNode, filter_to_oihw};
use slimdet_formats::{NamedTensor, StateDict};

use crate::error::{Result, TrainError};

/// The TF layers of `graph` as pytorch-ssd `mb2-ssd-lite` tensors, with batch norms
/// rewritten for `target_eps`. Fails when the graph holds no SSDLite-MobileNetV2 layer.
pub fn tf_ssdlite_state_dict(graph: &TfGraph, path: &Path, target_eps: f32) -> Result<StateDict> {
    let bad = |why: String| TrainError::Config(format!("--init {}: {why}", path.display()));
    let mut sd = StateDict::default();
    for conv in &graph.nodes {
        let depthwise = match conv.op.as_str() {
            "Conv2D" => false,
            "DepthwiseConv2dNative" => true,
            _ => continue,
        };
        let Some(scope) = conv.name.rsplit_once('/').map(|(s, _)| s) else {
            continue;
        };
        let Some(target) = pytorch_module(scope) else {
            continue;
        };
        let filter = graph
            .input(conv, 1)
            .and_then(TfNode::const_value)
            .ok_or_else(|| bad(format!("`{}` has no constant filter", conv.name)))?;
        let weight = filter_to_oihw(filter, depthwise).ok_or_else(|| {
            bad(format!(
                "`{}`: filter of shape {:?}",
                conv.name, filter.shape
            ))
        })?;
        let out_c = weight.shape[0];
        sd.push(NamedTensor {
            name: format!("{}.weight", target.conv),
            ..weight
        });
        if target.zero_bias {
            sd.push(NamedTensor::vector(
                format!("{}.bias", target.conv),
                vec![0.0; out_c],
            ));
        }
        let Some(bn) = graph
            .consumers(&conv.name)
            .find(|n| n.op.starts_with("FusedBatchNorm"))
        else {
            return Err(bad(format!(
                "`{}` is not followed by a batch norm",
                conv.name
            )));
        };
        let eps = bn.attr_f32("epsilon").unwrap_or(1e-3);
        let param = |k: usize| -> Result<Vec<f32>> {
            graph
                .input(bn, k)
                .and_then(TfNode::const_value)
                .and_then(|t| t.as_f32())
                .filter(|v| v.len() == out_c)
                .map(<[f32]>::to_vec)
                .ok_or_else(|| {
                    bad(format!(
                        "`{}`: input {k} is not a [{out_c}] constant",
                        bn.name
                    ))
                })
        };
        let var: Vec<f32> = param(4)?
            .iter()
            .map(|&v| (v as f64 + eps as f64 - target_eps as f64) as f32)
            .collect();
        for (suffix, v) in [
            ("weight", param(1)?),
            ("bias", param(2)?),
            ("running_mean", param(3)?),
            ("running_var", var),
        ] {
            sd.push(NamedTensor::vector(format!("{}.{suffix}", target.bn), v));
        }
    }
    if sd.is_empty() {
        return Err(bad(
            "no layer of a TF Object Detection API SSDLite-MobileNetV2 was found".to_string(),
        ));
    }
    Ok(sd)
}

/// A pytorch-ssd conv module, its batch norm, and whether the conv has a bias.
#[derive(Debug, PartialEq)]
struct Target {
    conv: String,
    bn: String,
    zero_bias: bool,
}

/// The pytorch-ssd modules of the TF layer scope `scope` (see the module table).
fn pytorch_module(scope: &str) -> Option<Target> {
    let plain = |m: String, c: usize| Target {
        conv: format!("{m}.{c}"),
        bn: format!("{m}.{}", c + 1),
        zero_bias: false,
    };
    if let Some(rest) = scope.strip_prefix("FeatureExtractor/MobilenetV2/") {
        return match rest {
            "Conv" => Some(plain("base_net.0".into(), 0)),
            "Conv_1" => Some(plain("base_net.18".into(), 0)),
            _ => {
                if let Some(r) = rest.strip_prefix("expanded_conv") {
                    let (k, part) = r.split_once('/')?;
                    let k: usize = match k {
                        "" => 0,
                        _ => k.strip_prefix('_')?.parse().ok()?,
                    };
                    let conv = match (k, part) {
                        (0, "depthwise") => 0,
                        (0, "project") => 3,
                        (_, "expand") if k > 0 => 0,
                        (_, "depthwise") => 3,
                        (_, "project") => 6,
                        _ => return None,
                    };
                    Some(plain(format!("base_net.{}.conv", k + 1), conv))
                } else {
                    let (stage, r) = rest
                        .strip_prefix("layer_19_1_Conv2d_")
                        .map(|r| (1, r))
                        .or_else(|| rest.strip_prefix("layer_19_2_Conv2d_").map(|r| (2, r)))?;
                    let j: usize = r.split('_').next()?.parse().ok()?;
                    let conv = match (stage, r.ends_with("_depthwise")) {
                        (1, false) => 0,
                        (2, true) => 3,
                        (2, false) => 6,
                        _ => return None,
                    };
                    Some(plain(format!("extras.{}.conv", j.checked_sub(2)?), conv))
                }
            }
        };
    }
    let (bp, part) = scope.split_once('/')?;
    let i: usize = bp.strip_prefix("BoxPredictor_")?.parse().ok()?;
    let head = match part {
        "ClassPredictor_depthwise" => "classification_headers",
        "BoxEncodingPredictor_depthwise" => "regression_headers",
        _ => return None,
    };
    Some(Target {
        zero_bias: true,
        ..plain(format!("{head}.{i}"), 0)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn scopes_map_to_pytorch_ssd_modules() {
        let m = |s: &str| pytorch_module(s).map(|t| (t.conv, t.bn, t.zero_bias));
        let t = |c: &str, b: &str, z| Some((c.to_string(), b.to_string(), z));
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/Conv"),
            t("base_net.0.0", "base_net.0.1", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/expanded_conv/project"),
            t("base_net.1.conv.3", "base_net.1.conv.4", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/expanded_conv_13/expand"),
            t("base_net.14.conv.0", "base_net.14.conv.1", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/expanded_conv_16/project"),
            t("base_net.17.conv.6", "base_net.17.conv.7", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/Conv_1"),
            t("base_net.18.0", "base_net.18.1", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/layer_19_2_Conv2d_5_3x3_s2_128_depthwise"),
            t("extras.3.conv.3", "extras.3.conv.4", false)
        );
        assert_eq!(
            m("FeatureExtractor/MobilenetV2/layer_19_2_Conv2d_2_3x3_s2_512"),
            t("extras.0.conv.6", "extras.0.conv.7", false)
        );
        assert_eq!(
            m("BoxPredictor_4/ClassPredictor_depthwise"),
            t(
                "classification_headers.4.0",
                "classification_headers.4.1",
                true
            )
        );
        assert_eq!(m("BoxPredictor_4/ClassPredictor"), None);
        assert_eq!(m("FeatureExtractor/MobilenetV2/expanded_conv/expand"), None);
        assert_eq!(m("Preprocessor/map"), None);
    }
}
