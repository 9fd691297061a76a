//! `slimdet quantize` end to end: writes a quantized file that `detect`, `bench`, `info`
//! and `eval` accept, prints the SQNR report, and refuses bad input with exit code 2.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_fails_with, assert_success, quantize_calibrated, run, s};
use slimdet_testkit::path as testdata;

fn golden_model() -> PathBuf {
    testdata("golden/mb2-ssd-lite-voc21-seed0/model.pth")
}

fn voc() -> PathBuf {
    testdata("fixtures/voc2007/VOCdevkit")
}

/// `slimdet quantize` of `model` in `mode` (no calibration) to `out`.
fn quantize_mode(model: &Path, mode: &str, out: &Path) -> Output {
    run(&[
        "quantize",
        "--model",
        &s(model),
        "--mode",
        mode,
        "-o",
        &s(out),
    ])
}

/// Asserts that `o` succeeded; the failure message names `mode` and shows standard error.
#[track_caller]
fn assert_mode_success(o: &Output, mode: &str) {
    assert!(
        o.status.success(),
        "{mode}: {}",
        String::from_utf8_lossy(&o.stderr)
    );
}

#[test]
fn quantize_then_detect_bench_info_eval() {
    let dir = tempfile::tempdir().unwrap();
    let (model, voc) = (golden_model(), voc());
    let out = dir.path().join("int8.safetensors");
    let o = quantize_calibrated(&model, &voc, "2", &out, &["--report"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_success(&o);
    assert!(text.contains("86 int8 layers"), "{text}");
    assert!(
        text.contains("base_net.0.0") && text.contains("scores"),
        "{text}"
    );
    assert!(std::fs::metadata(&out).unwrap().len() * 3 < std::fs::metadata(&model).unwrap().len());

    let img = testdata("golden/mb2-ssd-lite-voc21-seed0/000002.png");
    let o = run(&[
        "detect",
        "--model",
        &s(&out),
        &s(&img),
        "--format",
        "json",
        "--threshold",
        "0.3",
    ]);
    assert_success(&o);
    let dets: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert!(dets.is_array());

    let o = run(&[
        "bench",
        "--model",
        &s(&out),
        "--runs",
        "2",
        "--warmup",
        "1",
        "--json",
    ]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_success(&o);
    assert!(text.contains("\"precision\":\"int8-static\""), "{text}");

    let o = run(&["info", "--model", &s(&out)]);
    assert_success(&o);

    let o = run(&[
        "eval",
        "--model",
        &s(&out),
        "--voc",
        &s(&voc),
        "--format",
        "json",
        "--timing-runs",
        "0",
        "--no-results",
    ]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["images"], 4);
    refuses_pruning(&out, "static");
}

#[test]
fn fp16_and_dynamic_modes() {
    let dir = tempfile::tempdir().unwrap();
    let model = golden_model();
    for mode in ["fp16", "dynamic"] {
        let out = dir.path().join(format!("{mode}.safetensors"));
        assert_mode_success(&quantize_mode(&model, mode, &out), mode);
        let o = run(&["bench", "--model", &s(&out), "--runs", "1", "--warmup", "0"]);
        assert_mode_success(&o, mode);
        refuses_pruning(&out, mode);
    }
}

/// `prune` on a quantized file stops with a clear message before writing anything (it
/// used to write a float file without batch-norm tensors that nothing could load).
fn refuses_pruning(quantized: &Path, mode: &str) {
    let pruned = quantized.with_extension("pruned.safetensors");
    for method in ["l1", "filter-l1"] {
        let o = run(&[
            "prune",
            "--model",
            &s(quantized),
            "--method",
            method,
            "--amount",
            "0.5",
            "-o",
            &s(&pruned),
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{mode} {method}: {err}");
        assert!(
            err.contains("is a quantized model"),
            "{mode} {method}: {err}"
        );
        assert!(!pruned.exists(), "{mode} {method}: nothing may be written");
    }
}

#[test]
fn bad_input_exits_2_with_a_clear_message() {
    let dir = tempfile::tempdir().unwrap();
    let (model, voc) = (golden_model(), voc());
    let out = dir.path().join("q.safetensors");
    let (model_s, out_s, voc_s) = (s(&model), s(&out), s(&voc));
    let base = ["quantize", "--model", &model_s, "-o", &out_s];
    let cases: Vec<(Vec<&str>, &str)> = vec![
        (
            vec![
                "--calib-voc",
                &voc_s,
                "--calib-split",
                "test",
                "--observer",
                "median",
            ],
            "unknown observer",
        ),
        (
            vec![
                "--calib-voc",
                &voc_s,
                "--calib-split",
                "test",
                "--calib-images",
                "0",
            ],
            "at least 1",
        ),
        (vec![], "--calib-voc"),
        (
            vec![
                "--calib-voc",
                &voc_s,
                "--calib-split",
                "test",
                "--keep-float",
                "nothing_here",
            ],
            "matches no layer",
        ),
    ];
    for (extra, msg) in cases {
        let mut args: Vec<&str> = base.to_vec();
        args.extend(extra.iter().copied());
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(msg), "{args:?}: {err}");
    }
    // A corrupted quantized file is refused by every command that loads models.
    let good = dir.path().join("good.safetensors");
    let o = quantize_mode(&model, "dynamic", &good);
    assert!(o.status.success());
    let mut bytes = std::fs::read(&good).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0xff;
    let bad = dir.path().join("bad.safetensors");
    std::fs::write(&bad, &bytes).unwrap();
    let o = run(&["bench", "--model", &s(&bad), "--runs", "1"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("checksum") && err.contains("bad.safetensors"),
        "{err}"
    );
}

#[test]
fn auto_keep_float_ranks_layers_and_writes_the_ranking() {
    let dir = tempfile::tempdir().unwrap();
    let (model, voc) = (golden_model(), voc());
    let out = dir.path().join("mixed.safetensors");
    let with = |extra: &[&str]| {
        let mut v = vec!["--sensitivity-images", "1"];
        v.extend_from_slice(extra);
        quantize_calibrated(&model, &voc, "2", &out, &v)
    };
    let o = with(&["--auto-keep-float", "2", "--threads", "2"]);
    let text = String::from_utf8_lossy(&o.stdout);
    assert_success(&o);
    assert!(text.contains("84 int8 layers, 2 kept in f32"), "{text}");
    assert!(
        text.contains("kept in f32: ") && text.contains("rank"),
        "{text}"
    );
    let csv = std::fs::read_to_string(dir.path().join("mixed.sensitivity.csv")).unwrap();
    assert_eq!(csv.lines().count(), 87, "header + 86 layers");
    assert!(csv.starts_with("rank,layer,kind,map,drop,"));
    let json: serde_json::Value =
        serde_json::from_slice(&std::fs::read(dir.path().join("mixed.sensitivity.json")).unwrap())
            .unwrap();
    assert_eq!(json["layers"].as_array().unwrap().len(), 86);
    assert_eq!(json["kept_in_f32"].as_array().unwrap().len(), 2);
    assert_eq!(json["kept_in_f32"][0], json["layers"][0]["layer"]);
    // The mixed model loads and runs.
    let img = testdata("golden/mb2-ssd-lite-voc21-seed0/000002.png");
    let o = run(&["detect", "--model", &s(&out), &s(&img), "--format", "json"]);
    assert_success(&o);

    // More layers than the model has, 0 images, a non-static mode.
    assert_fails_with(&with(&["--auto-keep-float", "87"]), "only 86 quantizable");
    assert_fails_with(
        &with(&["--auto-keep-float", "1", "--sensitivity-images", "0"]),
        "--sensitivity-images",
    );
    assert_fails_with(
        &with(&["--auto-keep-float", "1", "--mode", "dynamic"]),
        "--mode static",
    );
}
