//! Unstructured pruning: individual weights set to exactly zero.
//!
//! The result is a plain model whose pruned weights are zeros (no masks are stored; see
//! [`crate::masks`] to rebuild them for fine-tuning). Candidates are the convolution
//! weights (depthwise included), optionally BN γ (`include_bn`), minus excluded layers.
//!
//! Exactness: with [`Scope::Layer`] each candidate tensor of `n` values ends with exactly
//! `max(round(amount·n), zeros already there)` zeros, so its sparsity is within half a
//! weight of the request unless it was sparser already. With [`Scope::Global`] the
//! candidates are pooled and `round(amount·N)` values are zeroed over the pool.
//! Weights that are already zero count towards the target and are chosen first (their
//! magnitude is 0; random pruning only draws among the non-zero ones).

use slimdet_core::{Graph, Op};

use crate::error::{PruneError, Result};
use crate::pattern::Excludes;
use crate::rng::SplitMix64;
use crate::target::PruneTarget;

/// How weights are ranked.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Method {
    /// Uniformly random among the non-zero weights (seeded).
    Random,
    /// Smallest magnitude first (L1 / magnitude pruning).
    L1,
}

/// Over what the amount is applied.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Scope {
    /// Every candidate tensor gets the same sparsity.
    Layer,
    /// One ranking over all candidate tensors: layers end with different sparsities.
    Global,
}

/// Options of [`prune_unstructured`].
#[derive(Clone, Debug)]
pub struct UnstructuredOptions {
    /// Ranking.
    pub method: Method,
    /// Fraction of weights to zero, in `[0, 1)`.
    pub amount: f64,
    /// Per layer or global.
    pub scope: Scope,
    /// Also prune BN γ (per channel scale). Zeroing γ silences the channel's normalised
    /// signal but keeps β, so the channel becomes a constant: usually much worse than
    /// pruning the same number of conv weights. Offered to show exactly that.
    pub include_bn: bool,
    /// Layer exclusion patterns (see [`crate::pattern`]), e.g. `base_net.0.0` for the
    /// first conv or `*headers*` for the heads.
    pub exclude: Vec<String>,
    /// Seed of [`Method::Random`].
    pub seed: u64,
}

impl Default for UnstructuredOptions {
    fn default() -> Self {
        Self {
            method: Method::L1,
            amount: 0.5,
            scope: Scope::Layer,
            include_bn: false,
            exclude: Vec::new(),
            seed: 0,
        }
    }
}

/// What happened to one tensor.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerReport {
    /// State-dict key of the tensor (`<node>.weight`).
    pub key: String,
    /// Values in the tensor.
    pub numel: usize,
    /// Zeros before pruning.
    pub zeros_before: usize,
    /// Zeros after pruning.
    pub zeros_after: usize,
}

impl LayerReport {
    /// Sparsity after pruning.
    pub fn sparsity(&self) -> f64 {
        self.zeros_after as f64 / self.numel.max(1) as f64
    }
}

/// What [`prune_unstructured`] did.
#[derive(Clone, Debug, PartialEq)]
pub struct PruneReport {
    /// One entry per pruned tensor, in graph order.
    pub layers: Vec<LayerReport>,
    /// Candidate layers skipped because an exclusion pattern matched.
    pub excluded: Vec<String>,
}

impl PruneReport {
    /// Zeros / values over the pruned tensors.
    pub fn sparsity(&self) -> f64 {
        let n: usize = self.layers.iter().map(|l| l.numel).sum();
        let z: usize = self.layers.iter().map(|l| l.zeros_after).sum();
        z as f64 / n.max(1) as f64
    }
}

/// Checks that `amount` is a fraction in `[0, 1)`.
pub fn check_amount(amount: f64) -> Result<()> {
    if (0.0..1.0).contains(&amount) {
        Ok(())
    } else {
        Err(PruneError::Amount { amount })
    }
}

/// One candidate tensor: node index and whether it is the BN γ (else the conv weight).
struct Candidate {
    node: usize,
    key: String,
    bn: bool,
}

fn candidates(
    g: &Graph,
    opts: &UnstructuredOptions,
    ex: &Excludes,
) -> (Vec<Candidate>, Vec<String>) {
    let mut out = Vec::new();
    let mut excluded = Vec::new();
    for (i, n) in g.nodes.iter().enumerate() {
        let bn = match &n.op {
            Op::Conv(_) => false,
            Op::BatchNorm(_) if opts.include_bn => true,
            _ => continue,
        };
        if ex.matches(&n.name) {
            excluded.push(n.name.clone());
            continue;
        }
        out.push(Candidate {
            node: i,
            key: format!("{}.weight", n.name),
            bn,
        });
    }
    (out, excluded)
}

fn values_mut<'a>(g: &'a mut Graph, c: &Candidate) -> &'a mut [f32] {
    match &mut g.nodes[c.node].op {
        Op::Conv(conv) => conv.weight.data_mut(),
        Op::BatchNorm(b) if c.bn => b.gamma.data_mut(),
        _ => unreachable!("candidates are convs and BNs"),
    }
}

/// Target zero count for `n` values at `amount`.
pub(crate) fn target(amount: f64, n: usize) -> usize {
    ((amount * n as f64).round() as usize).min(n)
}

/// Zeros `k` entries among `vals` by `method` (the zeros already present count first).
/// `rng` is only used by [`Method::Random`].
pub(crate) fn prune_slice(vals: &mut [f32], k: usize, method: Method, rng: &mut SplitMix64) {
    let zeros = vals.iter().filter(|v| **v == 0.0).count();
    if k <= zeros {
        return;
    }
    let need = k - zeros;
    let mut idx: Vec<usize> = (0..vals.len()).filter(|&i| vals[i] != 0.0).collect();
    match method {
        Method::Random => rng.choose(&mut idx, need),
        Method::L1 => {
            // Smallest |w| first, ties by index: deterministic.
            idx.select_nth_unstable_by(need - 1, |&a, &b| {
                vals[a].abs().total_cmp(&vals[b].abs()).then(a.cmp(&b))
            });
        }
    }
    for &i in &idx[..need] {
        vals[i] = 0.0;
    }
}

/// Prunes `target` (a [`Graph`] or a [`slimdet_models::Detector`]) in place.
///
/// # Errors
/// [`PruneError::Amount`] when `amount ∉ [0, 1)`, [`PruneError::Pattern`] for an empty
/// pattern, [`PruneError::NothingToPrune`] when every candidate is excluded.
pub fn prune_unstructured<T: PruneTarget + ?Sized>(
    target_model: &mut T,
    opts: &UnstructuredOptions,
) -> Result<PruneReport> {
    check_amount(opts.amount)?;
    let ex = Excludes::new(&opts.exclude)?;
    let g = target_model.graph_mut();
    let (cands, excluded) = candidates(g, opts, &ex);
    if cands.is_empty() {
        return Err(PruneError::NothingToPrune {
            excluded: excluded.len(),
        });
    }
    let before: Vec<usize> = cands
        .iter()
        .map(|c| values_mut(g, c).iter().filter(|v| **v == 0.0).count())
        .collect();
    match opts.scope {
        Scope::Layer => {
            for c in &cands {
                let mut rng = SplitMix64::for_stream(opts.seed, &c.key);
                let vals = values_mut(g, c);
                let k = target(opts.amount, vals.len());
                prune_slice(vals, k, opts.method, &mut rng);
            }
        }
        Scope::Global => prune_global(g, &cands, opts),
    }
    let layers = cands
        .iter()
        .zip(before)
        .map(|(c, zeros_before)| {
            let vals = values_mut(g, c);
            LayerReport {
                key: c.key.clone(),
                numel: vals.len(),
                zeros_before,
                zeros_after: vals.iter().filter(|v| **v == 0.0).count(),
            }
        })
        .collect();
    Ok(PruneReport { layers, excluded })
}

/// Global scope: pool every candidate value, zero `round(amount·N)` of them.
fn prune_global(g: &mut Graph, cands: &[Candidate], opts: &UnstructuredOptions) {
    // (candidate, index, |w|) for every value of every candidate.
    let mut pool: Vec<(u32, u32, f32)> = Vec::new();
    for (ci, c) in cands.iter().enumerate() {
        for (i, v) in values_mut(g, c).iter().enumerate() {
            pool.push((ci as u32, i as u32, v.abs()));
        }
    }
    let k = target(opts.amount, pool.len());
    let zeros = pool.iter().filter(|p| p.2 == 0.0).count();
    if k <= zeros {
        return;
    }
    let need = k - zeros;
    pool.retain(|p| p.2 != 0.0);
    match opts.method {
        Method::Random => SplitMix64::new(opts.seed).choose(&mut pool, need),
        Method::L1 => {
            pool.select_nth_unstable_by(need - 1, |a, b| {
                a.2.total_cmp(&b.2).then((a.0, a.1).cmp(&(b.0, b.1)))
            });
        }
    }
    for &(ci, i, _) in &pool[..need] {
        values_mut(g, &cands[ci as usize])[i as usize] = 0.0;
    }
}
