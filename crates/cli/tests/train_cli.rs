//! `slimdet train` end to end on a tiny synthetic dataset: a run stopped by --max-steps,
//! its resumption, and the errors of bad options.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{assert_success, run, slimdet, stderr, synth_dataset};

/// Writes a synthetic dataset of 4 training and 2 test images into `dir`.
fn synth(dir: &Path) {
    assert_success(&synth_dataset(dir, "4", "2", &[]));
}

/// A temporary folder holding a synthetic dataset (`voc`, see [`synth`]) and the path
/// of a training run's output in it (`run`, not created).
fn synth_and_run_dirs() -> (tempfile::TempDir, PathBuf, PathBuf) {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    synth(&voc);
    let out = tmp.path().join("run");
    (tmp, voc, out)
}

/// `slimdet train` on `voc` into `out` with JSON output and the tests' defaults, followed
/// by the `extra` arguments.
fn train(voc: &Path, out: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "train",
        "--voc",
        voc.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
        "--json",
    ];
    // Defaults of these tests, unless `extra` sets the option.
    for (k, v) in [
        ("--width", "0.25"),
        ("--batch", "2"),
        ("--epochs", "2"),
        ("--lr", "0.01"),
        ("--val-every", "1"),
    ] {
        if !extra.contains(&k) {
            args.extend_from_slice(&[k, v]);
        }
    }
    args.extend_from_slice(extra);
    run(&args)
}

#[test]
fn train_stops_resumes_and_writes_weights() {
    let (_tmp, voc, out) = synth_and_run_dirs();
    let o = train(&voc, &out, &["--max-steps", "1"]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["global_step"], 1);
    assert_eq!(v["stopped"], true);
    assert!(out.join("checkpoint/state.json").is_file());
    assert!(out.join("labels.txt").is_file());

    let o = train(&voc, &out, &["--resume"]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["global_step"], 4, "2 epochs of 2 batches");
    assert_eq!(v["stopped"], false);
    assert_eq!(v["epochs"].as_array().unwrap().len(), 2);
    assert!(v["epochs"][1]["val_map"].is_number());
    assert!(out.join("final.safetensors").is_file());
    assert!(out.join("best.safetensors").is_file());

    // The result is a model the other commands read.
    let o = run(&[
        "eval",
        "--model",
        out.join("final.safetensors").to_str().unwrap(),
        "--voc",
        voc.to_str().unwrap(),
        "--no-results",
        "--format",
        "json",
    ]);
    assert_success(&o);
}

#[test]
fn bad_options_are_clear_errors() {
    let (tmp, voc, out) = synth_and_run_dirs();
    for (extra, cause) in [
        (&["--batch", "0"][..], "batch size 0"),
        (&["--lr", "NaN"][..], "learning rate NaN"),
        (&["--width", "0.3"][..], "width multiplier 0.3"),
        (&["--resume"][..], "no checkpoint at"),
        (&["--precision", "fp16"][..], "unknown precision `fp16`"),
        (
            &["--qat", "--init", "m.safetensors", "--precision", "bf16"][..],
            "--qat trains in fp32",
        ),
    ] {
        let o = train(&voc, &out, extra);
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", stderr(&o));
        assert!(stderr(&o).contains(cause), "{extra:?}: {}", stderr(&o));
    }
    let o = train(&tmp.path().join("missing"), &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(stderr(&o).contains("missing"), "{}", stderr(&o));
}

#[test]
fn bf16_without_bf16_kernels_is_refused_before_training() {
    let (_tmp, voc, out) = synth_and_run_dirs();
    let o = slimdet()
        .args(["train", "--voc", voc.to_str().unwrap(), "--out"])
        .arg(&out)
        .args(["--width", "0.25", "--batch", "2", "--epochs", "1"])
        .args(["--precision", "bf16"])
        .env("SLIMDET_KERNELS", "scalar")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(stderr(&o).contains("needs AVX512-BF16"), "{}", stderr(&o));
    assert!(!out.exists(), "nothing written");
}
