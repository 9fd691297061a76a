//! MobileNetV3's ops, forward and backward: h-swish and h-sigmoid (element-wise, their
//! derivatives from the input, as PyTorch's autograd through `relu6(x + 3)` gives them),
//! and squeeze-and-excite's global average pool `[N, H, W, C]` → `[N, 1, 1, C]` and
//! channel-wise multiply `x · s` with `s` `[N, 1, 1, C]`.

use rayon::prelude::*;
use slimdet_kernels::act::{hard_sigmoid, hard_sigmoid_grad, hard_swish, hard_swish_grad};

const CHUNK: usize = 1 << 15;

/// `f` applied to every element of `x`.
fn map(x: &[f32], f: fn(f32) -> f32) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    y.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(y, x)| {
            for (o, &v) in y.iter_mut().zip(x) {
                *o = f(v);
            }
        });
    y
}

/// `dy · f'(x)`, in `dy`'s buffer.
fn chain(x: &[f32], mut dy: Vec<f32>, grad: fn(f32) -> f32) -> Vec<f32> {
    dy.par_chunks_mut(CHUNK)
        .zip(x.par_chunks(CHUNK))
        .for_each(|(d, x)| {
            for (g, &v) in d.iter_mut().zip(x) {
                *g *= grad(v);
            }
        });
    dy
}

/// h-swish of `x`.
pub(crate) fn hard_swish_forward(x: &[f32]) -> Vec<f32> {
    map(x, hard_swish)
}

/// dL/dx of h-swish from its input `x` and dL/dy.
pub(crate) fn hard_swish_backward(x: &[f32], dy: Vec<f32>) -> Vec<f32> {
    chain(x, dy, hard_swish_grad)
}

/// h-sigmoid of `x`.
pub(crate) fn hard_sigmoid_forward(x: &[f32]) -> Vec<f32> {
    map(x, hard_sigmoid)
}

/// dL/dx of h-sigmoid from its input `x` and dL/dy.
pub(crate) fn hard_sigmoid_backward(x: &[f32], dy: Vec<f32>) -> Vec<f32> {
    chain(x, dy, hard_sigmoid_grad)
}

/// Global average pool of `x` of shape `[N, H, W, C]`: `[N, C]` values.
pub(crate) fn gap_forward(x: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut y = vec![0.0f32; shape[0] * shape[3]];
    slimdet_core::exec::global_avg_pool(x, shape, &mut y);
    y
}

/// dL/dx of the global average pool: `dy[n, c] / (H·W)` at every pixel.
pub(crate) fn gap_backward(dy: &[f32], shape: &[usize]) -> Vec<f32> {
    let (hw, c) = (shape[1] * shape[2], shape[3]);
    let mut dx = vec![0.0f32; shape[0] * hw * c];
    let inv = 1.0 / hw as f32;
    dx.par_chunks_mut(hw * c)
        .zip(dy.par_chunks(c))
        .for_each(|(img, g)| {
            for px in img.chunks_mut(c) {
                for (o, &v) in px.iter_mut().zip(g) {
                    *o = v * inv;
                }
            }
        });
    dx
}

/// `x · s` for `x` of shape `[N, H, W, C]` and `s` `[N, C]`.
pub(crate) fn channel_mul_forward(x: &[f32], s: &[f32], shape: &[usize]) -> Vec<f32> {
    let mut y = vec![0.0f32; x.len()];
    slimdet_core::exec::channel_mul(x, s, shape, &mut y);
    y
}

/// dL/dx `dy · s` and dL/ds `Σ_hw dy · x` of [`channel_mul_forward`].
pub(crate) fn channel_mul_backward(
    x: &[f32],
    s: &[f32],
    dy: &[f32],
    shape: &[usize],
) -> (Vec<f32>, Vec<f32>) {
    let dx = channel_mul_forward(dy, s, shape);
    let (per_image, c) = (shape[1] * shape[2] * shape[3], shape[3]);
    let mut ds = vec![0.0f32; s.len()];
    ds.par_chunks_mut(c)
        .zip(x.par_chunks(per_image).zip(dy.par_chunks(per_image)))
        .for_each(|(ds, (x, dy))| {
            for (x, g) in x.chunks(c).zip(dy.chunks(c)) {
                for j in 0..c {
                    ds[j] += x[j] * g[j];
                }
            }
        });
    (dx, ds)
}

/// Max pooling of `x` (`shape` `[N, H, W, C]`) to `out_shape`.
pub(crate) fn max_pool_forward(
    p: &slimdet_core::Pool2d,
    x: &[f32],
    shape: &[usize],
    out_shape: &[usize],
) -> Vec<f32> {
    let mut y = vec![0.0f32; out_shape.iter().product()];
    slimdet_core::exec::max_pool(p, x, shape, out_shape, &mut y);
    y
}

/// dL/dx of max pooling: each output's gradient goes to the first maximum of its window
/// in scan order (PyTorch's choice), summed where windows overlap.
pub(crate) fn max_pool_backward(
    p: &slimdet_core::Pool2d,
    x: &[f32],
    shape: &[usize],
    out_shape: &[usize],
    dy: &[f32],
) -> Vec<f32> {
    let mut y = vec![0.0f32; dy.len()];
    let mut at = vec![0usize; dy.len()];
    slimdet_core::exec::max_pool_argmax(p, x, shape, out_shape, &mut y, &mut at);
    let mut dx = vec![0.0f32; x.len()];
    for (&i, &g) in at.iter().zip(dy) {
        dx[i] += g;
    }
    dx
}
