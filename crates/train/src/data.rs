//! The training set and its loader: VOC annotations with difficult objects dropped,
//! per-epoch shuffles, augmented and matched batches built in parallel on a prefetch
//! thread.
//!
//! Determinism: the order of epoch `e` is a shuffle from `(seed, e)`, and sample `i` is
//! augmented with a generator derived from `(seed, e, i)`, so batches are identical
//! whatever the number of loader threads and wherever a run resumes.
//!
//! Images whose objects are all difficult (or that have none) are skipped when the set is
//! opened: the reference would crash on them (`assign_priors` on zero boxes). Boxes with
//! no area (`x2 ≤ x1` or `y2 ≤ y1`) are dropped too, since they encode to `−inf`.

use std::ops::Range;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, sync_channel};
use std::thread::JoinHandle;

use rayon::prelude::*;
use slimdet_core::Tensor;
use slimdet_data::voc::VocDataset;

use crate::augment::Preprocess;
use crate::error::{Result, TrainError};
use crate::loss::{Targets, corner_priors, match_priors};
use crate::rng::{Rng, stream};

/// One training image: its id and the boxes it is trained on.
#[derive(Clone, Debug, PartialEq)]
pub struct TrainItem {
    /// Image id.
    pub id: String,
    /// Non-difficult boxes, `[x1, y1, x2, y2]` in 0-based pixels.
    pub boxes: Vec<[f32; 4]>,
    /// Class per box (≥ 1).
    pub labels: Vec<usize>,
}

/// A split ready for training.
#[derive(Clone, Debug)]
pub struct TrainSet {
    /// The dataset (for images and class names).
    pub dataset: VocDataset,
    /// Usable items in split order.
    pub items: Vec<TrainItem>,
    /// Images skipped because no non-difficult object with an area was left.
    pub skipped: usize,
}

impl TrainSet {
    /// Reads every annotation of `dataset`, keeping at most `limit` usable images.
    pub fn open(dataset: VocDataset, limit: Option<usize>) -> Result<Self> {
        let mut items = Vec::new();
        let mut skipped = 0;
        for id in dataset.ids() {
            if limit.is_some_and(|l| items.len() >= l) {
                break;
            }
            let ann = dataset.annotation(id)?;
            let (boxes, labels): (Vec<[f32; 4]>, Vec<usize>) = ann
                .objects
                .iter()
                .filter(|o| !o.difficult && o.bbox[2] > o.bbox[0] && o.bbox[3] > o.bbox[1])
                .map(|o| (o.bbox, o.class_index))
                .unzip();
            if boxes.is_empty() {
                skipped += 1;
            } else {
                items.push(TrainItem {
                    id: id.clone(),
                    boxes,
                    labels,
                });
            }
        }
        if items.is_empty() {
            return Err(TrainError::EmptyDataset {
                split: dataset.split().to_string(),
                skipped,
            });
        }
        Ok(Self {
            dataset,
            items,
            skipped,
        })
    }

    /// Usable images.
    pub fn len(&self) -> usize {
        self.items.len()
    }

    /// Never true for an opened set.
    pub fn is_empty(&self) -> bool {
        self.items.is_empty()
    }
}

/// How samples become network inputs and targets.
#[derive(Clone, Debug)]
pub struct SampleSpec {
    /// Size and normalisation.
    pub preprocess: Preprocess,
    /// Centre-form priors `[P]`.
    pub priors: Vec<[f32; 4]>,
    /// Their corner form.
    pub corner: Vec<[f32; 4]>,
    /// Centre variance (0.1).
    pub center_variance: f32,
    /// Size variance (0.2).
    pub size_variance: f32,
    /// `TrainAugmentation` when true, `TestTransform` otherwise.
    pub augment: bool,
    /// Run seed.
    pub seed: u64,
}

impl SampleSpec {
    /// A spec for `priors` (centre form).
    pub fn new(preprocess: Preprocess, priors: Vec<[f32; 4]>, augment: bool, seed: u64) -> Self {
        let corner = corner_priors(&priors);
        Self {
            preprocess,
            priors,
            corner,
            center_variance: 0.1,
            size_variance: 0.2,
            augment,
            seed,
        }
    }

    /// The spec of detector `det`: its input size, normalisation, priors and variances.
    pub fn for_detector(det: &slimdet_models::Detector, augment: bool, seed: u64) -> Self {
        let c = &det.config;
        let pre = Preprocess {
            width: c.input_w,
            height: c.input_h,
            mean: c.mean,
            std: c.std,
        };
        let mut spec = Self::new(pre, det.priors.clone(), augment, seed);
        spec.center_variance = c.center_variance;
        spec.size_variance = c.size_variance;
        spec
    }

    /// Input `[H, W, 3]` and targets of item `index` of `set` in epoch `epoch`.
    pub fn sample(
        &self,
        set: &TrainSet,
        epoch: usize,
        index: usize,
    ) -> Result<(Vec<f32>, Targets)> {
        let item = &set.items[index];
        let img = set.dataset.load_image(&item.id)?;
        let a = if self.augment {
            let mut rng = Rng::derive(self.seed, &[stream::AUGMENT, epoch as u64, index as u64]);
            self.preprocess
                .train(&img, &item.boxes, &item.labels, &mut rng)
        } else {
            self.preprocess.test(&img, &item.boxes, &item.labels)
        };
        let t = match_priors(
            &a.boxes,
            &a.labels,
            &self.priors,
            &self.corner,
            self.center_variance,
            self.size_variance,
        );
        Ok((a.input, t))
    }
}

/// The item order of epoch `epoch`: a shuffle of `0..n` from `(seed, epoch)`.
pub fn epoch_order(n: usize, seed: u64, epoch: usize) -> Vec<usize> {
    let mut v: Vec<usize> = (0..n).collect();
    Rng::derive(seed, &[stream::SHUFFLE, epoch as u64]).shuffle(&mut v);
    v
}

/// Batch boundaries over `n` items: full batches, then the partial one (kept, as
/// PyTorch's `DataLoader`) unless it has a single image, which is dropped (training-mode
/// batch norm needs two values per channel, and the 1x1 extras have one per image).
pub fn batch_ranges(n: usize, batch: usize) -> Vec<Range<usize>> {
    (0..n.div_ceil(batch))
        .map(|b| b * batch..((b + 1) * batch).min(n))
        .filter(|r| r.len() >= 2)
        .collect()
}

impl TrainSet {
    /// The batch boundaries of every epoch ([`batch_ranges`]), or
    /// [`crate::TrainError::EmptyDataset`] naming `split` when not one batch of two
    /// images can be made.
    pub fn batches(&self, batch: usize, split: &str) -> crate::Result<Vec<Range<usize>>> {
        let ranges = batch_ranges(self.len(), batch);
        if ranges.is_empty() {
            return Err(crate::TrainError::EmptyDataset {
                split: split.to_string(),
                skipped: self.skipped,
            });
        }
        Ok(ranges)
    }
}

/// One batch: NHWC images and concatenated targets.
#[derive(Clone, Debug)]
pub struct Batch {
    /// `[B, H, W, 3]`.
    pub images: Tensor,
    /// `[B, P]`.
    pub labels: Vec<usize>,
    /// `[B, P, 4]`.
    pub locations: Vec<f32>,
}

/// Builds the batch of items `indices` of epoch `epoch`, samples in parallel on the
/// current rayon pool.
pub fn build_batch(
    set: &TrainSet,
    spec: &SampleSpec,
    epoch: usize,
    indices: &[usize],
) -> Result<Batch> {
    let samples: Vec<(Vec<f32>, Targets)> = indices
        .par_iter()
        .map(|&i| spec.sample(set, epoch, i))
        .collect::<Result<_>>()?;
    let p = &spec.preprocess;
    let mut images = Vec::with_capacity(indices.len() * p.width * p.height * 3);
    let mut labels = Vec::with_capacity(indices.len() * spec.priors.len());
    let mut locations = Vec::with_capacity(indices.len() * spec.priors.len() * 4);
    for (x, t) in samples {
        images.extend_from_slice(&x);
        labels.extend_from_slice(&t.labels);
        locations.extend_from_slice(&t.locations);
    }
    let images = Tensor::new(vec![indices.len(), p.height, p.width, 3], images)?;
    Ok(Batch {
        images,
        labels,
        locations,
    })
}

/// Builds the batches of one epoch on a background thread, one ahead of the consumer.
pub struct Prefetcher {
    rx: Receiver<Result<Batch>>,
    handle: Option<JoinHandle<()>>,
}

impl Prefetcher {
    /// Starts loading `batches` (lists of item indices) of epoch `epoch` with `threads`
    /// loader threads.
    pub fn start(
        set: Arc<TrainSet>,
        spec: Arc<SampleSpec>,
        epoch: usize,
        batches: Vec<Vec<usize>>,
        threads: usize,
    ) -> Result<Self> {
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(threads.max(1))
            .build()
            .map_err(|e| TrainError::Threads {
                threads,
                reason: e.to_string(),
            })?;
        let (tx, rx): (SyncSender<Result<Batch>>, _) = sync_channel(1);
        let handle = std::thread::spawn(move || {
            for b in batches {
                let r = pool.install(|| build_batch(&set, &spec, epoch, &b));
                let failed = r.is_err();
                if tx.send(r).is_err() || failed {
                    return;
                }
            }
        });
        Ok(Self {
            rx,
            handle: Some(handle),
        })
    }

    /// The next batch, or `None` when the epoch is done.
    pub fn next_batch(&mut self) -> Option<Result<Batch>> {
        self.rx.recv().ok()
    }
}

impl Drop for Prefetcher {
    fn drop(&mut self) {
        // Unblock the producer (its send fails once the receiver is gone), then join it.
        let (_, dead) = sync_channel(1);
        drop(std::mem::replace(&mut self.rx, dead));
        if let Some(h) = self.handle.take() {
            let _ = h.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn batch_ranges_drop_a_final_single_image() {
        assert_eq!(batch_ranges(10, 4), vec![0..4, 4..8, 8..10]);
        assert_eq!(batch_ranges(9, 4), vec![0..4, 4..8]);
        assert_eq!(batch_ranges(1, 4), Vec::<Range<usize>>::new());
    }

    #[test]
    fn epoch_orders_are_seeded_permutations() {
        let a = epoch_order(20, 3, 0);
        assert_eq!(a, epoch_order(20, 3, 0));
        assert_ne!(a, epoch_order(20, 3, 1));
        let mut s = a.clone();
        s.sort();
        assert_eq!(s, (0..20).collect::<Vec<_>>());
    }
}
