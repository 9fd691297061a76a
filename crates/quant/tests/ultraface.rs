//! The pretrained UltraFace detectors (real weights, unlike the chaotic random-weight
//! golden model): quantized on two photos and tested on a third, the int8 engine tracks
//! f32 closely and finds the same faces.

use std::path::PathBuf;

use slimdet_data::RgbImage;
use slimdet_models::{Detector, Predictor};
use slimdet_quant::{CalibInput, Observer, QuantOptions, quantize, sqnr_report};

fn root() -> PathBuf {
    slimdet_testkit::dir("fixtures/ultraface")
}

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let i = w * h;
    i / ((a[2] - a[0]) * (a[3] - a[1]) + (b[2] - b[0]) * (b[3] - b[1]) - i)
}

#[test]
fn pretrained_ultraface_int8_tracks_fp32() {
    let imgs: Vec<RgbImage> = ["1.jpg", "2.jpg", "13.jpg"]
        .iter()
        .map(|f| slimdet_data::load_rgb(&root().join("images").join(f)).unwrap())
        .collect();
    for model in ["version-slim-320.pth", "version-RFB-320.pth"] {
        let det = Detector::load(&root().join("models").join(model), None).unwrap();
        let test = vec![imgs[2].to_input(&det, 2).unwrap()];
        for obs in [
            Observer::MinMax,
            Observer::Mse,
            Observer::Percentile(99.99),
            Observer::Entropy,
        ] {
            let q = quantize(
                &det,
                &imgs[..2],
                &QuantOptions {
                    observer: obs,
                    ..QuantOptions::default()
                },
            )
            .unwrap();
            let r = sqnr_report(&det, &q, &test).unwrap();
            let (sim, int8) = r.output("scores").unwrap();
            eprintln!("{model} {obs}: scores sim {sim:.1} dB, int8 {int8:.1} dB");
            let floor = if obs == Observer::Entropy { 20.0 } else { 35.0 };
            assert!(int8 >= floor, "{model} {obs}: scores SQNR {int8:.1} dB");
            if obs != Observer::Mse {
                continue;
            }
            let mut fp = Predictor::new(&det, 1).unwrap();
            let mut qp = Predictor::new(&q.to_detector(), 1).unwrap();
            let a = fp.predict(&imgs[2], 0.0, 0).unwrap();
            let b = qp.predict(&imgs[2], 0.0, 0).unwrap();
            eprintln!("{model}: fp32 {} faces, int8 {} faces", a.len(), b.len());
            assert!(!a.is_empty());
            assert!(
                a.len().abs_diff(b.len()) <= a.len() / 10 + 1,
                "{} vs {}",
                a.len(),
                b.len()
            );
            let matched = a
                .iter()
                .filter(|d| b.iter().any(|e| iou(&d.bbox, &e.bbox) > 0.8))
                .count();
            assert!(
                matched * 10 >= a.len() * 9,
                "{matched} of {} fp32 faces found by int8",
                a.len()
            );
        }
    }
}
