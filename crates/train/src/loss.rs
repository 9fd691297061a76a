//! pytorch-ssd's target assignment (`MatchPrior`, `assign_priors`) and `MultiboxLoss`
//! (spec §7), with their gradients.
//!
//! Shapes: `P` priors, `K` classes (0 = background), batch `N`. Logits `[N, P, K]`,
//! locations `[N, P, 4]`, labels `[N, P]`, encoded target locations `[N, P, 4]`.

use slimdet_models::ScoreFn;
use slimdet_models::box_coding::{encode, iou};

use crate::error::{Result, TrainError};

/// Centre-form priors `[cx, cy, w, h]` to corner form `[x1, y1, x2, y2]`.
pub fn corner_priors(priors: &[[f32; 4]]) -> Vec<[f32; 4]> {
    priors
        .iter()
        .map(|p| {
            [
                p[0] - p[2] / 2.0,
                p[1] - p[3] / 2.0,
                p[0] + p[2] / 2.0,
                p[1] + p[3] / 2.0,
            ]
        })
        .collect()
}

/// `assign_priors(gt_boxes, gt_labels, corner_priors, iou_threshold)`: for every prior the
/// matched ground-truth box (corner form) and its label (0 = background).
///
/// Exactly as the reference: each prior takes its best target (first on ties); then, for
/// each target `t` in order, its best prior (first on ties) is assigned to `t` with IoU
/// forced to 2.0, so later targets win a shared best prior; priors whose best IoU is
/// below `iou_threshold` (strictly) become background. With no target at all (the
/// reference crashes) every prior is background and the boxes are zeros.
pub fn assign_priors(
    gt_boxes: &[[f32; 4]],
    gt_labels: &[usize],
    corner_priors: &[[f32; 4]],
    iou_threshold: f32,
) -> (Vec<[f32; 4]>, Vec<usize>) {
    let p = corner_priors.len();
    if gt_boxes.is_empty() {
        return (vec![[0.0; 4]; p], vec![0; p]);
    }
    let t = gt_boxes.len();
    let mut best_t = vec![0usize; p];
    let mut best_iou = vec![f32::NEG_INFINITY; p];
    let mut best_p = vec![(0usize, f32::NEG_INFINITY); t];
    for (pi, pr) in corner_priors.iter().enumerate() {
        for (ti, gt) in gt_boxes.iter().enumerate() {
            let v = iou(gt, pr);
            if v > best_iou[pi] {
                best_iou[pi] = v;
                best_t[pi] = ti;
            }
            if v > best_p[ti].1 {
                best_p[ti] = (pi, v);
            }
        }
    }
    for (ti, &(pi, _)) in best_p.iter().enumerate() {
        best_t[pi] = ti;
    }
    for &(pi, _) in &best_p {
        best_iou[pi] = 2.0;
    }
    let boxes = best_t.iter().map(|&ti| gt_boxes[ti]).collect();
    let labels = best_t
        .iter()
        .zip(&best_iou)
        .map(|(&ti, &v)| if v < iou_threshold { 0 } else { gt_labels[ti] })
        .collect();
    (boxes, labels)
}

/// Training targets of one image.
#[derive(Clone, Debug, PartialEq)]
pub struct Targets {
    /// `[P]` class per prior, 0 = background.
    pub labels: Vec<usize>,
    /// `[P, 4]` encoded locations (meaningful only where the label is not 0).
    pub locations: Vec<f32>,
}

/// `MatchPrior`: [`assign_priors`] at IoU 0.5, then every matched box encoded against its
/// prior with the given variances (0.1 and 0.2 for pytorch-ssd). Boxes are corner form in
/// 0..1 units; `priors` centre form, `corner` their corner form ([`corner_priors`]).
pub fn match_priors(
    gt_boxes: &[[f32; 4]],
    gt_labels: &[usize],
    priors: &[[f32; 4]],
    corner: &[[f32; 4]],
    center_variance: f32,
    size_variance: f32,
) -> Targets {
    let (boxes, labels) = assign_priors(gt_boxes, gt_labels, corner, 0.5);
    let mut locations = Vec::with_capacity(priors.len() * 4);
    for ((b, p), l) in boxes.iter().zip(priors).zip(&labels) {
        if *l == 0 {
            // The loss never reads background rows; skip the logs of possibly empty boxes.
            locations.extend_from_slice(&[0.0; 4]);
        } else {
            locations.extend_from_slice(&encode(b, p, center_variance, size_variance));
        }
    }
    Targets { labels, locations }
}

/// The two terms of the loss (both already divided by the positive count).
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct LossValue {
    /// Smooth L1 over positive priors / num_pos.
    pub regression: f32,
    /// Cross-entropy over positives and mined negatives / num_pos.
    pub classification: f32,
    /// Positive priors in the batch.
    pub num_pos: usize,
    /// Negatives selected by hard negative mining in the batch.
    pub num_neg: usize,
}

impl LossValue {
    /// `regression + classification`, the training loss.
    pub fn total(&self) -> f32 {
        self.regression + self.classification
    }
}

/// Loss and gradients of one batch.
#[derive(Clone, Debug)]
pub struct LossOutput {
    /// The loss terms.
    pub value: LossValue,
    /// `dL/dlogits` `[N, P, K]` with `L = regression + classification`.
    pub d_logits: Vec<f32>,
    /// `dL/dlocations` `[N, P, 4]`.
    pub d_locations: Vec<f32>,
}

/// `MultiboxLoss`: the classification and regression loss of an SSD batch.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct MultiboxLoss {
    /// Classes including background (`K`).
    pub num_classes: usize,
    /// Negatives kept per positive (3).
    pub neg_pos_ratio: usize,
    /// How the model scores classes: softmax cross-entropy (pytorch-ssd), or a sigmoid
    /// cross-entropy per class against the one-hot target, background column included
    /// (the TF Object Detection API's `weighted_sigmoid` loss, for sigmoid-scored models).
    pub scores: ScoreFn,
}

impl MultiboxLoss {
    /// pytorch-ssd's loss for `num_classes` classes (negative:positive ratio 3).
    pub fn new(num_classes: usize) -> Self {
        Self {
            num_classes,
            neg_pos_ratio: 3,
            scores: ScoreFn::Softmax,
        }
    }

    /// The loss matching `det`'s score function and class count.
    pub fn for_detector(det: &slimdet_models::Detector) -> Self {
        Self {
            scores: det.config.scores,
            ..Self::new(det.class_names.len())
        }
    }

    /// Loss and gradients of a batch of `batch` images.
    ///
    /// - `logits` `[N, P, K]`, `locations` `[N, P, 4]`: network outputs;
    /// - `labels` `[N, P]`, `target_locations` `[N, P, 4]`: [`match_priors`] per image.
    ///
    /// 1. Per prior, `bg = −log_softmax(logits)[0]`. Per image, positives are
    ///    `label > 0`; `ratio·num_pos` negatives are the other priors with the highest
    ///    `bg` (ties: lower prior index first; PyTorch's sort is not stable).
    /// 2. `classification = Σ_{pos ∪ neg} CE(logits, label)` (sum). With sigmoid scores,
    ///    `bg` and `CE` are both `Σ_j BCE(logits_j, onehot(label)_j)`.
    /// 3. `regression = Σ_pos Σ_4 smooth_l1(loc − target)` with β = 1 (sum).
    /// 4. Both divided by `num_pos`, the positives of the whole batch. With no positive
    ///    at all the reference returns NaN; here the loss is 0 with zero gradients.
    pub fn compute(
        &self,
        batch: usize,
        logits: &[f32],
        locations: &[f32],
        labels: &[usize],
        target_locations: &[f32],
    ) -> Result<LossOutput> {
        let k = self.num_classes;
        let total = labels.len();
        let check = |what: &str, expected: usize, got: usize| {
            if expected == got {
                Ok(())
            } else {
                Err(TrainError::Length {
                    what: what.to_string(),
                    expected,
                    got,
                })
            }
        };
        if batch == 0 || !total.is_multiple_of(batch) {
            return Err(TrainError::Config(format!(
                "{total} labels do not split into {batch} images"
            )));
        }
        check("logits", total * k, logits.len())?;
        check("locations", total * 4, locations.len())?;
        check("target locations", total * 4, target_locations.len())?;
        if let Some(&bad) = labels.iter().find(|&&l| l >= k) {
            return Err(TrainError::Config(format!(
                "label {bad} out of range for {k} classes"
            )));
        }
        Ok(self.unchecked(batch, logits, locations, labels, target_locations))
    }

    fn unchecked(
        &self,
        batch: usize,
        logits: &[f32],
        locations: &[f32],
        labels: &[usize],
        target_locations: &[f32],
    ) -> LossOutput {
        let k = self.num_classes;
        let total = labels.len();
        let per_image = total / batch;
        let mut d_logits = vec![0.0f32; logits.len()];
        let mut d_locations = vec![0.0f32; locations.len()];
        let sigmoid = self.scores == ScoreFn::Sigmoid;
        // Per prior, the classification loss as background, and the normaliser (log Σ exp)
        // of the softmax form.
        let lse: Vec<f32> = logits.chunks(k).map(log_sum_exp).collect();
        let bg: Vec<f32> = if sigmoid {
            logits.chunks(k).map(|r| sigmoid_ce(r, 0)).collect()
        } else {
            lse.iter()
                .zip(logits.chunks(k))
                .map(|(l, r)| l - r[0])
                .collect()
        };
        let num_pos = labels.iter().filter(|&&l| l > 0).count();
        let mut mask = vec![false; total];
        let mut num_neg = 0;
        for b in 0..batch {
            let r = b * per_image..(b + 1) * per_image;
            num_neg += mine(
                &bg[r.clone()],
                &labels[r.clone()],
                self.neg_pos_ratio,
                &mut mask[r],
            );
        }
        if num_pos == 0 {
            let value = LossValue {
                regression: 0.0,
                classification: 0.0,
                num_pos: 0,
                num_neg: 0,
            };
            return LossOutput {
                value,
                d_logits,
                d_locations,
            };
        }
        let inv = 1.0 / num_pos as f64;
        let (mut cls, mut reg) = (0.0f64, 0.0f64);
        for i in (0..total).filter(|&i| mask[i]) {
            let row = &logits[i * k..(i + 1) * k];
            let y = labels[i];
            let d = &mut d_logits[i * k..(i + 1) * k];
            if sigmoid {
                cls += sigmoid_ce(row, y) as f64;
                for j in 0..k {
                    let p = 1.0 / (1.0 + (-(row[j] as f64)).exp());
                    d[j] = ((p - f64::from(u8::from(j == y))) * inv) as f32;
                }
            } else {
                cls += (lse[i] - row[y]) as f64;
                for j in 0..k {
                    let p = (row[j] - lse[i]).exp() as f64;
                    d[j] = ((p - f64::from(u8::from(j == y))) * inv) as f32;
                }
            }
            if y == 0 {
                continue;
            }
            for c in 0..4 {
                let diff = locations[i * 4 + c] - target_locations[i * 4 + c];
                let (l, g) = if diff.abs() < 1.0 {
                    (0.5 * diff * diff, diff)
                } else {
                    (diff.abs() - 0.5, diff.signum())
                };
                reg += l as f64;
                d_locations[i * 4 + c] = (g as f64 * inv) as f32;
            }
        }
        LossOutput {
            value: LossValue {
                regression: (reg * inv) as f32,
                classification: (cls * inv) as f32,
                num_pos,
                num_neg,
            },
            d_logits,
            d_locations,
        }
    }
}

/// `log Σ exp(x)`, max-subtracted.
fn log_sum_exp(r: &[f32]) -> f32 {
    let m = r.iter().copied().fold(f32::NEG_INFINITY, f32::max);
    m + r.iter().map(|v| (v - m).exp()).sum::<f32>().ln()
}

/// `Σ_j BCE(x_j, [j == y])` of one prior, in the stable form
/// `max(x, 0) − x·t + ln(1 + e^{−|x|})`.
fn sigmoid_ce(row: &[f32], y: usize) -> f32 {
    row.iter()
        .enumerate()
        .map(|(j, &x)| {
            let t = if j == y { 1.0 } else { 0.0 };
            x.max(0.0) - x * t + (-x.abs()).exp().ln_1p()
        })
        .sum()
}

/// `hard_negative_mining` of one image: marks positives and the `ratio·num_pos` priors of
/// highest background loss `bg` among the others in `mask`; returns the negatives marked.
fn mine(bg: &[f32], labels: &[usize], ratio: usize, mask: &mut [bool]) -> usize {
    let num_pos = labels.iter().filter(|&&l| l > 0).count();
    let mut neg: Vec<(f32, usize)> = (0..labels.len())
        .filter(|&i| labels[i] == 0)
        .map(|i| (bg[i], i))
        .collect();
    let want = (num_pos * ratio).min(neg.len());
    // Descending background loss, ties by index (stable).
    neg.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
    for (i, m) in mask.iter_mut().enumerate() {
        *m = labels[i] > 0;
    }
    for &(_, i) in &neg[..want] {
        mask[i] = true;
    }
    want
}
