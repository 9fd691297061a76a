//! Running a detector over a VOC split and scoring it: images are spread over worker
//! threads, each with its own compiled predictor (one intra-op thread each), which
//! scales better than splitting single small convolutions.

use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::Instant;

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
    let next = AtomicUsize::new(0);
    let bad = Mutex::new(Vec::new());
    // One predictor per worker thread, built once: workers pull the next image index, so
    // the split is dynamic while memory stays at `threads` compiled models (rayon's
    // `map_init` would compile one per work split, and the freed arenas fragment the heap).
    let workers = opts.threads.max(1).min(total);
    let per_image: Vec<(usize, Result<Vec<Detection>>)> = std::thread::scope(|scope| {
        let handles: Vec<_> = (0..workers)
            .map(|_| {
                scope.spawn(|| {
                    let mut out = Vec::new();
                    let mut pred = match Predictor::new(det, 1) {
                        Ok(p) => p,
                        Err(e) => {
                            out.push((
                                0,
                                Err(Error::Io {
                                    path: ds.root().to_path_buf(),
                                    source: std::io::Error::other(e.to_string()),
                                }),
                            ));
                            return out;
                        }
                    };
                    loop {
                        let i = next.fetch_add(1, Ordering::Relaxed);
                        let Some((id, _)) = items.get(i) else { break };
                        let r = (|| {
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
                        })();
                        let failed = r.is_err();
                        out.push((i, r));
                        if failed {
                            // Stop early: the first error is reported.
                            next.store(items.len(), Ordering::Relaxed);
                            break;
                        }
                    }
                    out
                })
            })
            .collect();
        let mut all: Vec<(usize, Result<Vec<Detection>>)> = Vec::new();
        for h in handles {
            match h.join() {
                Ok(rows) => all.extend(rows),
                // A panicking worker would otherwise lose its images silently.
                Err(_) => all.push((
                    0,
                    Err(Error::Io {
                        path: ds.root().to_path_buf(),
                        source: std::io::Error::other("an evaluation worker panicked"),
                    }),
                )),
            }
        }
        all.sort_by_key(|(i, _)| *i);
        all
    });
    let per_image: Vec<Result<Vec<Detection>>> = per_image.into_iter().map(|(_, r)| r).collect();
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
