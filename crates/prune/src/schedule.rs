//! Automated gradual pruning (AGP, Zhu & Gupta 2017): the sparsity target of step `t`
//! during fine-tuning, rising fast at first and flattening as the network adapts:
//!
//! `s(t) = s_f + (s_i − s_f) · (1 − (t − t_0) / (t_1 − t_0))³` for `t_0 ≤ t ≤ t_1`,
//! `s_i` before `t_0` and `s_f` after `t_1`. Pruning is applied every `every` steps (and
//! at `t_1`) with [`crate::prune_unstructured`] at `s(t)`; since magnitude pruning keeps
//! existing zeros first, each step only adds zeros.

use crate::error::{PruneError, Result};

/// An AGP schedule over optimiser steps.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct AgpSchedule {
    /// Sparsity before the first pruning step, `s_i`.
    pub initial: f64,
    /// Final sparsity, `s_f`.
    pub target: f64,
    /// First pruning step, `t_0`.
    pub start: usize,
    /// Last pruning step, `t_1` (> `start`).
    pub end: usize,
    /// Steps between pruning steps (≥ 1).
    pub every: usize,
}

impl AgpSchedule {
    /// Checks the fields: sparsities in `[0, 1)` with `initial ≤ target`, `start < end`,
    /// `every ≥ 1`.
    pub fn new(initial: f64, target: f64, start: usize, end: usize, every: usize) -> Result<Self> {
        crate::check_amount(initial)?;
        crate::check_amount(target)?;
        if initial > target || start >= end || every == 0 {
            return Err(PruneError::Structure(format!(
                "AGP schedule needs initial ≤ target, start < end and every ≥ 1 (got {initial}, {target}, {start}, {end}, {every})"
            )));
        }
        Ok(Self {
            initial,
            target,
            start,
            end,
            every,
        })
    }

    /// The sparsity target at `step`.
    pub fn sparsity_at(&self, step: usize) -> f64 {
        if step <= self.start {
            return self.initial;
        }
        if step >= self.end {
            return self.target;
        }
        let frac = (step - self.start) as f64 / (self.end - self.start) as f64;
        self.target + (self.initial - self.target) * (1.0 - frac).powi(3)
    }

    /// Whether the weights are pruned after `step`.
    pub fn prunes_at(&self, step: usize) -> bool {
        step >= self.start
            && step <= self.end
            && ((step - self.start).is_multiple_of(self.every) || step == self.end)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cubic_ramp_from_initial_to_target() {
        let s = AgpSchedule::new(0.0, 0.8, 100, 1100, 100).unwrap();
        assert_eq!(s.sparsity_at(0), 0.0);
        assert_eq!(s.sparsity_at(100), 0.0);
        assert_eq!(s.sparsity_at(1100), 0.8);
        assert_eq!(s.sparsity_at(5000), 0.8);
        // Half-way: s_f·(1 − 0.5³) = 0.7.
        assert!((s.sparsity_at(600) - 0.7).abs() < 1e-12);
        let mut last = 0.0;
        for t in 100..=1100 {
            let v = s.sparsity_at(t);
            assert!(v >= last);
            last = v;
        }
        assert!(s.prunes_at(100) && s.prunes_at(200) && s.prunes_at(1100));
        assert!(!s.prunes_at(150) && !s.prunes_at(99) && !s.prunes_at(1200));
    }

    #[test]
    fn bad_schedules_are_refused() {
        assert!(AgpSchedule::new(0.5, 0.4, 0, 10, 1).is_err());
        assert!(AgpSchedule::new(0.0, 1.0, 0, 10, 1).is_err());
        assert!(AgpSchedule::new(0.0, 0.5, 10, 10, 1).is_err());
        assert!(AgpSchedule::new(0.0, 0.5, 0, 10, 0).is_err());
    }
}
