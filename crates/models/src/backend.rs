//! Alternative network executors behind the [`crate::Predictor`].
//!
//! By default a predictor runs the detector's f32 graph through the engine's
//! [`slimdet_core::Plan`]. A [`Detector`](crate::Detector) may instead carry a
//! [`BackendFactory`] (the int8 engine of `slimdet-quant`, for example); each predictor then
//! builds its own [`Backend`] from it, and pre- and post-processing (resize, softmax, box
//! decoding, NMS) stay the same.

use crate::error::Result;

/// Runs the network: NHWC input `[1, H, W, 3]` in, raw head outputs out.
pub trait Backend: Send {
    /// Writes class logits `[P, classes]` and box regressions `[P, 4]` for `input`.
    fn forward(&mut self, input: &[f32], logits: &mut [f32], locations: &mut [f32]) -> Result<()>;
    /// Short name for logs and result rows (e.g. `int8-static`).
    fn name(&self) -> &str;
    /// Bytes of weights the backend holds.
    fn weight_bytes(&self) -> usize;
    /// Bytes of activation buffers the backend holds.
    fn arena_bytes(&self) -> usize;
}

/// Builds one [`Backend`] per predictor (predictors are not shared between threads).
pub trait BackendFactory: Send + Sync + std::fmt::Debug {
    /// A backend running on `threads` worker threads.
    fn build(&self, threads: usize) -> Result<Box<dyn Backend>>;
}
