//! Training-mode execution of a [`Graph`]: a forward pass that records what the backward
//! needs (a [`Tape`]), and a backward pass in reverse node order that accumulates
//! parameter gradients keyed like [`Graph::params`] (`<node>.weight`, `<node>.bias`).
//!
//! Activations are NHWC `[N, H, W, C]` f32. The forward keeps every value of the graph
//! (inputs of convolutions and batch norms are what their backward needs; activations,
//! adds and fused convolution activations use their outputs), plus each training-mode
//! batch norm's batch statistics. Nothing is folded or fused: this is the graph as built,
//! so gradients land on the PyTorch parameters one to one.
//!
//! Ops: dense conv (im2col + sgemm; 1x1 plain sgemm), depthwise conv, batch norm (train
//! and eval), ReLU/ReLU6, add (with its activation), concat, reshape, transpose, softmax.
//! Other grouped convolutions are [`TrainError::Unsupported`].

mod bn;
mod conv;
mod dwconv;
mod elementwise;
pub(crate) mod gating;
mod linalg;
mod pool;
mod profile;

use std::collections::BTreeMap;
use std::sync::Arc;
use std::time::Instant;

use slimdet_core::{Graph, Op, Tensor, ValueId, shape};
use slimdet_kernels::{Act, Tier};

pub use bn::{BnBatch, update_running};
use linalg::Ctx;
pub use profile::OpTime;
use profile::Profiler;

use crate::config::Precision;
use crate::error::{Result, TrainError};

/// Whether batch norms use batch statistics (training) or running statistics (eval).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// `model.train()`: batch statistics.
    Train,
    /// `model.eval()`: running statistics, same values as inference.
    Eval,
}

/// What a forward pass recorded: every value and each batch norm's batch statistics.
#[derive(Clone, Debug)]
pub struct Tape {
    mode: Mode,
    shapes: Vec<Vec<usize>>,
    values: Vec<Vec<f32>>,
    bn: Vec<Option<BnBatch>>,
    outputs: Vec<(String, ValueId)>,
    fused: Vec<Option<usize>>,
}

impl Tape {
    /// The mode of the pass.
    pub fn mode(&self) -> Mode {
        self.mode
    }

    /// Shape of value `v`.
    pub fn shape(&self, v: ValueId) -> &[usize] {
        &self.shapes[v]
    }

    /// Data of value `v`, row-major in its shape. Empty for the output of a batch norm
    /// whose activation was fused into it (see [`TrainGraph::forward`]).
    pub fn value(&self, v: ValueId) -> &[f32] {
        &self.values[v]
    }

    /// The graph output called `name`: its value id, shape and data.
    pub fn output(&self, name: &str) -> Option<(ValueId, &[usize], &[f32])> {
        let (_, v) = self.outputs.iter().find(|(n, _)| n == name)?;
        Some((*v, &self.shapes[*v], &self.values[*v]))
    }

    /// Bytes of activation data the tape holds.
    pub fn bytes(&self) -> usize {
        self.values.iter().map(|v| v.len() * 4).sum()
    }

    /// Batch statistics of the batch norm at node index `node` (training mode only).
    pub fn bn_batch(&self, node: usize) -> Option<&BnBatch> {
        self.bn.get(node).and_then(Option::as_ref)
    }

    /// Updates the running statistics of every batch norm of `g` (the graph this tape was
    /// recorded on) from the batch statistics, with PyTorch's momentum rule (0.1 by
    /// default in PyTorch). Does nothing for an eval-mode tape.
    pub fn update_bn_running_stats(&self, g: &mut Graph, momentum: f32) {
        for (n, s) in g.nodes.iter_mut().zip(&self.bn) {
            if let (Op::BatchNorm(b), Some(s)) = (&mut n.op, s) {
                update_running(b, s, momentum);
            }
        }
    }
}

/// What the backward computes besides trainable parameters.
#[derive(Clone, Debug, Default)]
pub struct BackwardOptions {
    /// Parameters whose key starts with one of these get no gradient (`"base_net."` for a
    /// frozen backbone); nodes whose inputs and parameters all need no gradient are
    /// skipped entirely.
    pub frozen_prefixes: Vec<String>,
    /// Also compute the gradient with respect to the graph input.
    pub input_grad: bool,
}

impl BackwardOptions {
    fn frozen(&self, node: &str) -> bool {
        let key = format!("{node}.");
        self.frozen_prefixes
            .iter()
            .any(|p| key.starts_with(p.as_str()))
    }
}

/// Gradients of one backward pass.
#[derive(Clone, Debug, Default)]
pub struct Gradients {
    /// `dL/dp` for every trainable parameter (conv weight and bias, BN weight and bias),
    /// keyed like [`Graph::params`], same shapes as the parameters.
    pub params: BTreeMap<String, Tensor>,
    /// `dL/dinput` `[N, H, W, C]`, if [`BackwardOptions::input_grad`] was set.
    pub input: Option<Vec<f32>>,
}

impl Gradients {
    /// The gradient of parameter `key`.
    pub fn get(&self, key: &str) -> Option<&Tensor> {
        self.params.get(key)
    }

    /// `√(Σ g²)` over all parameter gradients (f64 accumulation).
    pub fn global_norm(&self) -> f64 {
        self.params
            .values()
            .flat_map(|t| t.data())
            .map(|v| (*v as f64) * (*v as f64))
            .sum::<f64>()
            .sqrt()
    }
}

/// Runs graphs in training or eval mode on a private thread pool.
pub struct TrainGraph {
    tier: Tier,
    precision: Precision,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
    buffers: pool::Pool,
    profiler: Option<Profiler>,
}

impl TrainGraph {
    /// An executor on `threads` threads (≥ 1) with the process-wide kernel tier.
    pub fn new(threads: usize) -> Result<Self> {
        Self::with_tier(threads, slimdet_kernels::tier())
    }

    /// An executor with an explicit kernel tier.
    pub fn with_tier(threads: usize, tier: Tier) -> Result<Self> {
        let threads = threads.max(1);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| TrainError::Threads {
                threads,
                reason: e.to_string(),
            })?;
        Ok(Self {
            tier,
            precision: Precision::Fp32,
            threads,
            pool: Arc::new(pool),
            buffers: pool::Pool::default(),
            profiler: None,
        })
    }

    /// Sets the arithmetic of the convolution products (f32 by default). bf16 runs on the
    /// scalar reference where the tier has no bf16 hardware: correct, but slower than f32
    /// ([`slimdet_kernels::bf16_gemm::hardware`] tells).
    pub fn set_precision(&mut self, precision: Precision) {
        self.precision = precision;
    }

    /// The arithmetic of the convolution products.
    pub fn precision(&self) -> Precision {
        self.precision
    }

    /// Turns per-op timing on or off (off by default: no clock reads).
    pub fn set_profiling(&mut self, on: bool) {
        self.profiler = on.then(Profiler::default);
    }

    /// Per-op-kind forward and backward time since profiling was turned on or last taken,
    /// slowest first; empty when profiling is off.
    pub fn take_profile(&self) -> Vec<OpTime> {
        self.profiler
            .as_ref()
            .map(Profiler::take)
            .unwrap_or_default()
    }

    /// Gives the buffers of a finished `tape` back for the next passes to reuse (dropping
    /// the tape instead frees them).
    pub fn recycle(&self, tape: Tape) {
        for v in tape.values {
            self.buffers.give(v);
        }
    }

    /// Frees the buffers kept for reuse (e.g. before a memory-hungry validation).
    pub fn release_buffers(&self) {
        self.buffers.clear();
    }

    /// Bytes of buffers kept for reuse.
    pub fn pooled_bytes(&self) -> usize {
        self.buffers.bytes()
    }

    fn ctx(&self) -> Ctx<'_> {
        Ctx {
            tier: self.tier,
            bf16: self.precision == Precision::Bf16,
            threads: self.threads,
            pool: &self.buffers,
        }
    }

    fn clock(&self) -> Option<Instant> {
        self.profiler.as_ref().map(|_| Instant::now())
    }

    fn record(&self, op: &Op, backward: bool, t0: Option<Instant>) {
        if let (Some(p), Some(t0)) = (&self.profiler, t0) {
            p.add(profile::kind(op), backward, t0);
        }
    }

    /// Kernel tier.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// Runs `f` on this executor's thread pool (for callers' own parallel work).
    pub fn install<R: Send>(&self, f: impl FnOnce() -> R + Send) -> R {
        self.pool.install(f)
    }

    /// Forward pass of `g` on `input` `[N, H, W, C]`, recording a [`Tape`]. The graph is
    /// not modified: call [`Tape::update_bn_running_stats`] to apply a training batch's
    /// statistics.
    ///
    /// A batch norm followed by an activation that is its only consumer (and not a graph
    /// output) runs as one op: the tape keeps the batch norm's input and the activation's
    /// output, not the pre-activation in between (its value is left empty).
    pub fn forward(&self, g: &Graph, input: &Tensor, mode: Mode) -> Result<Tape> {
        let shapes = shape::infer(g, input.shape())?;
        self.pool.install(|| {
            let mut values = vec![Vec::new(); g.num_values];
            values[g.input] = self.buffers.copy_of(input.data());
            let mut bn_stats = vec![None; g.nodes.len()];
            let fused = fused_acts(g);
            for (i, n) in g.nodes.iter().enumerate() {
                if i > 0 && fused[i - 1].is_some() {
                    continue;
                }
                let t0 = self.clock();
                let xs = &shapes[n.inputs[0]];
                let (act, out) = match fused[i] {
                    Some(j) => match &g.nodes[j].op {
                        Op::Act(a) => (*a, g.nodes[j].output),
                        _ => (Act::None, n.output),
                    },
                    None => (Act::None, n.output),
                };
                let x = &values[n.inputs[0]];
                let y = match &n.op {
                    Op::Conv(c) => {
                        let geom = c.geom(xs);
                        let mut y = if c.is_depthwise() {
                            dwconv::forward(self.ctx(), c, &geom, xs[0], x)
                        } else if c.groups == 1 {
                            conv::forward(self.ctx(), c, &geom, xs[0], x)
                        } else {
                            return Err(unsupported(&n.name, "Conv", "grouped, not depthwise"));
                        };
                        elementwise::act_forward(c.act, &mut y);
                        y
                    }
                    Op::BatchNorm(b) if mode == Mode::Train => {
                        let (y, s) = bn::forward_train(self.ctx(), b, x, act).ok_or_else(|| {
                            TrainError::Config(format!(
                                "batch norm `{}` sees one value per channel ({xs:?}); \
                                 training needs a batch of at least 2",
                                n.name
                            ))
                        })?;
                        bn_stats[i] = Some(s);
                        y
                    }
                    Op::BatchNorm(b) => bn::forward_eval(self.ctx(), b, x, act),
                    Op::Act(a) => {
                        let mut y = self.buffers.copy_of(x);
                        elementwise::act_forward(*a, &mut y);
                        y
                    }
                    Op::Add(a) => {
                        elementwise::add_forward(*a, self.buffers.copy_of(x), &values[n.inputs[1]])
                    }
                    Op::Concat { axis } => {
                        let ss: Vec<&[usize]> =
                            n.inputs.iter().map(|&v| shapes[v].as_slice()).collect();
                        let xs: Vec<&[f32]> =
                            n.inputs.iter().map(|&v| values[v].as_slice()).collect();
                        let len = shapes[n.output].iter().product();
                        elementwise::concat_forward(*axis, &ss, &xs, len)
                    }
                    Op::Reshape(_) => x.clone(),
                    Op::Transpose(p) => elementwise::transpose(x, xs, p),
                    Op::Softmax => elementwise::softmax_forward(x, *xs.last().unwrap_or(&1)),
                    Op::HardSwish => gating::hard_swish_forward(x),
                    Op::HardSigmoid => gating::hard_sigmoid_forward(x),
                    Op::GlobalAvgPool => gating::gap_forward(x, xs),
                    Op::ChannelMul => gating::channel_mul_forward(x, &values[n.inputs[1]], xs),
                    Op::MaxPool(p) => gating::max_pool_forward(p, x, xs, &shapes[n.output]),
                };
                values[out] = y;
                self.record(&n.op, false, t0);
            }
            Ok(Tape {
                mode,
                shapes: shapes.clone(),
                values,
                bn: bn_stats,
                outputs: g.outputs.clone(),
                fused,
            })
        })
    }

    /// Backward pass: `seeds` are `(value, dL/dvalue)` pairs (typically the graph outputs);
    /// gradients flow through the nodes in reverse order. `g` must be the graph `tape` was
    /// recorded on, with the same parameters.
    pub fn backward(
        &self,
        g: &Graph,
        tape: &Tape,
        seeds: &[(ValueId, &[f32])],
        opts: &BackwardOptions,
    ) -> Result<Gradients> {
        // Which values carry a gradient: the input if asked, and anything computed from a
        // value that does or by a node with trainable parameters.
        let mut needs = vec![false; g.num_values];
        needs[g.input] = opts.input_grad;
        for n in &g.nodes {
            let trainable = matches!(n.op, Op::Conv(_) | Op::BatchNorm(_)) && !opts.frozen(&n.name);
            needs[n.output] = trainable || n.inputs.iter().any(|&v| needs[v]);
        }
        let mut grads: Vec<Option<Vec<f32>>> = vec![None; g.num_values];
        for (v, s) in seeds {
            let len = tape.shapes[*v].iter().product::<usize>();
            if s.len() != len {
                return Err(TrainError::Length {
                    what: format!("gradient seed of value {v}"),
                    expected: len,
                    got: s.len(),
                });
            }
            accumulate(&self.buffers, &mut grads[*v], s.to_vec());
        }
        let mut out = Gradients::default();
        self.pool.install(|| {
            for (i, n) in g.nodes.iter().enumerate().rev() {
                if !needs[n.output] {
                    continue;
                }
                let Some(mut dy) = grads[n.output].take() else {
                    continue;
                };
                let t0 = self.clock();
                if let Some(bi) = i.checked_sub(1).filter(|&b| tape.fused[b] == Some(i)) {
                    // The activation fused into batch norm `bi`: both backwards at once.
                    let (bnode, Op::BatchNorm(b), Op::Act(a)) =
                        (&g.nodes[bi], &g.nodes[bi].op, &n.op)
                    else {
                        unreachable!("fused_acts pairs a batch norm with an activation")
                    };
                    let x0 = bnode.inputs[0];
                    let train = !opts.frozen(&bnode.name);
                    let x = &tape.values[x0];
                    let r =
                        bn::backward(self.tier, b, tape.bn_batch(bi), x, dy, *a, needs[x0], train);
                    if let Some((dg, db)) = r.params {
                        out.params.insert(format!("{}.weight", bnode.name), dg);
                        out.params.insert(format!("{}.bias", bnode.name), db);
                    }
                    if let Some(dx) = r.dx {
                        accumulate(&self.buffers, &mut grads[x0], dx);
                    }
                    self.record(&bnode.op, true, t0);
                    continue;
                }
                let x0 = n.inputs[0];
                let need_dx = needs[x0];
                let train = !opts.frozen(&n.name);
                let xs = &tape.shapes[x0];
                let x = &tape.values[x0];
                match &n.op {
                    Op::Conv(c) => {
                        elementwise::act_backward(c.act, &tape.values[n.output], &mut dy);
                        let geom = c.geom(xs);
                        let r = if c.is_depthwise() {
                            dwconv::backward(self.ctx(), c, &geom, xs[0], x, &dy, need_dx, train)
                        } else {
                            conv::backward(self.ctx(), c, &geom, xs[0], x, &dy, need_dx, train)
                        };
                        if let Some(dw) = r.dw {
                            out.params.insert(format!("{}.weight", n.name), dw);
                        }
                        if let Some(db) = r.db {
                            out.params.insert(format!("{}.bias", n.name), db);
                        }
                        if let Some(dx) = r.dx {
                            accumulate(&self.buffers, &mut grads[x0], dx);
                        }
                        self.buffers.give(dy);
                    }
                    Op::BatchNorm(b) => {
                        let r = bn::backward(
                            self.tier,
                            b,
                            tape.bn_batch(i),
                            x,
                            dy,
                            Act::None,
                            need_dx,
                            train,
                        );
                        if let Some((dg, db)) = r.params {
                            out.params.insert(format!("{}.weight", n.name), dg);
                            out.params.insert(format!("{}.bias", n.name), db);
                        }
                        if let Some(dx) = r.dx {
                            accumulate(&self.buffers, &mut grads[x0], dx);
                        }
                    }
                    Op::Act(a) => {
                        elementwise::act_backward(*a, &tape.values[n.output], &mut dy);
                        accumulate(&self.buffers, &mut grads[x0], dy);
                    }
                    Op::Add(a) => {
                        elementwise::act_backward(*a, &tape.values[n.output], &mut dy);
                        let x1 = n.inputs[1];
                        if needs[x1] {
                            accumulate(&self.buffers, &mut grads[x1], self.buffers.copy_of(&dy));
                        }
                        accumulate(&self.buffers, &mut grads[x0], dy);
                    }
                    Op::Concat { axis } => {
                        let ss: Vec<&[usize]> = n
                            .inputs
                            .iter()
                            .map(|&v| tape.shapes[v].as_slice())
                            .collect();
                        let parts = elementwise::concat_backward(*axis, &ss, &dy);
                        self.buffers.give(dy);
                        for (&v, gpart) in n.inputs.iter().zip(parts) {
                            if needs[v] {
                                accumulate(&self.buffers, &mut grads[v], gpart);
                            }
                        }
                    }
                    Op::Reshape(_) => accumulate(&self.buffers, &mut grads[x0], dy),
                    Op::Transpose(p) => {
                        let ys = &tape.shapes[n.output];
                        let inv = elementwise::inverse_perm(p);
                        accumulate(
                            &self.buffers,
                            &mut grads[x0],
                            elementwise::transpose(&dy, ys, &inv),
                        );
                    }
                    Op::Softmax => {
                        let k = *xs.last().unwrap_or(&1);
                        let dx = elementwise::softmax_backward(&tape.values[n.output], &dy, k);
                        accumulate(&self.buffers, &mut grads[x0], dx);
                    }
                    Op::HardSwish => accumulate(
                        &self.buffers,
                        &mut grads[x0],
                        gating::hard_swish_backward(x, dy),
                    ),
                    Op::HardSigmoid => accumulate(
                        &self.buffers,
                        &mut grads[x0],
                        gating::hard_sigmoid_backward(x, dy),
                    ),
                    Op::GlobalAvgPool => {
                        accumulate(&self.buffers, &mut grads[x0], gating::gap_backward(&dy, xs))
                    }
                    Op::ChannelMul => {
                        let x1 = n.inputs[1];
                        let (dx, ds) = gating::channel_mul_backward(x, &tape.values[x1], &dy, xs);
                        if needs[x1] {
                            accumulate(&self.buffers, &mut grads[x1], ds);
                        }
                        accumulate(&self.buffers, &mut grads[x0], dx);
                    }
                    Op::MaxPool(p) => {
                        let dx = gating::max_pool_backward(p, x, xs, &tape.shapes[n.output], &dy);
                        accumulate(&self.buffers, &mut grads[x0], dx);
                    }
                }
                if !needs[x0]
                    && let Some(unused) = grads[x0].take()
                {
                    self.buffers.give(unused);
                }
                self.record(&n.op, true, t0);
            }
        });
        if opts.input_grad {
            let len = tape.shapes[g.input].iter().product();
            out.input = Some(grads[g.input].take().unwrap_or_else(|| vec![0.0; len]));
        }
        Ok(out)
    }
}

/// For each node, the activation node fused into it, if any: a batch norm whose output is
/// consumed only by the next node, an activation, and is not a graph output.
fn fused_acts(g: &Graph) -> Vec<Option<usize>> {
    let mut uses = vec![0usize; g.num_values];
    for n in &g.nodes {
        for &v in &n.inputs {
            uses[v] += 1;
        }
    }
    for (_, v) in &g.outputs {
        uses[*v] += 1;
    }
    (0..g.nodes.len())
        .map(|i| {
            let (n, next) = (&g.nodes[i], g.nodes.get(i + 1)?);
            let pair = matches!(n.op, Op::BatchNorm(_))
                && matches!(next.op, Op::Act(_))
                && next.inputs == [n.output]
                && uses[n.output] == 1;
            pair.then_some(i + 1)
        })
        .collect()
}

fn unsupported(node: &str, op: &'static str, reason: &str) -> TrainError {
    TrainError::Unsupported {
        node: node.to_string(),
        op,
        reason: reason.to_string(),
    }
}

/// `slot += g` (or `slot = g` when empty); a summed `g` goes back to `pool`.
fn accumulate(pool: &pool::Pool, slot: &mut Option<Vec<f32>>, g: Vec<f32>) {
    match slot {
        None => *slot = Some(g),
        Some(s) => {
            for (a, b) in s.iter_mut().zip(&g) {
                *a += b;
            }
            pool.give(g);
        }
    }
}
