//! Optional per-op timing of training passes: where a step's forward and backward time
//! goes, grouped by op kind and geometry (`conv 1x1`, `dwconv 3x3 s2`, `batchnorm`, ...).
//!
//! Off by default (no clock reads); [`crate::TrainGraph::set_profiling`] turns it on and
//! [`crate::TrainGraph::take_profile`] returns and clears the totals.

use std::collections::BTreeMap;
use std::sync::Mutex;
use std::time::Instant;

use slimdet_core::Op;

/// Time spent in one kind of op over the profiled passes.
#[derive(Clone, Debug, PartialEq)]
pub struct OpTime {
    /// Op kind and geometry, e.g. `dwconv 3x3 s2` or `conv 1x1`.
    pub kind: String,
    /// Seconds in forward passes.
    pub forward_s: f64,
    /// Seconds in backward passes (including the fused activation's derivative and the
    /// accumulation of the input gradient).
    pub backward_s: f64,
    /// Forward executions of nodes of this kind.
    pub calls: usize,
}

/// Accumulated timings, keyed by op kind.
#[derive(Default)]
pub(crate) struct Profiler {
    table: Mutex<BTreeMap<String, OpTime>>,
}

impl Profiler {
    /// Adds `since.elapsed()` to `kind`'s forward (`backward == false`) or backward time.
    pub fn add(&self, kind: String, backward: bool, since: Instant) {
        let dt = since.elapsed().as_secs_f64();
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let e = t.entry(kind.clone()).or_insert(OpTime {
            kind,
            forward_s: 0.0,
            backward_s: 0.0,
            calls: 0,
        });
        if backward {
            e.backward_s += dt;
        } else {
            e.forward_s += dt;
            e.calls += 1;
        }
    }

    /// The totals, slowest first, and a cleared table.
    pub fn take(&self) -> Vec<OpTime> {
        let mut t = self.table.lock().unwrap_or_else(|e| e.into_inner());
        let mut v: Vec<OpTime> = std::mem::take(&mut *t).into_values().collect();
        v.sort_by(|a, b| (b.forward_s + b.backward_s).total_cmp(&(a.forward_s + a.backward_s)));
        v
    }
}

/// The profile key of `op`.
pub(crate) fn kind(op: &Op) -> String {
    match op {
        Op::Conv(c) => {
            let [kh, kw] = c.kernel();
            let s = c.stride[0];
            if c.is_depthwise() {
                format!("dwconv {kh}x{kw} s{s}")
            } else if c.is_pointwise() {
                "conv 1x1".to_string()
            } else {
                format!("conv {kh}x{kw} s{s}")
            }
        }
        Op::BatchNorm(_) => "batchnorm".to_string(),
        Op::Act(_) => "act".to_string(),
        Op::Add(_) => "add".to_string(),
        Op::Concat { .. } => "concat".to_string(),
        Op::Reshape(_) => "reshape".to_string(),
        Op::Transpose(_) => "transpose".to_string(),
        Op::Softmax => "softmax".to_string(),
        Op::HardSwish => "hardswish".to_string(),
        Op::HardSigmoid => "hardsigmoid".to_string(),
        Op::GlobalAvgPool => "globalavgpool".to_string(),
        Op::ChannelMul => "channelmul".to_string(),
        Op::MaxPool(_) => "maxpool".to_string(),
    }
}
