//! Every pytorch-ssd network through the toolkit, from pytorch-ssd's own `.pth` files
//! (`testdata/golden/pytorch-ssd`): prune → quantize → eval → export, the export read
//! back as the same network; and training from scratch and fine-tuning from the `.pth`.
//! Small runs (two calibration and evaluation photos, one or two training steps): they
//! check that each command works on each topology, not accuracy.

mod common;

use std::path::{Path, PathBuf};

use common::{assert_success, quantize_calibrated, run, s, synth_dataset};
use slimdet_models::arch::PYTORCH_SSD_NETS;

fn pth(net: &str) -> PathBuf {
    if net == "mb2-ssd-lite" {
        slimdet_testkit::mb2_model()
    } else {
        slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth"))
    }
}

/// The network name `slimdet info` reports for `model`.
fn info_name(model: &Path) -> String {
    let o = run(&["info", "--model", &s(model), "--format", "json"]);
    assert_success(&o);
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    v["arch"].as_str().unwrap_or_default().to_string()
}

#[test]
fn every_network_prunes_quantizes_evaluates_and_exports() {
    let voc = slimdet_testkit::vocdevkit();
    let dir = tempfile::tempdir().unwrap();
    for net in PYTORCH_SSD_NETS {
        let d = dir.path();
        let pruned = d.join(format!("{net}-l1.safetensors"));
        let structured = d.join(format!("{net}-filter.safetensors"));
        let q = d.join(format!("{net}-int8.safetensors"));
        let onnx = d.join(format!("{net}.onnx"));
        let m = s(&pth(net));
        for (method, amount, out) in [("l1", "0.3", &pruned), ("filter-l1", "0.2", &structured)] {
            let o = run(&[
                "prune",
                "--model",
                &m,
                "--method",
                method,
                "--amount",
                amount,
                "-o",
                &s(out),
            ]);
            assert_success(&o);
            assert_eq!(info_name(out), net, "{net} {method}");
        }
        assert_success(&quantize_calibrated(&pruned, &voc, "2", &q, &[]));
        assert_eq!(info_name(&q), net);
        for model in [&structured, &q] {
            let o = run(&[
                "eval",
                "--model",
                &s(model),
                "--voc",
                &s(&voc),
                "--limit",
                "2",
                "--timing-runs",
                "0",
                "--no-results",
                "--format",
                "json",
            ]);
            assert_success(&o);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            assert!(v["map"].is_number(), "{net}: {v}");
        }
        assert_success(&run(&[
            "export",
            "--model",
            &s(&structured),
            "-o",
            &s(&onnx),
        ]));
        assert_eq!(info_name(&onnx), net, "{net}: the ONNX export read back");
    }
}

#[test]
fn every_network_trains_from_scratch_and_fine_tunes() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    assert_success(&synth_dataset(&voc, "2", "1", &[]));
    for net in PYTORCH_SSD_NETS {
        for init in [None, Some(pth(net))] {
            let out = tmp.path().join(format!("{net}-{}", init.is_some()));
            let mut args = vec![
                "train".to_string(),
                "--voc".into(),
                s(&voc),
                "--out".into(),
                s(&out),
                "--arch".into(),
                net.into(),
                "--batch".into(),
                "2".into(),
                "--epochs".into(),
                "1".into(),
                "--no-val".into(),
                "--json".into(),
            ];
            if let Some(p) = &init {
                args.extend(["--init".into(), s(p)]);
            }
            let refs: Vec<&str> = args.iter().map(String::as_str).collect();
            let o = run(&refs);
            assert_success(&o);
            let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
            let loss = v["epochs"][0]["loss"].as_f64().unwrap_or(f64::NAN);
            assert!(loss.is_finite(), "{net}: loss {loss}");
            assert_eq!(info_name(&out.join("final.safetensors")), net);
        }
    }
}
