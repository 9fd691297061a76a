//! CLI integration: runs the `slimdet` binary in temporary directories and checks exit
//! codes, printed JSON and the files written.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_success, run, stderr};
use slimdet_formats::{NamedTensor, StateDict, TensorData};
use slimdet_testkit::path as testdata;

fn golden_model() -> PathBuf {
    testdata("golden/mb2-ssd-lite-voc21-seed0/model.pth")
}

/// Runs `slimdet <command> --model <model>` followed by the `extra` arguments.
fn run_with_model(command: &str, model: &Path, extra: &[&str]) -> Output {
    let mut args = vec![command, "--model", model.to_str().unwrap()];
    args.extend_from_slice(extra);
    run(&args)
}

/// Exit code 2 and an error message naming `file` and containing `cause`.
fn assert_clear_error(o: &Output, file: &Path, cause: &str) {
    let err = stderr(o);
    assert_eq!(o.status.code(), Some(2), "stderr: {err}");
    assert!(
        err.contains(&file.display().to_string()),
        "error does not name {}: {err}",
        file.display()
    );
    assert!(
        err.to_lowercase().contains(&cause.to_lowercase()),
        "error lacks {cause:?}: {err}"
    );
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn info_json_reports_reference_macs_and_params() {
    let o = run_with_model("info", &golden_model(), &["--format", "json"]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["macs"], 660_828_976u64);
    assert_eq!(v["params"], 3_388_228u64);
    assert_eq!(v["macs_effective"], 660_828_976u64);
    assert_eq!(v["sparsity"], 0.0);
    assert_eq!(
        v["file_bytes"],
        std::fs::metadata(golden_model()).unwrap().len()
    );
    assert_eq!(v["conv_layers"], 86);
}

#[test]
fn info_table_prints_totals() {
    let o = run(&["info", "--model", golden_model().to_str().unwrap()]);
    let out = String::from_utf8_lossy(&o.stdout);
    assert!(out.contains("660,828,976"), "{out}");
    assert!(out.contains("3,388,228"), "{out}");
}

#[test]
fn detect_writes_png_and_json_in_original_pixels() {
    let dir = tempfile::tempdir().unwrap();
    let img = testdata("fixtures/ultraface/images/2.jpg");
    let model = testdata("fixtures/ultraface/models/version-RFB-320.pth");
    let o = run_with_model(
        "detect",
        &model,
        &[
            "--arch",
            "ultraface-rfb",
            img.to_str().unwrap(),
            "-o",
            dir.path().to_str().unwrap(),
            "--format",
            "json",
        ],
    );
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let dets = v.as_array().unwrap();
    assert_eq!(dets.len(), 4, "four faces in 2.jpg");
    for d in dets {
        assert_eq!(d["label"], "face");
        assert_eq!(d["label_index"], 1);
        assert!(d["score"].as_f64().unwrap() > 0.7);
        let b: Vec<f64> = d["box"]
            .as_array()
            .unwrap()
            .iter()
            .map(|x| x.as_f64().unwrap())
            .collect();
        assert!(
            b[0] < b[2] && b[1] < b[3] && b[2] <= 1030.0 && b[3] <= 490.0,
            "{b:?}"
        );
    }
    let png = dir.path().join("2.png");
    let drawn = slimdet_data::load_rgb(&png).unwrap();
    assert_eq!((drawn.width, drawn.height), (1024, 484));
    let original = slimdet_data::load_rgb(&img).unwrap();
    assert_ne!(drawn.data, original.data, "boxes were drawn");
    assert!(dir.path().join("detections.json").exists());
}

#[test]
fn detect_csv_has_documented_header() {
    let img = testdata("fixtures/ultraface/images/13.jpg");
    let model = testdata("fixtures/ultraface/models/version-slim-320.pth");
    let o = run_with_model(
        "detect",
        &model,
        &[img.to_str().unwrap(), "--format", "csv"],
    );
    assert_success(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    let mut lines = out.lines();
    assert_eq!(
        lines.next(),
        Some("image,label,label_index,score,x1,y1,x2,y2")
    );
    assert_eq!(lines.count(), 2, "two faces in 13.jpg: {out}");
}

#[test]
fn bench_json_last_line_has_required_fields() {
    let model = testdata("fixtures/ultraface/models/version-slim-320.pth");
    let o = run_with_model(
        "bench",
        &model,
        &["--threads", "1", "--runs", "3", "--warmup", "1", "--json"],
    );
    assert_success(&o);
    let out = String::from_utf8_lossy(&o.stdout);
    let v: serde_json::Value = serde_json::from_str(out.lines().last().unwrap()).unwrap();
    for k in [
        "median_ms",
        "p10_ms",
        "p90_ms",
        "runs",
        "threads",
        "precision",
    ] {
        assert!(!v[k].is_null(), "missing {k}: {v}");
    }
    assert_eq!(v["runs"], 3);
    assert_eq!(v["threads"], 1);
    assert_eq!(v["precision"], "fp32");
}

#[test]
fn truncated_pth_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let bytes =
        std::fs::read(testdata("golden/mb2-ssd-lite-voc21-seed0/model_legacy.pth")).unwrap();
    for (name, cut) in [("legacy_cut.pth", bytes.len() / 2), ("tiny.pth", 10)] {
        let p = dir.path().join(name);
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let o = run(&["info", "--model", p.to_str().unwrap()]);
        assert_clear_error(&o, &p, "truncated");
    }
    let zip = std::fs::read(golden_model()).unwrap();
    let p = dir.path().join("zip_cut.pth");
    std::fs::write(&p, &zip[..zip.len() - 100]).unwrap();
    let o = run(&["info", "--model", p.to_str().unwrap()]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        stderr(&o).contains(&p.display().to_string()),
        "{}",
        stderr(&o)
    );
}

#[test]
fn wrong_magic_number_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let mut bytes =
        std::fs::read(testdata("golden/mb2-ssd-lite-voc21-seed0/model_legacy.pth")).unwrap();
    // The legacy magic is the first pickle: PROTO 2, LONG1 of 10 bytes; flip a byte of it.
    bytes[6] ^= 0xFF;
    let p = dir.path().join("bad_magic.pth");
    std::fs::write(&p, &bytes).unwrap();
    let o = run(&["info", "--model", p.to_str().unwrap()]);
    assert_clear_error(&o, &p, "magic");
}

#[test]
fn forbidden_pickle_global_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    // PROTO 2; GLOBAL 'os\nsystem\n'; SHORT_BINUNICODE 'echo pwned'; TUPLE1; REDUCE; STOP
    let mut pkl = vec![0x80, 2, b'c'];
    pkl.extend_from_slice(b"os\nsystem\n");
    pkl.extend_from_slice(&[0x8c, 10]);
    pkl.extend_from_slice(b"echo pwned");
    pkl.extend_from_slice(&[0x85, b'R', b'.']);
    let p = dir.path().join("evil.pth");
    std::fs::write(&p, &pkl).unwrap();
    let o = run(&["info", "--model", p.to_str().unwrap()]);
    assert_clear_error(&o, &p, "system");
    assert!(!String::from_utf8_lossy(&o.stdout).contains("pwned"));
}

fn golden_state_dict() -> StateDict {
    slimdet_formats::load_pth(&golden_model()).unwrap()
}

/// Saves `sd` as the safetensors file `p` and asserts that `slimdet info` refuses it with
/// a clear error naming `p` and containing `cause`.
#[track_caller]
fn assert_info_refuses(sd: &StateDict, p: &Path, cause: &str) {
    slimdet_formats::save_safetensors(p, sd, &Default::default()).unwrap();
    let o = run(&["info", "--model", p.to_str().unwrap()]);
    assert_clear_error(&o, p, cause);
}

#[test]
fn missing_key_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut sd = golden_state_dict();
    sd.tensors.retain(|t| t.name != "extras.2.conv.3.weight");
    let p = dir.path().join("missing.safetensors");
    assert_info_refuses(&sd, &p, "missing key: extras.2.conv.3.weight");
}

#[test]
fn shape_mismatch_is_listed() {
    let dir = tempfile::tempdir().unwrap();
    let mut sd = golden_state_dict();
    let t = sd
        .tensors
        .iter_mut()
        .find(|t| t.name == "regression_headers.1.3.bias")
        .unwrap();
    *t = NamedTensor {
        name: t.name.clone(),
        shape: vec![23],
        data: TensorData::F32(vec![0.0; 23]),
    };
    let p = dir.path().join("shape.safetensors");
    assert_info_refuses(&sd, &p, "shape mismatch: regression_headers.1.3.bias");
}

#[test]
fn unreadable_image_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("broken.jpg");
    std::fs::write(&p, b"\xFF\xD8\xFF\xE0 not really a jpeg").unwrap();
    let model = testdata("fixtures/ultraface/models/version-slim-320.pth");
    let o = run_with_model("detect", &model, &[p.to_str().unwrap()]);
    assert_clear_error(&o, &p, "");
    let missing = dir.path().join("nope.png");
    let o = run_with_model("detect", &model, &[missing.to_str().unwrap()]);
    assert_clear_error(&o, &missing, "");
}

#[test]
fn out_of_range_options_are_refused() {
    let model = testdata("fixtures/ultraface/models/version-slim-320.pth");
    let img = testdata("fixtures/ultraface/images/13.jpg");
    let o = run_with_model(
        "detect",
        &model,
        &[img.to_str().unwrap(), "--threshold", "1.5"],
    );
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_with_model("bench", &model, &["--threads", "0"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    let o = run_with_model("info", &model, &["--arch", "resnet"]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
}

#[test]
fn convert_round_trips_to_safetensors() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("m.safetensors");
    let o = run_with_model("convert", &golden_model(), &["-o", out.to_str().unwrap()]);
    assert_success(&o);
    let a = slimdet_models::Detector::load(&golden_model(), None).unwrap();
    let b = slimdet_models::Detector::load(&out, None).unwrap();
    assert_eq!(a.graph, b.graph);
    assert_eq!(b.name, "mb2-ssd-lite");
}
