//! pytorch-ssd's `TrainAugmentation` (spec §8) and the deterministic `TestTransform`, on
//! float images.
//!
//! Pipeline: to float → [`photometric::distort`] → [`geometric::expand`] (fill = mean, 127)
//! → [`geometric::random_sample_crop`] → [`geometric::mirror`] → boxes to 0..1 units →
//! [`geometric::resize`] to the network size → `(v − mean) / std`. The output is HWC,
//! which is the NHWC layout of one batch item.
//!
//! Randomness comes from the caller's [`Rng`], which the loader derives from `(seed, epoch,
//! sample index)`, so a sample's augmentation does not depend on threads or order.
//! Deviations from the reference, all documented where they happen: the float resize is a
//! plain f32 bilinear (OpenCV's float path has the same coordinates, no rounding), the crop
//! gives up after 1000 mode draws instead of looping forever, and the hue conversion
//! treats the data as RGB.

pub mod geometric;
pub mod photometric;

use slimdet_data::RgbImage;

use crate::rng::Rng;

/// A float image `[height, width, 3]`, interleaved RGB.
#[derive(Clone, Debug, PartialEq)]
pub struct FImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `[height, width, 3]` values.
    pub data: Vec<f32>,
}

impl FImage {
    /// `ConvertFromInts`.
    pub fn from_rgb(img: &RgbImage) -> Self {
        Self {
            width: img.width,
            height: img.height,
            data: img.data.iter().map(|&v| f32::from(v)).collect(),
        }
    }
}

/// One augmented sample.
#[derive(Clone, Debug, PartialEq)]
pub struct Augmented {
    /// Normalised network input `[size_h, size_w, 3]`.
    pub input: Vec<f32>,
    /// Corner-form boxes in 0..1 units.
    pub boxes: Vec<[f32; 4]>,
    /// Class per box.
    pub labels: Vec<usize>,
}

/// Network input size and normalisation.
#[derive(Clone, Copy, Debug, PartialEq)]
pub struct Preprocess {
    /// Input width (300).
    pub width: usize,
    /// Input height (300).
    pub height: usize,
    /// Subtracted, per channel RGB (127 for most networks).
    pub mean: [f32; 3],
    /// Divides (128).
    pub std: f32,
}

impl Preprocess {
    /// To percent coordinates, resize, normalise.
    fn finish(&self, img: &FImage, boxes: Vec<[f32; 4]>, labels: Vec<usize>) -> Augmented {
        let (w, h) = (img.width as f32, img.height as f32);
        let boxes = boxes
            .into_iter()
            .map(|b| [b[0] / w, b[1] / h, b[2] / w, b[3] / h])
            .collect();
        let mut input = geometric::resize(img, self.width, self.height).data;
        for px in input.chunks_exact_mut(3) {
            for (v, m) in px.iter_mut().zip(self.mean) {
                *v = (*v - m) / self.std;
            }
        }
        Augmented {
            input,
            boxes,
            labels,
        }
    }

    /// `TrainAugmentation` of `img` with pixel boxes `boxes` (difficult ones removed).
    pub fn train(
        &self,
        img: &RgbImage,
        boxes: &[[f32; 4]],
        labels: &[usize],
        rng: &mut Rng,
    ) -> Augmented {
        let mut im = FImage::from_rgb(img);
        let mut boxes = boxes.to_vec();
        let mut labels = labels.to_vec();
        photometric::distort(&mut im, rng);
        geometric::expand(&mut im, &mut boxes, self.mean, rng);
        geometric::random_sample_crop(&mut im, &mut boxes, &mut labels, rng);
        geometric::mirror(&mut im, &mut boxes, rng);
        self.finish(&im, boxes, labels)
    }

    /// `TestTransform` (no randomness): percent coordinates, float resize, normalise.
    pub fn test(&self, img: &RgbImage, boxes: &[[f32; 4]], labels: &[usize]) -> Augmented {
        self.finish(&FImage::from_rgb(img), boxes.to_vec(), labels.to_vec())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A dark `w × h` image with a bright rectangle `b` (pixels, exclusive end).
    fn scene(w: usize, h: usize, b: [usize; 4]) -> FImage {
        let mut data = vec![10.0f32; w * h * 3];
        for y in b[1]..b[3] {
            for x in b[0]..b[2] {
                data[(y * w + x) * 3..(y * w + x) * 3 + 3].fill(250.0);
            }
        }
        FImage {
            width: w,
            height: h,
            data,
        }
    }

    /// Mean value inside and outside box `b` (pixel coordinates).
    fn inside_outside(img: &FImage, b: [f32; 4]) -> (f32, f32) {
        let (mut si, mut ni, mut so, mut no) = (0.0, 0, 0.0, 0);
        for y in 0..img.height {
            for x in 0..img.width {
                let (cx, cy) = (x as f32 + 0.5, y as f32 + 0.5);
                let v = img.data[(y * img.width + x) * 3];
                if cx > b[0] && cx < b[2] && cy > b[1] && cy < b[3] {
                    si += v;
                    ni += 1;
                } else {
                    so += v;
                    no += 1;
                }
            }
        }
        (si / ni.max(1) as f32, so / no.max(1) as f32)
    }

    #[test]
    fn expand_mirror_and_crop_keep_boxes_on_the_object() {
        for seed in 0..40 {
            let mut rng = Rng::new(seed);
            let mut img = scene(40, 30, [5, 8, 17, 20]);
            let mut boxes = vec![[5.0, 8.0, 17.0, 20.0]];
            let mut labels = vec![3];
            geometric::expand(&mut img, &mut boxes, [127.0; 3], &mut rng);
            geometric::random_sample_crop(&mut img, &mut boxes, &mut labels, &mut rng);
            geometric::mirror(&mut img, &mut boxes, &mut rng);
            assert_eq!(img.data.len(), img.width * img.height * 3);
            assert_eq!(labels, vec![3]);
            let (i, o) = inside_outside(&img, boxes[0]);
            assert_eq!(
                i, 250.0,
                "seed {seed}: box {:?} not on the object",
                boxes[0]
            );
            assert!(o < 250.0, "seed {seed}: object outside the box");
        }
    }

    #[test]
    fn train_augmentation_is_deterministic_per_stream() {
        let p = Preprocess {
            width: 30,
            height: 20,
            mean: [127.0; 3],
            std: 128.0,
        };
        let mut img = RgbImage::zeros(50, 40);
        for (i, v) in img.data.iter_mut().enumerate() {
            *v = (i * 7 % 256) as u8;
        }
        let boxes = [[3.0, 4.0, 30.0, 33.0], [20.0, 2.0, 45.0, 20.0]];
        let run = |k: u64| p.train(&img, &boxes, &[1, 2], &mut Rng::derive(5, &[2, 0, k]));
        assert_eq!(run(1), run(1));
        assert_ne!(run(1), run(2));
        let a = run(3);
        assert_eq!(a.input.len(), 30 * 20 * 3);
        for b in &a.boxes {
            assert!(
                b[0] >= 0.0 && b[2] <= 1.0 && b[0] < b[2] && b[1] < b[3],
                "{b:?}"
            );
        }
    }

    #[test]
    fn resize_identity_and_constant() {
        let img = scene(7, 5, [1, 1, 3, 4]);
        assert_eq!(geometric::resize(&img, 7, 5), img);
        let flat = FImage {
            width: 9,
            height: 4,
            data: vec![3.5; 9 * 4 * 3],
        };
        assert!(
            geometric::resize(&flat, 13, 2)
                .data
                .iter()
                .all(|v| (*v - 3.5).abs() < 1e-6)
        );
    }
}
