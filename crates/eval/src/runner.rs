//! Running a detector over a VOC split and scoring it: images are spread over worker
//! threads, each with its own compiled predictor (one intra-op thread each), which
//! scales better than splitting single small convolutions.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

use rayon::prelude::*;
use slimdet_data::voc::{AnnotatedId, VocDataset};
use slimdet_models::{Detector, Predictor};

use crate::error::{Error, Result};
use crate::{ApMetric, ApResult, Detection, NanPolicy, evaluate, ground_truth_from_voc};

/// What to evaluate and how.
#[derive(Clone, Debug)]
pub struct EvalOptions {
    /// AP formula.
    pub metric: ApMetric,
    /// NaN handling.
    pub nan: NanPolicy,
    /// Evaluate at most this many images of the split (first ones in split order).
    pub limit: Option<usize>,
    /// Worker threads.
    pub threads: usize,
    /// Skip unreadable annotations or images instead of failing.
    pub skip_bad: bool,
}

/// The outcome of one evaluation.
#[derive(Clone, Debug)]
pub struct EvalOutcome {
    /// Per-class AP and mAP.
    pub ap: ApResult,
    /// All detections, in image order.
    pub detections: Vec<Detection>,
    /// Images and reasons skipped (with `skip_bad`).
    pub skipped: Vec<String>,
    /// Wall time of the whole evaluation, seconds.
    pub wall_s: f64,
}

/// Loads the annotations of the selected images (honouring `limit` and `skip_bad`).
pub fn load_split(ds: &VocDataset, opts: &EvalOptions) -> Result<(Vec<AnnotatedId>, Vec<String>)> {
    let (items, skipped) = ds.load_all(opts.skip_bad)?;
    let mut items = items;
    if let Some(n) = opts.limit {
        items.truncate(n);
    }
    if items.is_empty() {
        return Err(Error::EmptySelection {
            root: ds.root().to_path_buf(),
            split: ds.split().to_string(),
        });
    }
    Ok((
        items,
        skipped
            .into_iter()
            .map(|s| format!("{}: {}", s.id, s.error))
            .collect(),
    ))
}

/// Detects on every selected image of `ds` with `det` (pytorch-ssd evaluation settings:
/// threshold 0.01, no top-k) and computes AP. `progress(done, total)` is called after
/// each image.
pub fn evaluate_detector(
    det: &Detector,
    ds: &VocDataset,
    opts: &EvalOptions,
    progress: &(dyn Fn(usize, usize) + Sync),
) -> Result<EvalOutcome> {
    let start = Instant::now();
    let (items, mut skipped) = load_split(ds, opts)?;
    let total = items.len();
    let done = AtomicUsize::new(0);
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(opts.threads.max(1))
        .build()
        .map_err(|e| Error::Io {
            path: ds.root().to_path_buf(),
            source: std::io::Error::other(e),
        })?;
    let bad = Mutex::new(Vec::new());
    let per_image: Vec<Result<Vec<Detection>>> = pool.install(|| {
        items
            .par_iter()
            .map_init(
                || Predictor::new(det, 1),
                |pred, (id, _)| {
                    let pred = pred.as_mut().map_err(|e| Error::Io {
                        path: ds.root().to_path_buf(),
                        source: std::io::Error::other(e.to_string()),
                    })?;
                    let img = match ds.load_image(id) {
                        Ok(img) => img,
                        Err(e) if opts.skip_bad => {
                            bad.lock().map(|mut b| b.push(format!("{id}: {e}"))).ok();
                            return Ok(Vec::new());
                        }
                        Err(e) => return Err(e.into()),
                    };
                    let dets = pred.predict(&img, 0.01, 0)?;
                    progress(done.fetch_add(1, Ordering::Relaxed) + 1, total);
                    Ok(dets
                        .into_iter()
                        .map(|d| Detection {
                            image: id.clone(),
                            class_index: d.label,
                            score: d.score,
                            bbox: d.bbox,
                        })
                        .collect())
                },
            )
            .collect()
    });
    let mut detections = Vec::new();
    for r in per_image {
        detections.extend(r?);
    }
    skipped.extend(bad.into_inner().unwrap_or_default());
    let gts = ground_truth_from_voc(&items);
    let ap = evaluate(
        &gts,
        &detections,
        ds.class_names(),
        opts.metric,
        opts.nan,
        total,
    );
    Ok(EvalOutcome {
        ap,
        detections,
        skipped,
        wall_s: start.elapsed().as_secs_f64(),
    })
}
