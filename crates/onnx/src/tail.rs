//! The tail: ONNX operators that run after the engine, on its outputs, in the reference
//! interpreter ([`crate::interp`]).
//!
//! The engine runs convolutions and the layers around them in NHWC; what an exporter
//! appends after the heads (softmax over a non-last axis, box decoding with `Slice`,
//! `Mul`, `Exp`, `Add`, ... against prior constants) is element-wise work on small
//! `[N, P, k]` tensors. Rather than recognising one decode pattern, the importer moves
//! every such operator here and runs it generically, in ONNX axis order.

use crate::interp::Op;
use crate::value::Value;

/// Where a tail operator reads an input.
#[derive(Clone, Debug, PartialEq)]
pub enum Src {
    /// A constant of [`Tail::consts`].
    Const(usize),
    /// A slot filled by a feed or an earlier step.
    Slot(usize),
}

/// One operator application.
#[derive(Clone, Debug, PartialEq)]
pub struct TailStep {
    /// The ONNX node, for error messages.
    pub node: String,
    /// The operator with its parameters.
    pub op: Op,
    /// Data inputs.
    pub inputs: Vec<Src>,
    /// Slot written.
    pub output: usize,
}

/// A straight-line program over slots.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct Tail {
    /// Constants read by the steps (priors, variances, ...).
    pub consts: Vec<Value>,
    /// `(engine output index, slot)`: engine outputs copied into slots before the steps.
    pub feeds: Vec<(usize, usize)>,
    /// Steps in execution order.
    pub steps: Vec<TailStep>,
    /// Number of slots.
    pub num_slots: usize,
}

impl Tail {
    /// Allocates a fresh slot.
    pub fn new_slot(&mut self) -> usize {
        self.num_slots += 1;
        self.num_slots - 1
    }

    /// Runs the steps with `slots` holding the feeds; returns all slots.
    /// Errors name the failing node.
    pub fn run(
        &self,
        mut slots: Vec<Option<Value>>,
    ) -> Result<Vec<Option<Value>>, (String, String)> {
        slots.resize(self.num_slots, None);
        for s in &self.steps {
            let ins: Vec<&Value> = s
                .inputs
                .iter()
                .map(|src| match src {
                    Src::Const(i) => self.consts.get(*i),
                    Src::Slot(i) => slots.get(*i).and_then(Option::as_ref),
                })
                .collect::<Option<_>>()
                .ok_or_else(|| (s.node.clone(), "reads a value never computed".to_string()))?;
            let v = s.op.eval(&ins).map_err(|e| (s.node.clone(), e))?;
            slots[s.output] = Some(v);
        }
        Ok(slots)
    }
}
