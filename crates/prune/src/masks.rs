//! Keep-masks rebuilt from a pruned model's zeros, for fine-tuning.
//!
//! A pruned model stores no masks: the zeros are the mask. Fine-tuning must keep them at
//! zero, so the training loop multiplies each masked parameter by its mask after every
//! optimiser step. Keys are state-dict keys (`<node>.weight`); each mask has the
//! parameter's element count and layout (`true` = keep, `false` = pruned).

use std::collections::BTreeMap;

use slimdet_core::{Graph, Op};

/// Masks of every conv weight and BN γ of `g` that holds at least one exact zero.
pub fn masks(g: &Graph) -> BTreeMap<String, Vec<bool>> {
    let mut out = BTreeMap::new();
    for n in &g.nodes {
        let t = match &n.op {
            Op::Conv(c) => &c.weight,
            Op::BatchNorm(b) => &b.gamma,
            _ => continue,
        };
        if t.data().contains(&0.0) {
            out.insert(
                format!("{}.weight", n.name),
                t.data().iter().map(|&v| v != 0.0).collect(),
            );
        }
    }
    out
}

/// Multiplies every masked parameter of `g` by its mask (pruned entries back to 0).
/// Keys that name no parameter of `g`, or whose length differs, are skipped; returns how
/// many masks were applied.
pub fn apply_masks(g: &mut Graph, masks: &BTreeMap<String, Vec<bool>>) -> usize {
    let mut applied = 0;
    for (key, t) in g.params_mut() {
        if let Some(m) = masks.get(&key)
            && m.len() == t.numel()
        {
            for (v, keep) in t.data_mut().iter_mut().zip(m) {
                if !keep {
                    *v = 0.0;
                }
            }
            applied += 1;
        }
    }
    applied
}
