//! Sensitivity analysis: each pruning unit pruned alone at several levels, the pruned
//! model scored by the caller (mAP on a validation subset in `slimdet sensitivity`).
//!
//! A *unit* is what one ratio applies to:
//! - structured methods ([`UnitMethod::Structured`]): one channel dependency group
//!   ([`crate::groups`], named by its first producer conv), the same units
//!   [`crate::prune_structured`] cuts; its cost is the dense MACs of the smaller model;
//! - unstructured methods ([`UnitMethod::Unstructured`]): one conv layer (node name), its
//!   weights zeroed per layer; its cost is the effective MACs (non-zero weights only),
//!   which is what the sparse kernel can save.
//!
//! The crate knows nothing about datasets: the caller passes a scoring closure (higher is
//! better), so this crate stays independent of evaluation. The resulting
//! [`SensitivityTable`] feeds the MAC-budget solver ([`crate::budget`]).

use std::collections::HashMap;

use slimdet_core::stats::model_stats;
use slimdet_core::{Graph, Op};
use slimdet_models::Detector;

use crate::error::{PruneError, Result};
use crate::groups::dependency_groups;
use crate::pattern::Excludes;
use crate::rng::SplitMix64;
use crate::structured::{Criterion, StructuredOptions, prune_graph_with};
use crate::unstructured::{Method, check_amount, prune_slice, target};

/// How a unit is pruned.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum UnitMethod {
    /// Channels of a dependency group removed by this criterion.
    Structured(Criterion),
    /// Weights of one conv zeroed by this method (per layer).
    Unstructured(Method),
}

/// Prunes named units of a detector at given ratios.
#[derive(Clone, Debug)]
pub struct UnitPruner {
    /// How units are pruned.
    pub method: UnitMethod,
    /// Units (groups by any producer, or convs) matching these patterns are left alone.
    pub exclude: Vec<String>,
    /// Structured only: kept channel counts rounded up to a multiple of this.
    pub channel_multiple: usize,
    /// Seed of the random methods.
    pub seed: u64,
}

impl UnitPruner {
    /// Whether units are channel groups (dense MACs drop) rather than single convs.
    pub fn is_structured(&self) -> bool {
        matches!(self.method, UnitMethod::Structured(_))
    }

    fn structured_opts(&self, criterion: Criterion) -> StructuredOptions {
        StructuredOptions {
            criterion,
            amount: 0.0,
            exclude: self.exclude.clone(),
            channel_multiple: self.channel_multiple.max(1),
            seed: self.seed,
        }
    }

    /// The prunable units of `det`, in graph order.
    ///
    /// # Errors
    /// [`PruneError::Pattern`] for a bad pattern, [`PruneError::NothingToPrune`] when no
    /// unit is left.
    pub fn units(&self, det: &Detector) -> Result<Vec<String>> {
        let g = &det.graph;
        let (units, excluded) = match self.method {
            UnitMethod::Structured(c) => {
                let ex = Excludes::new(&self.structured_opts(c).exclude)?;
                let mut units = Vec::new();
                let mut excluded = 0;
                for group in dependency_groups(g).iter().filter(|gr| gr.pinned.is_none()) {
                    if group
                        .producers
                        .iter()
                        .any(|&i| ex.matches(&g.nodes[i].name))
                    {
                        excluded += 1;
                    } else {
                        units.push(group.name(g).to_string());
                    }
                }
                (units, excluded)
            }
            UnitMethod::Unstructured(_) => {
                let ex = Excludes::new(&self.exclude)?;
                let convs: Vec<&str> = conv_names(g).collect();
                let units: Vec<String> = convs
                    .iter()
                    .filter(|n| !ex.matches(n))
                    .map(|n| n.to_string())
                    .collect();
                let excluded = convs.len() - units.len();
                (units, excluded)
            }
        };
        if units.is_empty() {
            return Err(PruneError::NothingToPrune { excluded });
        }
        Ok(units)
    }

    /// A copy of `det` with each `(unit, ratio)` pruned at its ratio and every other unit
    /// untouched.
    ///
    /// # Errors
    /// [`PruneError::Amount`] for a ratio outside `[0, 1)`, [`PruneError::Structure`] for
    /// a name that is not a unit of `det`, [`PruneError::Core`] if the rewritten graph
    /// fails shape inference.
    pub fn apply(&self, det: &Detector, ratios: &[(String, f64)]) -> Result<Detector> {
        for (_, r) in ratios {
            check_amount(*r)?;
        }
        let units = self.units(det)?;
        if let Some((u, _)) = ratios.iter().find(|(u, _)| !units.contains(u)) {
            return Err(PruneError::Structure(format!(
                "`{u}` is not a prunable unit of this model (units are {})",
                if self.is_structured() {
                    "channel groups, named by their first conv"
                } else {
                    "conv layers"
                }
            )));
        }
        let map: HashMap<&str, f64> = ratios.iter().map(|(u, r)| (u.as_str(), *r)).collect();
        let mut out = det.clone();
        match self.method {
            UnitMethod::Structured(c) => {
                let opts = self.structured_opts(c);
                prune_graph_with(&mut out.graph, &opts, &|name| map.get(name).copied())?;
                slimdet_core::shape::infer(&out.graph, &out.input_shape())?;
            }
            UnitMethod::Unstructured(m) => {
                for n in out.graph.nodes.iter_mut() {
                    if let (Op::Conv(conv), Some(&r)) = (&mut n.op, map.get(n.name.as_str())) {
                        let mut rng =
                            SplitMix64::for_stream(self.seed, &format!("{}.weight", n.name));
                        let vals = conv.weight.data_mut();
                        let k = target(r, vals.len());
                        prune_slice(vals, k, m, &mut rng);
                    }
                }
            }
        }
        Ok(out)
    }

    /// The cost the units reduce: dense MACs (structured) or effective MACs of the
    /// non-zero weights (unstructured), one forward pass.
    ///
    /// # Errors
    /// [`PruneError::Core`] if shape inference fails.
    pub fn macs(&self, det: &Detector) -> Result<u64> {
        let s = model_stats(&det.graph, &det.input_shape())?;
        Ok(if self.is_structured() {
            s.macs
        } else {
            s.macs_effective
        })
    }
}

fn conv_names(g: &Graph) -> impl Iterator<Item = &str> {
    g.nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv(_)))
        .map(|n| n.name.as_str())
}

/// One unit's curve: its score and cost with it alone pruned at each level.
#[derive(Clone, Debug, PartialEq)]
pub struct UnitCurve {
    /// Unit name (group's first producer, or conv name).
    pub name: String,
    /// Score at each of [`SensitivityTable::levels`].
    pub scores: Vec<f64>,
    /// Cost (MACs) of the whole model at each level.
    pub macs: Vec<u64>,
}

/// The result of [`analyze`].
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityTable {
    /// Score of the unpruned model.
    pub baseline: f64,
    /// Cost of the unpruned model.
    pub base_macs: u64,
    /// Levels (ratios), increasing, each in `(0, 1)`.
    pub levels: Vec<f64>,
    /// One curve per unit.
    pub units: Vec<UnitCurve>,
}

impl SensitivityTable {
    /// Score drop of `unit` at level index `k` (0 = unpruned, `k` ≥ 1 = `levels[k − 1]`),
    /// made non-decreasing in the level (the largest drop at this level or below, never
    /// negative): small validation sets give noisy, even rising, curves, and a budget
    /// solver must not count on pruning to improve a model.
    pub fn loss(&self, unit: usize, k: usize) -> f64 {
        let c = &self.units[unit];
        (0..k).fold(0.0f64, |m, j| m.max(self.baseline - c.scores[j]))
    }

    /// MACs removed by `unit` alone at level index `k` (0 at `k` = 0), non-decreasing.
    pub fn removed(&self, unit: usize, k: usize) -> u64 {
        let c = &self.units[unit];
        (0..k).fold(0u64, |m, j| m.max(self.base_macs.saturating_sub(c.macs[j])))
    }

    /// Units sorted by their drop at the highest level, largest first (for tables).
    pub fn most_sensitive(&self) -> Vec<usize> {
        let top = self.levels.len();
        let mut idx: Vec<usize> = (0..self.units.len()).collect();
        idx.sort_by(|&a, &b| {
            self.loss(b, top)
                .total_cmp(&self.loss(a, top))
                .then(a.cmp(&b))
        });
        idx
    }
}

/// Where [`analyze`] is: passed to the scoring closure with each model.
#[derive(Clone, Copy, Debug)]
pub struct Step<'a> {
    /// Unit pruned (`None` for the baseline).
    pub unit: Option<&'a str>,
    /// Its level (0 for the baseline).
    pub level: f64,
    /// Models scored before this one.
    pub done: usize,
    /// Models to score in all (1 + units × levels).
    pub total: usize,
}

/// Checks and sorts levels: each in `(0, 1)`, duplicates removed.
///
/// # Errors
/// [`PruneError::Amount`] for a level outside `(0, 1)` (0 is the baseline, always
/// measured), [`PruneError::Structure`] for an empty list.
pub fn check_levels(levels: &[f64]) -> Result<Vec<f64>> {
    let mut out = Vec::new();
    for &l in levels {
        check_amount(l)?;
        if l == 0.0 {
            return Err(PruneError::Amount { amount: l });
        }
        out.push(l);
    }
    out.sort_by(f64::total_cmp);
    out.dedup();
    if out.is_empty() {
        return Err(PruneError::Structure("no sensitivity levels given".into()));
    }
    Ok(out)
}

/// Prunes each unit of `pruner.units(det)` alone at each level and scores the model with
/// `score` (higher is better; an `Err` message stops the analysis).
///
/// # Errors
/// [`check_levels`]' errors, the pruner's errors, and [`PruneError::Score`] with the
/// closure's message.
pub fn analyze(
    det: &Detector,
    pruner: &UnitPruner,
    levels: &[f64],
    score: &mut dyn FnMut(&Detector, Step<'_>) -> std::result::Result<f64, String>,
) -> Result<SensitivityTable> {
    let levels = check_levels(levels)?;
    let units = pruner.units(det)?;
    let total = 1 + units.len() * levels.len();
    let base_step = Step {
        unit: None,
        level: 0.0,
        done: 0,
        total,
    };
    let baseline = score(det, base_step).map_err(PruneError::Score)?;
    let base_macs = pruner.macs(det)?;
    let mut done = 1;
    let mut curves = Vec::with_capacity(units.len());
    for u in &units {
        let mut c = UnitCurve {
            name: u.clone(),
            scores: Vec::new(),
            macs: Vec::new(),
        };
        for &l in &levels {
            let pruned = pruner.apply(det, &[(u.clone(), l)])?;
            c.macs.push(pruner.macs(&pruned)?);
            let step = Step {
                unit: Some(u),
                level: l,
                done,
                total,
            };
            c.scores
                .push(score(&pruned, step).map_err(PruneError::Score)?);
            done += 1;
        }
        curves.push(c);
    }
    Ok(SensitivityTable {
        baseline,
        base_macs,
        levels,
        units: curves,
    })
}
