//! The built-in synthetic detection dataset: the tool's default data, so
//! that training, pruning, quantization and evaluation do something real on
//! a fresh machine with no downloads.
//!
//! Each image is `size x size` RGB with 1-6 objects from ten shape classes
//! ([`SYNTH_CLASSES`]) on a cluttered background (gradients, value noise,
//! lumpy blobs, scribbles), with textured fills, overlaps, truncation at
//! the border, colour jitter, blur and noise. The classes differ in
//! difficulty on purpose (small-only, low-contrast, thin, confusable pairs),
//! so that per-class AP varies and the damage done by compression shows.
//!
//! The stream is a pure function of `(seed, size, index)` and
//! [`SYNTH_VERSION`]: image `i` is [`render_sample`]`(cfg, i)`, rendered
//! from its own random stream, so images can be made in any order on any
//! number of threads and the bytes do not change. Ground truth comes from a
//! per-pixel ownership mask: boxes are tight around the *visible* pixels,
//! heavily occluded or tiny objects are flagged `difficult` (and the
//! hopeless ones left out), as VOC does for hard objects.
//!
//! [`generate`] writes the stream in the Pascal VOC layout that
//! [`crate::voc::VocDataset`] reads (see the [`generate`] docs for the
//! files); [`is_generated`] tells whether a folder already holds the
//! dataset of a config, and [`sample_grid`] draws a contact sheet with the
//! boxes (`docs/synth_samples.png`).

mod background;
mod grid;
mod paint;
mod rng;
mod scene;
mod shapes;
mod writer;

pub use grid::sample_grid;
pub use scene::{DIFFICULT_SIDE, DIFFICULT_VISIBLE, DROP_SIDE, DROP_VISIBLE, MAX_OBJECTS};
pub use shapes::SYNTH_CLASSES;
pub use writer::{generate, generate_with_threads, is_generated, manifest_json};

use crate::RgbImage;

/// Version of the generator's output. Bumped whenever the bytes written for
/// a given config change, so that cached datasets are regenerated.
pub const SYNTH_VERSION: u32 = 1;

/// What to generate. Images `0..train` form the `trainval` split, images
/// `train..train + test` the `test` split.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct SynthConfig {
    /// Number of training (`trainval`) images.
    pub train: usize,
    /// Number of `test` images.
    pub test: usize,
    /// Seed of the whole stream.
    pub seed: u64,
    /// Side of the square images in pixels. Object sizes scale with it
    /// (they are specified for 300); the difficult/drop thresholds are in
    /// pixels and do not.
    pub size: usize,
}

impl Default for SynthConfig {
    /// 1500 train, 500 test, seed 0, 300 x 300 (the SSD input size).
    fn default() -> Self {
        SynthConfig {
            train: 1500,
            test: 500,
            seed: 0,
            size: 300,
        }
    }
}

impl SynthConfig {
    /// `train + test`.
    pub fn total(&self) -> usize {
        self.train + self.test
    }
}

/// The file id of image `index` of the stream: `s000001` for index 0.
pub fn sample_id(index: usize) -> String {
    format!("s{:06}", index + 1)
}

/// One annotated object of a rendered image.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthObject {
    /// 1-based class index (0 is the background): `SYNTH_CLASSES[class_index - 1]`.
    pub class_index: usize,
    /// `[x1, y1, x2, y2]`: inclusive 0-based pixel coordinates of the tight
    /// box around the object's visible pixels (the VOC file holds these + 1).
    pub bbox: [u32; 4],
    /// Less than [`DIFFICULT_VISIBLE`] of it visible, or the box's short
    /// side below [`DIFFICULT_SIDE`] pixels.
    pub difficult: bool,
    /// Part of the shape lies outside the image.
    pub truncated: bool,
    /// Visible pixels over the shape's full area (occlusion and truncation
    /// both lower it), in `(0, 1]`.
    pub visible_fraction: f32,
}

/// A rendered image with its annotations and ownership mask.
#[derive(Clone, Debug, PartialEq)]
pub struct SynthScene {
    /// The image, `[size, size, 3]`.
    pub image: RgbImage,
    /// Annotated objects, in painting order (later ones lie on top).
    pub objects: Vec<SynthObject>,
    /// `[size, size]` row-major: `k + 1` where pixel belongs to `objects[k]`,
    /// 0 for background, occluders and objects left out of the annotations.
    pub owner: Vec<u8>,
}

/// Totals over a generated dataset (both splits).
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct SynthSummary {
    /// Images written.
    pub images: usize,
    /// Annotated objects, difficult ones included.
    pub objects: usize,
    /// Annotated objects flagged difficult.
    pub difficult: usize,
    /// Annotated objects per class: `per_class[c - 1]` for class index `c`
    /// (length `SYNTH_CLASSES.len()`, no background entry).
    pub per_class: Vec<usize>,
}

/// Renders image `index` of the stream of `cfg` (train ids first, then
/// test): pure and deterministic, independent of every other index.
pub fn render_sample(cfg: &SynthConfig, index: usize) -> (RgbImage, Vec<SynthObject>) {
    let scene = render_scene(cfg, index);
    (scene.image, scene.objects)
}

/// [`render_sample`] with the ownership mask the boxes were computed from.
pub fn render_scene(cfg: &SynthConfig, index: usize) -> SynthScene {
    scene::render(cfg, index)
}
