//! Plain-loop reference kernels: the specification every fast path is tested against.
//!
//! Nothing here is tuned; loops follow the mathematical definition directly.
//!
//! Every multiply-add is fused (`f32::mul_add`: one rounding, IEEE 754 fusedMultiplyAdd),
//! as in the SIMD kernels and in PyTorch's CPU convolutions. Rounding each product
//! separately is not less accurate, but its errors are independent of PyTorch's, and this
//! network amplifies any difference: with separate products the scalar tier's
//! MobileNetV2-SSD-Lite boxes were 1.27e-4 from PyTorch's (tolerance 1e-4), with fused
//! ones they are those of the AVX-512 tier, bit for bit (6.5e-5).

use crate::act::Act;
use crate::sgemm::GemmShape;

/// Runs `f` (plain loops using `f32::mul_add`) compiled with the FMA instructions when the
/// CPU has them, else as it is, where `mul_add` is a call to the C library's `fmaf`.
///
/// Both give the same bits, since `mul_add` is exactly rounded either way; this only
/// keeps the portable loops fast (vectorised, and ~30x faster than one `fmaf` call per
/// multiply-add) on the CPUs that have FMA.
#[inline(always)]
pub(crate) fn fused_loops<R>(f: impl FnOnce() -> R) -> R {
    #[cfg(target_arch = "x86_64")]
    {
        /// `f` inlined into a function compiled with FMA (and the AVX it implies).
        ///
        /// # Safety
        /// The CPU supports FMA and AVX.
        #[target_feature(enable = "fma")]
        unsafe fn with_fma<R>(f: impl FnOnce() -> R) -> R {
            f()
        }
        if std::arch::is_x86_feature_detected!("fma") {
            // SAFETY: FMA was detected at run time (std reports it only where the OS saves
            // the AVX state, so the AVX that FMA implies is usable too).
            return unsafe { with_fma(f) };
        }
    }
    f()
}

/// Reference `C (+)= A·B` (row-major, leading dimensions in `s`), accumulating in f32 in
/// k order with fused multiply-adds.
pub fn sgemm(s: GemmShape, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    fused_loops(
        #[inline(always)]
        || sgemm_loops(s, a, b, c, accumulate),
    )
}

#[inline(always)]
fn sgemm_loops(s: GemmShape, a: &[f32], b: &[f32], c: &mut [f32], accumulate: bool) {
    for i in 0..s.m {
        let crow = &mut c[i * s.ldc..i * s.ldc + s.n];
        if !accumulate {
            crow.fill(0.0);
        }
        for p in 0..s.k {
            let av = a[i * s.lda + p];
            let brow = &b[p * s.ldb..p * s.ldb + s.n];
            for (cv, bv) in crow.iter_mut().zip(brow) {
                *cv = av.mul_add(*bv, *cv);
            }
        }
    }
}

/// Geometry of a 2-D convolution over one NHWC image.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct ConvGeom {
    /// Input height.
    pub in_h: usize,
    /// Input width.
    pub in_w: usize,
    /// Input channels.
    pub in_c: usize,
    /// Output channels.
    pub out_c: usize,
    /// Kernel height.
    pub kh: usize,
    /// Kernel width.
    pub kw: usize,
    /// Vertical stride.
    pub stride_h: usize,
    /// Horizontal stride.
    pub stride_w: usize,
    /// Zero rows above the input.
    pub pad_h: usize,
    /// Zero columns left of the input.
    pub pad_w: usize,
    /// Zero rows below the input: `pad_h` for PyTorch's symmetric `padding=`; TensorFlow's
    /// `SAME` puts the odd one of an odd total here (e.g. 0 above, 1 below for a stride-2
    /// 3x3 on an even height).
    pub pad_h_end: usize,
    /// Zero columns right of the input (`pad_w` when symmetric).
    pub pad_w_end: usize,
    /// Vertical dilation.
    pub dil_h: usize,
    /// Horizontal dilation.
    pub dil_w: usize,
    /// Groups: `in_c` and `out_c` are both divisible by it.
    pub groups: usize,
}

impl ConvGeom {
    /// Output height: `floor((H + pad + pad_end − dil·(k − 1) − 1) / stride) + 1`.
    pub fn out_h(&self) -> usize {
        out_len_padded(
            self.in_h,
            self.kh,
            self.stride_h,
            [self.pad_h, self.pad_h_end],
            self.dil_h,
        )
    }

    /// Output width.
    pub fn out_w(&self) -> usize {
        out_len_padded(
            self.in_w,
            self.kw,
            self.stride_w,
            [self.pad_w, self.pad_w_end],
            self.dil_w,
        )
    }

    /// Whether the padding is the same on both sides of each axis (PyTorch's `padding=`).
    pub fn symmetric_padding(&self) -> bool {
        self.pad_h == self.pad_h_end && self.pad_w == self.pad_w_end
    }
}

/// Output length of a convolution along one axis with `pad` zeros on both sides (0 when
/// the kernel does not fit).
pub fn out_len(len: usize, k: usize, stride: usize, pad: usize, dil: usize) -> usize {
    out_len_padded(len, k, stride, [pad, pad], dil)
}

/// Output length along one axis with `pad[0]` zeros before and `pad[1]` after.
pub fn out_len_padded(len: usize, k: usize, stride: usize, pad: [usize; 2], dil: usize) -> usize {
    let span = dil * (k.max(1) - 1) + 1;
    let padded = len + pad[0] + pad[1];
    if padded < span || stride == 0 {
        0
    } else {
        (padded - span) / stride + 1
    }
}

/// Reference convolution of one NHWC image: each output starts at its bias and adds the
/// taps in `(ky, kx, ci)` order with fused multiply-adds.
///
/// - `input`: `[in_h, in_w, in_c]`
/// - `weight`: PyTorch OIHW `[out_c, in_c / groups, kh, kw]`
/// - `bias`: `[out_c]` or empty
/// - `out`: `[out_h, out_w, out_c]`
pub fn conv2d(
    g: &ConvGeom,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    out: &mut [f32],
) {
    fused_loops(
        #[inline(always)]
        || conv2d_loops(g, input, weight, bias, act, out),
    )
}

#[inline(always)]
fn conv2d_loops(
    g: &ConvGeom,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    act: Act,
    out: &mut [f32],
) {
    let (oh, ow) = (g.out_h(), g.out_w());
    let cin_g = g.in_c / g.groups;
    let cout_g = g.out_c / g.groups;
    for oy in 0..oh {
        for ox in 0..ow {
            for oc in 0..g.out_c {
                let grp = oc / cout_g;
                let mut acc = if bias.is_empty() { 0.0 } else { bias[oc] };
                for ky in 0..g.kh {
                    let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                    if iy < 0 || iy >= g.in_h as isize {
                        continue;
                    }
                    for kx in 0..g.kw {
                        let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
                        if ix < 0 || ix >= g.in_w as isize {
                            continue;
                        }
                        let base = (iy as usize * g.in_w + ix as usize) * g.in_c + grp * cin_g;
                        for ci in 0..cin_g {
                            let w = weight[((oc * cin_g + ci) * g.kh + ky) * g.kw + kx];
                            acc = input[base + ci].mul_add(w, acc);
                        }
                    }
                }
                out[(oy * ow + ox) * g.out_c + oc] = act.apply(acc);
            }
        }
    }
}

/// Reference pointwise (1x1) convolution, the specification of [`crate::pointwise`]:
/// each output sums `x[i, p] · w[p, j]` in `p` order from 0 with fused multiply-adds, then
/// applies the epilogue `res_act(act(acc · scale + bias) + residual)` (`acc · scale + bias`
/// fused too).
///
/// - `x`: `[m, k]`, `w`: `[k, n]`, `out` and `epi.residual`: `[m, n]`
pub fn pointwise(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    epi: &crate::pointwise::PwEpilogue,
    out: &mut [f32],
) {
    sgemm(GemmShape::dense(m, n, k), x, w, out, false);
    crate::pointwise::apply_epilogue(epi, out);
}
