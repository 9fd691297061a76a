//! Graph preparation for quantization: BN folding and activation fusion (the engine's
//! passes), then a check that every remaining operator is one the quantized engine runs,
//! and the per-convolution geometry the executors need.

use slimdet_core::{Graph, Op, passes};

use crate::error::{QuantError, Result};
use crate::options::pattern_matches;

/// How a convolution is computed.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ConvKind {
    /// 1x1 stride 1: one GEMM over the pixels.
    Pointwise,
    /// Dense k×k: im2col then GEMM.
    Im2col,
    /// Depthwise: the direct kernel.
    Depthwise,
    /// Other groupings: the f32 reference loop (never quantized).
    Grouped,
}

/// The prepared graph: BN folded into the convolutions, activations fused.
///
/// # Errors
/// If an operator the quantized engines cannot run remains (transpose, softmax): see
/// `float_ops` for how the operators other than Conv, Add, Concat, Reshape and Act run.
pub fn prepare(graph: &Graph) -> Result<Graph> {
    let mut g = graph.clone();
    passes::fold_bn(&mut g);
    passes::fuse_activations(&mut g);
    g.validate()?;
    for n in &g.nodes {
        match &n.op {
            Op::Conv(_)
            | Op::Add(_)
            | Op::Concat { .. }
            | Op::Reshape(_)
            | Op::Act(_)
            | Op::BatchNorm(_)
            | Op::HardSwish
            | Op::HardSigmoid
            | Op::GlobalAvgPool
            | Op::ChannelMul
            | Op::MaxPool(_) => {}
            other => {
                return Err(QuantError::Unsupported {
                    layer: n.name.clone(),
                    op: other.kind(),
                });
            }
        }
    }
    Ok(g)
}

/// How convolution `c` is computed.
pub fn conv_kind(c: &slimdet_core::Conv2d) -> ConvKind {
    if c.is_pointwise() {
        ConvKind::Pointwise
    } else if c.groups == 1 {
        ConvKind::Im2col
    } else if c.is_depthwise() {
        ConvKind::Depthwise
    } else {
        ConvKind::Grouped
    }
}

/// Names of the conv and add nodes matching any pattern.
///
/// # Errors
/// [`QuantError::PatternMatchesNothing`] for the first pattern that matches no node.
pub fn match_keep_float(
    g: &Graph,
    patterns: &[String],
) -> Result<std::collections::BTreeSet<String>> {
    let mut out = std::collections::BTreeSet::new();
    for p in patterns {
        let hits: Vec<&str> = g
            .nodes
            .iter()
            .filter(|n| matches!(n.op, Op::Conv(_) | Op::Add(_)) && pattern_matches(p, &n.name))
            .map(|n| n.name.as_str())
            .collect();
        if hits.is_empty() {
            return Err(QuantError::PatternMatchesNothing { pattern: p.clone() });
        }
        out.extend(hits.into_iter().map(str::to_string));
    }
    Ok(out)
}
