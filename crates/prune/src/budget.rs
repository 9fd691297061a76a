//! MAC-budget allocation: per-unit pruning ratios, chosen from a
//! [`SensitivityTable`], that bring the model under a MAC budget with the least
//! predicted score loss.
//!
//! Model of the loss: units are assumed independent, so the predicted drop of an
//! allocation is the sum of each unit's drop measured alone ([`SensitivityTable::loss`],
//! made non-decreasing in the level). Costs are *not* assumed additive: a conv between
//! two pruned groups loses `a + b − ab` of its MACs, not `a + b`, so the caller's
//! `exact_macs` closure measures every allocation the solver settles on.
//!
//! Greedy on the marginal loss per MAC removed: from nothing pruned, repeatedly take the
//! move (one unit raised to any higher level) with the smallest `Δloss / ΔMACs` (table
//! estimates; among free moves the one removing most MACs), until the exact cost is
//! within the budget. Jumping to any higher level, not only the next, handles curves
//! that are flat and then fall. A back-off pass then lowers the costliest units again
//! while the exact cost stays within the budget, undoing overshoot.

use crate::error::{PruneError, Result};
use crate::sensitivity::SensitivityTable;

/// `(unit, ratio)` pairs: an allocation as the solver passes it to its cost closure.
pub type Ratios = [(String, f64)];

/// Measures the exact cost (MACs) of an allocation.
pub type CostFn<'a> = dyn FnMut(&Ratios) -> Result<u64> + 'a;

/// The solver's choice.
#[derive(Clone, Debug, PartialEq)]
pub struct Allocation {
    /// `(unit, ratio)` for every unit pruned (ratio > 0), in table order.
    pub ratios: Vec<(String, f64)>,
    /// Level index per unit (0 = unpruned), in table order.
    pub level_index: Vec<usize>,
    /// Predicted score: the baseline less the sum of the units' measured drops.
    pub predicted: f64,
    /// Exact MACs of the allocation (from `exact_macs`).
    pub macs: u64,
}

/// Parses a MAC budget against the unpruned cost `base`: a fraction in `(0, 1]` of `base`
/// to keep (`0.6`), or an absolute count above 1, optionally with a `K`, `M` or `G`
/// suffix (`400M`, `4e8`).
///
/// # Errors
/// [`PruneError::Budget`] when the text is not a positive number.
pub fn parse_budget(text: &str, base: u64) -> Result<u64> {
    let t = text.trim();
    let (num, mult) = match t.char_indices().last() {
        Some((i, c)) if "kKmMgG".contains(c) => (
            &t[..i],
            match c.to_ascii_uppercase() {
                'K' => 1e3,
                'M' => 1e6,
                _ => 1e9,
            },
        ),
        _ => (t, 1.0),
    };
    let bad = || {
        PruneError::Budget(format!(
            "MAC budget `{text}` is not a fraction in (0, 1] of the model's MACs nor a positive count (e.g. 0.6, 400M)"
        ))
    };
    let v: f64 = num.trim().parse().map_err(|_| bad())?;
    if !v.is_finite() || v <= 0.0 {
        return Err(bad());
    }
    let v = v * mult;
    Ok(if v <= 1.0 && mult == 1.0 {
        (v * base as f64).floor() as u64
    } else {
        v.round() as u64
    })
}

fn ratios_of(table: &SensitivityTable, k: &[usize]) -> Vec<(String, f64)> {
    table
        .units
        .iter()
        .zip(k)
        .filter(|(_, k)| **k > 0)
        .map(|(u, &k)| (u.name.clone(), table.levels[k - 1]))
        .collect()
}

fn predicted(table: &SensitivityTable, k: &[usize]) -> f64 {
    table.baseline
        - k.iter()
            .enumerate()
            .map(|(u, &k)| table.loss(u, k))
            .sum::<f64>()
}

/// Chooses a level per unit so that `exact_macs(ratios) ≤ budget` with the least
/// predicted loss (see the module docs).
///
/// # Errors
/// [`PruneError::Budget`] when even every unit at the highest level stays above the
/// budget (the message gives the smallest reachable cost), or when the table has no
/// levels; errors of `exact_macs`.
pub fn solve(
    table: &SensitivityTable,
    budget: u64,
    exact_macs: &mut CostFn<'_>,
) -> Result<Allocation> {
    let n = table.units.len();
    let top = table.levels.len();
    if top == 0 || n == 0 {
        return Err(PruneError::Budget("the sensitivity table is empty".into()));
    }
    let mut k = vec![0usize; n];
    let mut macs = exact_macs(&[])?;
    if macs > budget {
        let all = vec![top; n];
        let floor = exact_macs(&ratios_of(table, &all))?;
        if floor > budget {
            return Err(PruneError::Budget(format!(
                "MAC budget {budget} cannot be reached: pruning every unit at the highest level ({:.0}%) leaves {floor} MACs of {}; the lowest reachable is {:.1}% of the model (add higher --levels or remove exclusions)",
                100.0 * table.levels[top - 1],
                table.base_macs,
                100.0 * floor as f64 / table.base_macs.max(1) as f64
            )));
        }
    }
    while macs > budget {
        // (unit, level, Δloss/ΔMACs, ΔMACs)
        let mut best: Option<(usize, usize, f64, u64)> = None;
        for (u, &ku) in k.iter().enumerate() {
            let (l0, r0) = (table.loss(u, ku), table.removed(u, ku));
            for kk in ku + 1..=top {
                let dm = table.removed(u, kk).saturating_sub(r0);
                if dm == 0 {
                    continue;
                }
                let ratio = (table.loss(u, kk) - l0) / dm as f64;
                let better = match best {
                    None => true,
                    Some((_, _, br, bm)) => ratio < br || (ratio == br && dm > bm),
                };
                if better {
                    best = Some((u, kk, ratio, dm));
                }
            }
        }
        let Some((u, kk, _, _)) = best else {
            // No move left by the table's estimates, yet still above budget: take every
            // unit to the top (feasible, checked above).
            k.iter_mut().for_each(|v| *v = top);
            macs = exact_macs(&ratios_of(table, &k))?;
            break;
        };
        k[u] = kk;
        macs = exact_macs(&ratios_of(table, &k))?;
    }
    // Back-off: undo overshoot on the units that cost the most score.
    let mut order: Vec<usize> = (0..n).filter(|&u| k[u] > 0).collect();
    order.sort_by(|&a, &b| table.loss(b, k[b]).total_cmp(&table.loss(a, k[a])));
    for u in order {
        while k[u] > 0 {
            let lower = k[u] - 1;
            if table.loss(u, lower) >= table.loss(u, k[u]) {
                break;
            }
            let mut trial = k.clone();
            trial[u] = lower;
            let m = exact_macs(&ratios_of(table, &trial))?;
            if m > budget {
                break;
            }
            k = trial;
            macs = m;
        }
    }
    Ok(Allocation {
        ratios: ratios_of(table, &k),
        predicted: predicted(table, &k),
        level_index: k,
        macs,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::sensitivity::UnitCurve;

    /// Three units of 100 MACs each in a 300-MAC model, levels 0.25/0.5/0.75 removing
    /// 25/50/75 MACs: `flat` loses nothing, `steep` loses a lot, `mid` in between.
    fn table() -> SensitivityTable {
        let unit = |name: &str, scores: [f64; 3]| UnitCurve {
            name: name.into(),
            scores: scores.to_vec(),
            macs: vec![275, 250, 225],
        };
        SensitivityTable {
            baseline: 50.0,
            base_macs: 300,
            levels: vec![0.25, 0.5, 0.75],
            units: vec![
                unit("steep", [40.0, 20.0, 5.0]),
                unit("flat", [50.0, 50.2, 49.9]),
                unit("mid", [49.0, 47.0, 44.0]),
            ],
        }
    }

    /// Exact cost of an additive model (what the table says).
    fn additive(t: &SensitivityTable) -> impl FnMut(&[(String, f64)]) -> Result<u64> + '_ {
        move |r: &[(String, f64)]| {
            let removed: f64 = r.iter().map(|(_, x)| 100.0 * x).sum();
            Ok(t.base_macs - removed.round() as u64)
        }
    }

    #[test]
    fn reaches_the_budget_with_the_insensitive_unit_first() {
        let t = table();
        let mut f = additive(&t);
        let a = solve(&t, 250, &mut f).unwrap();
        assert!(a.macs <= 250);
        assert_eq!(a.ratios, vec![("flat".to_string(), 0.5)]);
        // The flat unit's drop is 0.1 at 0.75 and 0 up to 0.5 (50.2 > 50 counts as 0).
        assert_eq!(a.predicted, 50.0);
        let a = solve(&t, 200, &mut f).unwrap();
        assert!(a.macs <= 200);
        assert_eq!(a.level_index[0], 0, "the steep unit is left alone: {a:?}");
        assert!(a.level_index[1] == 3, "{a:?}");
        assert!((a.predicted - (50.0 - 0.1 - 1.0)).abs() < 1e-9, "{a:?}");
    }

    #[test]
    fn within_budget_already_prunes_nothing() {
        let t = table();
        let a = solve(&t, 300, &mut additive(&t)).unwrap();
        assert!(a.ratios.is_empty());
        assert_eq!(a.macs, 300);
        assert_eq!(a.predicted, 50.0);
    }

    #[test]
    fn non_additive_costs_are_measured_not_assumed() {
        // Joint pruning removes less than the sum (an interaction term): the solver must
        // keep going until the measured cost is within the budget.
        let t = table();
        let mut f = |r: &[(String, f64)]| {
            let removed: f64 = r.iter().map(|(_, x)| 100.0 * x).sum();
            Ok(300 - (0.8 * removed).round() as u64)
        };
        let a = solve(&t, 200, &mut f).unwrap();
        assert!(a.macs <= 200, "{a:?}");
        assert_eq!(f(&a.ratios).unwrap(), a.macs);
    }

    #[test]
    fn impossible_budgets_are_refused_clearly() {
        let t = table();
        let e = solve(&t, 60, &mut additive(&t)).unwrap_err();
        let msg = e.to_string();
        assert!(matches!(e, PruneError::Budget(_)));
        assert!(
            msg.contains("cannot be reached") && msg.contains("75 MACs"),
            "{msg}"
        );
    }

    #[test]
    fn budgets_parse_as_fractions_or_counts() {
        assert_eq!(parse_budget("0.5", 300).unwrap(), 150);
        assert_eq!(parse_budget("1", 300).unwrap(), 300);
        assert_eq!(parse_budget("250", 300).unwrap(), 250);
        assert_eq!(parse_budget("0.4G", 1).unwrap(), 400_000_000);
        assert_eq!(parse_budget("400M", 1).unwrap(), 400_000_000);
        assert_eq!(parse_budget("4e8", 1).unwrap(), 400_000_000);
        for bad in ["", "0", "-0.5", "abc", "NaN", "inf", "5X"] {
            assert!(parse_budget(bad, 300).is_err(), "{bad}");
        }
    }
}
