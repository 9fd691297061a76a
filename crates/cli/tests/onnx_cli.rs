//! `.onnx` models on the command line: `slimdet export`, and every `--model` accepting an
//! ONNX file with the same results as the weights it came from.

use std::path::PathBuf;
use std::process::{Command, Output};

fn shared() -> PathBuf {
    PathBuf::from(concat!(env!("CARGO_MANIFEST_DIR"), "/../../../shared"))
}

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimdet"))
        .args(args)
        .output()
        .expect("run slimdet")
}

fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// `(label, score, box)` of `detect --format json`.
fn detections(model: &str) -> Vec<(String, f64, Vec<f64>)> {
    let img = shared().join("fixtures/ultraface/images/2.jpg");
    let o = run(&[
        "detect",
        "--model",
        model,
        img.to_str().unwrap(),
        "--format",
        "json",
    ]);
    assert!(o.status.success(), "{model}: {}", stderr(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v.as_array()
        .unwrap()
        .iter()
        .map(|d| {
            let b = d["box"]
                .as_array()
                .unwrap()
                .iter()
                .map(|x| x.as_f64().unwrap());
            (
                d["label"].as_str().unwrap().to_string(),
                d["score"].as_f64().unwrap(),
                b.collect(),
            )
        })
        .collect()
}

#[test]
fn exported_and_third_party_onnx_detect_like_the_pth() {
    let dir = tempfile::tempdir().unwrap();
    let pth = shared().join("fixtures/ultraface/models/version-RFB-320.pth");
    let onnx = dir.path().join("rfb.onnx");
    let o = run(&[
        "export",
        "--model",
        pth.to_str().unwrap(),
        "--format",
        "onnx",
        "-o",
        onnx.to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
    let reference = detections(pth.to_str().unwrap());
    assert_eq!(reference.len(), 4, "four faces in 2.jpg");
    let third_party = shared().join("fixtures/ultraface/models/version-RFB-320.onnx");
    for model in [onnx, third_party] {
        let got = detections(model.to_str().unwrap());
        assert_eq!(got.len(), reference.len(), "{}", model.display());
        for (g, r) in got.iter().zip(&reference) {
            assert_eq!(g.0, r.0);
            assert!(
                (g.1 - r.1).abs() < 1e-4,
                "{}: {g:?} vs {r:?}",
                model.display()
            );
            for (a, b) in g.2.iter().zip(&r.2) {
                assert!((a - b).abs() < 0.05, "{}: {g:?} vs {r:?}", model.display());
            }
        }
    }
    // `info` works on the ONNX file as on the weights.
    let o = run(&[
        "info",
        "--model",
        dir.path().join("rfb.onnx").to_str().unwrap(),
    ]);
    assert!(o.status.success(), "{}", stderr(&o));
}

#[test]
fn truncated_onnx_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let src = shared().join("fixtures/ultraface/models/version-slim-320.onnx");
    let bytes = std::fs::read(&src).unwrap();
    let bad = dir.path().join("cut.onnx");
    std::fs::write(&bad, &bytes[..bytes.len() / 3]).unwrap();
    let o = run(&["info", "--model", bad.to_str().unwrap()]);
    let err = stderr(&o);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("cut.onnx"), "{err}");
    assert!(!err.contains("panicked"), "{err}");
}

#[test]
fn export_refuses_a_directory_as_output() {
    let dir = tempfile::tempdir().unwrap();
    let pth = shared().join("fixtures/ultraface/models/version-slim-320.pth");
    let o = run(&[
        "export",
        "--model",
        pth.to_str().unwrap(),
        "-o",
        dir.path().to_str().unwrap(),
    ]);
    assert_eq!(o.status.code(), Some(2), "{}", stderr(&o));
    assert!(stderr(&o).contains("directory"), "{}", stderr(&o));
}
