//! `slimdet train` end to end on a tiny synthetic dataset: a run stopped by --max-steps,
//! its resumption, and the errors of bad options.

use std::path::Path;
use std::process::{Command, Output};

fn run(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_slimdet"))
        .args(args)
        .output()
        .expect("run slimdet")
}

fn text(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

fn synth(dir: &Path) {
    let o = run(&[
        "dataset",
        "synth",
        "--out",
        dir.to_str().unwrap(),
        "--train",
        "4",
        "--test",
        "2",
    ]);
    assert!(o.status.success(), "{}", text(&o));
}

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
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    synth(&voc);
    let out = tmp.path().join("run");
    let o = train(&voc, &out, &["--max-steps", "1"]);
    assert!(o.status.success(), "{}", text(&o));
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["global_step"], 1);
    assert_eq!(v["stopped"], true);
    assert!(out.join("checkpoint/state.json").is_file());
    assert!(out.join("labels.txt").is_file());

    let o = train(&voc, &out, &["--resume"]);
    assert!(o.status.success(), "{}", text(&o));
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
    assert!(o.status.success(), "{}", text(&o));
}

#[test]
fn bad_options_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    synth(&voc);
    let out = tmp.path().join("run");
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
        assert_eq!(o.status.code(), Some(2), "{extra:?}: {}", text(&o));
        assert!(text(&o).contains(cause), "{extra:?}: {}", text(&o));
    }
    let o = train(&tmp.path().join("missing"), &out, &[]);
    assert_eq!(o.status.code(), Some(2));
    assert!(text(&o).contains("missing"), "{}", text(&o));
}

#[test]
fn bf16_without_bf16_kernels_is_refused_before_training() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    synth(&voc);
    let out = tmp.path().join("run");
    let o = Command::new(env!("CARGO_BIN_EXE_slimdet"))
        .args(["train", "--voc", voc.to_str().unwrap(), "--out"])
        .arg(&out)
        .args(["--width", "0.25", "--batch", "2", "--epochs", "1"])
        .args(["--precision", "bf16"])
        .env("SLIMDET_KERNELS", "scalar")
        .output()
        .unwrap();
    assert!(!o.status.success());
    assert!(text(&o).contains("needs AVX512-BF16"), "{}", text(&o));
    assert!(!out.exists(), "nothing written");
}
