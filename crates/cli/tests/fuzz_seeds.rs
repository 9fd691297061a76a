//! The fuzz targets' seed corpora (`fuzz/seeds/<target>/`) and every input a fuzzing run
//! found to crash (`fuzz/regressions/<target>/`), replayed through the same entry points
//! as the cargo-fuzz targets (`fuzz/fuzz_targets/`) on the stable toolchain, together with
//! every prefix of each seed (truncated files). Any error is fine; a panic fails the test.

use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use slimdet_data::voc::{default_classes, parse_annotation_text};
use slimdet_eval::detections_io::{parse_csv, parse_json};
use slimdet_models::Detector;
use slimdet_quant::QuantizedDetector;

fn fuzz_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../fuzz")
}

/// The files of `fuzz/<kind>/<target>/` (none when the folder does not exist).
fn inputs(kind: &str, target: &str) -> Vec<(String, Vec<u8>)> {
    let dir = fuzz_dir().join(kind).join(target);
    let Ok(entries) = std::fs::read_dir(&dir) else {
        return Vec::new();
    };
    let mut out: Vec<_> = entries
        .map(|e| e.unwrap().path())
        .filter(|p| p.is_file())
        .map(|p| (p.display().to_string(), std::fs::read(&p).unwrap()))
        .collect();
    out.sort();
    out
}

/// Runs `f` on every seed of `target` and each of its prefixes, and on every recorded
/// regression; `min_seeds` guards against an emptied corpus.
fn replay(target: &str, min_seeds: usize, f: impl Fn(&[u8])) {
    let seeds = inputs("seeds", target);
    assert!(
        seeds.len() >= min_seeds,
        "fuzz/seeds/{target}: {} seeds, expected at least {min_seeds}",
        seeds.len()
    );
    let step = |n: usize| (n / 64).max(1);
    for (name, bytes) in &seeds {
        for len in (0..=bytes.len())
            .step_by(step(bytes.len()))
            .chain([bytes.len()])
        {
            let r = catch_unwind(AssertUnwindSafe(|| f(&bytes[..len])));
            assert!(r.is_ok(), "{target}: panicked on {name} cut to {len} bytes");
        }
    }
    for (name, bytes) in inputs("regressions", target) {
        let r = catch_unwind(AssertUnwindSafe(|| f(&bytes)));
        assert!(r.is_ok(), "{target}: panicked on regression {name}");
    }
}

#[test]
fn model_file() {
    replay("model_file", 4, |d| {
        let _ = slimdet_formats::load_pth_bytes(d, "fuzz.pth");
        let _ = Detector::load_bytes(d, "fuzz.model", None);
    });
}

#[test]
fn quant_file() {
    replay("quant_file", 2, |d| {
        let _ = QuantizedDetector::load_bytes(d, Path::new("fuzz.safetensors"));
    });
}

#[test]
fn voc_xml() {
    let classes = default_classes();
    replay("voc_xml", 4, |d| {
        if let Ok(text) = std::str::from_utf8(d) {
            for skip in [false, true] {
                let _ = parse_annotation_text(text, Path::new("fuzz.xml"), &classes, skip);
            }
        }
    });
}

#[test]
fn image_decode() {
    replay("image_decode", 3, |d| {
        if let Ok(img) = slimdet_data::decode_rgb(d, Path::new("fuzz.img")) {
            assert!(img.is_consistent());
        }
    });
}

#[test]
fn detections() {
    let classes = default_classes();
    replay("detections", 2, |d| {
        for skip in [false, true] {
            let _ = parse_csv(d, Path::new("fuzz.csv"), &classes, skip);
            if let Ok(text) = std::str::from_utf8(d) {
                let _ = parse_json(text, Path::new("fuzz.json"), &classes, skip);
            }
        }
    });
}

/// The ONNX and GraphDef seeds sit directly in `fuzz/seeds/`.
#[test]
fn onnx_and_graphdef() {
    let mut n = 0;
    for (name, bytes) in inputs("", "seeds") {
        n += 1;
        for len in (0..=bytes.len()).step_by((bytes.len() / 64).max(1)) {
            let d = &bytes[..len];
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _ = slimdet_onnx::import_bytes(d, "fuzz.onnx");
                let _ = slimdet_formats::tf::load_graphdef_bytes(d, "fuzz.pb");
            }));
            assert!(r.is_ok(), "panicked on {name} cut to {len} bytes");
        }
    }
    assert!(n >= 5, "fuzz/seeds: {n} ONNX/GraphDef seeds");
    for target in ["onnx_import", "tf_graphdef"] {
        for (name, bytes) in inputs("regressions", target) {
            let r = catch_unwind(AssertUnwindSafe(|| {
                let _ = slimdet_onnx::import_bytes(&bytes, "fuzz.onnx");
                let _ = slimdet_formats::tf::load_graphdef_bytes(&bytes, "fuzz.pb");
            }));
            assert!(r.is_ok(), "{target}: panicked on regression {name}");
        }
    }
}
