//! Model files are stable: a file saved, loaded and saved again is byte-identical (float
//! safetensors, its sparse encoding, and every quantized mode), and a quantized file of an
//! unknown format version is refused with the version named.

use std::path::Path;

use slimdet_data::RgbImage;
use slimdet_models::Detector;
use slimdet_quant::{Mode, QuantOptions, QuantizedDetector, quantize};

fn ultraface_slim() -> Detector {
    Detector::load(
        &slimdet_testkit::ultraface("models/version-slim-320.pth"),
        None,
    )
    .unwrap()
}

fn bytes(p: &Path) -> Vec<u8> {
    std::fs::read(p).unwrap()
}

#[test]
fn float_files_resave_byte_identically() {
    let dir = tempfile::tempdir().unwrap();
    for (name, det) in [
        (
            "mb2",
            Detector::load(&slimdet_testkit::mb2_model(), None).unwrap(),
        ),
        ("slim", ultraface_slim()),
    ] {
        let a = dir.path().join(format!("{name}-a.safetensors"));
        let b = dir.path().join(format!("{name}-b.safetensors"));
        det.save_safetensors(&a).unwrap();
        Detector::load(&a, None)
            .unwrap()
            .save_safetensors(&b)
            .unwrap();
        assert!(bytes(&a) == bytes(&b), "{name}: dense resave differs");

        // Half of every weight zeroed, so that the sparse writer encodes them.
        let mut sparse = det.clone();
        for n in &mut sparse.graph.nodes {
            if let slimdet_core::Op::Conv(c) = &mut n.op {
                let w = c.weight.data_mut();
                for v in w.iter_mut().step_by(2) {
                    *v = 0.0;
                }
            }
        }
        let (sa, sb) = (
            dir.path().join(format!("{name}-sa.safetensors")),
            dir.path().join(format!("{name}-sb.safetensors")),
        );
        let report = sparse.save_safetensors_sparse(&sa).unwrap();
        assert!(!report.encoded.is_empty(), "{name}: nothing encoded");
        Detector::load(&sa, None)
            .unwrap()
            .save_safetensors_sparse(&sb)
            .unwrap();
        assert!(bytes(&sa) == bytes(&sb), "{name}: sparse resave differs");
    }
}

#[test]
fn quantized_files_resave_byte_identically_and_versions_are_checked() {
    let dir = tempfile::tempdir().unwrap();
    let det = ultraface_slim();
    let imgs: Vec<RgbImage> = ["2.jpg", "13.jpg"]
        .iter()
        .map(|f| {
            slimdet_data::load_rgb(&slimdet_testkit::ultraface(&format!("images/{f}"))).unwrap()
        })
        .collect();
    for mode in [Mode::Static, Mode::Dynamic, Mode::Fp16] {
        let opts = QuantOptions {
            mode,
            ..QuantOptions::default()
        };
        let q = quantize(&det, &imgs, &opts).unwrap();
        let a = dir.path().join(format!("{mode}-a.safetensors"));
        let b = dir.path().join(format!("{mode}-b.safetensors"));
        q.save(&a).unwrap();
        QuantizedDetector::load(&a).unwrap().save(&b).unwrap();
        assert!(bytes(&a) == bytes(&b), "{mode}: resave differs");
    }
    // An unknown (newer) format version: same length, so only the version differs.
    let a = bytes(&dir.path().join("static-a.safetensors"));
    let key = br#""slimdet.quant.version":"2""#;
    let at = a
        .windows(key.len())
        .position(|w| w == key)
        .expect("version key in the header");
    let mut newer = a.clone();
    newer[at + key.len() - 2] = b'9';
    let e = QuantizedDetector::load_bytes(&newer, Path::new("newer.safetensors")).unwrap_err();
    let msg = e.to_string();
    assert!(
        msg.contains("newer.safetensors") && msg.contains("version") && msg.contains('9'),
        "{msg}"
    );
}

/// A quantized file of format version 1 (architecture named, no graph) still loads, to
/// the model its version-2 twin holds; without the architecture it is refused.
#[test]
fn version_1_quantized_files_still_load() {
    use safetensors::tensor::SafeTensors;
    let dir = tempfile::tempdir().unwrap();
    let img = slimdet_data::load_rgb(&slimdet_testkit::ultraface("images/2.jpg")).unwrap();
    let q = quantize(&ultraface_slim(), &[img], &QuantOptions::default()).unwrap();
    let v2 = dir.path().join("v2.safetensors");
    q.save(&v2).unwrap();
    let bytes = bytes(&v2);
    let (_, header) = SafeTensors::read_metadata(&bytes).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let mut meta = header.metadata().clone().unwrap();
    for k in ["slimdet.model.version", "slimdet.graph", "slimdet.head"] {
        assert!(meta.remove(k).is_some(), "{k}");
    }
    meta.insert("slimdet.quant.version".into(), "1".into());
    let write = |meta: &std::collections::HashMap<String, String>, name: &str| {
        let p = dir.path().join(name);
        let out = safetensors::serialize(st.tensors(), Some(meta.clone())).unwrap();
        std::fs::write(&p, out).unwrap();
        p
    };
    let v1 = write(&meta, "v1.safetensors");
    assert_eq!(QuantizedDetector::load(&v1).unwrap(), q);
    assert_eq!(QuantizedDetector::load(&v2).unwrap(), q);
    meta.remove("slimdet.arch");
    let e = QuantizedDetector::load(&write(&meta, "v1-no-arch.safetensors"))
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("v1-no-arch.safetensors") && e.contains("architecture"),
        "{e}"
    );
}
