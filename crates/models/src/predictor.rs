//! The predictor: image in, detections out, with pytorch-ssd's `Predictor` semantics
//! (spec §9): OpenCV-exact resize, `(x − mean) / std`, softmax, box decoding, per-class
//! hard NMS over probabilities strictly above the threshold, boxes scaled to the
//! original image (not clipped). The configuration can ask for TensorFlow's variant
//! instead (TF OD API models): TF's legacy resize, sigmoid scores, boxes clipped to the
//! image before NMS, a cap per class and a total cap by score.

use slimdet_core::{Plan, PlanOptions};
use slimdet_data::RgbImage;

use crate::Detector;
use crate::arch::{ScoreFn, SsdConfig};
use crate::box_coding::decode;
use crate::error::Result;
use crate::nms::hard_nms;

/// One detection in original-image pixels.
#[derive(Clone, Debug, PartialEq)]
pub struct Detection {
    /// Class index (≥ 1; 0 is background).
    pub label: usize,
    /// Class probability.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in original-image pixels, not clipped.
    pub bbox: [f32; 4],
}

/// A compiled detector with its buffers, reused across images.
pub struct Predictor {
    plan: Option<Plan>,
    backend: Option<Box<dyn crate::Backend>>,
    config: SsdConfig,
    priors: Vec<[f32; 4]>,
    num_classes: usize,
    input: Vec<f32>,
    logits: Vec<f32>,
    locations: Vec<f32>,
    scores: Vec<f32>,
    boxes: Vec<[f32; 4]>,
}

impl Predictor {
    /// Compiles `det` for one image per call on `threads` threads.
    pub fn new(det: &Detector, threads: usize) -> Result<Self> {
        let opts = PlanOptions {
            threads,
            ..PlanOptions::default()
        };
        Self::with_options(det, &opts)
    }

    /// Compiles `det` with explicit plan options.
    pub fn with_options(det: &Detector, opts: &PlanOptions) -> Result<Self> {
        let (plan, backend) = match &det.backend {
            Some(f) => (None, Some(f.build(opts.threads)?)),
            None => (Some(Plan::new(&det.graph, &det.input_shape(), opts)?), None),
        };
        let p = det.priors.len();
        let num_classes = det.class_names.len();
        let input_len = det.input_shape().iter().product();
        Ok(Self {
            plan,
            backend,
            config: det.config.clone(),
            priors: det.priors.clone(),
            num_classes,
            input: vec![0.0; input_len],
            logits: vec![0.0; p * num_classes],
            locations: vec![0.0; p * 4],
            scores: vec![0.0; p * num_classes],
            boxes: vec![[0.0; 4]; p],
        })
    }

    /// The compiled f32 plan (for arena and weight sizes); `None` when an alternative
    /// backend runs the network.
    pub fn plan(&self) -> Option<&Plan> {
        self.plan.as_ref()
    }

    /// The alternative backend running the network, if any.
    pub fn backend(&self) -> Option<&dyn crate::Backend> {
        self.backend.as_deref()
    }

    /// Resizes and normalises `img` into the input buffer.
    pub fn preprocess(&mut self, img: &RgbImage) {
        let c = &self.config;
        slimdet_data::preprocess_into(
            img,
            c.input_w,
            c.input_h,
            c.resize,
            c.mean,
            c.std,
            &mut self.input,
        );
    }

    /// Runs the network on the preprocessed input buffer and decodes scores and boxes.
    pub fn forward_buffered(&mut self) -> Result<()> {
        let input = std::mem::take(&mut self.input);
        let r = self.forward(&input);
        self.input = input;
        r
    }

    /// Runs the network on an NHWC input `[1, H, W, 3]`, then computes the scores (softmax
    /// or sigmoid, as configured) and decoded corner-form boxes (0..1 units).
    pub fn forward(&mut self, input: &[f32]) -> Result<()> {
        match (&mut self.backend, &mut self.plan) {
            (Some(b), _) => b.forward(input, &mut self.logits, &mut self.locations)?,
            (None, Some(plan)) => {
                let outs = plan.run(input)?;
                self.logits.copy_from_slice(outs[0]);
                self.locations.copy_from_slice(outs[1]);
            }
            (None, None) => unreachable!("a predictor has a plan or a backend"),
        }
        match self.config.scores {
            ScoreFn::Softmax => {
                slimdet_core::exec::softmax_rows(&self.logits, self.num_classes, &mut self.scores)
            }
            ScoreFn::Sigmoid => {
                for (s, &l) in self.scores.iter_mut().zip(&self.logits) {
                    *s = 1.0 / (1.0 + (-l).exp());
                }
            }
        }
        let (cv, sv) = (self.config.center_variance, self.config.size_variance);
        for ((b, l), p) in self
            .boxes
            .iter_mut()
            .zip(self.locations.chunks(4))
            .zip(&self.priors)
        {
            *b = decode(l, p, cv, sv);
        }
        if self.config.clip_boxes {
            for b in &mut self.boxes {
                for v in b.iter_mut() {
                    *v = v.clamp(0.0, 1.0);
                }
            }
        }
        Ok(())
    }

    /// Raw class logits `[P, classes]` of the last forward pass.
    pub fn logits(&self) -> &[f32] {
        &self.logits
    }

    /// Raw locations `[P, 4]` of the last forward pass.
    pub fn locations(&self) -> &[f32] {
        &self.locations
    }

    /// Class scores `[P, classes]` of the last forward pass.
    pub fn scores(&self) -> &[f32] {
        &self.scores
    }

    /// Decoded corner-form boxes `[P]` (0..1 units) of the last forward pass.
    pub fn boxes(&self) -> &[[f32; 4]] {
        &self.boxes
    }

    /// Per-class hard NMS on the last forward pass, boxes scaled to `width`×`height`.
    /// `threshold` ≤ 0 means the configuration's default (as `prob_threshold or 0.01`);
    /// `top_k` 0 means the configuration's cap per class (none for pytorch-ssd). Ordered by
    /// class, then by NMS pick order; with a total cap in the configuration, only the best
    /// scores are kept (the order is unchanged).
    pub fn postprocess(
        &self,
        width: usize,
        height: usize,
        threshold: f32,
        top_k: usize,
    ) -> Vec<Detection> {
        let threshold = if threshold > 0.0 {
            threshold
        } else {
            self.config.default_threshold
        };
        let k = self.num_classes;
        let top_k = if top_k > 0 {
            top_k
        } else {
            self.config.max_per_class
        };
        let mut out = Vec::new();
        let mut cand_boxes = Vec::new();
        let mut cand_scores = Vec::new();
        for c in 1..k {
            cand_boxes.clear();
            cand_scores.clear();
            for (p, b) in self.boxes.iter().enumerate() {
                let s = self.scores[p * k + c];
                if s > threshold {
                    cand_boxes.push(*b);
                    cand_scores.push(s);
                }
            }
            if cand_scores.is_empty() {
                continue;
            }
            for i in hard_nms(
                &cand_boxes,
                &cand_scores,
                self.config.nms_iou,
                top_k,
                self.config.candidate_size,
            ) {
                let b = cand_boxes[i];
                let (w, h) = (width as f32, height as f32);
                out.push(Detection {
                    label: c,
                    score: cand_scores[i],
                    bbox: [b[0] * w, b[1] * h, b[2] * w, b[3] * h],
                });
            }
        }
        let cap = self.config.max_detections;
        if cap > 0 && out.len() > cap {
            let mut by_score: Vec<usize> = (0..out.len()).collect();
            by_score.sort_by(|&a, &b| out[b].score.total_cmp(&out[a].score));
            let mut keep = vec![false; out.len()];
            for &i in &by_score[..cap] {
                keep[i] = true;
            }
            let mut i = 0;
            out.retain(|_| {
                i += 1;
                keep[i - 1]
            });
        }
        out
    }

    /// The whole pipeline on one image.
    pub fn predict(
        &mut self,
        img: &RgbImage,
        threshold: f32,
        top_k: usize,
    ) -> Result<Vec<Detection>> {
        self.preprocess(img);
        self.forward_buffered()?;
        Ok(self.postprocess(img.width, img.height, threshold, top_k))
    }
}
