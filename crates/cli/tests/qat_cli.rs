//! `slimdet train --qat` end to end: calibrates, fine-tunes with fake quantization, writes
//! an int8 model that `detect` loads, and refuses bad input.

mod common;

use common::{assert_fails_with, assert_success, calibrated_quantize_args, run, s};
use slimdet_testkit::path as testdata;

#[test]
fn qat_writes_an_int8_model_and_refuses_bad_input() {
    let dir = tempfile::tempdir().unwrap();
    let model = s(&testdata("golden/mb2-ssd-lite-voc21-seed0/model.pth"));
    let voc = s(&testdata("fixtures/voc2007/VOCdevkit"));
    let out = dir.path().join("qat");
    let out_s = s(&out);
    let base = [
        "train",
        "--qat",
        "--init",
        &model,
        "--voc",
        &voc,
        "--split",
        "test",
        "--epochs",
        "1",
        "--batch",
        "2",
        "--lr",
        "1e-4",
        "--no-val",
        "--no-augment",
        "-o",
        &out_s,
    ];
    let with = |extra: &[&str]| {
        let mut v: Vec<&str> = base.to_vec();
        v.extend_from_slice(extra);
        run(&v)
    };
    let o = with(&["--max-steps", "1", "--json", "--calib-images", "2"]);
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(o.status.success(), "{err}");
    assert!(err.contains("86 int8 layers"), "{err}");
    let v: serde_json::Value = serde_json::from_slice(&o.stdout).unwrap();
    assert_eq!(v["global_step"], 1);
    let q = out.join("qat-int8.safetensors");
    let img = testdata("golden/mb2-ssd-lite-voc21-seed0/000002.png");
    let o = run(&["detect", "--model", &s(&q), &s(&img), "--format", "json"]);
    assert_success(&o);
    let o = run(&["info", "--model", &s(&q)]);
    assert_success(&o);

    for (extra, msg) in [
        (vec!["--calib-images", "0"], "at least 1"),
        (vec!["--observer", "median"], "unknown observer"),
    ] {
        let o = with(&extra);
        let err = String::from_utf8_lossy(&o.stderr);
        assert!(!o.status.success() && err.contains(msg), "{extra:?}: {err}");
    }
    let o = run(&["train", "--qat", "--voc", &voc, "-o", &out_s]);
    assert_fails_with(&o, "--init");
}

#[test]
fn an_empty_split_is_refused_by_quantize_and_qat() {
    let dir = tempfile::tempdir().unwrap();
    let src = testdata("fixtures/voc2007/VOCdevkit/VOC2007");
    let year = dir.path().join("VOC2007");
    std::fs::create_dir_all(year.join("ImageSets/Main")).unwrap();
    for sub in ["Annotations", "JPEGImages"] {
        std::os::unix::fs::symlink(src.join(sub), year.join(sub)).unwrap();
    }
    std::fs::write(year.join("ImageSets/Main/test.txt"), "").unwrap();
    let model = s(&testdata("golden/mb2-ssd-lite-voc21-seed0/model.pth"));
    let voc = s(dir.path());
    let out = s(&dir.path().join("q.safetensors"));
    for args in [
        calibrated_quantize_args(&model, &voc, &out),
        vec![
            "train", "--qat", "--init", &model, "--voc", &voc, "--split", "test", "-o", &out,
        ],
    ] {
        let o = run(&args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains("lists no image ids"), "{args:?}: {err}");
        assert!(!std::path::Path::new(&out).exists());
    }
}
