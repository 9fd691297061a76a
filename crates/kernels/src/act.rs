//! Activation functions fused into kernel epilogues.

/// An element-wise activation applied after a convolution or an add.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Default, Hash)]
pub enum Act {
    /// Identity.
    #[default]
    None,
    /// `max(x, 0)`.
    Relu,
    /// `min(max(x, 0), 6)`.
    Relu6,
}

impl Act {
    /// Applies the activation to one value.
    #[inline(always)]
    pub fn apply(self, x: f32) -> f32 {
        match self {
            Act::None => x,
            Act::Relu => x.max(0.0),
            Act::Relu6 => x.clamp(0.0, 6.0),
        }
    }

    /// Lower and upper clamp bounds equivalent to this activation.
    pub fn bounds(self) -> (f32, f32) {
        match self {
            Act::None => (f32::NEG_INFINITY, f32::INFINITY),
            Act::Relu => (0.0, f32::INFINITY),
            Act::Relu6 => (0.0, 6.0),
        }
    }

    /// Applies the activation in place to a slice.
    pub fn apply_slice(self, xs: &mut [f32]) {
        if self == Act::None {
            return;
        }
        let (lo, hi) = self.bounds();
        for x in xs {
            *x = x.max(lo).min(hi);
        }
    }

    /// Short name used in kernel ids, logs and CSV rows.
    pub fn name(self) -> &'static str {
        match self {
            Act::None => "none",
            Act::Relu => "relu",
            Act::Relu6 => "relu6",
        }
    }
}

/// MobileNetV3's h-swish, `x · relu6(x + 3) / 6`, in PyTorch's order of operations
/// (`x * F.relu6(x + 3) / 6`: the product first, then the division).
#[inline(always)]
pub fn hard_swish(x: f32) -> f32 {
    x * (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// MobileNetV3's h-sigmoid, `relu6(x + 3) / 6`.
#[inline(always)]
pub fn hard_sigmoid(x: f32) -> f32 {
    (x + 3.0).clamp(0.0, 6.0) / 6.0
}

/// Derivative of [`hard_swish`]: `x / 3 + 1/2` inside `(-3, 3)`, `0` at and below −3, `1` at
/// and above 3 (what PyTorch's autograd gives through `x * relu6(x + 3) / 6`, whose ReLU6
/// passes no gradient at its bounds).
#[inline(always)]
pub fn hard_swish_grad(x: f32) -> f32 {
    if x <= -3.0 {
        0.0
    } else if x < 3.0 {
        x / 3.0 + 0.5
    } else {
        1.0
    }
}

/// Derivative of [`hard_sigmoid`]: `1/6` inside `(-3, 3)`, else `0`.
#[inline(always)]
pub fn hard_sigmoid_grad(x: f32) -> f32 {
    if x > -3.0 && x < 3.0 { 1.0 / 6.0 } else { 0.0 }
}
