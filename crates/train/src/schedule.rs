//! Learning-rate schedules as pytorch-ssd drives them (spec §11), plus an optional linear
//! warm-up.
//!
//! pytorch-ssd calls `scheduler.step()` at the **start** of every epoch, so epoch `e`
//! (0-based) runs with the scheduler's value at `last_epoch = e + 1`:
//! - cosine (`CosineAnnealingLR`, `eta_min` 0): `lr·(1 + cos(π·(e + 1)/T_max))/2`; the
//!   closed form equals PyTorch's recursive update, also past `T_max` where both rise
//!   again;
//! - multistep (`MultiStepLR`, γ 0.1): `lr·γ^(#milestones ≤ e + 1)`, so the rate drops at
//!   the start of epoch `milestone − 1`;
//! - constant.
//!
//! Warm-up (not in pytorch-ssd): over the first `warmup_epochs` epochs the scheduled rate
//! is multiplied by `(step + 1) / warmup_steps`, per iteration.

use serde::{Deserialize, Serialize};

/// The shape of the schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "kebab-case")]
pub enum LrPolicy {
    /// The base rate throughout.
    Constant,
    /// Cosine annealing to 0 over `t_max` epochs.
    Cosine {
        /// Period, in epochs.
        t_max: usize,
    },
    /// Multiply by `gamma` at each milestone.
    MultiStep {
        /// Epoch counts (as `--milestones 80,100`).
        milestones: Vec<usize>,
        /// Factor (0.1).
        gamma: f64,
    },
}

/// A learning-rate schedule.
#[derive(Clone, Debug, PartialEq, Serialize, Deserialize)]
pub struct LrSchedule {
    /// The base learning rate (`--lr`).
    pub base_lr: f64,
    /// The policy.
    pub policy: LrPolicy,
    /// Linear warm-up length in epochs (0: none).
    pub warmup_epochs: usize,
}

impl LrSchedule {
    /// The scheduled rate of epoch `epoch` (0-based), without warm-up.
    pub fn epoch_lr(&self, epoch: usize) -> f64 {
        let t = (epoch + 1) as f64;
        match &self.policy {
            LrPolicy::Constant => self.base_lr,
            LrPolicy::Cosine { t_max } => {
                self.base_lr * (1.0 + (std::f64::consts::PI * t / (*t_max).max(1) as f64).cos())
                    / 2.0
            }
            LrPolicy::MultiStep { milestones, gamma } => {
                let k = milestones.iter().filter(|&&m| m <= epoch + 1).count();
                self.base_lr * gamma.powi(k as i32)
            }
        }
    }

    /// The rate of global iteration `step` (0-based) in epoch `epoch`, with
    /// `steps_per_epoch` iterations per epoch (for the warm-up).
    pub fn lr(&self, epoch: usize, step: usize, steps_per_epoch: usize) -> f64 {
        let base = self.epoch_lr(epoch);
        let warm = self.warmup_epochs * steps_per_epoch;
        if step < warm {
            base * (step + 1) as f64 / warm as f64
        } else {
            base
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cosine_is_shifted_by_one_epoch() {
        let s = LrSchedule {
            base_lr: 0.01,
            policy: LrPolicy::Cosine { t_max: 200 },
            warmup_epochs: 0,
        };
        let e0 = 0.01 * (1.0 + (std::f64::consts::PI / 200.0).cos()) / 2.0;
        assert!((s.epoch_lr(0) - e0).abs() < 1e-15);
        assert!(
            s.epoch_lr(199).abs() < 1e-15,
            "the recipe's last epoch runs at 0"
        );
        assert!((s.epoch_lr(99) - 0.005).abs() < 1e-12);
    }

    #[test]
    fn multistep_drops_at_milestone_minus_one() {
        let s = LrSchedule {
            base_lr: 1e-3,
            policy: LrPolicy::MultiStep {
                milestones: vec![80, 100],
                gamma: 0.1,
            },
            warmup_epochs: 0,
        };
        assert_eq!(s.epoch_lr(78), 1e-3);
        assert!((s.epoch_lr(79) - 1e-4).abs() < 1e-18);
        assert!((s.epoch_lr(99) - 1e-5).abs() < 1e-18);
    }

    #[test]
    fn warmup_is_linear_per_step() {
        let s = LrSchedule {
            base_lr: 0.1,
            policy: LrPolicy::Constant,
            warmup_epochs: 2,
        };
        assert!((s.lr(0, 0, 5) - 0.01).abs() < 1e-12);
        assert!((s.lr(1, 9, 5) - 0.1).abs() < 1e-12);
        assert_eq!(s.lr(2, 10, 5), 0.1);
    }
}
