//! Automatic mixed precision (`--auto-keep-float K`): how much mAP each convolution costs
//! when it alone runs in int8, and the model that keeps the `K` most sensitive in f32.
//!
//! For every convolution the static quantizer made int8, a model is built in which that
//! layer is the only int8 one (every other convolution and every add in f32, quantize and
//! dequantize steps at its boundaries, the real integer kernel in between). It runs on a
//! seeded subset of a VOC split and is scored with the VOC2007 11-point mAP over the
//! classes present in the subset ([`crate::evaluate`], devkit handling of 0/0
//! precision). Layers are ranked by mAP drop against the f32 model on the same images,
//! largest first; equal drops (common on small subsets) are broken by the output SQNR
//! against f32 (the lower of the softmax scores' and the box regressions'), lowest first. The activation ranges are calibrated once, so
//! the final mixed model equals `quantize` with those layers in `keep_float`.
//!
//! It lives here rather than in `slimdet-quant` so that quantization (and the formats and
//! importers above it) does not depend on evaluation; its errors are the quantizer's
//! ([`QuantError`]).

use std::collections::BTreeSet;
use std::sync::atomic::{AtomicUsize, Ordering};

use slimdet_core::Op;
use slimdet_data::RgbImage;
use slimdet_data::voc::VocDataset;
use slimdet_models::{Detector, Predictor};
use slimdet_quant::prepare::prepare;
use slimdet_quant::{CalibInput, Mode, QuantError, QuantizedDetector, Result, calibration_subset};

use crate::{ApMetric, Detection, GroundTruth, NanPolicy};

/// Images the sensitivity of each layer is measured on, with their ground truth.
#[derive(Clone, Debug)]
pub struct EvalSet {
    /// Image ids.
    pub ids: Vec<String>,
    /// Original image sizes `(width, height)` (detections are scaled to them).
    pub sizes: Vec<(usize, usize)>,
    /// Network inputs NHWC `[1, H, W, 3]`, preprocessed as the predictor does.
    pub inputs: Vec<Vec<f32>>,
    /// Ground truth of all images.
    pub truth: Vec<GroundTruth>,
    /// Class names, index 0 = BACKGROUND.
    pub class_names: Vec<String>,
}

impl EvalSet {
    /// A set from in-memory images `(id, image, ground truth)` preprocessed for `det`.
    ///
    /// # Errors
    /// [`QuantError::EmptySensitivitySet`] when `items` is empty.
    pub fn from_images(
        det: &Detector,
        items: Vec<(String, RgbImage, Vec<GroundTruth>)>,
    ) -> Result<EvalSet> {
        if items.is_empty() {
            return Err(QuantError::EmptySensitivitySet {
                reason: "no images given".into(),
            });
        }
        let mut set = EvalSet {
            ids: Vec::new(),
            sizes: Vec::new(),
            inputs: Vec::new(),
            truth: Vec::new(),
            class_names: det.class_names.clone(),
        };
        for (i, (id, img, gt)) in items.into_iter().enumerate() {
            set.inputs.push(img.to_input(det, i)?);
            set.sizes.push((img.width, img.height));
            set.ids.push(id);
            set.truth.extend(gt);
        }
        Ok(set)
    }

    /// A seeded subset of `n` images of `ds` (see [`calibration_subset`]).
    ///
    /// # Errors
    /// `n` = 0, an empty split, or an unreadable image or annotation.
    pub fn from_voc(det: &Detector, ds: &VocDataset, n: usize, seed: u64) -> Result<EvalSet> {
        if n == 0 || ds.is_empty() {
            return Err(QuantError::EmptySensitivitySet {
                reason: format!(
                    "{} images asked for, split `{}` of {} has {}",
                    n,
                    ds.split(),
                    ds.root().display(),
                    ds.len()
                ),
            });
        }
        let mut items = Vec::new();
        for i in calibration_subset(ds.len(), n, seed) {
            let id = &ds.ids()[i];
            let ann = ds.annotation(id)?;
            let img = ds.load_image(id)?;
            let gt = crate::ground_truth_from_voc(&[(id.clone(), ann)]);
            items.push((id.clone(), img, gt));
        }
        let mut set = Self::from_images(det, items)?;
        set.class_names = ds.class_names().to_vec();
        Ok(set)
    }

    /// Number of images.
    pub fn len(&self) -> usize {
        self.ids.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }
}

/// One layer's sensitivity.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSensitivity {
    /// Rank, 1 = most sensitive.
    pub rank: usize,
    /// Node name of the convolution.
    pub name: String,
    /// `Conv` (dense or pointwise) or `DwConv`.
    pub kind: &'static str,
    /// mAP of the model with only this layer in int8.
    pub map: f64,
    /// f32 mAP minus `map` (positive: int8 costs accuracy here).
    pub drop: f64,
    /// SQNR of the softmax scores against f32, dB.
    pub scores_sqnr_db: f64,
    /// SQNR of the raw box regressions (`locations`) against f32, dB.
    pub locations_sqnr_db: f64,
}

impl LayerSensitivity {
    /// The tie-break: the lower of the two output SQNRs.
    pub fn output_sqnr_db(&self) -> f64 {
        self.scores_sqnr_db.min(self.locations_sqnr_db)
    }
}

/// The ranking of every int8 convolution.
#[derive(Clone, Debug, PartialEq)]
pub struct SensitivityReport {
    /// mAP of the f32 model on the same images.
    pub fp32_map: f64,
    /// Images used.
    pub images: usize,
    /// Layers, most sensitive first.
    pub layers: Vec<LayerSensitivity>,
}

impl SensitivityReport {
    /// Names of the `k` most sensitive layers.
    pub fn top(&self, k: usize) -> Vec<String> {
        self.layers.iter().take(k).map(|l| l.name.clone()).collect()
    }
}

/// The convolutions `q` runs in int8, in graph order.
pub fn int8_layers(q: &QuantizedDetector) -> Vec<String> {
    q.graph
        .nodes
        .iter()
        .filter(|n| q.layers.contains_key(&n.name))
        .map(|n| n.name.clone())
        .collect()
}

/// `q` with the convolutions `names` back in f32 (their weights taken from the prepared
/// f32 graph of `det`) and added to `keep_float`; with `adds_float` every add too.
///
/// # Errors
/// If `det`'s graph cannot be prepared, or a name is not an int8 convolution of `q`.
pub fn with_float_layers(
    det: &Detector,
    q: &QuantizedDetector,
    names: &BTreeSet<String>,
    adds_float: bool,
) -> Result<QuantizedDetector> {
    let g = prepare(&det.graph)?;
    float_layers_from(&g, q, names, adds_float)
}

fn float_layers_from(
    g: &slimdet_core::Graph,
    q: &QuantizedDetector,
    names: &BTreeSet<String>,
    adds_float: bool,
) -> Result<QuantizedDetector> {
    let mut out = q.clone();
    for name in names {
        if out.layers.remove(name).is_none() {
            return Err(QuantError::PatternMatchesNothing {
                pattern: name.clone(),
            });
        }
        out.keep_float.insert(name.clone());
    }
    for (n, f) in out.graph.nodes.iter_mut().zip(&g.nodes) {
        match (&mut n.op, &f.op) {
            (Op::Conv(c), Op::Conv(fc)) if names.contains(&n.name) && f.name == n.name => {
                *c = fc.clone();
            }
            (Op::Add(_), _) if adds_float => {
                out.keep_float.insert(n.name.clone());
            }
            _ => {}
        }
    }
    Ok(out)
}

/// What one model produced on a set: detections, and per image the softmax scores and
/// the raw locations.
type SetOutputs = (Vec<Detection>, Vec<Vec<f32>>, Vec<Vec<f32>>);

/// Detections, softmax scores and locations of `det` on every image of `set`.
fn run_set(det: &Detector, set: &EvalSet) -> Result<SetOutputs> {
    let mut pred = Predictor::new(det, 1)?;
    let mut dets = Vec::new();
    let mut scores = Vec::with_capacity(set.len());
    let mut locs = Vec::with_capacity(set.len());
    for ((id, x), &(w, h)) in set.ids.iter().zip(&set.inputs).zip(&set.sizes) {
        pred.forward(x)?;
        dets.extend(
            pred.postprocess(w, h, 0.0, 0)
                .into_iter()
                .map(|d| Detection {
                    image: id.clone(),
                    class_index: d.label,
                    score: d.score,
                    bbox: d.bbox,
                }),
        );
        scores.push(pred.scores().to_vec());
        locs.push(pred.locations().to_vec());
    }
    Ok((dets, scores, locs))
}

/// VOC07 mAP over the classes present in `set` (0 when none is).
pub fn subset_map(set: &EvalSet, dets: &[Detection]) -> f64 {
    let r = crate::evaluate(
        &set.truth,
        dets,
        &set.class_names,
        ApMetric::Voc07,
        NanPolicy::Safe,
        set.len(),
    );
    let present: Vec<f64> = r
        .per_class
        .iter()
        .zip(&r.num_gt)
        .filter(|(_, n)| **n > 0)
        .map(|((_, ap), _)| *ap)
        .collect();
    if present.is_empty() {
        0.0
    } else {
        present.iter().sum::<f64>() / present.len() as f64
    }
}

fn sqnr_db(reference: &[Vec<f32>], other: &[Vec<f32>]) -> f64 {
    let (mut s, mut n) = (0f64, 0f64);
    for (a, b) in reference.iter().zip(other) {
        for (&x, &y) in a.iter().zip(b) {
            s += (x as f64).powi(2);
            n += (x as f64 - y as f64).powi(2);
        }
    }
    if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    }
}

/// Measures every int8 convolution of `q` (a static model quantized from `det`) alone,
/// on `threads` worker threads; `progress(done, total)` after each layer.
///
/// # Errors
/// `q` not static, an empty set, or an engine failure.
pub fn layer_sensitivity(
    det: &Detector,
    q: &QuantizedDetector,
    set: &EvalSet,
    threads: usize,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<SensitivityReport> {
    if q.mode != Mode::Static {
        return Err(QuantError::InvalidOption {
            option: "mode",
            value: q.mode.to_string(),
            expected: "static (layer sensitivity compares calibrated int8 layers)",
        });
    }
    if set.is_empty() {
        return Err(QuantError::EmptySensitivitySet {
            reason: "no images".into(),
        });
    }
    let g = prepare(&det.graph)?;
    let (ref_dets, ref_scores, ref_locs) = run_set(det, set)?;
    let fp32_map = subset_map(set, &ref_dets);
    let layers = int8_layers(q);
    let total = layers.len();
    let all: BTreeSet<String> = layers.iter().cloned().collect();
    let next = AtomicUsize::new(0);
    let done = AtomicUsize::new(0);
    let measure = |name: &String| -> Result<LayerSensitivity> {
        let mut others = all.clone();
        others.remove(name);
        let single = float_layers_from(&g, q, &others, true)?;
        let (dets, scores, locs) = run_set(&single.to_detector(), set)?;
        let map = subset_map(set, &dets);
        let kind = match q
            .graph
            .nodes
            .iter()
            .find(|n| &n.name == name)
            .map(|n| &n.op)
        {
            Some(Op::Conv(c)) if c.is_depthwise() => "DwConv",
            _ => "Conv",
        };
        Ok(LayerSensitivity {
            rank: 0,
            name: name.clone(),
            kind,
            map,
            drop: fp32_map - map,
            scores_sqnr_db: sqnr_db(&ref_scores, &scores),
            locations_sqnr_db: sqnr_db(&ref_locs, &locs),
        })
    };
    let workers = threads.clamp(1, total.max(1));
    let mut results: Vec<(usize, Result<LayerSensitivity>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some(name) = layers.get(i) else { break };
                        let r = measure(name);
                        let failed = r.is_err();
                        out.push((i, r));
                        progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                        if failed {
                            next.store(total, Ordering::Relaxed);
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        handles
            .into_iter()
            .flat_map(|h| {
                h.join().unwrap_or_else(|_| {
                    vec![(
                        0,
                        Err(QuantError::EmptySensitivitySet {
                            reason: "a sensitivity worker panicked".into(),
                        }),
                    )]
                })
            })
            .collect()
    });
    results.sort_by_key(|(i, _)| *i);
    let mut ranked = results
        .into_iter()
        .map(|(_, r)| r)
        .collect::<Result<Vec<_>>>()?;
    rank(&mut ranked);
    Ok(SensitivityReport {
        fp32_map,
        images: set.len(),
        layers: ranked,
    })
}

/// Sorts by mAP drop (largest first), ties by output SQNR (lowest first), then by the
/// original order; numbers the ranks from 1.
pub fn rank(layers: &mut [LayerSensitivity]) {
    layers.sort_by(|a, b| {
        b.drop
            .total_cmp(&a.drop)
            .then(a.output_sqnr_db().total_cmp(&b.output_sqnr_db()))
    });
    for (i, l) in layers.iter_mut().enumerate() {
        l.rank = i + 1;
    }
}

/// `q` with the `k` most sensitive layers of `report` kept in f32.
///
/// # Errors
/// [`QuantError::TooManyKeepFloat`] when `k` exceeds the ranked layers.
pub fn keep_most_sensitive(
    det: &Detector,
    q: &QuantizedDetector,
    report: &SensitivityReport,
    k: usize,
) -> Result<QuantizedDetector> {
    if k > report.layers.len() {
        return Err(QuantError::TooManyKeepFloat {
            k,
            layers: report.layers.len(),
        });
    }
    let names: BTreeSet<String> = report.top(k).into_iter().collect();
    with_float_layers(det, q, &names, false)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn l(name: &str, drop: f64, sqnr: f64) -> LayerSensitivity {
        LayerSensitivity {
            rank: 0,
            name: name.into(),
            kind: "Conv",
            map: 0.5 - drop,
            drop,
            scores_sqnr_db: sqnr,
            locations_sqnr_db: sqnr + 1.0,
        }
    }

    #[test]
    fn ranks_by_drop_then_by_lowest_sqnr() {
        let mut v = vec![
            l("a", 0.0, 40.0),
            l("b", 0.02, 50.0),
            l("c", 0.0, 30.0),
            l("d", -0.01, 10.0),
        ];
        // Regression-only damage counts too: e's scores are untouched.
        let mut e = l("e", 0.0, 200.0);
        e.locations_sqnr_db = 35.0;
        v.push(e);
        rank(&mut v);
        let names: Vec<&str> = v.iter().map(|l| l.name.as_str()).collect();
        assert_eq!(names, ["b", "c", "e", "a", "d"]);
        assert_eq!(
            v.iter().map(|l| l.rank).collect::<Vec<_>>(),
            [1, 2, 3, 4, 5]
        );
    }

    #[test]
    fn sqnr_of_identical_scores_is_infinite() {
        let a = vec![vec![0.5f32, 0.25]];
        assert_eq!(sqnr_db(&a, &a), f64::INFINITY);
        let b = vec![vec![0.5f32, 0.0]];
        let db = sqnr_db(&a, &b);
        assert!((db - 10.0 * (0.3125f64 / 0.0625).log10()).abs() < 1e-9);
    }
}
