//! The operators that quantized models run in f32, between their integer layers.
//!
//! The rule: convolutions and residual adds run on the integer kernels; squeeze-and-excite's
//! global average pool and channel-wise multiply, and a batch norm that no convolution
//! precedes (VGG16-SSD's source add-on), run in f32 on dequantized inputs, and the next
//! integer layer quantizes their output with its calibrated scale; max pooling runs on
//! `u8` codes when its input has them (exact: quantization is monotone, so the maximum
//! commutes with it, and the output keeps the input's scale and zero point), and h-swish
//! and h-sigmoid through a 256-entry code table built from this f32 function; both fall
//! back to f32 when their input is not quantized. The same code serves the
//! calibration runner ([`crate::float_exec`]) and the integer engine, so both see the
//! same values.

use slimdet_core::{Op, Pool2d};
use slimdet_kernels::act::{hard_sigmoid, hard_swish};

/// One f32 operator with the shapes it runs on (batch 1).
#[derive(Clone, Debug)]
pub(crate) enum FloatOp {
    /// `x · scale + shift` per channel (an unfolded batch norm).
    Scale {
        /// Per-channel factor.
        scale: Vec<f32>,
        /// Per-channel offset.
        shift: Vec<f32>,
    },
    /// `x · relu6(x + 3) / 6`.
    HardSwish,
    /// `relu6(x + 3) / 6`.
    HardSigmoid,
    /// `[N, H, W, C]` (`shape`) → `[N, 1, 1, C]`.
    GlobalAvgPool {
        /// Input shape.
        shape: Vec<usize>,
    },
    /// `x · s`: `x` of `shape`, `s` `[N, 1, 1, C]`.
    ChannelMul {
        /// Shape of `x`.
        shape: Vec<usize>,
    },
    /// Max pooling from `shape` to `out_shape`.
    MaxPool {
        /// The window.
        p: Pool2d,
        /// Input shape.
        shape: Vec<usize>,
        /// Output shape.
        out_shape: Vec<usize>,
    },
}

impl FloatOp {
    /// The f32 form of `op` on inputs of `shapes` with output `out_shape`; `None` for the
    /// operators the engines handle themselves.
    pub(crate) fn new(op: &Op, shapes: &[&[usize]], out_shape: &[usize]) -> Option<Self> {
        let shape = shapes.first()?.to_vec();
        Some(match op {
            Op::BatchNorm(bn) => {
                let (scale, shift) = bn.scale_shift();
                FloatOp::Scale { scale, shift }
            }
            Op::HardSwish => FloatOp::HardSwish,
            Op::HardSigmoid => FloatOp::HardSigmoid,
            Op::GlobalAvgPool => FloatOp::GlobalAvgPool { shape },
            Op::ChannelMul => FloatOp::ChannelMul { shape },
            Op::MaxPool(p) => FloatOp::MaxPool {
                p: *p,
                shape,
                out_shape: out_shape.to_vec(),
            },
            _ => return None,
        })
    }

    /// Runs on `xs` (one slice per input) into `out`.
    pub(crate) fn run(&self, xs: &[&[f32]], out: &mut [f32]) {
        let x = xs[0];
        match self {
            FloatOp::Scale { scale, shift } => {
                slimdet_core::exec::scale_channels(x, scale, shift, out)
            }
            FloatOp::HardSwish => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = hard_swish(v);
                }
            }
            FloatOp::HardSigmoid => {
                for (o, &v) in out.iter_mut().zip(x) {
                    *o = hard_sigmoid(v);
                }
            }
            FloatOp::GlobalAvgPool { shape } => {
                slimdet_core::exec::global_avg_pool(x, shape, out);
            }
            FloatOp::ChannelMul { shape } => slimdet_core::exec::channel_mul(x, xs[1], shape, out),
            FloatOp::MaxPool {
                p,
                shape,
                out_shape,
            } => slimdet_core::exec::max_pool(p, x, shape, out_shape, out),
        }
    }
}
