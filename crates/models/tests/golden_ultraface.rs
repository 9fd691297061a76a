//! UltraFace slim and RFB: the real pretrained `.pth` files against ONNX Runtime's outputs
//! (`testdata/fixtures/ultraface/golden`, see SOURCES.md §2b).

use std::path::PathBuf;

use slimdet_data::RgbImage;
use slimdet_models::{Detector, Predictor};
use slimdet_testkit::max_abs_diff;

fn fixtures() -> PathBuf {
    slimdet_testkit::dir("fixtures/ultraface")
}

fn read_f32(path: PathBuf) -> Vec<f32> {
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn check_raw(model: &str, tag: &str, threads: usize) {
    let det = Detector::load(&fixtures().join("models").join(model), None).unwrap();
    let mut pred = Predictor::new(&det, threads).unwrap();
    let resized = std::fs::read(fixtures().join("golden/13_resized_320x240_rgb_u8.bin")).unwrap();
    let img = RgbImage {
        width: 320,
        height: 240,
        data: resized,
    };
    let mut input = vec![0.0; 240 * 320 * 3];
    slimdet_data::normalize_into(&img, [127.0; 3], 128.0, &mut input);
    pred.forward(&input).unwrap();
    let ds = max_abs_diff(
        pred.scores(),
        &read_f32(fixtures().join(format!("golden/13_{tag}_scores_1x4420x2_f32.bin"))),
    );
    let boxes: Vec<f32> = pred.boxes().iter().flatten().copied().collect();
    let db = max_abs_diff(
        &boxes,
        &read_f32(fixtures().join(format!("golden/13_{tag}_boxes_1x4420x4_f32.bin"))),
    );
    eprintln!("{model} ({threads} threads): scores {ds:.2e}, boxes {db:.2e}");
    assert!(ds <= 1e-4 && db <= 1e-4, "{model}: scores {ds}, boxes {db}");
}

#[test]
fn slim_raw_outputs_match_onnx_runtime() {
    check_raw("version-slim-320.pth", "slim", 1);
    check_raw("version-slim-320.pth", "slim", 2);
}

#[test]
fn rfb_raw_outputs_match_onnx_runtime() {
    check_raw("version-RFB-320.pth", "RFB", 1);
    check_raw("version-RFB-320.pth", "RFB", 2);
}

/// Final detections on the three photos, decoded with our JPEG decoder (which may differ
/// from libjpeg-turbo by a level or two), must be the same faces: same count, each box
/// within 1 px and score within 1e-2 of its golden twin.
#[test]
fn final_detections_match_golden() {
    let text = std::fs::read_to_string(fixtures().join("golden/detections.csv")).unwrap();
    for (model, tag) in [
        ("version-slim-320.pth", "slim"),
        ("version-RFB-320.pth", "RFB"),
    ] {
        let det = Detector::load(&fixtures().join("models").join(model), None).unwrap();
        let mut pred = Predictor::new(&det, 1).unwrap();
        for image in ["13.jpg", "2.jpg", "1.jpg"] {
            let img = slimdet_data::load_rgb(&fixtures().join("images").join(image)).unwrap();
            let mut ours = pred.predict(&img, 0.7, 0).unwrap();
            let mut gold: Vec<[f32; 5]> = text
                .lines()
                .skip(1)
                .map(|l| l.split(',').collect::<Vec<_>>())
                .filter(|f| f[0].eq_ignore_ascii_case(tag) && f[1] == image)
                .map(|f| [4, 5, 6, 7, 8].map(|i| f[i].parse::<f32>().unwrap()))
                .collect();
            assert!(!gold.is_empty(), "no golden rows for {tag} {image}");
            eprintln!("{tag} {image}: ours {}, golden {}", ours.len(), gold.len());
            assert_eq!(ours.len(), gold.len(), "{tag} {image}");
            for d in ours.drain(..) {
                let i = gold
                    .iter()
                    .position(|g| {
                        (0..4).all(|k| (g[k] - d.bbox[k]).abs() <= 1.0)
                            && (g[4] - d.score).abs() <= 1e-2
                    })
                    .unwrap_or_else(|| panic!("{tag} {image}: no golden twin for {d:?}"));
                gold.swap_remove(i);
            }
        }
    }
}
