//! Post-training quantization: choose the calibration subset, observe every activation,
//! quantize the weights, and assemble a [`QuantizedDetector`].

use std::collections::BTreeMap;

use slimdet_core::{Graph, Op, Tensor};
use slimdet_data::RgbImage;
use slimdet_models::Detector;

use crate::error::{QuantError, Result};
use crate::float_exec::FloatRunner;
use crate::model::{QBias, QLayer, QParams, QuantizedDetector};
use crate::observer::RangeStats;
use crate::options::{Granularity, Mode, QuantOptions};
use crate::prepare::{ConvKind, conv_kind, match_keep_float, prepare};

/// Something calibration can feed the network: an image (resized and normalised as the
/// predictor does) or an already preprocessed NHWC input `[1, H, W, 3]`.
pub trait CalibInput {
    /// The network input for `det`.
    fn to_input(&self, det: &Detector, index: usize) -> Result<Vec<f32>>;
}

impl CalibInput for RgbImage {
    fn to_input(&self, det: &Detector, _index: usize) -> Result<Vec<f32>> {
        let c = &det.config;
        let resized = slimdet_data::resize_rgb(self, c.input_w, c.input_h);
        let mut out = vec![0.0; det.input_shape().iter().product()];
        slimdet_data::normalize_into(&resized, c.mean, c.std, &mut out);
        Ok(out)
    }
}

impl CalibInput for Vec<f32> {
    fn to_input(&self, det: &Detector, index: usize) -> Result<Vec<f32>> {
        let expected: usize = det.input_shape().iter().product();
        if self.len() != expected {
            return Err(QuantError::InputShape {
                index,
                expected,
                got: self.len(),
            });
        }
        Ok(self.clone())
    }
}

/// Indices of a seeded subset of `n` of `total` items (all of them, in order, when
/// `n ≥ total`), sorted.
pub fn calibration_subset(total: usize, n: usize, seed: u64) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..total).collect();
    if n >= total {
        return idx;
    }
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    for i in 0..n {
        s ^= s >> 12;
        s ^= s << 25;
        s ^= s >> 27;
        let r = s.wrapping_mul(0x2545_F491_4F6C_DD1D);
        let j = i + (r % (total - i) as u64) as usize;
        idx.swap(i, j);
    }
    idx.truncate(n);
    idx.sort_unstable();
    idx
}

/// Quantizes `det`.
///
/// Static mode calibrates on a seeded subset of at most `opts.calib_images` of `calib`
/// (refusing an empty set); dynamic mode quantizes the weights only; fp16 rounds the
/// weights to half precision.
///
/// # Errors
/// No calibration input (static), a `keep_float` pattern that matches nothing, an
/// input of the wrong size, or a graph the quantized engine cannot run.
pub fn quantize<I: CalibInput>(
    det: &Detector,
    calib: &[I],
    opts: &QuantOptions,
) -> Result<QuantizedDetector> {
    let mut q = QuantizedDetector {
        head: det.head(),
        mode: opts.mode,
        activations: opts.activations,
        granularity: opts.granularity,
        observer: opts.observer,
        graph: det.graph.clone(),
        act: Vec::new(),
        layers: BTreeMap::new(),
        keep_float: Default::default(),
    };
    if opts.mode == Mode::Fp16 {
        round_to_f16(&mut q.graph);
        return Ok(q);
    }
    if opts.mode == Mode::Static && (calib.is_empty() || opts.calib_images == 0) {
        return Err(QuantError::EmptyCalibration {
            given: calib.len(),
            requested: opts.calib_images,
        });
    }
    let g = prepare(&det.graph)?;
    q.keep_float = match_keep_float(&g, &opts.keep_float)?;
    q.act = vec![None; g.num_values];
    if opts.mode == Mode::Static {
        let subset = calibration_subset(calib.len(), opts.calib_images, opts.seed);
        let inputs = subset
            .iter()
            .map(|&i| calib[i].to_input(det, i))
            .collect::<Result<Vec<_>>>()?;
        let stats = calibrate(&g, &det.input_shape(), &inputs, opts)?;
        for (v, s) in stats.iter().enumerate() {
            if s.count > 0 {
                let (lo, hi) = s.range(opts.observer);
                q.act[v] = Some(QParams::from_range(lo, hi, opts.activations));
            }
        }
        // Max pooling runs on the input's codes, so its output keeps the input's
        // parameters (in graph order, so chained pools follow); the fake-quant simulation
        // and the QDQ export then see what the integer engine computes.
        for n in &g.nodes {
            if matches!(n.op, Op::MaxPool(_)) {
                q.act[n.output] = q.act[n.inputs[0]];
            }
        }
    }
    for n in &g.nodes {
        let Op::Conv(c) = &n.op else { continue };
        let kind = conv_kind(c);
        let quantizable = match opts.mode {
            Mode::Static => kind != ConvKind::Grouped,
            _ => matches!(kind, ConvKind::Pointwise | ConvKind::Im2col),
        };
        if !quantizable || q.keep_float.contains(&n.name) {
            continue;
        }
        let in_scale = q.act[n.inputs[0]].map(|p| p.scale);
        if opts.mode == Mode::Static && (in_scale.is_none() || q.act[n.output].is_none()) {
            continue;
        }
        q.layers.insert(
            n.name.clone(),
            quantize_layer(c, opts.granularity, in_scale),
        );
    }
    // The f32 view: quantized convolutions hold their dequantized weights and biases.
    q.graph = g;
    for n in &mut q.graph.nodes {
        if let (Op::Conv(c), Some(l)) = (&mut n.op, q.layers.get(&n.name)) {
            l.write_view(c, q.act[n.inputs[0]].map(|p| p.scale));
        }
    }
    Ok(q)
}

/// Symmetric int8 weights (scale `max|w| / 127` per channel or per tensor) and the bias
/// in accumulator units when the input scale is known.
pub fn quantize_layer(
    c: &slimdet_core::Conv2d,
    gran: Granularity,
    in_scale: Option<f32>,
) -> QLayer {
    let s = c.weight.shape();
    let shape = [s[0], s[1], s[2], s[3]];
    let o = shape[0];
    let per = c.weight.numel() / o.max(1);
    let w = c.weight.data();
    let absmax = |r: &[f32]| r.iter().fold(0f32, |m, v| m.max(v.abs()));
    let scales: Vec<f32> = match gran {
        Granularity::Channel => w.chunks(per).map(absmax).collect(),
        Granularity::Tensor => vec![absmax(w); o],
    }
    .into_iter()
    .map(|m| if m > 0.0 { m / 127.0 } else { 1.0 })
    .collect();
    let weight = w
        .iter()
        .enumerate()
        .map(|(i, &v)| (v / scales[i / per]).round().clamp(-127.0, 127.0) as i8)
        .collect();
    let b: Vec<f32> = c
        .bias
        .as_ref()
        .map_or_else(|| vec![0.0; o], |t| t.data().to_vec());
    let bias = match in_scale {
        Some(si) => QBias::I32(
            b.iter()
                .zip(&scales)
                .map(|(&b, &sw)| {
                    (b as f64 / (si as f64 * sw as f64))
                        .round()
                        .clamp(i32::MIN as f64, i32::MAX as f64) as i32
                })
                .collect(),
        ),
        None => QBias::F32(b),
    };
    QLayer {
        weight,
        shape,
        weight_scale: scales,
        bias,
    }
}

/// Statistics of every value of the prepared graph `g` over `inputs`.
pub fn calibrate(
    g: &Graph,
    input_shape: &[usize],
    inputs: &[Vec<f32>],
    opts: &QuantOptions,
) -> Result<Vec<RangeStats>> {
    let runner = FloatRunner::new(g, input_shape)?;
    let mut stats = vec![RangeStats::default(); g.num_values];
    for x in inputs {
        runner.run(x, None, &mut |v, d| stats[v].observe(d))?;
    }
    if opts.observer.needs_histogram() {
        for s in &mut stats {
            s.start_histogram(opts.bins);
        }
        for x in inputs {
            runner.run(x, None, &mut |v, d| stats[v].observe_histogram(d))?;
        }
    }
    Ok(stats)
}

/// Rounds every float parameter of `g` to the nearest half-precision value.
pub fn round_to_f16(g: &mut Graph) {
    for (_, t) in g.params_mut() {
        round_tensor_f16(t);
    }
}

fn round_tensor_f16(t: &mut Tensor) {
    for v in t.data_mut() {
        *v = half::f16::from_f32(*v).to_f32();
    }
}
