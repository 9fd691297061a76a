//! Block fusion: inverted-residual chains (expand 1x1 -> depthwise -> project 1x1, or
//! depthwise -> project 1x1) whose expanded tensor is large are compiled into one
//! [`Step::Block`] that runs in bands of rows, so the expanded tensor never goes to memory
//! (see [`crate::fused`]).

use slimdet_kernels::Act;

use super::{CompiledNode, ConvKind, Step};
use crate::fused::{Block, DwPart, PwPart};
use crate::graph::Graph;

/// Smallest depthwise input (bytes per image) for which a block is fused: below it the
/// expanded tensor stays in L2 anyway, and the unfused steps are faster because each
/// pointwise call sees all pixels at once (bands of a few rows re-stream large weights
/// from L2 for every band: the 19x19 blocks with 576 channels lost 2x when fused).
const FUSE_MIN_BYTES: usize = 1024 * 1024;

/// Fuses `[pointwise →] depthwise → pointwise` chains whose intermediate values nothing
/// else reads into [`Step::Block`]s (see [`crate::fused`]); `SLIMDET_FUSE=0` turns this
/// off (for triage and A/B timing). Grows each fused node's scratch to what the block
/// needs on `threads` workers.
pub(super) fn fuse_blocks(
    nodes: Vec<CompiledNode>,
    g: &Graph,
    threads: usize,
) -> Vec<CompiledNode> {
    if std::env::var("SLIMDET_FUSE").is_ok_and(|v| v.trim() == "0") {
        return nodes;
    }
    let mut uses = vec![0usize; g.num_values];
    for n in &nodes {
        for &v in &n.inputs {
            uses[v] += 1;
        }
    }
    for (_, v) in &g.outputs {
        uses[*v] += 2;
    }
    let is_pw = |n: &CompiledNode, residual_ok: bool| {
        matches!(&n.step, Step::Conv { kind: ConvKind::Pointwise(_), residual, .. }
            if residual_ok || residual.is_none())
    };
    let is_dw = |n: &CompiledNode| {
        matches!(&n.step, Step::Conv { kind: ConvKind::Depthwise, geom, .. }
            if geom.in_h * geom.in_w * geom.in_c * 4 >= FUSE_MIN_BYTES)
    };
    // Whether `next` reads only `prev`'s output (as its first input), which nothing else reads.
    let feeds = |prev: &CompiledNode, next: &CompiledNode| {
        next.inputs.first() == Some(&prev.output) && uses[prev.output] == 1
    };
    let mut src = nodes.into_iter().map(Some).collect::<Vec<_>>();
    let mut out = Vec::with_capacity(src.len());
    let mut i = 0;
    while i < src.len() {
        let at = |j: usize| src.get(j).and_then(Option::as_ref);
        let triple = matches!((at(i), at(i + 1), at(i + 2)), (Some(e), Some(d), Some(p))
            if is_pw(e, false) && is_dw(d) && is_pw(p, true) && feeds(e, d) && feeds(d, p));
        let pair = !triple
            && matches!((at(i), at(i + 1)), (Some(d), Some(p))
                if is_dw(d) && is_pw(p, true) && feeds(d, p));
        if !(triple || pair) {
            out.extend(src[i].take());
            i += 1;
            continue;
        }
        let take = |j: usize, src: &mut Vec<Option<CompiledNode>>| {
            src[j].take().expect("each node is taken once")
        };
        let expand = triple.then(|| take(i, &mut src));
        let d = take(i + usize::from(triple), &mut src);
        let p = take(i + usize::from(triple) + 1, &mut src);
        let mut inputs = vec![expand.as_ref().map_or(d.inputs[0], |e| e.inputs[0])];
        inputs.extend(p.inputs.get(1));
        let output = p.output;
        let (project, residual) = into_pw(p.step);
        let block = Block::new(
            expand.map(|e| into_pw(e.step).0),
            into_dw(d.step),
            project,
            residual,
        );
        out.push(CompiledNode {
            scratch: block.scratch(threads),
            step: Step::Block(Box::new(block)),
            inputs,
            output,
        });
        i += if triple { 3 } else { 2 };
    }
    out
}

/// The parts of a pointwise [`Step::Conv`] (checked by the caller) and its residual act.
fn into_pw(step: Step) -> (PwPart, Option<Act>) {
    match step {
        Step::Conv {
            kind: ConvKind::Pointwise(w),
            scale,
            bias,
            act,
            residual,
            ..
        } => (
            PwPart {
                w: *w,
                scale,
                bias,
                act,
            },
            residual,
        ),
        _ => unreachable!("fuse_blocks only passes pointwise convolutions"),
    }
}

/// The parts of a depthwise [`Step::Conv`] (checked by the caller).
fn into_dw(step: Step) -> DwPart {
    match step {
        Step::Conv {
            kind: ConvKind::Depthwise,
            geom,
            w,
            scale,
            bias,
            act,
            ..
        } => DwPart {
            geom,
            w,
            scale,
            bias,
            act,
        },
        _ => unreachable!("fuse_blocks only passes depthwise convolutions"),
    }
}
