//! 8-bit RGB images: decoding from files, atomic PNG writing and the float
//! normalisation that turns pixels into network input.
//!
//! Decoding goes through the `image` crate (JPEG via zune-jpeg, PNG). OpenCV,
//! which the reference uses, decodes JPEG with libjpeg-turbo; the two agree
//! to within a level or two on most pixels (see the `decode` tests for the
//! measured figures), PNG is lossless and identical.

use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageEncoder, ImageReader};

use crate::{Error, Result};

/// An 8-bit RGB image, rows top to bottom, `data` is `[height, width, 3]`
/// interleaved (R, G, B for each pixel), so `data.len() == height * width * 3`.
#[derive(Clone, Debug, PartialEq, Eq, Default)]
pub struct RgbImage {
    /// Columns.
    pub width: usize,
    /// Rows.
    pub height: usize,
    /// `[height, width, 3]` pixels, row-major.
    pub data: Vec<u8>,
}

impl RgbImage {
    /// A black image of `width x height`.
    pub fn zeros(width: usize, height: usize) -> Self {
        Self {
            width,
            height,
            data: vec![0; width * height * 3],
        }
    }

    /// The number of bytes `data` must hold, or `None` on overflow.
    pub fn expected_len(&self) -> Option<usize> {
        self.width.checked_mul(self.height)?.checked_mul(3)
    }

    /// Whether `data.len()` agrees with `width` and `height`.
    pub fn is_consistent(&self) -> bool {
        self.expected_len() == Some(self.data.len())
    }
}

/// Widest and tallest image decoded, in pixels (a 16384x16384 RGB image is 768 MiB).
pub const MAX_IMAGE_SIDE: u32 = 16384;
/// Most bytes the decoder may allocate for one image.
pub const MAX_IMAGE_ALLOC: u64 = 1 << 30;

/// Decodes a JPEG or PNG file (format sniffed from the bytes, not the name)
/// into RGB, the equivalent of `cv2.cvtColor(cv2.imread(path), BGR2RGB)`.
///
/// Like `cv2.imread`, an EXIF orientation tag is applied; grey images are
/// replicated into three channels and an alpha channel is dropped.
/// Errors name the file: [`Error::Io`] when it cannot be opened,
/// [`Error::Decode`] when the bytes are not a decodable image or exceed
/// [`MAX_IMAGE_SIDE`] / [`MAX_IMAGE_ALLOC`].
pub fn load_rgb(path: &Path) -> Result<RgbImage> {
    let bytes = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    decode_rgb(&bytes, path)
}

/// [`load_rgb`] on bytes in memory; `path` names them in errors.
pub fn decode_rgb(bytes: &[u8], path: &Path) -> Result<RgbImage> {
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let decode_err = |source| Error::Decode {
        path: path.to_path_buf(),
        source,
    };
    let mut reader = ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(io_err)?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_IMAGE_SIDE);
    limits.max_image_height = Some(MAX_IMAGE_SIDE);
    limits.max_alloc = Some(MAX_IMAGE_ALLOC);
    reader.limits(limits);
    let mut decoder = reader.into_decoder().map_err(decode_err)?;
    let orientation = decoder.orientation().map_err(decode_err)?;
    let mut img = DynamicImage::from_decoder(decoder).map_err(decode_err)?;
    img.apply_orientation(orientation);
    let rgb = img.into_rgb8();
    Ok(RgbImage {
        width: rgb.width() as usize,
        height: rgb.height() as usize,
        data: rgb.into_raw(),
    })
}

/// Writes `img` as an 8-bit RGB PNG, atomically: the bytes go to a temporary
/// file in the destination's folder which is then renamed over `path`, so a
/// reader never sees a half-written file.
///
/// Fails with [`Error::BadImageBuffer`] if `img.data` does not hold
/// `[height, width, 3]` bytes, or if a side exceeds `u32`.
pub fn save_png(path: &Path, img: &RgbImage) -> Result<()> {
    let bad_buffer = || Error::BadImageBuffer {
        path: path.to_path_buf(),
        width: img.width,
        height: img.height,
        expected: img.expected_len().unwrap_or(usize::MAX),
        got: img.data.len(),
    };
    if !img.is_consistent() {
        return Err(bad_buffer());
    }
    let (Ok(w), Ok(h)) = (u32::try_from(img.width), u32::try_from(img.height)) else {
        return Err(bad_buffer());
    };
    let io_err = |source| Error::Io {
        path: path.to_path_buf(),
        source,
    };
    let mut encode_err = None;
    slimdet_atomic::write_with(path, |out| {
        image::codecs::png::PngEncoder::new(out)
            .write_image(&img.data, w, h, image::ExtendedColorType::Rgb8)
            .map_err(|e| {
                encode_err = Some(e);
                std::io::Error::other("PNG encoding failed")
            })
    })
    .map_err(|source| match encode_err.take() {
        Some(source) => Error::Encode {
            path: path.to_path_buf(),
            source,
        },
        None => io_err(source),
    })
}

/// Normalises for the network: `(x - mean) / std` in `f32` for every byte of
/// `img.data`, written into `out` in NHWC order `[1, height, width, 3]` (the
/// same order as `img.data`), so a caller can reuse one buffer per image.
///
/// pytorch-ssd uses `mean = 127.0, std = 128.0` (spec section 8); the
/// arithmetic (`f32` subtract, then `f32` divide) is the reference's.
/// `out.len()` must equal `img.data.len()`; only the common prefix is written
/// otherwise (and debug builds assert).
pub fn normalize_into(img: &RgbImage, mean: [f32; 3], std: f32, out: &mut [f32]) {
    debug_assert_eq!(out.len(), img.data.len(), "normalize_into: buffer size");
    for (o, px) in out.chunks_exact_mut(3).zip(img.data.chunks_exact(3)) {
        for c in 0..3 {
            o[c] = (f32::from(px[c]) - mean[c]) / std;
        }
    }
}
