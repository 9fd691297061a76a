//! ONNX for slimdet: import ONNX detectors onto the NHWC engine, and export our
//! detectors as fp32 ONNX models.
//!
//! - [`proto`]: the `onnx.proto` messages as hand-written prost structs (no protoc).
//! - [`import()`]: an ONNX file (NCHW) becomes a [`slimdet_core::Graph`] (NHWC) that runs
//!   the network up to its raw head outputs, plus a "tail" of element-wise ONNX operators
//!   (softmax, box decoding) run by a small interpreter ([`interp`]) on the engine's
//!   outputs. Shape subgraphs are folded to constants at import time.
//! - [`OnnxModel`]: both parts compiled, producing the outputs exactly as named in the file.
//! - [`export_detector`]: a [`slimdet_models::Detector`] as ONNX (opset 13, IR 7).
//!
//! Quantized models (QDQ, or QOperator with QLinearConv / QLinearAdd) load as detectors
//! that run on the int8 engine ([`detector_from_onnx`]); [`OnnxModel`] runs float
//! graphs only and refuses them. Quantized operators the int8 engine cannot run exactly
//! (QLinearConcat, QLinearMatMul, QLinearSigmoid, uint8 weights, ...) are refused with
//! [`OnnxError::Unsupported`] naming the node: never run in float without saying so.

pub mod detector;
pub mod error;
pub mod export;
pub mod interp;
pub mod order;
pub mod proto;
pub mod qdetector;
pub mod value;

pub use detector::{OnnxDetector, detector_from_onnx, load_onnx_detector};
pub use error::{OnnxError, Result};
pub use export::{
    QdqConv, QdqSpec, detector_model, detector_model_qdq, export_detector, export_detector_qdq,
    export_quantized_detector, qdq_spec,
};
pub mod import;
pub mod model;
pub mod tail;

pub use import::{ConvQuant, Imported, OutputKind, import, import_bytes};
pub use model::{NamedOutput, OnnxModel};
