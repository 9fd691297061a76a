//! The quantized model: quantization parameters of every activation, int8 weights with
//! their scales, and the layers kept in f32.

use std::collections::{BTreeMap, BTreeSet};
use std::sync::Arc;

use slimdet_core::{Act, Graph, Op};
use slimdet_models::{Detector, Head};

use crate::options::{Activations, Granularity, Mode, Observer};

/// Affine quantization of one activation tensor in the `u8` domain:
/// `real = scale · (code − zero_point)`.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct QParams {
    /// Step between codes (> 0).
    pub scale: f32,
    /// Code of the real value 0, in `0..=255` (128 for symmetric `i8`).
    pub zero_point: i32,
}

impl QParams {
    /// Parameters covering `[lo, hi]` (widened to contain 0): asymmetric over 0..=255
    /// for `u8`, symmetric ±127 around code 128 for `i8`.
    pub fn from_range(lo: f32, hi: f32, act: Activations) -> QParams {
        let (lo, hi) = (lo.min(0.0), hi.max(0.0));
        match act {
            Activations::U8 => {
                let span = (hi - lo).max(1e-8);
                let scale = span / 255.0;
                let zero_point = ((-lo / scale).round() as i32).clamp(0, 255);
                QParams { scale, zero_point }
            }
            Activations::I8 => {
                let a = lo.abs().max(hi.abs()).max(1e-8);
                QParams {
                    scale: a / 127.0,
                    zero_point: 128,
                }
            }
        }
    }

    /// The lowest code the representation uses (1 for symmetric `i8`, else 0).
    pub fn base_min(act: Activations) -> i32 {
        match act {
            Activations::U8 => 0,
            Activations::I8 => 1,
        }
    }

    /// Quantizes one value.
    #[inline]
    pub fn quantize(&self, x: f32, qmin: i32) -> u8 {
        ((x / self.scale).round() as i32 + self.zero_point).clamp(qmin, 255) as u8
    }

    /// Quantizes a slice (the network input, a float layer's output) with `x · (1/scale)`
    /// rounded half to even, on the widest path `tier` allows
    /// ([`slimdet_kernels::quant::quantize_f32_u8`]; every tier gives the same bytes).
    /// Ties differ from [`QParams::quantize`] (half away from zero) only on exact halves.
    pub fn quantize_slice(
        &self,
        tier: slimdet_kernels::Tier,
        xs: &[f32],
        out: &mut [u8],
        qmin: i32,
    ) {
        let p = slimdet_kernels::quant::QuantizeParams {
            inv_scale: 1.0 / self.scale,
            zero_point: self.zero_point,
            qmin,
        };
        slimdet_kernels::quant::quantize_f32_u8(tier, xs, p, out);
    }

    /// Dequantizes one code.
    #[inline]
    pub fn dequantize(&self, q: u8) -> f32 {
        (q as i32 - self.zero_point) as f32 * self.scale
    }

    /// Codes `[qmin, qmax]` equivalent to clamping with `act` (ReLU6 →
    /// `[zp, zp + round(6 / scale)]`), within `[base, 255]`.
    pub fn clamp_codes(&self, act: Act, base: i32) -> (u8, u8) {
        let (lo, hi) = act.bounds();
        let code = |v: f32| {
            if v.is_finite() {
                ((v / self.scale).round() as i64 + self.zero_point as i64).clamp(base as i64, 255)
                    as i32
            } else if v < 0.0 {
                base
            } else {
                255
            }
        };
        (code(lo) as u8, code(hi) as u8)
    }
}

/// The stored bias of a quantized convolution.
#[derive(Clone, Debug, PartialEq)]
pub enum QBias {
    /// Static: `round(b / (s_in · s_w[o]))`, in accumulator units.
    I32(Vec<i32>),
    /// Dynamic: the f32 bias (the input scale is only known at run time).
    F32(Vec<f32>),
}

/// Int8 parameters of one convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct QLayer {
    /// Weights, OIHW `[O, I / groups, kh, kw]`, symmetric (zero point 0), in `-127..=127`.
    pub weight: Vec<i8>,
    /// Weight shape `[O, I / groups, kh, kw]`.
    pub shape: [usize; 4],
    /// `[O]` weight scales (all equal for per-tensor granularity).
    pub weight_scale: Vec<f32>,
    /// Bias.
    pub bias: QBias,
}

impl QLayer {
    /// Writes this layer's f32 view into `c`: weights `q · s_w`, and the bias
    /// `b_i32 · s_in · s_w` (static, rounded once from f64) or the f32 bias (dynamic).
    /// The view is what the fake-quant simulation runs and what `info` reports.
    pub fn write_view(&self, c: &mut slimdet_core::Conv2d, in_scale: Option<f32>) {
        let per = self.weight.len() / self.shape[0].max(1);
        for (i, w) in c.weight.data_mut().iter_mut().enumerate() {
            *w = self.weight[i] as f32 * self.weight_scale[i / per];
        }
        let bias: Vec<f32> = match (&self.bias, in_scale) {
            (QBias::I32(b), Some(si)) => b
                .iter()
                .zip(&self.weight_scale)
                .map(|(&b, &sw)| (b as f64 * si as f64 * sw as f64) as f32)
                .collect(),
            (QBias::I32(b), None) => b.iter().map(|&b| b as f32).collect(),
            (QBias::F32(b), _) => b.clone(),
        };
        let n = bias.len();
        c.bias = slimdet_core::Tensor::new(vec![n], bias).ok();
    }
}

/// A quantized detector: what [`crate::quantize`] produces and what the quantized file
/// stores.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantizedDetector {
    /// Priors, pre/post-processing and class names (everything but the network).
    pub head: Head,
    /// Static int8, dynamic int8, or fp16 storage.
    pub mode: Mode,
    /// Activation representation.
    pub activations: Activations,
    /// Weight scale granularity.
    pub granularity: Granularity,
    /// Observer used for the activation ranges.
    pub observer: Observer,
    /// For int8 modes the prepared graph (BN folded, activations fused) whose quantized
    /// convolutions hold their dequantized weights `q · s`; for fp16 the original graph
    /// with weights rounded to half precision.
    pub graph: Graph,
    /// Quantization of every value of `graph` (static mode; `None` elsewhere).
    pub act: Vec<Option<QParams>>,
    /// Int8 parameters of each quantized convolution, by node name.
    pub layers: BTreeMap<String, QLayer>,
    /// Conv and add nodes kept in f32.
    pub keep_float: BTreeSet<String>,
}

impl QuantizedDetector {
    /// A [`Detector`] whose predictor runs this model: the int8 engine for static and
    /// dynamic modes, the f32 engine on the half-precision weights for fp16. Its graph is
    /// the f32 view (so `info`-style statistics still work).
    pub fn to_detector(&self) -> Detector {
        let mut det = Detector::from_parts(self.head.clone(), self.graph.clone());
        if self.mode != Mode::Fp16 {
            det.backend = Some(Arc::new(crate::int8_exec::Int8Factory::new(Arc::new(
                self.clone(),
            ))));
        }
        det
    }

    /// Activation code floor of this model's representation.
    pub fn base_min(&self) -> i32 {
        QParams::base_min(self.activations)
    }

    /// The act fused into the node producing value `v`, if any.
    pub fn producer_act(&self, v: usize) -> Act {
        self.graph
            .nodes
            .iter()
            .find(|n| n.output == v)
            .map_or(Act::None, |n| match &n.op {
                Op::Conv(c) => c.act,
                Op::Add(a) => *a,
                Op::Act(a) => *a,
                _ => Act::None,
            })
    }

    /// Bytes of weights as stored: int8 weights, f32 scales and 32-bit biases for
    /// quantized layers, f32 (or f16) for the rest.
    pub fn weight_bytes(&self) -> usize {
        let elem = if self.mode == Mode::Fp16 { 2 } else { 4 };
        self.graph
            .params()
            .iter()
            .map(|(k, t)| {
                let name = k.rsplit_once('.').map_or("", |(n, _)| n);
                match self.layers.get(name) {
                    Some(l) if k.ends_with(".weight") => l.weight.len() + 4 * l.weight_scale.len(),
                    Some(_) => 4 * t.numel(),
                    None => elem * t.numel(),
                }
            })
            .sum()
    }
}
