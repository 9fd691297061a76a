//! Activations, add, concat, reshape, transpose and softmax: forward and backward.
//!
//! Activation derivatives follow PyTorch exactly at the kinks: ReLU passes the gradient
//! where `x > 0`, ReLU6 (`hardtanh(0, 6)`) where `0 < x < 6`; both are read off the output
//! (`0 < y` and `0 < y < 6` are the same sets), so the input need not be kept.

use rayon::prelude::*;
use slimdet_kernels::Act;

const CHUNK: usize = 1 << 15;

/// `act` applied in place.
pub(crate) fn act_forward(act: Act, y: &mut [f32]) {
    if act != Act::None {
        y.par_chunks_mut(CHUNK).for_each(|c| act.apply_slice(c));
    }
}

/// Multiplies `dy` in place by the derivative of `act`, read from the output `y`.
pub(crate) fn act_backward(act: Act, y: &[f32], dy: &mut [f32]) {
    let hi = match act {
        Act::None => return,
        Act::Relu => f32::INFINITY,
        Act::Relu6 => 6.0,
    };
    dy.par_chunks_mut(CHUNK)
        .zip(y.par_chunks(CHUNK))
        .for_each(|(d, yy)| {
            for (g, v) in d.iter_mut().zip(yy) {
                *g = if *v > 0.0 && *v < hi { *g } else { 0.0 };
            }
        });
}

/// `act(a + b)`, computed in `a`'s buffer.
pub(crate) fn add_forward(act: Act, mut a: Vec<f32>, b: &[f32]) -> Vec<f32> {
    for (p, q) in a.iter_mut().zip(b) {
        *p += q;
    }
    act_forward(act, &mut a);
    a
}

/// Concatenation along `axis` of inputs with shapes `shapes`; `out_inner` is the product
/// of the output shape from `axis` on.
pub(crate) fn concat_forward(
    axis: usize,
    shapes: &[&[usize]],
    xs: &[&[f32]],
    out_len: usize,
) -> Vec<f32> {
    let outer: usize = shapes[0][..axis].iter().product();
    let out_inner = out_len / outer.max(1);
    let mut out = vec![0.0f32; out_len];
    let mut offset = 0;
    for (s, x) in shapes.iter().zip(xs) {
        let inner: usize = s[axis..].iter().product();
        for o in 0..outer {
            out[o * out_inner + offset..o * out_inner + offset + inner]
                .copy_from_slice(&x[o * inner..(o + 1) * inner]);
        }
        offset += inner;
    }
    out
}

/// Splits the output gradient of a concat back into one gradient per input.
pub(crate) fn concat_backward(axis: usize, shapes: &[&[usize]], dy: &[f32]) -> Vec<Vec<f32>> {
    let outer: usize = shapes[0][..axis].iter().product();
    let out_inner = dy.len() / outer.max(1);
    let mut offset = 0;
    let mut grads = Vec::with_capacity(shapes.len());
    for s in shapes {
        let inner: usize = s[axis..].iter().product();
        let mut g = vec![0.0f32; outer * inner];
        for o in 0..outer {
            g[o * inner..(o + 1) * inner]
                .copy_from_slice(&dy[o * out_inner + offset..o * out_inner + offset + inner]);
        }
        offset += inner;
        grads.push(g);
    }
    grads
}

/// Axis permutation: output axis `i` is input axis `perm[i]`.
pub(crate) fn transpose(x: &[f32], shape: &[usize], perm: &[usize]) -> Vec<f32> {
    let mut out = vec![0.0f32; x.len()];
    slimdet_core::exec::transpose(x, shape, perm, &mut out);
    out
}

/// The permutation that undoes `perm`.
pub(crate) fn inverse_perm(perm: &[usize]) -> Vec<usize> {
    let mut inv = vec![0; perm.len()];
    for (i, &p) in perm.iter().enumerate() {
        inv[p] = i;
    }
    inv
}

/// Softmax over the last axis of length `k`.
pub(crate) fn softmax_forward(x: &[f32], k: usize) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    for (o, r) in y.chunks_mut(k).zip(x.chunks(k)) {
        slimdet_core::exec::softmax_row(r, o);
    }
    y
}

/// `dx = y ⊙ (dy − Σ dy·y)` per row.
pub(crate) fn softmax_backward(y: &[f32], dy: &[f32], k: usize) -> Vec<f32> {
    let mut dx = vec![0.0f32; y.len()];
    for ((o, yr), gr) in dx.chunks_mut(k).zip(y.chunks(k)).zip(dy.chunks(k)) {
        let dot: f32 = yr.iter().zip(gr).map(|(a, b)| a * b).sum();
        for j in 0..k {
            o[j] = yr[j] * (gr[j] - dot);
        }
    }
    dx
}
