//! The executor: a graph compiled to packed weights, one activation arena and a thread
//! pool, run many times without allocating.
//!
//! Compilation clones the graph, folds BN and fuses activations, infers every shape for
//! the given input shape, packs each convolution's weights for its kernel (GEMM for 1x1,
//! im2col + GEMM for dense k×k, the direct kernel for depthwise), and assigns every value a
//! slot of the arena by liveness so buffers are reused. `run` then only reads and writes
//! those buffers.

use std::sync::Arc;

use slimdet_kernels::pointwise::PwWeights;
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Act, Tier};

use crate::error::{CoreError, Result};
use crate::fused::{Block, PwPart};
use crate::graph::{Graph, ValueId};
use crate::ops::Op;
use crate::{passes, shape};

mod conv;
mod elementwise;
mod fuse;

use conv::{Epilogue, compile_conv, run_conv};
pub use elementwise::{
    channel_mul, global_avg_pool, max_pool, max_pool_argmax, scale_channels, transpose,
};
use fuse::fuse_blocks;

/// How to compile a plan.
#[derive(Clone, Debug)]
pub struct PlanOptions {
    /// Worker threads (≥ 1).
    pub threads: usize,
    /// Fold BN and fuse activations before compiling (the default).
    pub optimize: bool,
    /// Kernel tier; `None` uses the process-wide choice ([`slimdet_kernels::tier`]).
    pub tier: Option<Tier>,
}

impl Default for PlanOptions {
    fn default() -> Self {
        Self {
            threads: 1,
            optimize: true,
            tier: None,
        }
    }
}

/// Floats of im2col rows per band (128 KiB: the band is rebuilt and consumed while in L2).
const IM2COL_BAND_FLOATS: usize = 32 * 1024;

/// How a convolution is executed.
#[derive(Debug)]
enum ConvKind {
    /// 1x1 stride 1: `out[N·H·W, O] = in[N·H·W, I] · w[I, O]` (the pointwise kernel, with
    /// the epilogue and an optional residual fused).
    Pointwise(Box<PwWeights>),
    /// Dense k×k: im2col in bands of output rows, each followed by the pointwise kernel
    /// with `w[kh·kw·I, O]`.
    Im2col(Box<PwWeights>),
    /// Depthwise: direct kernel with `w[kh·kw, C]`.
    Depthwise,
    /// Any other grouping: the reference loop on OIHW weights.
    Grouped,
    /// 1x1 stride 1 on the sparse kernel, CSR weights (see [`crate::sparse`]).
    Sparse(Box<slimdet_kernels::sparse::SparseWeights>),
}

#[derive(Debug)]
enum Step {
    /// Convolution with epilogue `act(acc · scale + bias)` (`scale` absent: 1); with
    /// `residual: Some(a)`, the node's second input is added afterwards and `a` applied
    /// (a residual `Add` fused into a pointwise convolution).
    Conv {
        kind: ConvKind,
        geom: ConvGeom,
        w: Vec<f32>,
        scale: Option<Vec<f32>>,
        bias: Vec<f32>,
        act: Act,
        residual: Option<Act>,
    },
    /// `[expand 1x1 →] depthwise → project 1x1 [+ residual]` in bands of rows (see
    /// [`crate::fused`]); a residual is the node's second input.
    Block(Box<Block>),
    Scale {
        scale: Vec<f32>,
        shift: Vec<f32>,
    },
    Act(Act),
    Add(Act),
    Concat {
        axis: usize,
    },
    Copy,
    Transpose {
        perm: Vec<usize>,
    },
    Softmax,
    HardSwish,
    HardSigmoid,
    GlobalAvgPool,
    ChannelMul,
    MaxPool(crate::ops::Pool2d),
}

#[derive(Debug)]
struct CompiledNode {
    step: Step,
    inputs: Vec<ValueId>,
    output: ValueId,
    /// im2col scratch floats this step needs.
    scratch: usize,
}

/// Compiles the nodes of `g` into steps. A convolution followed by a batch norm (and then
/// an activation) that nothing else reads becomes one step whose epilogue computes
/// `act(acc · scale + shift)`: the BN is applied after the accumulation exactly as
/// PyTorch orders it, instead of being folded into the weights, which would round every
/// weight once more (folding is kept for quantization, see [`passes::fold_bn`]). The
/// graph's values are rewired so the fused step produces the last value of the chain.
fn compile_nodes(
    g: &mut Graph,
    shapes: &[Vec<usize>],
    tier: Tier,
    threads: usize,
    sparse: crate::sparse::SparseMode,
) -> Vec<CompiledNode> {
    let uses = g.use_counts();
    let mut out = Vec::with_capacity(g.nodes.len());
    let mut i = 0;
    while i < g.nodes.len() {
        let n = &g.nodes[i];
        let single =
            |v: ValueId, j: usize| uses[v] == 1 && g.nodes.get(j).is_some_and(|m| m.inputs == [v]);
        if let Op::Conv(c) = &n.op {
            let mut bn = None;
            let mut act = c.act;
            let mut last = i;
            if c.act == Act::None
                && single(n.output, i + 1)
                && let Op::BatchNorm(b) = &g.nodes[i + 1].op
            {
                bn = Some(b);
                last = i + 1;
                if single(g.nodes[i + 1].output, i + 2)
                    && let Op::Act(a) = g.nodes[i + 2].op
                {
                    act = a;
                    last = i + 2;
                }
            }
            let (mut step, scratch) = compile_conv(c, &shapes[n.inputs[0]], bn, act, tier, threads);
            if crate::sparse::decide(c, tier, sparse).sparse
                && let Step::Conv { kind, w, geom, .. } = &mut step
                && let Some(sw) = slimdet_kernels::sparse::SparseWeights::from_dense(
                    c.weight.data(),
                    geom.out_c,
                    geom.in_c,
                )
            {
                *kind = ConvKind::Sparse(Box::new(sw));
                *w = Vec::new();
            }
            let mut inputs = n.inputs.clone();
            if let Step::Conv { kind, residual, .. } = &mut step {
                // A residual add reading only this convolution's output and another value
                // becomes the convolution's second input.
                let v = g.nodes[last].output;
                if matches!(kind, ConvKind::Pointwise(_))
                    && uses[v] == 1
                    && let Some(add) = g.nodes.get(last + 1)
                    && let Op::Add(a) = add.op
                    && add.inputs.len() == 2
                    && add.inputs.contains(&v)
                    && add.inputs[0] != add.inputs[1]
                {
                    let other = if add.inputs[0] == v {
                        add.inputs[1]
                    } else {
                        add.inputs[0]
                    };
                    inputs.push(other);
                    *residual = Some(a);
                    last += 1;
                }
            }
            out.push(CompiledNode {
                step,
                inputs,
                output: g.nodes[last].output,
                scratch,
            });
            i = last + 1;
            continue;
        }
        let step = match &n.op {
            Op::Conv(_) => unreachable!("handled above"),
            Op::BatchNorm(bn) => {
                let (scale, shift) = bn.scale_shift();
                Step::Scale { scale, shift }
            }
            Op::Act(a) => Step::Act(*a),
            Op::Add(a) => Step::Add(*a),
            Op::Concat { axis } => Step::Concat { axis: *axis },
            Op::Reshape(_) => Step::Copy,
            Op::Transpose(p) => Step::Transpose { perm: p.clone() },
            Op::Softmax => Step::Softmax,
            Op::HardSwish => Step::HardSwish,
            Op::HardSigmoid => Step::HardSigmoid,
            Op::GlobalAvgPool => Step::GlobalAvgPool,
            Op::ChannelMul => Step::ChannelMul,
            Op::MaxPool(p) => Step::MaxPool(*p),
        };
        out.push(CompiledNode {
            step,
            inputs: n.inputs.clone(),
            output: n.output,
            scratch: 0,
        });
        i += 1;
    }
    out
}

/// A compiled, runnable model.
pub struct Plan {
    nodes: Vec<CompiledNode>,
    shapes: Vec<Vec<usize>>,
    slot_of: Vec<usize>,
    slots: Vec<Vec<f32>>,
    scratch: Vec<f32>,
    input: ValueId,
    outputs: Vec<(String, ValueId)>,
    tier: Tier,
    threads: usize,
    pool: Arc<rayon::ThreadPool>,
}

impl Plan {
    /// Compiles `graph` for inputs of shape `input` (`[N, H, W, C]`).
    pub fn new(graph: &Graph, input: &[usize], opts: &PlanOptions) -> Result<Self> {
        Self::with_sparse_mode(graph, input, opts, crate::sparse::mode())
    }

    /// [`Plan::new`] with an explicit sparse-kernel mode instead of `SLIMDET_SPARSE`.
    pub fn with_sparse_mode(
        graph: &Graph,
        input: &[usize],
        opts: &PlanOptions,
        sparse: crate::sparse::SparseMode,
    ) -> Result<Self> {
        let mut g = graph.clone();
        if opts.optimize {
            passes::fuse_activations(&mut g);
        }
        let shapes = shape::infer(&g, input)?;
        let threads = opts.threads.max(1);
        let tier = opts.tier.unwrap_or_else(slimdet_kernels::tier);
        let nodes = compile_nodes(&mut g, &shapes, tier, threads, sparse);
        let nodes = fuse_blocks(nodes, &g, threads);
        let scratch_len = nodes.iter().map(|n| n.scratch).max().unwrap_or(0);
        let (slot_of, slot_sizes) = assign_slots(&g, &nodes, &shapes);
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build()
            .map_err(|e| CoreError::Threads {
                threads,
                reason: e.to_string(),
            })?;
        Ok(Self {
            nodes,
            shapes,
            slot_of,
            slots: slot_sizes.into_iter().map(|n| vec![0.0; n]).collect(),
            scratch: vec![0.0; scratch_len],
            input: g.input,
            outputs: g.outputs.clone(),
            tier,
            threads,
            pool: Arc::new(pool),
        })
    }

    /// Bytes held by the activation arena (all slots plus im2col scratch).
    pub fn arena_bytes(&self) -> usize {
        (self.slots.iter().map(Vec::len).sum::<usize>() + self.scratch.len()) * 4
    }

    /// Bytes of packed weights and biases.
    pub fn weight_bytes(&self) -> usize {
        self.nodes
            .iter()
            .map(|n| match &n.step {
                Step::Conv {
                    kind,
                    w,
                    scale,
                    bias,
                    ..
                } => {
                    let sparse = match kind {
                        ConvKind::Sparse(sw) => sw.bytes(),
                        ConvKind::Pointwise(pw) | ConvKind::Im2col(pw) => pw.bytes(),
                        _ => 0,
                    };
                    (w.len() + bias.len() + scale.as_ref().map_or(0, Vec::len)) * 4 + sparse
                }
                Step::Scale { scale, shift } => (scale.len() + shift.len()) * 4,
                Step::Block(b) => {
                    let pw = |p: &PwPart| {
                        p.w.bytes() + (p.bias.len() + p.scale.as_ref().map_or(0, Vec::len)) * 4
                    };
                    let d = &b.dw;
                    b.expand.as_ref().map_or(0, pw)
                        + pw(&b.project)
                        + (d.w.len() + d.bias.len() + d.scale.as_ref().map_or(0, Vec::len)) * 4
                }
                _ => 0,
            })
            .sum()
    }

    /// Number of convolutions running on the sparse kernel.
    pub fn sparse_convs(&self) -> usize {
        self.nodes
            .iter()
            .filter(|n| {
                matches!(
                    n.step,
                    Step::Conv {
                        kind: ConvKind::Sparse(_),
                        ..
                    }
                )
            })
            .count()
    }

    /// The kernel tier in use.
    pub fn tier(&self) -> Tier {
        self.tier
    }

    /// Worker threads.
    pub fn threads(&self) -> usize {
        self.threads
    }

    /// The compiled input shape `[N, H, W, C]`.
    pub fn input_shape(&self) -> &[usize] {
        &self.shapes[self.input]
    }

    /// Output names and shapes, in graph order.
    pub fn output_shapes(&self) -> Vec<(&str, &[usize])> {
        self.outputs
            .iter()
            .map(|(n, v)| (n.as_str(), self.shapes[*v].as_slice()))
            .collect()
    }

    /// Runs the model on `input` (NHWC, the compiled shape) and returns the outputs in
    /// graph order, each a flat row-major slice of its shape.
    pub fn run(&mut self, input: &[f32]) -> Result<Vec<&[f32]>> {
        let expected = self.shapes[self.input].iter().product::<usize>();
        if input.len() != expected {
            return Err(CoreError::InputShape {
                expected: self.shapes[self.input].clone(),
                got: input.len(),
            });
        }
        let pool = Arc::clone(&self.pool);
        pool.install(|| {
            self.slots[self.slot_of[self.input]][..expected].copy_from_slice(input);
            for i in 0..self.nodes.len() {
                self.exec_node(i);
            }
        });
        Ok(self
            .outputs
            .iter()
            .map(|(_, v)| {
                let len = self.shapes[*v].iter().product::<usize>();
                &self.slots[self.slot_of[*v]][..len]
            })
            .collect())
    }

    /// Runs once like [`Plan::run`] and returns, per compiled step, its kind, output shape
    /// and wall time in milliseconds (for `slimdet bench --profile`).
    pub fn profile(&mut self, input: &[f32]) -> Result<Vec<(String, Vec<usize>, f64)>> {
        self.run(input)?;
        let pool = Arc::clone(&self.pool);
        let mut out = Vec::with_capacity(self.nodes.len());
        pool.install(|| {
            for i in 0..self.nodes.len() {
                let t = std::time::Instant::now();
                self.exec_node(i);
                let ms = t.elapsed().as_secs_f64() * 1e3;
                let kind = match &self.nodes[i].step {
                    Step::Conv {
                        kind,
                        geom,
                        residual,
                        ..
                    } => {
                        let name = format!("{kind:?}");
                        let name = name.split(['(', ' ']).next().unwrap_or("");
                        format!(
                            "{name}{} {}x{} s{} {}->{} @{}x{}",
                            if residual.is_some() { "+Add" } else { "" },
                            geom.kh,
                            geom.kw,
                            geom.stride_h,
                            geom.in_c,
                            geom.out_c,
                            geom.in_h,
                            geom.in_w
                        )
                    }
                    Step::Block(b) => b.describe(),
                    other => format!("{other:?}")
                        .split([' ', '(', '{'])
                        .next()
                        .unwrap_or("")
                        .to_string(),
                };
                out.push((kind, self.shapes[self.nodes[i].output].clone(), ms));
            }
        });
        Ok(out)
    }

    fn exec_node(&mut self, i: usize) {
        let node = &self.nodes[i];
        let out_slot = self.slot_of[node.output];
        let out_len = self.shapes[node.output].iter().product::<usize>();
        // Take the output buffer out of the arena so inputs can be borrowed alongside it;
        // slots never alias their node's inputs (see `assign_slots`), and `take` does not
        // allocate.
        let mut out_buf = std::mem::take(&mut self.slots[out_slot]);
        let out = &mut out_buf[..out_len];
        let input = |k: usize| {
            let v = node.inputs[k];
            &self.slots[self.slot_of[v]][..self.shapes[v].iter().product::<usize>()]
        };
        let in_shape = &self.shapes[node.inputs[0]];
        match &node.step {
            Step::Conv {
                kind,
                geom,
                w,
                scale,
                bias,
                act,
                residual,
            } => {
                let epi = Epilogue {
                    scale: scale.as_deref(),
                    bias,
                    act: *act,
                };
                let res = residual.map(|a| (input(1), a));
                run_conv(
                    kind,
                    geom,
                    w,
                    &epi,
                    input(0),
                    res,
                    in_shape[0],
                    out,
                    &mut self.scratch,
                    self.tier,
                    self.threads,
                )
            }
            Step::Block(b) => b.run(
                input(0),
                (node.inputs.len() > 1).then(|| input(1)),
                in_shape[0],
                out,
                &mut self.scratch,
                self.tier,
                self.threads,
            ),
            Step::Scale { scale, shift } => scale_channels(input(0), scale, shift, out),
            Step::Act(a) => {
                out.copy_from_slice(input(0));
                a.apply_slice(out);
            }
            Step::Add(a) => {
                let (x, y) = (input(0), input(1));
                for ((o, p), q) in out.iter_mut().zip(x).zip(y) {
                    *o = a.apply(p + q);
                }
            }
            Step::Concat { axis } => {
                let outer: usize = in_shape[..*axis].iter().product();
                let mut offset = 0;
                let out_inner: usize = self.shapes[node.output][*axis..].iter().product();
                for k in 0..node.inputs.len() {
                    let s = &self.shapes[node.inputs[k]];
                    let inner: usize = s[*axis..].iter().product();
                    let x = input(k);
                    for o in 0..outer {
                        out[o * out_inner + offset..o * out_inner + offset + inner]
                            .copy_from_slice(&x[o * inner..(o + 1) * inner]);
                    }
                    offset += inner;
                }
            }
            Step::Copy => out.copy_from_slice(input(0)),
            Step::Transpose { perm } => transpose(input(0), in_shape, perm, out),
            Step::Softmax => {
                let k = *in_shape.last().unwrap_or(&1);
                for (o, x) in out.chunks_mut(k).zip(input(0).chunks(k)) {
                    softmax_row(x, o);
                }
            }
            Step::HardSwish => {
                for (o, &x) in out.iter_mut().zip(input(0)) {
                    *o = slimdet_kernels::act::hard_swish(x);
                }
            }
            Step::HardSigmoid => {
                for (o, &x) in out.iter_mut().zip(input(0)) {
                    *o = slimdet_kernels::act::hard_sigmoid(x);
                }
            }
            Step::GlobalAvgPool => global_avg_pool(input(0), in_shape, out),
            Step::MaxPool(p) => max_pool(p, input(0), in_shape, &self.shapes[node.output], out),
            Step::ChannelMul => channel_mul(input(0), input(1), in_shape, out),
        }
        self.slots[out_slot] = out_buf;
    }
}

/// Softmax of one row, max-subtracted for stability
/// ([`slimdet_kernels::softmax::softmax_row`], identical to its vectorised row kernel).
pub fn softmax_row(x: &[f32], out: &mut [f32]) {
    slimdet_kernels::softmax::softmax_row(x, out);
}

/// Softmax of every row of `x` `[rows, k]` into `out`, on the process's kernel tier.
///
/// # Panics
/// If `k` is 0 or the lengths are not whole rows (programmer errors).
pub fn softmax_rows(x: &[f32], k: usize, out: &mut [f32]) {
    slimdet_kernels::softmax::softmax_rows(slimdet_kernels::tier(), x, k, out);
}

/// Assigns every value an arena slot by liveness: a slot is reused once the value in it
/// has been read for the last time, and never by a node that still reads it. Graph
/// outputs keep their slots. Returns the slot of each value and each slot's size.
fn assign_slots(
    g: &Graph,
    nodes: &[CompiledNode],
    shapes: &[Vec<usize>],
) -> (Vec<usize>, Vec<usize>) {
    let n_nodes = nodes.len();
    let mut last_use = vec![0usize; g.num_values];
    for (i, n) in nodes.iter().enumerate() {
        for &v in &n.inputs {
            last_use[v] = last_use[v].max(i);
        }
    }
    for (_, v) in &g.outputs {
        last_use[*v] = usize::MAX;
    }
    let numel = |v: ValueId| shapes[v].iter().product::<usize>();
    let mut slot_of = vec![usize::MAX; g.num_values];
    let mut sizes: Vec<usize> = Vec::new();
    let mut free: Vec<usize> = Vec::new();
    let take = |need: usize, sizes: &mut Vec<usize>, free: &mut Vec<usize>| -> usize {
        // Best fit among free slots; otherwise grow the largest free one; otherwise a new one.
        let best = free
            .iter()
            .enumerate()
            .filter(|(_, s)| sizes[**s] >= need)
            .min_by_key(|(_, s)| sizes[**s])
            .map(|(i, _)| i)
            .or_else(|| (0..free.len()).max_by_key(|&i| sizes[free[i]]));
        match best {
            Some(i) => {
                let s = free.swap_remove(i);
                sizes[s] = sizes[s].max(need);
                s
            }
            None => {
                sizes.push(need);
                sizes.len() - 1
            }
        }
    };
    slot_of[g.input] = take(numel(g.input), &mut sizes, &mut free);
    if n_nodes == 0 {
        return (slot_of, sizes);
    }
    for (i, n) in nodes.iter().enumerate() {
        slot_of[n.output] = take(numel(n.output), &mut sizes, &mut free);
        let mut released: Vec<ValueId> = n
            .inputs
            .iter()
            .copied()
            .filter(|&v| last_use[v] == i)
            .collect();
        released.sort_unstable();
        released.dedup();
        free.extend(released.into_iter().map(|v| slot_of[v]));
        if last_use[n.output] == 0 && !g.outputs.iter().any(|(_, v)| *v == n.output) {
            // Produced but never read: its slot is free again right away.
            free.push(slot_of[n.output]);
        }
    }
    (slot_of, sizes)
}
