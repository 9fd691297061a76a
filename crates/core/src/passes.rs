//! Graph rewrites: BN folding and activation fusion (which keep the function), and
//! TensorFlow's `SAME` padding (which sets a convention imported graphs need).

use slimdet_kernels::Act;

use crate::graph::Graph;
use crate::ops::Op;

/// Folds every BatchNorm that directly follows a convolution (whose output nothing else
/// reads, and which has no fused activation yet) into that convolution:
/// `W' = W·s`, `b' = β + (b − μ)·s` with `s = γ / sqrt(σ² + eps)` (spec §3.3).
/// Returns the number of BNs folded.
pub fn fold_bn(g: &mut Graph) -> usize {
    let mut folded = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::BatchNorm(bn) = &g.nodes[i].op else {
            i += 1;
            continue;
        };
        let src = g.nodes[i].inputs[0];
        let uses = g.use_counts();
        let Some(p) = g.producer(src) else {
            i += 1;
            continue;
        };
        let foldable =
            matches!(&g.nodes[p].op, Op::Conv(c) if c.act == Act::None) && uses[src] == 1;
        if !foldable {
            i += 1;
            continue;
        }
        let (scale, shift) = bn.scale_shift_f64();
        let out = g.nodes[i].output;
        let Op::Conv(conv) = &mut g.nodes[p].op else {
            unreachable!("checked above")
        };
        let oc = conv.out_channels();
        let per_out = conv.weight.numel() / oc;
        for (o, chunk) in conv.weight.data_mut().chunks_mut(per_out).enumerate() {
            for w in chunk {
                *w = (*w as f64 * scale[o]) as f32;
            }
        }
        let mut bias = conv
            .bias
            .take()
            .unwrap_or_else(|| crate::Tensor::zeros(vec![oc]));
        for (o, b) in bias.data_mut().iter_mut().enumerate() {
            // b' = β + (b − μ)·s = shift + b·s (shift already holds β − μ·s).
            *b = (shift[o] + *b as f64 * scale[o]) as f32;
        }
        conv.bias = Some(bias);
        g.nodes[p].output = out;
        g.nodes.remove(i);
        folded += 1;
    }
    folded
}

/// Fuses every standalone activation into the convolution or add that produces its
/// input, when nothing else reads that input. Returns the number fused.
pub fn fuse_activations(g: &mut Graph) -> usize {
    let mut fused = 0;
    let mut i = 0;
    while i < g.nodes.len() {
        let Op::Act(act) = g.nodes[i].op else {
            i += 1;
            continue;
        };
        let src = g.nodes[i].inputs[0];
        let uses = g.use_counts();
        let Some(p) = g.producer(src) else {
            i += 1;
            continue;
        };
        let slot = match &mut g.nodes[p].op {
            Op::Conv(c) if c.act == Act::None => Some(&mut c.act),
            Op::Add(a) if *a == Act::None => Some(a),
            _ => None,
        };
        match slot {
            Some(slot) if uses[src] == 1 => {
                *slot = act;
                g.nodes[p].output = g.nodes[i].output;
                g.nodes.remove(i);
                fused += 1;
            }
            _ => i += 1,
        }
    }
    fused
}

/// TensorFlow's `SAME` padding for every convolution of `g` on inputs of shape `input`
/// (`[N, H, W, C]`): along each axis the total `max((⌈n/s⌉ − 1)·s + span − n, 0)` is
/// split with the odd zero after (`span = dil·(k − 1) + 1`), so a stride-2 3x3 conv pads
/// 0 before and 1 after on an even size where PyTorch's `padding=1` pads 1 and 1. The
/// output sizes (`⌈n/s⌉`) are those of the graph's own padding whenever that padding was
/// `(k − 1)/2`, as in every TF OD API feature extractor, so nothing downstream changes.
/// Returns the number of convolutions whose padding changed.
///
/// # Errors
/// Shape inference of the graph fails.
pub fn tf_same_padding(g: &mut Graph, input: &[usize]) -> crate::Result<usize> {
    let shapes = crate::shape::infer(g, input)?;
    let mut changed = 0;
    for n in &mut g.nodes {
        let Op::Conv(c) = &mut n.op else { continue };
        let x = &shapes[n.inputs[0]];
        let [kh, kw] = c.kernel();
        let mut pad = [0; 2];
        let mut pad_end = [0; 2];
        for (axis, k) in [kh, kw].into_iter().enumerate() {
            let (len, s) = (x[1 + axis], c.stride[axis].max(1));
            let span = c.dilation[axis] * (k.max(1) - 1) + 1;
            let total = ((len.div_ceil(s).max(1) - 1) * s + span).saturating_sub(len);
            pad[axis] = total / 2;
            pad_end[axis] = total - total / 2;
        }
        if (pad, pad_end) != (c.pad, c.pad_end) {
            c.pad = pad;
            c.pad_end = pad_end;
            changed += 1;
        }
    }
    Ok(changed)
}
