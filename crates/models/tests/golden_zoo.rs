//! pytorch-ssd's other networks against PyTorch: `testdata/golden/pytorch-ssd/<net>-voc21-seed0`
//! (README there), made by pytorch-ssd's own code. For each network: the builder is found
//! from the `.pth` keys, parameters and MACs equal the golden's, the priors equal
//! `priors.csv`, the raw heads on both photos are within the golden's tolerances (1e-3),
//! and the Predictor's detections are PyTorch's set (label equal, score within 1e-4, box
//! within 0.05 px; near-ties at the NMS threshold below 0.5 %).

use safetensors::SafeTensors;
use slimdet_core::stats::model_stats;
use slimdet_models::{Detector, Predictor};
use slimdet_testkit::{max_abs_diff, st_f32};

const IDS: [&str; 2] = ["000002", "004545"];

fn meta_u64(meta: &serde_json::Value, key: &str) -> u64 {
    meta[key]
        .as_u64()
        .unwrap_or_else(|| panic!("meta.json {key}"))
}

/// Checks network `net` (pytorch-ssd's `--net` name) against its golden folder.
fn check(net: &str) {
    let dir = format!("{net}-voc21-seed0");
    let file = |f: &str| slimdet_testkit::zoo(&format!("{dir}/{f}"));
    let meta: serde_json::Value =
        serde_json::from_slice(&std::fs::read(file("meta.json")).unwrap()).unwrap();
    let det = Detector::load(&file("model.pth"), None).unwrap();
    assert_eq!(det.name, net);

    let stats = model_stats(&det.graph, &det.input_shape()).unwrap();
    assert_eq!(
        stats.params as u64,
        meta_u64(&meta, "params"),
        "{net}: params"
    );
    assert_eq!(stats.macs as u64, meta_u64(&meta, "macs"), "{net}: MACs");

    let priors = std::fs::read_to_string(file("priors.csv")).unwrap();
    let golden_priors: Vec<[f32; 4]> = priors
        .lines()
        .skip(1)
        .map(|l| {
            let v: Vec<f32> = l.split(',').map(|x| x.parse().unwrap()).collect();
            [v[0], v[1], v[2], v[3]]
        })
        .collect();
    assert_eq!(det.priors, golden_priors, "{net}: priors");

    let bytes = std::fs::read(file("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut pred = Predictor::new(&det, 1).unwrap();
    let detections = std::fs::read_to_string(file("detections.csv")).unwrap();
    let golden: Vec<Vec<&str>> = detections
        .lines()
        .skip(1)
        .map(|l| l.split(',').collect())
        .collect();
    let (mut matched, mut differ) = (0usize, 0usize);
    for id in IDS {
        let img =
            slimdet_data::load_rgb(&slimdet_testkit::zoo(&format!("images/{id}.png"))).unwrap();
        pred.preprocess(&img);
        pred.forward_buffered().unwrap();
        let dl = max_abs_diff(pred.logits(), &st_f32(&st, &format!("{id}.logits")));
        let dloc = max_abs_diff(pred.locations(), &st_f32(&st, &format!("{id}.locations")));
        eprintln!("{net} {id}: logits {dl:.2e} locations {dloc:.2e}");
        assert!(dl <= 1e-3, "{net} {id}: logits differ by {dl}");
        assert!(dloc <= 1e-3, "{net} {id}: locations differ by {dloc}");

        let ours = pred.predict(&img, 0.01, 0).unwrap();
        let mut gold: Vec<&Vec<&str>> = golden.iter().filter(|g| g[0] == id).collect();
        for d in &ours {
            let hit = gold.iter().position(|g| {
                let n = |i: usize| g[i].parse::<f32>().unwrap();
                g[1] == det.class_names[d.label]
                    && (n(2) - d.score).abs() <= 1e-4
                    && (0..4).all(|k| (n(3 + k) - d.bbox[k]).abs() <= 0.05)
            });
            match hit {
                Some(i) => {
                    gold.swap_remove(i);
                    matched += 1;
                }
                None => differ += 1,
            }
        }
        differ = differ.max(gold.len());
    }
    eprintln!("{net}: {matched} of {} detections matched", golden.len());
    assert!(matched > 0);
    let exceptions = differ as f64 / golden.len() as f64;
    assert!(
        exceptions < 0.005,
        "{net}: {:.3}% differ",
        100.0 * exceptions
    );
}

#[test]
fn mb1_ssd_matches_pytorch() {
    check("mb1-ssd");
}

#[test]
fn mb1_ssd_lite_matches_pytorch() {
    check("mb1-ssd-lite");
}

#[test]
fn mb3_large_ssd_lite_matches_pytorch() {
    check("mb3-large-ssd-lite");
}

#[test]
fn mb3_small_ssd_lite_matches_pytorch() {
    check("mb3-small-ssd-lite");
}

#[test]
fn sq_ssd_lite_matches_pytorch() {
    check("sq-ssd-lite");
}

#[test]
fn vgg16_ssd_matches_pytorch() {
    check("vgg16-ssd");
}
