//! Model statistics: parameters, MACs (dense and effective), sparsity, per-layer listing.
//!
//! Conventions follow the pytorch-ssd spec §4: MACs of a convolution are
//! `kh·kw·(in_c/groups)·out_c·out_h·out_w`; BN, activations, adds, softmax and decoding are
//! not counted. Parameters are conv weights and biases plus BN γ and β (running
//! statistics are buffers, not parameters).

use crate::error::Result;
use crate::graph::Graph;
use crate::ops::Op;
use crate::shape;

/// Statistics of one convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerStats {
    /// Node name (module path).
    pub name: String,
    /// Operator kind (`Conv` or `DwConv`).
    pub kind: &'static str,
    /// Weight shape, OIHW.
    pub weight_shape: Vec<usize>,
    /// Output shape, NHWC.
    pub out_shape: Vec<usize>,
    /// Weights plus bias values.
    pub params: usize,
    /// Dense multiply-accumulates for one forward pass.
    pub macs: u64,
    /// MACs of the non-zero weights only.
    pub macs_effective: u64,
    /// Number of weights.
    pub weights: usize,
    /// Number of exactly-zero weights.
    pub zero_weights: usize,
}

impl LayerStats {
    /// Fraction of zero weights.
    pub fn sparsity(&self) -> f64 {
        if self.weights == 0 {
            0.0
        } else {
            self.zero_weights as f64 / self.weights as f64
        }
    }
}

/// Whole-model statistics.
#[derive(Clone, Debug, PartialEq)]
pub struct ModelStats {
    /// One entry per convolution, in execution order.
    pub layers: Vec<LayerStats>,
    /// Trainable parameters: conv weights and biases, BN γ and β.
    pub params: usize,
    /// Dense conv MACs.
    pub macs: u64,
    /// Conv MACs counting only non-zero weights.
    pub macs_effective: u64,
    /// Zero conv weights / all conv weights.
    pub conv_sparsity: f64,
    /// Zero parameters / all parameters (conv and BN γ, β).
    pub sparsity_all: f64,
    /// Mean of the per-conv-layer sparsities.
    pub mean_layer_sparsity: f64,
}

/// Computes statistics for `g` run on an input of shape `input` (`[N, H, W, C]`).
pub fn model_stats(g: &Graph, input: &[usize]) -> Result<ModelStats> {
    let shapes = shape::infer(g, input)?;
    let mut layers = Vec::new();
    let (mut params, mut zero_params) = (0usize, 0usize);
    for n in &g.nodes {
        match &n.op {
            Op::Conv(c) => {
                let out = shapes[n.output].clone();
                let spatial = (out[1] * out[2]) as u64;
                let per_out_pixel = c.weight.numel() as u64;
                let nz = c.weight.numel() - c.weight.zeros_count();
                let bias = c.bias.as_ref().map_or(0, |b| b.numel());
                let bias_zero = c.bias.as_ref().map_or(0, |b| b.zeros_count());
                params += c.weight.numel() + bias;
                zero_params += c.weight.zeros_count() + bias_zero;
                layers.push(LayerStats {
                    name: n.name.clone(),
                    kind: n.op.kind(),
                    weight_shape: c.weight.shape().to_vec(),
                    out_shape: out,
                    params: c.weight.numel() + bias,
                    macs: per_out_pixel * spatial,
                    macs_effective: nz as u64 * spatial,
                    weights: c.weight.numel(),
                    zero_weights: c.weight.zeros_count(),
                });
            }
            Op::BatchNorm(b) => {
                params += b.gamma.numel() + b.beta.numel();
                zero_params += b.gamma.zeros_count() + b.beta.zeros_count();
            }
            _ => {}
        }
    }
    let weights: usize = layers.iter().map(|l| l.weights).sum();
    let zeros: usize = layers.iter().map(|l| l.zero_weights).sum();
    let ratio = |a: usize, b: usize| if b == 0 { 0.0 } else { a as f64 / b as f64 };
    Ok(ModelStats {
        params,
        macs: layers.iter().map(|l| l.macs).sum(),
        macs_effective: layers.iter().map(|l| l.macs_effective).sum(),
        conv_sparsity: ratio(zeros, weights),
        sparsity_all: ratio(zero_params, params),
        mean_layer_sparsity: if layers.is_empty() {
            0.0
        } else {
            layers.iter().map(LayerStats::sparsity).sum::<f64>() / layers.len() as f64
        },
        layers,
    })
}
