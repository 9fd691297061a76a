//! `slimdet eval` end to end: AP printing, the results CSV/JSON and their documented
//! columns, detections-file evaluation and bad input.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_success, documented_columns, run};
use slimdet_testkit::path as testdata;

fn voc() -> PathBuf {
    testdata("fixtures/voc2007/VOCdevkit/VOC2007")
}

/// Runs `slimdet eval` on `input` given with `flag` (`--model` or `--detections`) against
/// the VOC folder `voc`, with the `extra` arguments after those.
fn eval(flag: &str, input: &Path, voc: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "eval",
        flag,
        input.to_str().unwrap(),
        "--voc",
        voc.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// The one file in `files` with extension `ext`.
fn with_extension<'a>(files: &'a [PathBuf], ext: &str) -> &'a PathBuf {
    files
        .iter()
        .find(|p| p.extension().is_some_and(|e| e == ext))
        .unwrap_or_else(|| panic!("{ext} written"))
}

#[test]
fn eval_writes_documented_results_and_json() {
    let dir = tempfile::tempdir().unwrap();
    let model = testdata("golden/mb2-ssd-lite-voc21-seed0/model.pth");
    let o = eval(
        "--model",
        &model,
        &voc(),
        &[
            "--format",
            "json",
            "--threads",
            "2",
            "--timing-runs",
            "2",
            "--results",
            dir.path().to_str().unwrap(),
            "--variant",
            "golden",
        ],
    );
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["metric"], "voc07");
    assert_eq!(v["images"], 4);
    assert_eq!(v["per_class"].as_object().unwrap().len(), 20);
    assert!(v["map"].as_f64().unwrap() >= 0.0);
    let files: Vec<PathBuf> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().path())
        .collect();
    let csv = with_extension(&files, "csv");
    let json = with_extension(&files, "json");
    let name = csv.file_name().unwrap().to_string_lossy().to_string();
    assert!(
        name.ends_with("_eval.csv") && name.len() == "YYYY-MM-DD_HHMMSS_eval.csv".len(),
        "{name}"
    );
    let text = std::fs::read_to_string(csv).unwrap();
    let header: Vec<&str> = text.lines().next().unwrap().split(',').collect();
    let documented = documented_columns("Results files");
    for h in &header {
        let ok = documented.iter().any(|d| d == h)
            || (h.starts_with("ap_") && documented.iter().any(|d| d == "ap_<class>"));
        assert!(ok, "column {h} is not documented in the README");
    }
    for d in &documented {
        let ok = header.contains(&d.as_str())
            || (d == "ap_<class>" && header.iter().any(|h| h.starts_with("ap_")));
        assert!(ok, "documented column {d} is missing from the CSV");
    }
    assert_eq!(text.lines().count(), 2);
    let rows: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(json).unwrap()).unwrap();
    let row = &rows[0];
    assert_eq!(row["variant"], "golden");
    assert_eq!(row["macs"], 660_828_976u64);
    assert!(row["peak_rss_bytes"].as_u64().unwrap() > 10_000_000);
    assert!(row["forward_p50_ms"].as_f64().unwrap() > 0.0);
    assert!(row["file_gz_bytes"].as_u64().unwrap() < row["file_bytes"].as_u64().unwrap());
}

#[test]
fn eval_of_golden_detections_is_reproducible() {
    let dets = testdata("golden/mb2-ssd-lite-voc21-seed0/detections.csv");
    let a = eval("--detections", &dets, &voc(), &["--format", "json"]);
    let b = eval("--detections", &dets, &voc(), &["--format", "json"]);
    assert_success(&a);
    assert_eq!(a.stdout, b.stdout);
    let v: serde_json::Value = serde_json::from_slice(&a.stdout).unwrap();
    // Values cross-checked against a numpy transcription of pytorch-ssd's evaluation.
    assert_eq!(v["map"].as_f64().unwrap(), 0.0017040453434096464);
    assert_eq!(
        v["per_class"]["chair"].as_f64().unwrap(),
        0.03363636363636363
    );
}

#[test]
fn eval_bad_inputs_are_clear_errors() {
    let dir = tempfile::tempdir().unwrap();
    let bad = dir.path().join("dets.csv");
    std::fs::write(
        &bad,
        "image,label,score,x1,y1,x2,y2\n000002,train,0.5,1,2,3,4\n000003,unicorn,0.5,1,2,3,4\n",
    )
    .unwrap();
    let o = eval("--detections", &bad, &voc(), &[]);
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("dets.csv:3"), "{err}");
    let o = eval("--detections", &bad, &voc(), &["--skip-bad"]);
    assert_success(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("1 detection rows"));
    let o = eval("--detections", &bad, dir.path(), &[]);
    assert_eq!(o.status.code(), Some(2));
    let model = testdata("fixtures/ultraface/models/version-slim-320.pth");
    let o = eval("--model", &model, &voc(), &["--no-results"]);
    assert_eq!(o.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&o.stderr).contains("classes"),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
}

/// A TF person detector (frozen graph) on real VOC photos: only `person` is evaluated,
/// matched by name, and the output says so; its AP on 40 `val200` photos (the repository's
/// real evaluation set) is that of a working detector.
#[test]
fn eval_of_a_person_detector_evaluates_person_by_name() {
    let model = testdata("fixtures/tf-ssdlite-person/frozen_inference_graph.pb");
    let real = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("../../datasets/voc2007");
    let o = eval(
        "--model",
        &model,
        &real,
        &[
            "--split",
            "val200",
            "--limit",
            "40",
            "--format",
            "json",
            "--no-results",
        ],
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(
        err.contains(r#"evaluating the model's classes ["person"]"#),
        "{err}"
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let per = v["per_class"].as_object().unwrap();
    assert_eq!(per.keys().collect::<Vec<_>>(), ["person"]);
    let ap = per["person"].as_f64().unwrap();
    assert!(ap > 0.6, "person AP {ap}");
}

/// `--min-map` is a quality gate: exit 0 at or above it, 1 below it (results still
/// printed), 2 for a value outside 0..=1.
#[test]
fn min_map_gate_sets_the_exit_code() {
    let dets = testdata("golden/mb2-ssd-lite-voc21-seed0/detections.csv");
    let gate = |min: &str| {
        eval(
            "--detections",
            &dets,
            &voc(),
            &["--format", "json", "--min-map", min],
        )
    };
    let o = gate("0");
    assert_eq!(
        o.status.code(),
        Some(0),
        "{}",
        String::from_utf8_lossy(&o.stderr)
    );
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    let map = v["map"].as_f64().unwrap();
    assert!(map < 0.99, "golden mAP {map}");
    let o = gate("0.99");
    assert_eq!(o.status.code(), Some(1));
    assert!(!o.stdout.is_empty(), "results are printed before the gate");
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("quality gate failed"), "{err}");
    let o = gate("1.5");
    assert_eq!(o.status.code(), Some(2));
}
