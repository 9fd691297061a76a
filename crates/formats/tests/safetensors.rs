//! safetensors: bit-exact round trips with metadata, atomic saves, foreign files.

mod common;

use std::collections::BTreeMap;

use common::*;
use slimdet_formats::{
    FormatError, NamedTensor, StateDict, TensorData, load_pth, load_safetensors, load_state_dict,
    save_safetensors,
};

fn dir_entries(dir: &std::path::Path) -> Vec<String> {
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    v.sort();
    v
}

fn small() -> StateDict {
    let mut sd = StateDict::default();
    let nan = f32::from_bits(0x7fc0_1234);
    sd.push(NamedTensor {
        name: "z.w".into(),
        shape: vec![2, 2],
        data: TensorData::F32(vec![1.5, -0.0, nan, 1e-42]),
    });
    sd.push(NamedTensor {
        name: "a.n".into(),
        shape: vec![],
        data: TensorData::I64(vec![i64::MIN]),
    });
    sd.push(NamedTensor {
        name: "m.empty".into(),
        shape: vec![0, 3],
        data: TensorData::F32(vec![]),
    });
    sd
}

fn assert_bit_identical(a: &StateDict, b: &StateDict) {
    assert_eq!(a.len(), b.len());
    for (x, y) in a.iter().zip(b.iter()) {
        assert_eq!((&x.name, &x.shape), (&y.name, &y.shape));
        match (&x.data, &y.data) {
            (TensorData::F32(p), TensorData::F32(q)) => {
                assert!(
                    p.iter()
                        .map(|v| v.to_bits())
                        .eq(q.iter().map(|v| v.to_bits())),
                    "{}",
                    x.name
                )
            }
            (TensorData::I64(p), TensorData::I64(q)) => assert_eq!(p, q, "{}", x.name),
            _ => panic!("dtype changed for {}", x.name),
        }
    }
}

#[test]
fn round_trip_is_bit_exact_ordered_and_keeps_metadata() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("small.safetensors");
    let meta = BTreeMap::from([
        ("format".to_string(), "pt".to_string()),
        ("seed".into(), "0".into()),
    ]);
    save_safetensors(&path, &small(), &meta).unwrap();
    let (back, back_meta) = load_safetensors(&path).unwrap();
    assert_bit_identical(&small(), &back); // order is kept although names are not sorted
    assert_eq!(back_meta, meta);
    assert_eq!(
        dir_entries(dir.path()),
        vec!["small.safetensors"],
        "temp file left behind"
    );

    let (via_dispatch, m2) = load_state_dict(&path).unwrap();
    assert_bit_identical(&small(), &via_dispatch);
    assert_eq!(m2, meta);
}

#[test]
fn real_model_round_trips() {
    let sd = load_pth(&mb2_zip()).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("mb2.safetensors");
    save_safetensors(&path, &sd, &BTreeMap::new()).unwrap();
    let (back, meta) = load_safetensors(&path).unwrap();
    assert!(meta.is_empty());
    assert_bit_identical(&sd, &back);
}

#[test]
fn save_is_atomic_and_overwrites() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    std::fs::write(&path, b"old contents").unwrap();
    save_safetensors(&path, &small(), &BTreeMap::new()).unwrap();
    assert_bit_identical(&small(), &load_safetensors(&path).unwrap().0);
    assert_eq!(dir_entries(dir.path()), vec!["w.safetensors"]);

    // A tensor whose shape disagrees with its data: error, old file untouched, no temp file.
    let mut bad = small();
    bad.push(NamedTensor {
        name: "bad".into(),
        shape: vec![3],
        data: TensorData::F32(vec![1.0]),
    });
    let before = std::fs::read(&path).unwrap();
    let err = save_safetensors(&path, &bad, &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, FormatError::Safetensors { .. }), "{err}");
    assert_eq!(std::fs::read(&path).unwrap(), before);
    assert_eq!(dir_entries(dir.path()), vec!["w.safetensors"]);

    // Duplicate names are refused.
    let mut dup = small();
    dup.push(small().tensors[0].clone());
    assert!(save_safetensors(&path, &dup, &BTreeMap::new()).is_err());
}

#[test]
fn saving_into_a_missing_directory_fails_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/w.safetensors");
    let err = save_safetensors(&path, &small(), &BTreeMap::new()).unwrap_err();
    assert!(matches!(err, FormatError::Io { .. }), "{err}");
    assert!(err.to_string().contains("w.safetensors"), "{err}");
    assert!(!path.exists());
}

#[test]
fn foreign_golden_file_loads() {
    // Written by Python safetensors: F32 and U8 tensors, names sorted.
    let (sd, _) = load_safetensors(&fixture(
        "golden/mb2-ssd-lite-voc21-seed0/golden.safetensors",
    ))
    .unwrap();
    assert_eq!(sd.len(), 28);
    let input = sd.get("000002.input").unwrap();
    assert_eq!(input.shape, vec![1, 3, 300, 300]);
    assert_eq!(input.numel(), 270_000);
    assert!(
        sd.iter().any(|t| t.as_i64().is_some()),
        "U8 tensors load as I64"
    );
}

#[test]
fn broken_safetensors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("w.safetensors");
    save_safetensors(&path, &small(), &BTreeMap::new()).unwrap();
    let bytes = std::fs::read(&path).unwrap();
    let err = slimdet_formats::load_pth(&path).unwrap_err();
    assert!(
        matches!(err, FormatError::BadMagic { .. }) && err.to_string().contains("safetensors"),
        "{err}"
    );
    for cut in [9, bytes.len() / 2, bytes.len() - 1] {
        let p = dir.path().join(format!("cut{cut}.safetensors"));
        std::fs::write(&p, &bytes[..cut]).unwrap();
        let err = load_safetensors(&p).unwrap_err();
        assert!(
            err.to_string().contains(&format!("cut{cut}.safetensors")),
            "{err}"
        );
    }
}
