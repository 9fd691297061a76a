//! Operators of the graph IR and their parameters.
//!
//! Parameters are stored in PyTorch layouts (OIHW conv weights, `[C]` BN vectors) so a
//! graph maps one to one onto a state_dict and passes can rewrite it; the executor
//! repacks them for its kernels.

use slimdet_kernels::Act;

use crate::tensor::Tensor;

/// A 2-D convolution with optional bias and a fused activation.
#[derive(Clone, Debug, PartialEq)]
pub struct Conv2d {
    /// OIHW `[out_c, in_c / groups, kh, kw]`.
    pub weight: Tensor,
    /// `[out_c]`, if the layer has a bias.
    pub bias: Option<Tensor>,
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// Zero padding before each spatial axis, `[top, left]`.
    pub pad: [usize; 2],
    /// Zero padding after each axis, `[bottom, right]`: equal to `pad` for PyTorch's
    /// symmetric `padding=`; TensorFlow's `SAME` may put one more here.
    pub pad_end: [usize; 2],
    /// `[dil_h, dil_w]`.
    pub dilation: [usize; 2],
    /// Channel groups (`in_c` for depthwise).
    pub groups: usize,
    /// Activation applied to the output (fused by [`crate::passes::fuse_activations`]).
    pub act: Act,
}

impl Conv2d {
    /// A convolution without bias or activation, stride/pad/dilation given per axis equal.
    pub fn new(weight: Tensor, stride: usize, pad: usize, dilation: usize, groups: usize) -> Self {
        Self {
            weight,
            bias: None,
            stride: [stride, stride],
            pad: [pad, pad],
            pad_end: [pad, pad],
            dilation: [dilation, dilation],
            groups,
            act: Act::None,
        }
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.weight.shape()[0]
    }

    /// Input channels (`in_c / groups · groups`).
    pub fn in_channels(&self) -> usize {
        self.weight.shape()[1] * self.groups
    }

    /// `[kh, kw]`.
    pub fn kernel(&self) -> [usize; 2] {
        [self.weight.shape()[2], self.weight.shape()[3]]
    }

    /// The kernel geometry of this convolution on one image of an NHWC input of shape
    /// `in_shape` (`[N, H, W, C]`).
    pub fn geom(&self, in_shape: &[usize]) -> slimdet_kernels::reference::ConvGeom {
        let [kh, kw] = self.kernel();
        slimdet_kernels::reference::ConvGeom {
            in_h: in_shape[1],
            in_w: in_shape[2],
            in_c: in_shape[3],
            out_c: self.out_channels(),
            kh,
            kw,
            stride_h: self.stride[0],
            stride_w: self.stride[1],
            pad_h: self.pad[0],
            pad_w: self.pad[1],
            pad_h_end: self.pad_end[0],
            pad_w_end: self.pad_end[1],
            dil_h: self.dilation[0],
            dil_w: self.dilation[1],
            groups: self.groups,
        }
    }

    /// Whether every group has one input and one output channel.
    pub fn is_depthwise(&self) -> bool {
        self.groups > 1 && self.groups == self.in_channels() && self.groups == self.out_channels()
    }

    /// Whether this is a 1x1, stride 1, unpadded, ungrouped conv (a plain GEMM).
    pub fn is_pointwise(&self) -> bool {
        self.kernel() == [1, 1]
            && self.stride == [1, 1]
            && self.pad == [0, 0]
            && self.pad_end == [0, 0]
            && self.groups == 1
    }
}

/// Inference batch normalisation over the channel (last) axis.
#[derive(Clone, Debug, PartialEq)]
pub struct BatchNorm {
    /// γ, `[C]`.
    pub gamma: Tensor,
    /// β, `[C]`.
    pub beta: Tensor,
    /// Running mean, `[C]`.
    pub mean: Tensor,
    /// Running variance, `[C]`.
    pub var: Tensor,
    /// Added to the variance (PyTorch default 1e-5).
    pub eps: f32,
    /// PyTorch's `num_batches_tracked`, kept for a faithful round trip when present.
    pub num_batches_tracked: Option<i64>,
}

impl BatchNorm {
    /// Channels.
    pub fn channels(&self) -> usize {
        self.gamma.numel()
    }

    /// Per-channel `(scale, shift)` with `y = x·scale + shift`, computed in f64 so that
    /// folding rounds once per folded value.
    pub fn scale_shift_f64(&self) -> (Vec<f64>, Vec<f64>) {
        let mut scale = Vec::with_capacity(self.channels());
        let mut shift = Vec::with_capacity(self.channels());
        for c in 0..self.channels() {
            let s =
                self.gamma.data()[c] as f64 / (self.var.data()[c] as f64 + self.eps as f64).sqrt();
            scale.push(s);
            shift.push(self.beta.data()[c] as f64 - self.mean.data()[c] as f64 * s);
        }
        (scale, shift)
    }

    /// [`BatchNorm::scale_shift_f64`] rounded to f32.
    pub fn scale_shift(&self) -> (Vec<f32>, Vec<f32>) {
        let (a, b) = self.scale_shift_f64();
        (
            a.into_iter().map(|v| v as f32).collect(),
            b.into_iter().map(|v| v as f32).collect(),
        )
    }
}

/// A 2-D max pooling window (PyTorch's `MaxPool2d` without dilation).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Pool2d {
    /// `[kh, kw]`.
    pub kernel: [usize; 2],
    /// `[stride_h, stride_w]`.
    pub stride: [usize; 2],
    /// Padding on both sides of each axis, `[h, w]` (padded positions never win).
    pub pad: [usize; 2],
    /// PyTorch's `ceil_mode`: round the output size up, keeping only windows that start
    /// inside the input or its leading padding.
    pub ceil: bool,
}

impl Pool2d {
    /// Output size along axis `a` (0 = H, 1 = W) for an input of `n`, as PyTorch computes
    /// it; `None` when the window does not fit or the padding is more than half the kernel
    /// (which PyTorch refuses).
    pub fn out_size(&self, a: usize, n: usize) -> Option<usize> {
        let (k, s, p) = (self.kernel[a], self.stride[a], self.pad[a]);
        if k == 0 || s == 0 || 2 * p > k || n + 2 * p < k {
            return None;
        }
        let span = n + 2 * p - k;
        let mut out = if self.ceil {
            span.div_ceil(s)
        } else {
            span / s
        } + 1;
        if self.ceil && (out - 1) * s >= n + p {
            out -= 1;
        }
        Some(out)
    }
}

/// One operator. Inputs and the output are named by the [`crate::Node`] holding it.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// 2-D convolution, NHWC in and out.
    Conv(Conv2d),
    /// Inference batch norm over the last axis.
    BatchNorm(BatchNorm),
    /// Element-wise activation.
    Act(Act),
    /// Element-wise sum of two tensors of equal shape, then an activation.
    Add(Act),
    /// Concatenation of all inputs along `axis`.
    Concat {
        /// Axis (3 = channels for NHWC; 1 = priors for `[N, P, K]`).
        axis: usize,
    },
    /// Reshape keeping the element order. One entry may be `-1` (inferred); `0` keeps the
    /// input's size on that axis. `[0, -1, K]` turns NHWC head outputs into `[N, priors, K]`.
    Reshape(Vec<i64>),
    /// Axis permutation: output axis `i` is input axis `perm[i]`.
    Transpose(Vec<usize>),
    /// Softmax over the last axis.
    Softmax,
    /// MobileNetV3's h-swish, `x · relu6(x + 3) / 6`, element-wise
    /// ([`slimdet_kernels::act::hard_swish`]).
    HardSwish,
    /// MobileNetV3's h-sigmoid, `relu6(x + 3) / 6`, element-wise
    /// ([`slimdet_kernels::act::hard_sigmoid`]).
    HardSigmoid,
    /// Mean over the spatial axes, `[N, H, W, C]` → `[N, 1, 1, C]` (PyTorch's
    /// `AdaptiveAvgPool2d(1)`, the squeeze of squeeze-and-excite).
    GlobalAvgPool,
    /// `x · s` of `x` `[N, H, W, C]` and a per-image channel vector `s` `[N, 1, 1, C]`
    /// broadcast over H and W (the excite of squeeze-and-excite).
    ChannelMul,
    /// Max pooling, NHWC in and out (SqueezeNet's and VGG's pools).
    MaxPool(Pool2d),
}

impl Op {
    /// Short operator name for listings.
    pub fn kind(&self) -> &'static str {
        match self {
            Op::Conv(c) if c.is_depthwise() => "DwConv",
            Op::Conv(_) => "Conv",
            Op::BatchNorm(_) => "BatchNorm",
            Op::Act(_) => "Act",
            Op::Add(_) => "Add",
            Op::Concat { .. } => "Concat",
            Op::Reshape(_) => "Reshape",
            Op::Transpose(_) => "Transpose",
            Op::Softmax => "Softmax",
            Op::HardSwish => "HardSwish",
            Op::HardSigmoid => "HardSigmoid",
            Op::GlobalAvgPool => "GlobalAvgPool",
            Op::ChannelMul => "ChannelMul",
            Op::MaxPool(_) => "MaxPool",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::Pool2d;

    fn pool(k: usize, s: usize, p: usize, ceil: bool) -> Pool2d {
        Pool2d {
            kernel: [k, k],
            stride: [s, s],
            pad: [p, p],
            ceil,
        }
    }

    /// Output sizes as PyTorch's `MaxPool2d` gives them.
    #[test]
    fn pool_output_sizes_follow_pytorch() {
        // VGG16-SSD's ceil-mode pool (75 → 38) and SqueezeNet 1.1's floor-mode pools.
        assert_eq!(pool(2, 2, 0, true).out_size(0, 75), Some(38));
        assert_eq!(pool(2, 2, 0, false).out_size(0, 75), Some(37));
        assert_eq!(pool(3, 2, 0, false).out_size(0, 149), Some(74));
        assert_eq!(pool(3, 2, 0, false).out_size(0, 36), Some(17));
        // pool5: 3x3, stride 1, padding 1 keeps the size.
        assert_eq!(pool(3, 1, 1, false).out_size(0, 19), Some(19));
        // Ceil mode drops a last window that would start in the trailing padding.
        assert_eq!(pool(2, 2, 1, true).out_size(0, 3), Some(2));
        assert_eq!(pool(3, 2, 1, true).out_size(0, 5), Some(3));
        // Refused: padding over half the kernel, a window larger than the input, zeros.
        assert_eq!(pool(2, 2, 2, false).out_size(0, 8), None);
        assert_eq!(pool(5, 1, 0, false).out_size(0, 4), None);
        assert_eq!(pool(0, 1, 0, false).out_size(0, 4), None);
        assert_eq!(pool(2, 0, 0, false).out_size(0, 4), None);
    }
}
