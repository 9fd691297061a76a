//! QDQ round trip: a static int8 model exported as QDQ ONNX and imported back runs on
//! the integer engine with exactly the same weights, scales and zero points, so its
//! outputs are bit-identical to the original's.

mod common;

use common::build::*;
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

/// The same round trip on the networks with max pooling, concatenated Fire modules,
/// h-swish, squeeze-and-excite and an unfolded batch norm: bit-identical outputs.
#[test]
fn qdq_round_trip_is_exact_on_the_other_networks() {
    for net in ["sq-ssd-lite", "mb3-small-ssd-lite", "vgg16-ssd"] {
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let c = &det.config;
        let input = zoo_input_nchw(net, "000002", c.mean, c.std);
        // The same photo as NHWC for our engine, and as the only calibration input.
        let nhwc: Vec<f32> = (0..300 * 300)
            .flat_map(|p| (0..3).map(move |ch| (p, ch)))
            .map(|(p, ch)| input[ch * 300 * 300 + p])
            .collect();
        let opts = QuantOptions {
            observer: Observer::MinMax,
            calib_images: 1,
            ..QuantOptions::default()
        };
        let q = quantize(&det, std::slice::from_ref(&nhwc), &opts).unwrap();
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("q.onnx");
        export_quantized_detector(&q, &path, false).unwrap();
        let back = detector_from_onnx(&path, None).unwrap();
        assert_eq!(back.name, net);
        assert!(back.backend.is_some(), "{net}: runs on the int8 engine");
        let (s0, b0) = outputs(&q.to_detector(), &nhwc);
        let (s1, b1) = outputs(&back, &nhwc);
        assert!(
            s0 == s1 && b0 == b1,
            "{net}: outputs differ after the round trip"
        );
    }
}

/// A QDQ pair on a post-processing value (as ONNX Runtime's quantizer writes on box
/// decoding) is applied exactly in the tail: uint8 codes, rounding half to even.
#[test]
fn qdq_on_post_processing_is_applied_in_the_tail() {
    let scale = 0.05f32;
    let zp = 10u8;
    let mut zp_init = i64_init("zp", &[], vec![0]);
    zp_init.data_type = slimdet_onnx::proto::data_type::UINT8;
    zp_init.raw_data = vec![zp];
    let nodes = vec![
        node("Exp", "exp", &["x"], &["e"], vec![]),
        node(
            "QuantizeLinear",
            "q",
            &["e", "scale", "zp"],
            &["eq"],
            vec![],
        ),
        node(
            "DequantizeLinear",
            "dq",
            &["eq", "scale", "zp"],
            &["y"],
            vec![],
        ),
    ];
    let inits = vec![f32_init("scale", &[], vec![scale]), zp_init];
    let m = model(13, &[1, 1, 2, 3], nodes, inits, &[("y", &[1, 1, 2, 3])]);
    let imported = slimdet_onnx::import_bytes(&bytes(&m), "tail_qdq.onnx").unwrap();
    assert!(!imported.is_quantized(), "nothing for the integer engine");
    let mut run = OnnxModel::new(imported, &Default::default()).unwrap();
    let x = [-3.0f32, -1.0, 0.0, 0.5, 1.0, 3.0];
    let out = run.run_nchw(&x).unwrap();
    for (&xi, &yi) in x.iter().zip(&out[0].2) {
        let code = ((xi.exp() / scale).round_ties_even() + zp as f32).clamp(0.0, 255.0);
        let want = (code - zp as f32) * scale;
        assert_eq!(yi, want, "x = {xi}");
    }
    // 3.0 saturates at code 255: exp(3) = 20.1 > (255 - 10) * 0.05.
    assert_eq!(*out[0].2.last().unwrap(), 245.0 * scale);
}
