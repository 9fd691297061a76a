//! Post-training quantization of SSD detectors, and the integer engine that runs them.
//!
//! ```text
//! Detector ──prepare (fold BN, fuse ReLU6)──► graph ──calibrate (observers)──► ranges
//!          ──quantize weights (i8, per channel or per tensor)──► QuantizedDetector
//!          ──save/load (safetensors)──┘        └─► to_detector(): Predictor runs Int8Engine
//! ```
//!
//! - [`quantize`]: static int8 (calibrated activations), dynamic int8 (activations
//!   quantized per tensor at run time) or fp16 weight storage ([`Mode`]).
//! - Observers ([`Observer`]): min/max, moving-average min/max, percentile, entropy
//!   (TensorRT's KL calibration on a 2048-bin histogram) and MSE-optimal clipping.
//! - Activations are `u8` asymmetric by default, or `i8` symmetric; weights are `i8`
//!   symmetric per output channel (default) or per tensor; biases `i32`.
//! - [`Int8Engine`](int8_exec::Int8Engine): integer kernels from
//!   `slimdet_kernels::quant` for convolutions, depthwise convolutions and residual
//!   adds, max pooling on `u8` codes; heads are dequantized before the concatenation, so
//!   softmax and box decoding run in f32. MobileNetV3's h-swish and h-sigmoid map codes
//!   to codes by a 256-entry table; squeeze-and-excite and a batch norm no convolution
//!   precedes (VGG16-SSD's) run in f32 between the integer layers (`float_ops`). Layers matching [`QuantOptions::keep_float`] run in f32 with quantize
//!   and dequantize steps at their boundaries. Requantization is TFLite's single-rounding
//!   fixed point (`slimdet_kernels::quant::requant`), its multipliers derived from the
//!   stored scales when the engine is built; the AVX-512 (VNNI, and AMX tiles for the
//!   GEMM where the CPU has them), AVX2 and scalar kernels give identical codes.
//! - [`sqnr_report`]: per-layer SQNR of the fake-quant simulation and of the integer
//!   engine against f32.
//! - Built on this crate elsewhere: the mAP cost of each int8 convolution and
//!   `--auto-keep-float K` (`slimdet_eval::quant_sensitivity`, it needs the VOC
//!   evaluator), and quantization-aware training (`slimdet_train::qat`, it needs the
//!   trainer). This crate depends on neither.
//!
//! # File layout (`slimdet.quant.version` = 2)
//!
//! A safetensors file. Metadata: the float model file's entries
//! (`slimdet_models::file`: `slimdet.model.version`, `slimdet.graph` = the prepared
//! graph for int8 modes and the original one for fp16, `slimdet.head`), `slimdet.format`
//! = `slimdet-quant`, `slimdet.quant.version`, `slimdet.quant.mode` (`static`,
//! `dynamic`, `fp16`), and `slimdet.quant.checksum` (FNV-1a 64 over every tensor's name,
//! dtype, shape and bytes in name order). Static and dynamic files add
//! `slimdet.quant.{activations, granularity, observer, keep_float}` (keep_float: comma
//! separated node names). Tensors, named after the prepared graph's nodes (BN folded):
//!
//! | tensor | dtype, shape | meaning |
//! |---|---|---|
//! | `<conv>.weight` | I8 `[O, I/g, kh, kw]` | quantized weight `q`, real `q · weight_scale[o]` |
//! | `<conv>.weight_scale` | F32 `[O]` | per-channel scales (equal for per-tensor) |
//! | `<conv>.bias` | I32 `[O]` (static) / F32 `[O]` (dynamic) | static: `round(b / (s_in · s_w[o]))` |
//! | `<conv>.weight`, `<conv>.bias` | F32 | layers kept in f32 |
//! | `act.<node>.scale`, `act.<node>.zero_point` | F32 `[1]`, I32 `[1]` | the node's output: `real = scale · (code − zp)`, codes `u8` (`i8` symmetric is stored as zero point 128); `act.input.*` for the network input |
//!
//! Fp16 files hold the original (unfolded) state_dict with F16 floats, so any tool that
//! reads safetensors state_dicts (and `slimdet`'s own loader) can open them.
//!
//! Version 1 files named the architecture instead of carrying the graph
//! (`slimdet.arch`, with `slimdet.width_mult` and `slimdet.num_classes` where it has
//! them); they still load, through that architecture's graph builder.

mod arena;
pub mod error;
pub mod float_exec;
mod float_ops;
pub mod int8_exec;
pub mod io;
pub mod model;
pub mod observer;
pub mod options;
pub mod prepare;
pub mod quantize;
pub mod report;

pub use error::{QuantError, Result};
pub use int8_exec::{Int8Engine, Int8Factory};
pub use io::is_quantized_file;
pub use model::{QBias, QLayer, QParams, QuantizedDetector};
pub use options::{Activations, Granularity, Mode, Observer, QuantOptions};
pub use quantize::{CalibInput, calibration_subset, quantize};
pub use report::{LayerSqnr, SqnrReport, sqnr_report};
