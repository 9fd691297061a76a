//! Images and datasets for slimdet: decoding, the OpenCV-exact resize, the
//! network's input normalisation and the Pascal VOC folder layout.
//!
//! Why a crate of its own: the preprocessing must match pytorch-ssd (which
//! reads with OpenCV) bit for bit where it can, and every model, the
//! evaluator and the CLI need the same code for it.
//!
//! - [`RgbImage`], [`load_rgb`], [`save_png`], [`normalize_into`]: 8-bit RGB
//!   images `[H, W, 3]` and the float input `[1, H, W, 3]`.
//! - [`resize_linear_u8`], [`resize_rgb`]: `cv2.resize(..., INTER_LINEAR)` on
//!   uint8, bit-exact (spec section 8).
//! - [`voc`]: `VOCdevkit/VOC2007` style datasets (spec section 12).

mod error;
mod image_io;
mod resize;
pub mod synth;
pub mod voc;

pub use error::{Error, Result};
pub use image_io::{
    MAX_IMAGE_ALLOC, MAX_IMAGE_SIDE, RgbImage, decode_rgb, load_rgb, normalize_into, save_png,
};
pub use resize::{Resize, preprocess_into, resize_linear_u8, resize_rgb, resize_rgb_tf_legacy};
