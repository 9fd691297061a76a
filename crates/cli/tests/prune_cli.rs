//! `slimdet prune`: outputs, reports, refusals, and `slimdet info`'s sparse-kernel column.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::run;

fn golden_model() -> PathBuf {
    slimdet_testkit::mb2_model()
}

fn json(o: &Output) -> serde_json::Value {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    serde_json::from_slice(&o.stdout).expect("JSON report")
}

/// `slimdet info --format json` of `model`, parsed (asserting success).
fn info_json(model: &Path) -> serde_json::Value {
    json(&run(&[
        "info",
        "--model",
        model.to_str().unwrap(),
        "--format",
        "json",
    ]))
}

#[test]
fn unstructured_sparse_format_and_info() {
    let dir = tempfile::tempdir().unwrap();
    let m = golden_model();
    let dense = dir.path().join("d.safetensors");
    let sparse = dir.path().join("s.safetensors");
    let base = [
        "prune",
        "--model",
        m.to_str().unwrap(),
        "--method",
        "l1",
        "--amount",
        "0.8",
        "--exclude",
        "base_net.0.0",
        "--format",
        "json",
    ];
    let d = json(&run(&[
        &base[..],
        &["--dense", "-o", dense.to_str().unwrap()],
    ]
    .concat()));
    // Sparse is the default: no flag needed.
    let s = json(&run(
        &[&base[..], &["-o", sparse.to_str().unwrap()]].concat()
    ));
    assert_eq!(d["sparse_format"], false);
    assert_eq!(d["sparse_tensors"], 0);
    assert_eq!(s["sparse_format"], true);
    assert!(s["sparse_tensors"].as_u64().unwrap() > 30, "{s}");
    assert!((d["sparsity_conv"].as_f64().unwrap() - 0.8).abs() < 0.01);
    let (fd, fs) = (
        d["file_bytes"].as_u64().unwrap(),
        s["file_bytes"].as_u64().unwrap(),
    );
    assert!(fs * 3 < fd, "sparse file {fs} vs dense {fd}");
    let info = info_json(&sparse);
    assert!(info["sparse_convs"].as_u64().unwrap() > 30);
    let layers = info["layers"].as_array().unwrap();
    let stem = &layers[0];
    assert_eq!(stem["sparse_kernel"], false);
    assert!(
        stem["sparse_reason"]
            .as_str()
            .unwrap()
            .contains("not a 1x1")
    );
    assert!(layers.iter().any(|l| l["sparse_kernel"] == true));
}

#[test]
fn structured_shrinks_and_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.safetensors");
    let m = golden_model();
    let r = json(&run(&[
        "prune",
        "--model",
        m.to_str().unwrap(),
        "--method",
        "filter-l2",
        "--amount",
        "0.3",
        "--format",
        "json",
        "-o",
        out.to_str().unwrap(),
    ]));
    assert!(r["macs_after"].as_u64().unwrap() < r["macs_before"].as_u64().unwrap() * 7 / 10);
    // Removed channels leave no zeros: the default sparse writer keeps the dense layout.
    assert_eq!(r["sparse_format"], false, "{r}");
    let info = info_json(&out);
    assert_eq!(info["macs"], r["macs_after"]);
}

#[test]
fn bad_options_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("x.safetensors");
    let m = golden_model();
    for (amount, extra) in [("1.0", None), ("-0.5", None), ("0.5", Some("--include-bn"))] {
        let mut args = vec![
            "prune",
            "--model",
            m.to_str().unwrap(),
            "--method",
            "filter-l1",
            "--amount",
            amount,
            "-o",
            out.to_str().unwrap(),
        ];
        if amount == "1.0" || amount == "-0.5" {
            args[4] = "l1";
        }
        args.extend(extra);
        let o = run(&args);
        assert_eq!(o.status.code(), Some(2), "{args:?}");
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(
            err.contains("amount") || err.contains("--include-bn"),
            "{err}"
        );
        assert!(!out.exists(), "nothing written on error");
    }
}
