//! Weight initialisation: PyTorch's defaults and pytorch-ssd's Xavier init for the new
//! layers, and loading any compatible weight file into a graph.
//!
//! Defaults (`nn.Conv2d.reset_parameters`): weights `kaiming_uniform_(a = √5)`, i.e.
//! `U(±1/√fan_in)`, biases `U(±1/√fan_in)`, with `fan_in = in/groups·kh·kw`; BN γ = 1,
//! β = 0, running mean 0, variance 1. pytorch-ssd then applies `xavier_uniform_`
//! (`U(±√(6/(fan_in + fan_out)))`, `fan_out = out·kh·kw`) to the conv weights of
//! `source_layer_add_ons`, `extras` and both header lists.

use std::collections::HashMap;
use std::path::Path;

use slimdet_core::{Graph, Op};
use slimdet_formats::TensorData;

use crate::error::{Result, TrainError};
use crate::rng::{Rng, stream};

/// Module prefixes pytorch-ssd initialises with Xavier-uniform.
const XAVIER_PREFIXES: [&str; 4] = [
    "source_layer_add_ons.",
    "extras.",
    "classification_headers.",
    "regression_headers.",
];

/// Initialises every conv and BN of `g` as a freshly built pytorch-ssd model, from `seed`.
pub fn init_ssd(g: &mut Graph, seed: u64) {
    let mut rng = Rng::derive(seed, &[stream::INIT]);
    for n in &mut g.nodes {
        match &mut n.op {
            Op::Conv(c) => {
                let s = c.weight.shape().to_vec();
                let rf = s[2] * s[3];
                let fan_in = (s[1] * rf) as f64;
                let fan_out = (s[0] * rf) as f64;
                let bound = if XAVIER_PREFIXES.iter().any(|p| n.name.starts_with(p)) {
                    (6.0 / (fan_in + fan_out)).sqrt()
                } else {
                    1.0 / fan_in.sqrt()
                };
                for w in c.weight.data_mut() {
                    *w = rng.uniform(-bound, bound) as f32;
                }
                let bb = 1.0 / fan_in.sqrt();
                if let Some(b) = &mut c.bias {
                    for v in b.data_mut() {
                        *v = rng.uniform(-bb, bb) as f32;
                    }
                }
            }
            Op::BatchNorm(b) => {
                b.gamma.data_mut().fill(1.0);
                b.beta.data_mut().fill(0.0);
                b.mean.data_mut().fill(0.0);
                b.var.data_mut().fill(1.0);
                b.num_batches_tracked = Some(0);
            }
            _ => {}
        }
    }
}

/// What [`load_compatible`] did.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct InitReport {
    /// Parameters copied from the file.
    pub loaded: usize,
    /// Graph parameters found in the file with another shape (left as they were).
    pub shape_mismatch: Vec<String>,
    /// Graph parameters not in the file (left as they were).
    pub missing: Vec<String>,
}

/// Copies into `g` every parameter of the weight file at `path` (`.pth`, `.safetensors`
/// or a TF Object Detection API SSDLite-MobileNetV2 frozen graph `.pb`) whose key and
/// shape match, leaving the others as they are: a full SSD checkpoint, one with another
/// class count (heads skipped, as `--pretrained_ssd`), an ImageNet MobileNetV2
/// (`features.0.0.weight` or `0.0.weight` for `base_net.0.0.weight`, as
/// `init_from_base_net`), or the TF graph's layers mapped as [`crate::init_tf`] says.
/// Fails when nothing matches.
pub fn load_compatible(g: &mut Graph, path: &Path) -> Result<InitReport> {
    let bytes = std::fs::read(path).map_err(TrainError::io(path))?;
    let name = path.display().to_string();
    let sd = if slimdet_formats::tf::looks_like_graphdef(&bytes) {
        let tf = slimdet_formats::tf::load_graphdef_bytes(&bytes, &name)?;
        let eps = g
            .nodes
            .iter()
            .find_map(|n| match &n.op {
                Op::BatchNorm(b) => Some(b.eps),
                _ => None,
            })
            .unwrap_or(1e-5);
        crate::init_tf::tf_ssdlite_state_dict(&tf, path, eps)?
    } else {
        slimdet_formats::load_state_dict_bytes(&bytes, &name)?.0
    };
    let by_name: HashMap<&str, &slimdet_formats::NamedTensor> =
        sd.iter().map(|t| (t.name.as_str(), t)).collect();
    let find = |key: &str| {
        by_name.get(key).copied().or_else(|| {
            let rest = key.strip_prefix("base_net.")?;
            by_name
                .get(rest)
                .or_else(|| by_name.get(format!("features.{rest}").as_str()))
                .copied()
        })
    };
    let mut report = InitReport::default();
    for (key, t) in g.params_mut() {
        match find(&key) {
            None => report.missing.push(key),
            Some(src) if src.shape != t.shape() => report.shape_mismatch.push(key),
            Some(src) => match &src.data {
                TensorData::F32(v) => {
                    t.data_mut().copy_from_slice(v);
                    report.loaded += 1;
                }
                TensorData::I64(_) => report.shape_mismatch.push(key),
            },
        }
    }
    for n in &mut g.nodes {
        if let Op::BatchNorm(b) = &mut n.op
            && let Some(src) = find(&format!("{}.num_batches_tracked", n.name))
            && let TensorData::I64(v) = &src.data
        {
            b.num_batches_tracked = v.first().copied();
        }
    }
    if report.loaded == 0 {
        return Err(TrainError::Config(format!(
            "--init {}: no parameter of the model is in the file with a matching shape",
            path.display()
        )));
    }
    Ok(report)
}

#[cfg(test)]
mod tests {
    use super::*;
    use slimdet_models::{Arch, Detector};

    #[test]
    fn ssd_init_bounds_and_bn_identity() {
        let mut d = Detector::new(Arch::Mb2SsdLite {
            width_mult: 0.5,
            num_classes: 3,
        });
        init_ssd(&mut d.graph, 1);
        for (k, t) in d.graph.params() {
            let max = t.data().iter().fold(0.0f32, |m, v| m.max(v.abs()));
            if k.ends_with("running_var") || (k.contains(".1.weight") && k.starts_with("base")) {
                continue;
            }
            if k == "base_net.0.0.weight" {
                // fan_in = 3·3·3 = 27.
                assert!(max <= 1.0 / 27f32.sqrt() && max > 0.1, "{max}");
            }
            if k == "classification_headers.5.weight" {
                // xavier: fan_in 64, fan_out 18.
                let b = (6.0f32 / 82.0).sqrt();
                assert!(max <= b && max > 0.5 * b, "{max}");
            }
        }
    }
}
