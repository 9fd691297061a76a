//! Batch normalisation over the channel (last) axis, in training and in eval mode, with
//! the activation that follows it fused in.
//!
//! Training mode (PyTorch `BatchNorm2d.train()`): statistics of the batch over all
//! `N·H·W` rows, the biased variance normalises, `y = act(γ·(x − μ)/√(σ² + ε) + β)`. The
//! running statistics are updated separately ([`update_running`]) with PyTorch's
//! exponential rule and the *unbiased* variance: `r ← (1 − m)·r + m·batch`,
//! `num_batches_tracked += 1`. Eval mode uses the running statistics, as inference does.
//!
//! Fusing the activation (`Act::None` when the batch norm stands alone) saves the
//! pre-activation tensor on the tape and two passes over memory: the backward recomputes
//! `z = x·scale + shift` from the batch norm's input with the very coefficients of the
//! forward, so the activation's mask (`lo < z < hi`, PyTorch's convention at the kinks) is
//! exactly the forward's.
//!
//! Every pass is a streaming row kernel of `slimdet_kernels::bn_train` (vectorised across
//! channels, bit-identical on every tier), run in parallel over chunks of rows.
//! Reductions add 32 rows in f32, then those partials in f64, over a fixed chunking
//! ([`block_reduce`]), so results do not depend on the thread count.

use rayon::prelude::*;
use slimdet_core::{BatchNorm, Tensor};
use slimdet_kernels::bn_train::{self as kern, BnBackward};
use slimdet_kernels::{Act, Tier};

use super::linalg::{Ctx, block_reduce};

/// Rows per parallel chunk of the element-wise passes.
const ROWS: usize = 1024;

/// Statistics of one training-mode batch norm over `count` rows, per channel `[C]`.
#[derive(Clone, Debug, PartialEq)]
pub struct BnBatch {
    /// Batch mean μ.
    pub mean: Vec<f32>,
    /// `1 / √(σ² + ε)` with the biased variance σ².
    pub invstd: Vec<f32>,
    /// Unbiased variance `σ² · count / (count − 1)` (for the running statistics).
    pub var_unbiased: Vec<f32>,
    /// Rows reduced (`N·H·W`).
    pub count: usize,
    /// The forward's `γ·invstd` (the backward recomputes the pre-activation with it).
    pub scale: Vec<f32>,
    /// The forward's `β − μ·γ·invstd`.
    pub shift: Vec<f32>,
}

/// `y[r, c] = act(x[r, c]·a[c] + b[c])`, in parallel over row chunks.
fn affine_act(ctx: Ctx<'_>, x: &[f32], a: &[f32], b: &[f32], act: Act) -> Vec<f32> {
    let (c, tier) = (a.len(), ctx.tier);
    let mut y = ctx.pool.zeroed(x.len());
    y.par_chunks_mut(c * ROWS)
        .zip(x.par_chunks(c * ROWS))
        .for_each(|(yo, xi)| kern::affine_act(tier, xi, a, b, act, yo));
    y
}

/// Training-mode forward of `x` `[rows, C]` followed by `act`; `None` when there is only
/// one row per channel (PyTorch refuses that too).
pub(crate) fn forward_train(
    ctx: Ctx<'_>,
    b: &BatchNorm,
    x: &[f32],
    act: Act,
) -> Option<(Vec<f32>, BnBatch)> {
    let (c, tier) = (b.channels(), ctx.tier);
    let rows = x.len() / c;
    if rows < 2 {
        return None;
    }
    let sums = block_reduce(rows, c, |r, acc| {
        kern::sum_rows(tier, &x[r.start * c..r.end * c], acc)
    });
    let mean: Vec<f64> = sums.iter().map(|s| s / rows as f64).collect();
    let mean32: Vec<f32> = mean.iter().map(|v| *v as f32).collect();
    // Σ(x − m)² around the f32-rounded mean m: it differs from Σ(x − μ)² by rows·(μ − m)²,
    // far below f32 resolution.
    let sq = block_reduce(rows, c, |r, acc| {
        kern::sq_dev_rows(tier, &x[r.start * c..r.end * c], &mean32, acc)
    });
    let eps = b.eps as f64;
    let invstd: Vec<f64> = sq
        .iter()
        .map(|s| 1.0 / (s / rows as f64 + eps).sqrt())
        .collect();
    let (g, bt) = (b.gamma.data(), b.beta.data());
    let scale: Vec<f32> = (0..c).map(|j| (g[j] as f64 * invstd[j]) as f32).collect();
    let shift: Vec<f32> = (0..c)
        .map(|j| (bt[j] as f64 - mean[j] * g[j] as f64 * invstd[j]) as f32)
        .collect();
    let y = affine_act(ctx, x, &scale, &shift, act);
    let stats = BnBatch {
        mean: mean32,
        invstd: invstd.iter().map(|v| *v as f32).collect(),
        var_unbiased: sq.iter().map(|s| (s / (rows - 1) as f64) as f32).collect(),
        count: rows,
        scale,
        shift,
    };
    Some((y, stats))
}

/// Eval-mode forward (running statistics) followed by `act`: `y = act(x·scale + shift)`.
pub(crate) fn forward_eval(ctx: Ctx<'_>, b: &BatchNorm, x: &[f32], act: Act) -> Vec<f32> {
    let (scale, shift) = b.scale_shift();
    affine_act(ctx, x, &scale, &shift, act)
}

/// Gradients of one batch norm.
pub(crate) struct BnGrads {
    /// `[rows, C]`, when asked for.
    pub dx: Option<Vec<f32>>,
    /// `(dγ, dβ)`, when the layer is trained.
    pub params: Option<(Tensor, Tensor)>,
}

/// Backward of `act(bn(x))` given `dy` `[rows, C]`, the gradient of the activation's
/// output; `dy`'s buffer becomes `dx`. `stats` are the batch statistics in training mode,
/// `None` in eval mode.
///
/// With `g = dy` where `lo < z < hi` and 0 elsewhere, and `x̂ = (x − μ)·invstd`:
/// `dβ = Σ g`, `dγ = Σ g·x̂`; training mode `dx = γ·invstd·(g − dβ/M − x̂·dγ/M)`, eval
/// mode `dx = g·γ/√(var + ε)`.
#[allow(clippy::too_many_arguments)]
pub(crate) fn backward(
    tier: Tier,
    b: &BatchNorm,
    stats: Option<&BnBatch>,
    x: &[f32],
    mut dy: Vec<f32>,
    act: Act,
    need_dx: bool,
    need_params: bool,
) -> BnGrads {
    let c = b.channels();
    let rows = x.len() / c;
    let gamma = b.gamma.data();
    let (mean, invstd, scale, shift): (Vec<f32>, Vec<f64>, Vec<f32>, Vec<f32>) = match stats {
        Some(s) => (
            s.mean.clone(),
            s.invstd.iter().map(|v| *v as f64).collect(),
            s.scale.clone(),
            s.shift.clone(),
        ),
        None => {
            let (scale, shift) = b.scale_shift();
            (
                b.mean.data().to_vec(),
                b.var
                    .data()
                    .iter()
                    .map(|v| 1.0 / (*v as f64 + b.eps as f64).sqrt())
                    .collect(),
                scale,
                shift,
            )
        }
    };
    // Act::None has bounds ±∞: every finite z passes.
    let p = BnBackward {
        scale: &scale,
        shift: &shift,
        mean: &mean,
        act,
    };
    // [Σg | Σg·(x − μ)] per channel.
    let sums = block_reduce(rows, 2 * c, |r, acc| {
        let (sg, sgx) = acc.split_at_mut(c);
        let span = r.start * c..r.end * c;
        kern::backward_sums(tier, &x[span.clone()], &dy[span], p, sg, sgx);
    });
    let dbeta: Vec<f64> = sums[..c].to_vec();
    let dgamma: Vec<f64> = (0..c).map(|j| sums[c + j] * invstd[j]).collect();
    let dx = need_dx.then(|| {
        // dx = a·g + bx·x + k with a = γ·invstd, bx = −a·invstd·dγ/M, k = −a·dβ/M − bx·μ
        // (bx = k = 0 in eval mode).
        let mut a = vec![0.0f32; c];
        let mut bx = vec![0.0f32; c];
        let mut k = vec![0.0f32; c];
        for j in 0..c {
            let s = gamma[j] as f64 * invstd[j];
            a[j] = s as f32;
            if stats.is_some() {
                let m = rows as f64;
                let bxj = -s * invstd[j] * dgamma[j] / m;
                bx[j] = bxj as f32;
                k[j] = (-s * dbeta[j] / m - bxj * mean[j] as f64) as f32;
            }
        }
        dy.par_chunks_mut(c * ROWS)
            .zip(x.par_chunks(c * ROWS))
            .for_each(|(gi, xi)| kern::backward_dx(tier, xi, gi, p, &a, &bx, &k));
        dy
    });
    let params = need_params.then(|| {
        let t = |v: Vec<f64>| {
            Tensor::new(vec![c], v.into_iter().map(|x| x as f32).collect()).expect("[C]")
        };
        (t(dgamma), t(dbeta))
    });
    BnGrads { dx, params }
}

/// Applies one batch's statistics to the running statistics with PyTorch's rule:
/// `mean ← (1 − m)·mean + m·μ`, `var ← (1 − m)·var + m·σ²_unbiased`, and increments
/// `num_batches_tracked` (absent counters start at 0).
pub fn update_running(b: &mut BatchNorm, stats: &BnBatch, momentum: f32) {
    for (r, v) in b.mean.data_mut().iter_mut().zip(&stats.mean) {
        *r = (1.0 - momentum) * *r + momentum * v;
    }
    for (r, v) in b.var.data_mut().iter_mut().zip(&stats.var_unbiased) {
        *r = (1.0 - momentum) * *r + momentum * v;
    }
    b.num_batches_tracked = Some(b.num_batches_tracked.unwrap_or(0) + 1);
}
