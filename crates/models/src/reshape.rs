//! Loading structurally pruned models of format version 1: the graph takes its channel
//! counts from the file. (Version 2 files carry their graph, channel counts included.)
//!
//! A structurally pruned detector has the architecture's topology but fewer channels in
//! some layers. Its safetensors metadata carries [`PRUNED_META_KEY`]; on load, the graph
//! built from the architecture is resized to the file's weight shapes (conv weights, biases
//! and BN vectors; a depthwise conv's `groups` follows its channel count), then filled as
//! usual and shape-checked end to end by shape inference.

use slimdet_core::{Graph, Op, Tensor};
use slimdet_formats::StateDict;

use crate::error::{ModelError, Result};

/// Metadata key marking a file whose channel counts differ from its architecture's.
pub const PRUNED_META_KEY: &str = "slimdet.pruned";

/// Resizes every conv and BN of `g` to the shapes of its parameters in `sd` (values are
/// zeroed; fill them with [`crate::weights::load_into`]). Keys missing from `sd` keep their
/// shape so that the strict loader reports them. `input` is the model's input shape for
/// the final shape check.
pub fn adopt_shapes(g: &mut Graph, sd: &StateDict, input: &[usize], path: &str) -> Result<()> {
    let bad = |reason: String| ModelError::Arch {
        path: path.to_string(),
        reason,
    };
    for n in &mut g.nodes {
        let key = format!("{}.weight", n.name);
        let Some(src) = sd.get(&key) else { continue };
        match &mut n.op {
            Op::Conv(c) => {
                let s = &src.shape;
                if s.len() != 4 || s[0] == 0 || s[1] == 0 {
                    return Err(bad(format!("{key}: conv weight shape {s:?} is not OIHW")));
                }
                if s[2..] != c.weight.shape()[2..] {
                    return Err(bad(format!(
                        "{key}: kernel {:?} differs from the architecture's {:?}",
                        &s[2..],
                        &c.weight.shape()[2..]
                    )));
                }
                if c.groups > 1 {
                    if s[1] != 1 {
                        return Err(bad(format!(
                            "{key}: depthwise weight {s:?} must be [C, 1, kh, kw]"
                        )));
                    }
                    c.groups = s[0];
                }
                c.weight = Tensor::zeros(s.clone());
                if c.bias.is_some() {
                    c.bias = Some(Tensor::zeros(vec![s[0]]));
                }
            }
            Op::BatchNorm(b) => {
                let s = &src.shape;
                if s.len() != 1 || s[0] == 0 {
                    return Err(bad(format!("{key}: BN weight shape {s:?} is not [C]")));
                }
                b.gamma = Tensor::zeros(s.clone());
                b.beta = Tensor::zeros(s.clone());
                b.mean = Tensor::zeros(s.clone());
                b.var = Tensor::full(s.clone(), 1.0);
            }
            _ => {}
        }
    }
    slimdet_core::shape::infer(g, input)?;
    Ok(())
}
