//! Weight masks that keep pruned weights at zero while a model is fine-tuned.
//!
//! A mask is a 0/1 vector per parameter key (`<node>.weight`, same element count and
//! layout as the parameter). The training loop multiplies every masked parameter by its
//! mask after each optimiser step, so momentum and weight decay cannot bring a pruned
//! weight back.

use std::collections::BTreeMap;

use slimdet_core::Graph;

use crate::error::{Result, TrainError};

/// Per-parameter keep masks (`true` = trainable weight, `false` = pruned, held at 0).
#[derive(Clone, Debug, Default, PartialEq)]
pub struct WeightMasks {
    masks: BTreeMap<String, Vec<bool>>,
}

impl WeightMasks {
    /// No masks.
    pub fn new() -> Self {
        Self::default()
    }

    /// Masks every parameter of `g` at its current zeros: each key whose parameter holds
    /// at least one exact zero among conv weights gets a mask (`weight != 0`).
    pub fn from_zeros(g: &Graph) -> Self {
        let mut masks = BTreeMap::new();
        for n in &g.nodes {
            if let slimdet_core::Op::Conv(c) = &n.op {
                let d = c.weight.data();
                if d.contains(&0.0) {
                    masks.insert(
                        format!("{}.weight", n.name),
                        d.iter().map(|&v| v != 0.0).collect(),
                    );
                }
            }
        }
        Self { masks }
    }

    /// Adds (or replaces) the mask of parameter `key`.
    pub fn insert(&mut self, key: impl Into<String>, keep: Vec<bool>) {
        self.masks.insert(key.into(), keep);
    }

    /// The mask of `key`.
    pub fn get(&self, key: &str) -> Option<&[bool]> {
        self.masks.get(key).map(Vec::as_slice)
    }

    /// Number of masked parameters.
    pub fn len(&self) -> usize {
        self.masks.len()
    }

    /// True when no parameter is masked.
    pub fn is_empty(&self) -> bool {
        self.masks.is_empty()
    }

    /// Checks that every mask names a parameter of `g` with the same element count.
    pub fn check(&self, g: &Graph) -> Result<()> {
        let params = g.params();
        for (k, m) in &self.masks {
            match params.iter().find(|(pk, _)| pk == k) {
                None => {
                    return Err(TrainError::Config(format!(
                        "mask for `{k}`: the model has no such parameter"
                    )));
                }
                Some((_, t)) if t.numel() != m.len() => {
                    return Err(TrainError::Length {
                        what: format!("mask of `{k}`"),
                        expected: t.numel(),
                        got: m.len(),
                    });
                }
                Some(_) => {}
            }
        }
        Ok(())
    }

    /// Sets every masked-out value of `g` to 0.
    pub fn apply(&self, g: &mut Graph) {
        if self.masks.is_empty() {
            return;
        }
        for (k, t) in g.params_mut() {
            if let Some(m) = self.masks.get(&k) {
                for (v, &keep) in t.data_mut().iter_mut().zip(m) {
                    if !keep {
                        *v = 0.0;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use slimdet_core::{Conv2d, Tensor};

    #[test]
    fn zeros_become_masks_and_stay_zero() {
        let mut g = Graph::new();
        let c = Conv2d::new(
            Tensor::new(vec![3, 1, 1, 1], vec![1.0, 0.0, 2.0]).unwrap(),
            1,
            0,
            1,
            1,
        );
        let y = g.conv("c", 0, c);
        g.output("y", y);
        let m = WeightMasks::from_zeros(&g);
        assert_eq!(m.get("c.weight"), Some(&[true, false, true][..]));
        m.check(&g).unwrap();
        for (_, t) in g.params_mut() {
            t.data_mut().fill(5.0);
        }
        m.apply(&mut g);
        assert_eq!(g.params()[0].1.data(), &[5.0, 0.0, 5.0]);
        let mut bad = WeightMasks::new();
        bad.insert("c.weight", vec![true]);
        assert!(bad.check(&g).is_err());
    }
}
