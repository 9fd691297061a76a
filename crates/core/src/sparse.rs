//! When the executor runs a 1x1 convolution on the sparse kernel
//! (`slimdet_kernels::sparse`), and why not otherwise.
//!
//! The sparse kernel pays per non-zero weight and per pixel transposed; the dense GEMM
//! pays per weight. The sparse path is taken for a pointwise (1x1, stride 1, ungrouped)
//! conv when its weight sparsity reaches [`BREAK_EVEN_SPARSITY`] and it has at least
//! [`MIN_IN_CHANNELS`] input channels. Both were measured with
//! `cargo run --release -p slimdet-kernels --example spmm_breakeven` on MobileNetV2's 1x1
//! shapes (see BENCHMARKS.md, "Pruning"): above them the sparse kernel is faster than the
//! dense GEMM on every measured shape; below, it is not reliably.
//!
//! `SLIMDET_SPARSE=off` disables the sparse path, `SLIMDET_SPARSE=always` takes it for
//! every pointwise conv (for conformance tests and benchmarks); the default is `auto`.

use std::sync::OnceLock;

use slimdet_kernels::Tier;

use crate::graph::Graph;
use crate::ops::{Conv2d, Op};

/// Sparsity from which a pointwise conv runs on the sparse kernel (measured, see the
/// module docs).
pub const BREAK_EVEN_SPARSITY: f64 = 0.75;

/// Below this many input channels the per-output-channel overhead of the sparse kernel
/// outweighs the skipped work even at 90% sparsity (measured: 16 → 96 at 150x150).
pub const MIN_IN_CHANNELS: usize = 24;

/// Whether the executor may use the sparse kernel.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SparseMode {
    /// Above the break-even sparsity (the default).
    Auto,
    /// Never.
    Off,
    /// For every pointwise conv, whatever its sparsity.
    Always,
}

impl SparseMode {
    /// Parses `auto`, `off` or `always`.
    pub fn parse(s: &str) -> Option<SparseMode> {
        match s.trim().to_ascii_lowercase().as_str() {
            "auto" => Some(SparseMode::Auto),
            "off" | "0" | "dense" => Some(SparseMode::Off),
            "always" | "on" | "1" => Some(SparseMode::Always),
            _ => None,
        }
    }
}

/// The process-wide mode: `SLIMDET_SPARSE`, read once (unknown values mean `auto`).
pub fn mode() -> SparseMode {
    static MODE: OnceLock<SparseMode> = OnceLock::new();
    *MODE.get_or_init(|| {
        std::env::var("SLIMDET_SPARSE")
            .ok()
            .as_deref()
            .and_then(SparseMode::parse)
            .unwrap_or(SparseMode::Auto)
    })
}

/// The executor's choice for one convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct SparseDecision {
    /// Whether the sparse kernel runs this conv.
    pub sparse: bool,
    /// The weight sparsity.
    pub sparsity: f64,
    /// Why (or why not), for `slimdet info`.
    pub reason: String,
}

/// Decides for conv `c` under `mode`. `tier` only names the kernel in the reason.
pub fn decide(c: &Conv2d, tier: Tier, mode: SparseMode) -> SparseDecision {
    let w = &c.weight;
    let sparsity = if w.numel() == 0 {
        0.0
    } else {
        w.zeros_count() as f64 / w.numel() as f64
    };
    let no = |reason: String| SparseDecision {
        sparse: false,
        sparsity,
        reason,
    };
    if !c.is_pointwise() {
        return no("not a 1x1 stride-1 ungrouped conv".into());
    }
    let kernel = slimdet_kernels::sparse::kernel_id(tier, c.in_channels());
    match mode {
        SparseMode::Off => no("SLIMDET_SPARSE=off".into()),
        SparseMode::Always => SparseDecision {
            sparse: true,
            sparsity,
            reason: format!("{kernel} (SLIMDET_SPARSE=always)"),
        },
        SparseMode::Auto if c.in_channels() < MIN_IN_CHANNELS => no(format!(
            "{} input channels < {MIN_IN_CHANNELS}",
            c.in_channels()
        )),
        SparseMode::Auto if sparsity < BREAK_EVEN_SPARSITY => no(format!(
            "sparsity {:.1}% < break-even {:.0}%",
            100.0 * sparsity,
            100.0 * BREAK_EVEN_SPARSITY
        )),
        SparseMode::Auto => SparseDecision {
            sparse: true,
            sparsity,
            reason: format!(
                "{kernel}: sparsity {:.1}% ≥ {:.0}%",
                100.0 * sparsity,
                100.0 * BREAK_EVEN_SPARSITY
            ),
        },
    }
}

/// The decision for every conv of `g`, in node order, as `(node name, decision)`. The
/// executor applies exactly these decisions (BN folding and activation fusion do not
/// change which weights are zero).
pub fn layer_decisions(g: &Graph, tier: Tier, mode: SparseMode) -> Vec<(String, SparseDecision)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some((n.name.clone(), decide(c, tier, mode))),
            _ => None,
        })
        .collect()
}
