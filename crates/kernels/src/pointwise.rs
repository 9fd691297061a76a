//! 1x1 convolution over NHWC pixels with a fused epilogue and residual add.
//!
//! `out[m, n] = res_act(act(Σ_k x[m, k] · w[k, n] · scale[n] + bias[n]) + residual[m, n])`
//!
//! - `x`: `[m, k]` (pixels × input channels, NHWC rows)
//! - `w`: [`PwWeights`], packed once from the row-major `[k, n]` weight (as
//!   [`crate::im2col::pack_weight`] lays out a 1x1 weight) for the tier that will run it
//! - `scale`, `bias`: `[n]` (no scale: 1)
//! - `residual`: `[m, n]`, optional; `res_act` is applied after it is added
//! - `out`: `[m, n]`
//!
//! The AVX-512 tier runs a register-blocked kernel that reads `x` in place and the weights
//! from panels of [`PANEL`] output channels packed at load time (`[n / PANEL][k][PANEL]`,
//! zero-padded), so every weight load is sequential and nothing is packed per call; it applies the epilogue to the accumulators before the
//! only store, so the output is written once and never re-read. That is what the small-`k`
//! layers at 150x150 and 75x75 need: there the `gemm` crate's packing and the separate
//! epilogue pass over an output larger than L2 dominate. The AVX2 tier goes through
//! [`crate::sgemm`] (the `gemm` crate) followed by the portable epilogue; the scalar tier is
//! [`crate::reference::pointwise`].

use crate::act::Act;
use crate::dispatch::Tier;
use crate::sgemm::{GemmShape, sgemm};

/// Per-output-channel epilogue of a pointwise convolution, and the optional residual.
#[derive(Clone, Copy, Debug)]
pub struct PwEpilogue<'a> {
    /// `[n]`: multiplies the accumulator before the bias (a BN after the conv); `None`: 1.
    pub scale: Option<&'a [f32]>,
    /// `[n]`.
    pub bias: &'a [f32],
    /// Activation of the convolution.
    pub act: Act,
    /// `[m, n]`, added after `act`.
    pub residual: Option<&'a [f32]>,
    /// Activation applied after the residual add (ignored without a residual).
    pub res_act: Act,
}

/// Output channels per packed weight panel of the AVX-512 kernel (three zmm).
pub const PANEL: usize = 48;

/// A pointwise weight `[k, n]` in the layout the kernel of one tier reads.
#[derive(Clone, Debug)]
pub struct PwWeights {
    k: usize,
    n: usize,
    /// Panels `[ceil(n / PANEL)][k][PANEL]` (zero-padded) when true, else row-major `[k, n]`.
    panels: bool,
    data: Vec<f32>,
}

impl PwWeights {
    /// Packs the row-major `[k, n]` weight `w` for `tier`.
    ///
    /// # Panics
    /// If `w.len() != k·n`.
    pub fn pack(tier: Tier, w: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(w.len(), k * n, "PwWeights::pack: weight length");
        if crate::x86_64::pointwise_id(tier).is_none() {
            return Self {
                k,
                n,
                panels: false,
                data: w.to_vec(),
            };
        }
        let np = n.div_ceil(PANEL);
        let mut data = vec![0.0; np * k * PANEL];
        for (pi, panel) in data.chunks_mut(k * PANEL).enumerate() {
            let j0 = pi * PANEL;
            let width = (n - j0).min(PANEL);
            for (p, row) in panel.chunks_mut(PANEL).enumerate() {
                row[..width].copy_from_slice(&w[p * n + j0..p * n + j0 + width]);
            }
        }
        Self {
            k,
            n,
            panels: true,
            data,
        }
    }

    /// Input channels.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Output channels.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Bytes held.
    pub fn bytes(&self) -> usize {
        self.data.len() * size_of::<f32>()
    }

    /// The panel-packed data, if packed for the AVX-512 kernel.
    pub(crate) fn panels(&self) -> Option<&[f32]> {
        self.panels.then_some(self.data.as_slice())
    }
}

/// Computes the pointwise convolution described in the module docs for `m` pixels.
///
/// The kernel follows `w`'s layout, which [`PwWeights::pack`] chose for a tier: panels run
/// the AVX-512 kernel (or, if `tier` does not allow it, a plain loop over the panels),
/// row-major weights the `gemm` crate (SIMD tiers) or the reference (scalar tier).
///
/// # Panics
/// If a slice does not match `m` and `w`'s shape (programmer errors).
pub fn pointwise(
    tier: Tier,
    m: usize,
    x: &[f32],
    w: &PwWeights,
    epi: &PwEpilogue,
    out: &mut [f32],
) {
    let (k, n) = (w.k, w.n);
    assert_eq!(x.len(), m * k, "pointwise: input length");
    assert_eq!(epi.bias.len(), n, "pointwise: bias length");
    assert!(
        epi.scale.is_none_or(|s| s.len() == n),
        "pointwise: scale length"
    );
    assert!(
        epi.residual.is_none_or(|r| r.len() == m * n),
        "pointwise: residual length"
    );
    assert_eq!(out.len(), m * n, "pointwise: output length");
    if m == 0 || n == 0 {
        return;
    }
    if let Some(panels) = w.panels() {
        if !crate::x86_64::pointwise_f32(tier, m, k, n, x, panels, epi, out) {
            panel_loop(m, k, n, x, panels, out);
            apply_epilogue(epi, out);
        }
        return;
    }
    match tier {
        Tier::Scalar => crate::reference::pointwise(m, k, n, x, &w.data, epi, out),
        _ => {
            sgemm(tier, GemmShape::dense(m, n, k), x, &w.data, out, false, 1);
            apply_epilogue(epi, out);
        }
    }
}

/// Id of the kernel [`pointwise`] runs for `tier`, as used in logs, benches and CSV rows.
pub fn kernel_id(tier: Tier) -> &'static str {
    crate::x86_64::pointwise_id(tier).unwrap_or(match tier {
        Tier::Scalar => "reference/pointwise_f32",
        _ => "gemm+portable/pointwise_f32",
    })
}

/// `out = x · w` from panel-packed weights, in plain loops (fused multiply-adds in `k`
/// order, as [`crate::reference::sgemm`]).
fn panel_loop(m: usize, k: usize, n: usize, x: &[f32], panels: &[f32], out: &mut [f32]) {
    crate::reference::fused_loops(
        #[inline(always)]
        || {
            for (xr, or) in x.chunks(k.max(1)).zip(out.chunks_mut(n)).take(m) {
                for (j, o) in or.iter_mut().enumerate() {
                    let panel = &panels[(j / PANEL) * k * PANEL..];
                    let mut acc = 0.0f32;
                    for (p, xv) in xr.iter().enumerate().take(k) {
                        acc = xv.mul_add(panel[p * PANEL + j % PANEL], acc);
                    }
                    *o = acc;
                }
            }
        },
    )
}

/// Applies `epi` in place to raw accumulators `acc` `[m, n]`; `acc · scale + bias` is one
/// fused multiply-add, as in the SIMD kernels.
pub fn apply_epilogue(epi: &PwEpilogue, acc: &mut [f32]) {
    crate::reference::fused_loops(
        #[inline(always)]
        || epilogue_loops(epi, acc),
    )
}

#[inline(always)]
fn epilogue_loops(epi: &PwEpilogue, acc: &mut [f32]) {
    let n = epi.bias.len();
    let (lo, hi) = epi.act.bounds();
    let (rlo, rhi) = epi.res_act.bounds();
    for (i, row) in acc.chunks_mut(n).enumerate() {
        for (j, v) in row.iter_mut().enumerate() {
            let s = epi
                .scale
                .map_or(*v + epi.bias[j], |s| v.mul_add(s[j], epi.bias[j]));
            let mut y = clamp(s, epi.act, lo, hi);
            if let Some(r) = epi.residual {
                y = clamp(y + r[i * n + j], epi.res_act, rlo, rhi);
            }
            *v = y;
        }
    }
}

/// `max` then `min` (a NaN becomes the bound, as in the SIMD kernels); `Act::None` keeps the
/// value as it is.
#[inline(always)]
pub(crate) fn clamp(v: f32, act: Act, lo: f32, hi: f32) -> f32 {
    if act == Act::None {
        v
    } else {
        v.max(lo).min(hi)
    }
}
