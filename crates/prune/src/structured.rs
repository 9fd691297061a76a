//! Structured pruning: whole channels removed, giving a smaller dense model.
//!
//! Channels are removed per dependency group ([`crate::groups`]): every group that is not
//! pinned and not excluded loses the same fraction of its channels, chosen by a
//! per-channel importance summed over the group's coupled parameters, and every coupled
//! slice is cut (producer filters and biases, depthwise filters and biases, BN vectors,
//! consumer input channels). Params, MACs, file size and latency all drop; the result
//! saves and loads with its new shapes (`slimdet_models::reshape`).

use slimdet_core::{Graph, Op, Tensor};
use slimdet_models::Detector;

use crate::error::{PruneError, Result};
use crate::groups::{Group, dependency_groups};
use crate::pattern::Excludes;
use crate::rng::SplitMix64;
use crate::unstructured::check_amount;

/// How channel importance is measured (lowest is removed first).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Criterion {
    /// Σ over the group's producer convs of the filter's L1 norm (Li et al. 2017).
    FilterL1,
    /// √(Σ over producers of the filter's squared L2 norm).
    FilterL2,
    /// Σ |γ| over the group's batch norms (network slimming, Liu et al. 2017); groups
    /// without BN fall back to [`Criterion::FilterL1`].
    BnScale,
    /// Uniform random (seeded).
    Random,
}

/// Options of [`prune_structured`].
#[derive(Clone, Debug)]
pub struct StructuredOptions {
    /// Importance criterion.
    pub criterion: Criterion,
    /// Fraction of each group's channels to remove, in `[0, 1)`.
    pub amount: f64,
    /// Groups whose producers match a pattern are left alone (see [`crate::pattern`]).
    pub exclude: Vec<String>,
    /// Kept channel counts are rounded up to a multiple of this (SIMD-friendly widths);
    /// 1 keeps exactly `C − round(amount·C)`.
    pub channel_multiple: usize,
    /// Seed of [`Criterion::Random`].
    pub seed: u64,
}

impl Default for StructuredOptions {
    fn default() -> Self {
        Self {
            criterion: Criterion::FilterL1,
            amount: 0.3,
            exclude: Vec::new(),
            channel_multiple: 8,
            seed: 0,
        }
    }
}

/// What happened to one group.
#[derive(Clone, Debug, PartialEq)]
pub struct GroupReport {
    /// The group's first producer.
    pub name: String,
    /// Channels before.
    pub before: usize,
    /// Channels after.
    pub after: usize,
    /// Why it was left alone, if it was.
    pub skipped: Option<String>,
}

/// Prunes channels of `det` and returns the smaller detector.
///
/// # Errors
/// [`PruneError::Amount`] for `amount ∉ [0, 1)`, [`PruneError::Pattern`] for a bad
/// pattern, [`PruneError::Core`] if the rewritten graph fails shape inference (a bug).
pub fn prune_structured(det: &Detector, opts: &StructuredOptions) -> Result<Detector> {
    Ok(prune_structured_with_report(det, opts)?.0)
}

/// [`prune_structured`] that also reports each group's channel counts.
pub fn prune_structured_with_report(
    det: &Detector,
    opts: &StructuredOptions,
) -> Result<(Detector, Vec<GroupReport>)> {
    let mut out = det.clone();
    let report = prune_graph(&mut out.graph, opts)?;
    slimdet_core::shape::infer(&out.graph, &out.input_shape())?;
    Ok((out, report))
}

/// Prunes `g` in place (no implicit exclusions); returns one report per group.
pub fn prune_graph(g: &mut Graph, opts: &StructuredOptions) -> Result<Vec<GroupReport>> {
    check_amount(opts.amount)?;
    prune_graph_with(g, opts, &|_| Some(opts.amount))
}

/// Prunes `g` in place with an amount per group: `amount_of(group name)` (the name of its
/// first producer), `None` leaving the group alone. `opts.amount` is not used. The
/// sensitivity analysis and the MAC-budget solver use it to prune groups at different
/// ratios.
///
/// # Errors
/// [`PruneError::Amount`] for an amount outside `[0, 1)`, [`PruneError::Pattern`] for a
/// bad exclusion pattern.
pub fn prune_graph_with(
    g: &mut Graph,
    opts: &StructuredOptions,
    amount_of: &dyn Fn(&str) -> Option<f64>,
) -> Result<Vec<GroupReport>> {
    let ex = Excludes::new(&opts.exclude)?;
    let groups = dependency_groups(g);
    let mut report = Vec::new();
    for group in &groups {
        let name = group.name(g).to_string();
        let amount = amount_of(&name);
        if let Some(a) = amount {
            check_amount(a)?;
        }
        let skipped = group
            .pinned
            .clone()
            .or_else(|| {
                group
                    .producers
                    .iter()
                    .find(|&&i| ex.matches(&g.nodes[i].name))
                    .map(|&i| format!("excluded (`{}`)", g.nodes[i].name))
            })
            .or_else(|| amount.is_none().then(|| "not selected".to_string()));
        let c = group.channels;
        let amount = amount.unwrap_or(0.0);
        if skipped.is_some() {
            report.push(GroupReport {
                name,
                before: c,
                after: c,
                skipped,
            });
            continue;
        }
        let remove = (amount * c as f64).round() as usize;
        let m = opts.channel_multiple.max(1);
        let keep_n = (c - remove.min(c - 1)).div_ceil(m) * m;
        let keep_n = keep_n.clamp(1, c);
        let scores = importance(g, group, opts, &name);
        let mut order: Vec<usize> = (0..c).collect();
        // Highest importance first; ties by index for determinism.
        order.sort_by(|&a, &b| scores[b].total_cmp(&scores[a]).then(a.cmp(&b)));
        let mut keep: Vec<usize> = order[..keep_n].to_vec();
        keep.sort_unstable();
        if keep_n < c {
            apply(g, group, &keep);
        }
        report.push(GroupReport {
            name,
            before: c,
            after: keep_n,
            skipped: None,
        });
    }
    Ok(report)
}

/// Per-channel importance of `group` under `opts.criterion`.
fn importance(g: &Graph, group: &Group, opts: &StructuredOptions, name: &str) -> Vec<f64> {
    let c = group.channels;
    let filter_norm = |p: u32| {
        let mut s = vec![0.0f64; c];
        for &i in &group.producers {
            if let Op::Conv(conv) = &g.nodes[i].op {
                let per = conv.weight.numel() / c;
                for (o, f) in conv.weight.data().chunks(per).enumerate() {
                    s[o] += f
                        .iter()
                        .map(|&w| {
                            if p == 1 {
                                (w as f64).abs()
                            } else {
                                (w as f64).powi(2)
                            }
                        })
                        .sum::<f64>();
                }
            }
        }
        if p == 2 {
            s.iter_mut().for_each(|v| *v = v.sqrt());
        }
        s
    };
    match opts.criterion {
        Criterion::FilterL1 => filter_norm(1),
        Criterion::FilterL2 => filter_norm(2),
        Criterion::BnScale if !group.batch_norms.is_empty() => {
            let mut s = vec![0.0f64; c];
            for &i in &group.batch_norms {
                if let Op::BatchNorm(b) = &g.nodes[i].op {
                    for (v, gm) in s.iter_mut().zip(b.gamma.data()) {
                        *v += (*gm as f64).abs();
                    }
                }
            }
            s
        }
        Criterion::BnScale => filter_norm(1),
        Criterion::Random => {
            let mut rng = SplitMix64::for_stream(opts.seed, name);
            (0..c).map(|_| rng.unit()).collect()
        }
    }
}

/// Rows `keep` of a tensor whose first axis has `rows` entries.
fn take_rows(t: &Tensor, keep: &[usize]) -> Tensor {
    let mut shape = t.shape().to_vec();
    let per = t.numel() / shape[0].max(1);
    let mut data = Vec::with_capacity(keep.len() * per);
    for &k in keep {
        data.extend_from_slice(&t.data()[k * per..(k + 1) * per]);
    }
    shape[0] = keep.len();
    Tensor::new(shape, data).expect("rows of a well-formed tensor")
}

/// Input channels `keep` of an OIHW weight (axis 1).
fn take_in_channels(t: &Tensor, keep: &[usize]) -> Tensor {
    let s = t.shape().to_vec();
    let (o, i, hw) = (s[0], s[1], s[2] * s[3]);
    let mut data = Vec::with_capacity(o * keep.len() * hw);
    for oi in 0..o {
        for &k in keep {
            let base = (oi * i + k) * hw;
            data.extend_from_slice(&t.data()[base..base + hw]);
        }
    }
    Tensor::new(vec![o, keep.len(), s[2], s[3]], data).expect("slice of a well-formed tensor")
}

/// Cuts every slice `group` couples down to channels `keep`.
fn apply(g: &mut Graph, group: &Group, keep: &[usize]) {
    for &i in group.producers.iter().chain(&group.depthwise) {
        if let Op::Conv(c) = &mut g.nodes[i].op {
            c.weight = take_rows(&c.weight, keep);
            if let Some(b) = &c.bias {
                c.bias = Some(take_rows(b, keep));
            }
            if c.groups > 1 {
                c.groups = keep.len();
            }
        }
    }
    for &i in &group.batch_norms {
        if let Op::BatchNorm(b) = &mut g.nodes[i].op {
            b.gamma = take_rows(&b.gamma, keep);
            b.beta = take_rows(&b.beta, keep);
            b.mean = take_rows(&b.mean, keep);
            b.var = take_rows(&b.var, keep);
        }
    }
    for &i in &group.consumers {
        if let Op::Conv(c) = &mut g.nodes[i].op {
            c.weight = take_in_channels(&c.weight, keep);
        }
    }
}

/// Sets channels `channels` of `group` to exactly zero everywhere they are produced:
/// producer filters and biases, depthwise filters and biases, BN γ and β. The channels
/// then carry 0 through every coupled value, so removing them does not change the
/// outputs (the property the structured-pruning tests check).
pub fn zero_channels(g: &mut Graph, group: &Group, channels: &[usize]) -> Result<()> {
    if let Some(&c) = channels.iter().find(|&&c| c >= group.channels) {
        return Err(PruneError::Structure(format!(
            "channel {c} out of range for a group of {}",
            group.channels
        )));
    }
    for &i in group.producers.iter().chain(&group.depthwise) {
        if let Op::Conv(conv) = &mut g.nodes[i].op {
            let per = conv.weight.numel() / group.channels;
            for &c in channels {
                conv.weight.data_mut()[c * per..(c + 1) * per].fill(0.0);
                if let Some(b) = &mut conv.bias {
                    b.data_mut()[c] = 0.0;
                }
            }
        }
    }
    for &i in &group.batch_norms {
        if let Op::BatchNorm(b) = &mut g.nodes[i].op {
            for &c in channels {
                b.gamma.data_mut()[c] = 0.0;
                b.beta.data_mut()[c] = 0.0;
            }
        }
    }
    Ok(())
}
