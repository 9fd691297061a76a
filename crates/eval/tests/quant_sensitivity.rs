//! Layer sensitivity and `--auto-keep-float` on the built-in model (trained on the
//! synthetic dataset) with a few rendered synthetic images: every int8 layer is ranked,
//! the mixed model equals `quantize` with those layers in `keep_float`, and bad requests
//! are refused.

use std::collections::BTreeSet;
use std::path::PathBuf;

use slimdet_data::synth::{SynthConfig, render_sample};
use slimdet_eval::GroundTruth;
use slimdet_eval::quant_sensitivity::{
    EvalSet, int8_layers, keep_most_sensitive, layer_sensitivity, with_float_layers,
};
use slimdet_models::Detector;
use slimdet_quant::{Observer, QuantError, QuantOptions, quantize};

fn builtin() -> Detector {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/mb2-ssd-lite-synth.safetensors"
    ));
    Detector::load(&p, None).unwrap()
}

/// Synthetic images `indices` of the default stream with their ground truth.
fn images(
    indices: std::ops::Range<usize>,
) -> Vec<(String, slimdet_data::RgbImage, Vec<GroundTruth>)> {
    let cfg = SynthConfig::default();
    indices
        .map(|i| {
            let (img, objs) = render_sample(&cfg, i);
            let id = format!("s{i}");
            let gt = objs
                .iter()
                .map(|o| GroundTruth {
                    image: id.clone(),
                    class_index: o.class_index,
                    bbox: o.bbox.map(|v| v as f32),
                    difficult: o.difficult,
                })
                .collect();
            (id, img, gt)
        })
        .collect()
}

#[test]
fn ranks_every_int8_layer_and_keeps_the_top_k_in_f32() {
    let det = builtin();
    let calib: Vec<_> = images(0..4).into_iter().map(|(_, img, _)| img).collect();
    let opts = QuantOptions {
        observer: Observer::MinMax,
        ..QuantOptions::default()
    };
    let q = quantize(&det, &calib, &opts).unwrap();
    let set = EvalSet::from_images(&det, images(1500..1503)).unwrap();
    let calls = std::sync::atomic::AtomicUsize::new(0);
    let report = layer_sensitivity(&det, &q, &set, 2, &|_, _| {
        calls.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    })
    .unwrap();
    let layers = int8_layers(&q);
    assert!(layers.len() > 60, "{} int8 layers", layers.len());
    assert_eq!(report.layers.len(), layers.len());
    assert_eq!(calls.into_inner(), layers.len());
    assert_eq!(report.images, 3);
    assert!(
        report.fp32_map > 0.2 && report.fp32_map <= 1.0,
        "{}",
        report.fp32_map
    );
    let names: BTreeSet<&str> = report.layers.iter().map(|l| l.name.as_str()).collect();
    assert_eq!(names.len(), layers.len(), "each layer exactly once");
    for (i, w) in report.layers.windows(2).enumerate() {
        assert_eq!(w[0].rank, i + 1);
        assert!(
            w[0].drop > w[1].drop
                || (w[0].drop == w[1].drop && w[0].output_sqnr_db() <= w[1].output_sqnr_db()),
            "{:?} before {:?}",
            w[0],
            w[1]
        );
        assert!((w[0].drop - (report.fp32_map - w[0].map)).abs() < 1e-12);
    }
    // One int8 layer perturbs the outputs but far less than the whole model.
    assert!(report.layers.iter().all(|l| l.output_sqnr_db() > 20.0));
    assert!(report.layers.iter().any(|l| l.scores_sqnr_db.is_finite()));

    let k = 3;
    let mixed = keep_most_sensitive(&det, &q, &report, k).unwrap();
    assert_eq!(mixed.layers.len(), layers.len() - k);
    let top = report.top(k);
    for name in &top {
        assert!(mixed.keep_float.contains(name) && !mixed.layers.contains_key(name));
    }
    // Same model as quantizing with those layers named in keep_float.
    let direct = quantize(
        &det,
        &calib,
        &QuantOptions {
            keep_float: top.clone(),
            ..opts.clone()
        },
    )
    .unwrap();
    assert_eq!(mixed, direct);
    // It runs behind the predictor.
    let mut pred = slimdet_models::Predictor::new(&mixed.to_detector(), 1).unwrap();
    pred.forward(&set.inputs[0]).unwrap();
    assert!(pred.scores().iter().all(|s| s.is_finite()));

    // K larger than the layers, and empty sets, are refused.
    let e = keep_most_sensitive(&det, &q, &report, layers.len() + 1).unwrap_err();
    assert!(matches!(e, QuantError::TooManyKeepFloat { .. }), "{e}");
    assert!(e.to_string().contains(&layers.len().to_string()));
    let e = EvalSet::from_images(&det, Vec::new()).unwrap_err();
    assert!(matches!(e, QuantError::EmptySensitivitySet { .. }), "{e}");
    let e = with_float_layers(&det, &q, &["no.such.layer".to_string()].into(), false).unwrap_err();
    assert!(matches!(e, QuantError::PatternMatchesNothing { .. }), "{e}");
}
