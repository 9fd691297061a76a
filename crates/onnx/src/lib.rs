//! ONNX import and export (in progress).
