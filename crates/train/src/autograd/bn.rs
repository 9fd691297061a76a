//! Batch normalisation over the channel (last) axis, in training and in eval mode.
//!
//! Training mode (PyTorch `BatchNorm2d.train()`): statistics of the batch over all
//! `N·H·W` rows, the biased variance normalises, `y = γ·(x − μ)/√(σ² + ε) + β`. The running
//! statistics are updated separately ([`update_running`]) with PyTorch's exponential rule
//! and the *unbiased* variance: `r ← (1 − m)·r + m·batch`, `num_batches_tracked += 1`.
//! Eval mode uses the running statistics, as inference does.
//!
//! Sums are taken in f64 by [`channel_reduce`], so they do not depend on the thread count.

use rayon::prelude::*;
use slimdet_core::{BatchNorm, Tensor};

use super::linalg::{channel_reduce, col_sums};

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
}

/// `y[r, c] = x[r, c]·a[c] + b[c]`, in parallel over row chunks.
fn affine(x: &[f32], a: &[f32], b: &[f32]) -> Vec<f32> {
    let c = a.len();
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(c * ROWS)
        .zip(x.par_chunks(c * ROWS))
        .for_each(|(yo, xi)| {
            for (yr, xr) in yo.chunks_mut(c).zip(xi.chunks(c)) {
                for j in 0..c {
                    yr[j] = xr[j] * a[j] + b[j];
                }
            }
        });
    y
}

/// Training-mode forward of `x` `[rows, C]`; `None` stats when there is only one row per
/// channel (PyTorch refuses that too).
pub(crate) fn forward_train(b: &BatchNorm, x: &[f32]) -> Option<(Vec<f32>, BnBatch)> {
    let c = b.channels();
    let rows = x.len() / c;
    if rows < 2 {
        return None;
    }
    let mean: Vec<f64> = col_sums(x, c).iter().map(|s| s / rows as f64).collect();
    let sq = channel_reduce(rows, c, |r, acc| {
        for ((a, v), m) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]).zip(&mean) {
            let d = *v as f64 - m;
            *a += d * d;
        }
    });
    let var: Vec<f64> = sq.iter().map(|s| s / rows as f64).collect();
    let eps = b.eps as f64;
    let invstd: Vec<f64> = var.iter().map(|v| 1.0 / (v + eps).sqrt()).collect();
    let (g, bt) = (b.gamma.data(), b.beta.data());
    let a: Vec<f32> = (0..c).map(|j| (g[j] as f64 * invstd[j]) as f32).collect();
    let sh: Vec<f32> = (0..c)
        .map(|j| (bt[j] as f64 - mean[j] * g[j] as f64 * invstd[j]) as f32)
        .collect();
    let y = affine(x, &a, &sh);
    let stats = BnBatch {
        mean: mean.iter().map(|v| *v as f32).collect(),
        invstd: invstd.iter().map(|v| *v as f32).collect(),
        var_unbiased: sq.iter().map(|s| (s / (rows - 1) as f64) as f32).collect(),
        count: rows,
    };
    Some((y, stats))
}

/// Eval-mode forward (running statistics): `y = x·scale + shift`.
pub(crate) fn forward_eval(b: &BatchNorm, x: &[f32]) -> Vec<f32> {
    let (scale, shift) = b.scale_shift();
    affine(x, &scale, &shift)
}

/// Gradients of one batch norm.
pub(crate) struct BnGrads {
    /// `[rows, C]`, when asked for.
    pub dx: Option<Vec<f32>>,
    /// `(dγ, dβ)`, when the layer is trained.
    pub params: Option<(Tensor, Tensor)>,
}

/// Backward. `stats` are the batch statistics in training mode, `None` in eval mode.
///
/// Training mode, with `x̂ = (x − μ)·invstd`: `dβ = Σ dy`, `dγ = Σ dy·x̂`,
/// `dx = γ·invstd·(dy − dβ/M − x̂·dγ/M)`. Eval mode: `dx = dy·γ/√(var + ε)`.
pub(crate) fn backward(
    b: &BatchNorm,
    stats: Option<&BnBatch>,
    x: &[f32],
    dy: &[f32],
    need_dx: bool,
    need_params: bool,
) -> BnGrads {
    let c = b.channels();
    let rows = x.len() / c;
    let g = b.gamma.data();
    let (mean, invstd): (Vec<f64>, Vec<f64>) = match stats {
        Some(s) => (
            s.mean.iter().map(|v| *v as f64).collect(),
            s.invstd.iter().map(|v| *v as f64).collect(),
        ),
        None => (
            b.mean.data().iter().map(|v| *v as f64).collect(),
            b.var
                .data()
                .iter()
                .map(|v| 1.0 / (*v as f64 + b.eps as f64).sqrt())
                .collect(),
        ),
    };
    let dbeta = col_sums(dy, c);
    let dgamma = channel_reduce(rows, c, |r, acc| {
        let (xr, gr) = (&x[r * c..(r + 1) * c], &dy[r * c..(r + 1) * c]);
        for j in 0..c {
            acc[j] += gr[j] as f64 * (xr[j] as f64 - mean[j]) * invstd[j];
        }
    });
    let dx = need_dx.then(|| {
        let mut a = vec![0.0f32; c];
        let mut bx = vec![0.0f32; c];
        let mut k = vec![0.0f32; c];
        for j in 0..c {
            let s = g[j] as f64 * invstd[j];
            a[j] = s as f32;
            if stats.is_some() {
                // dx = s·dy + bx·x + k with bx = −s·invstd·dγ/M, k = −s·dβ/M − bx·μ.
                let m = rows as f64;
                let bxj = -s * invstd[j] * dgamma[j] / m;
                bx[j] = bxj as f32;
                k[j] = (-s * dbeta[j] / m - bxj * mean[j]) as f32;
            }
        }
        let mut dx = vec![0.0f32; x.len()];
        dx.par_chunks_mut(c * ROWS)
            .zip(x.par_chunks(c * ROWS).zip(dy.par_chunks(c * ROWS)))
            .for_each(|(out, (xi, gi))| {
                for ((o, xr), gr) in out.chunks_mut(c).zip(xi.chunks(c)).zip(gi.chunks(c)) {
                    for j in 0..c {
                        o[j] = a[j] * gr[j] + bx[j] * xr[j] + k[j];
                    }
                }
            });
        dx
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
