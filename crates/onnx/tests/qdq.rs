//! QDQ round trip: a static int8 model exported as QDQ ONNX and imported back runs on
//! the integer engine with exactly the same weights, scales and zero points, so its
//! outputs are bit-identical to the original's.

mod common;

use common::*;
use slimdet_models::{Detector, Predictor};
use slimdet_onnx::{OnnxModel, detector_from_onnx, export_quantized_detector};
use slimdet_quant::{Observer, QuantOptions, quantize};

fn outputs(det: &Detector, input: &[f32]) -> (Vec<f32>, Vec<f32>) {
    let mut p = Predictor::new(det, 1).unwrap();
    p.forward(input).unwrap();
    let boxes = p.boxes().iter().flatten().copied().collect();
    (p.scores().to_vec(), boxes)
}

#[test]
fn qdq_export_and_import_give_the_same_int8_model() {
    let det = Detector::load(&mb2_model(), None).unwrap();
    let calib: Vec<Vec<f32>> = ["000002", "000003", "000004"]
        .iter()
        .map(|id| mb2_golden_input_nhwc(id))
        .collect();
    for granularity in ["channel", "tensor"] {
        let opts = QuantOptions {
            observer: Observer::MinMax,
            granularity: granularity.parse().unwrap(),
            calib_images: 3,
            ..QuantOptions::default()
        };
        let q = quantize(&det, &calib, &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.onnx");
        export_quantized_detector(&q, &path, false).unwrap();
        let back = detector_from_onnx(&path, None).unwrap();
        assert!(back.backend.is_some(), "runs on the int8 engine");
        let input = mb2_golden_input_nhwc("000005");
        let (s0, b0) = outputs(&q.to_detector(), &input);
        let (s1, b1) = outputs(&back, &input);
        assert_eq!(s0, s1, "{granularity}: scores");
        assert_eq!(b0, b1, "{granularity}: boxes");
        // The float-only runner refuses the file rather than run it unquantized.
        let e = OnnxModel::load(&path, 1)
            .err()
            .expect("refused")
            .to_string();
        assert!(e.contains("int8"), "{e}");
    }
}
