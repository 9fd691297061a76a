//! The built-in model (no `--model`) is a real VOC detector: on the original VOC2007 test
//! photos of the repository's evaluation set (`datasets/voc2007`, `test_original`), it
//! finds objects that match a ground-truth box of the right class (IoU ≥ 0.5) at score ≥ 0.4
//! (the demo's threshold) on at least half of them.

use std::path::PathBuf;
use std::process::Command;

use slimdet_data::voc::VocDataset;

fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let w = (a[2].min(b[2]) - a[0].max(b[0])).max(0.0);
    let h = (a[3].min(b[3]) - a[1].max(b[1])).max(0.0);
    let inter = w * h;
    let area = |r: &[f32; 4]| (r[2] - r[0]) * (r[3] - r[1]);
    inter / (area(a) + area(b) - inter)
}

#[test]
fn default_model_detects_real_objects_on_original_test_photos() {
    let root = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/voc2007"
    ));
    let ds = VocDataset::open(&root, "test_original", None).expect("the built-in evaluation set");
    assert_eq!(ds.len(), 18);
    let images: Vec<String> = ds
        .ids()
        .iter()
        .map(|id| ds.image_path(id).to_string_lossy().into_owned())
        .collect();
    let out = Command::new(env!("CARGO_BIN_EXE_slimdet"))
        .args(["detect", "--format", "json", "--threshold", "0.4"])
        .args(&images)
        .output()
        .expect("run slimdet");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let dets: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let mut photos_with_a_hit = 0;
    for (id, path) in ds.ids().iter().zip(&images) {
        let truth = ds.annotation(id).unwrap();
        let hit = dets.as_array().unwrap().iter().any(|d| {
            let b: Vec<f32> = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|v| v.as_f64().unwrap() as f32)
                .collect();
            d["image"].as_str() == Some(path.as_str())
                && truth.objects.iter().any(|o| {
                    o.class_name == d["label"].as_str().unwrap_or_default()
                        && iou(&o.bbox, &[b[0], b[1], b[2], b[3]]) >= 0.5
                })
        });
        photos_with_a_hit += usize::from(hit);
    }
    eprintln!(
        "{photos_with_a_hit} of 18 original test photos have a correct detection at score ≥ 0.4"
    );
    assert!(
        photos_with_a_hit >= 9,
        "only {photos_with_a_hit} of 18 photos"
    );
}

/// An installed or copied binary has the model: with the source tree's copy set aside
/// (`SLIMDET_BUILTIN=embedded`), the embedded bytes are written once to the user cache and
/// used from there, with the same detections.
#[test]
fn embedded_model_is_written_to_the_cache_and_used() {
    let home = tempfile::tempdir().unwrap();
    let photo = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../datasets/voc2007/VOC2007/JPEGImages/000001.jpg"
    ));
    let detect = |embedded: bool| {
        let mut c = Command::new(env!("CARGO_BIN_EXE_slimdet"));
        c.args(["detect", "--format", "csv"]).arg(&photo);
        if embedded {
            c.env("SLIMDET_BUILTIN", "embedded")
                .env("HOME", home.path())
                .env_remove("XDG_CACHE_HOME");
        }
        let o = c.output().expect("run slimdet");
        assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
        String::from_utf8(o.stdout).unwrap()
    };
    let from_tree = detect(false);
    let from_binary = detect(true);
    assert_eq!(from_tree, from_binary);
    let cached: Vec<_> = std::fs::read_dir(home.path().join(".cache/slimdet"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    assert_eq!(cached.len(), 1, "{cached:?}");
    let name = cached[0]
        .file_name()
        .unwrap()
        .to_string_lossy()
        .into_owned();
    assert!(
        name.starts_with("mb2-ssd-lite-voc-") && name.ends_with(".safetensors"),
        "{name}"
    );
    // A second run reuses the cached copy.
    assert_eq!(detect(true), from_tree);
}
