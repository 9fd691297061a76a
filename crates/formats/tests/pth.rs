//! `.pth` loading: the real fixtures (zip and legacy, Windows-saved UltraFace)
//! against the key table, plus hand-built files for strides, views and wrappers.

mod common;

use common::*;
use slimdet_formats::{
    DType, FormatError, StateDict, TensorData, load_pth, load_pth_bytes, load_state_dict,
};

/// `(key, dtype, shape)` rows of the 478-entry key table.
fn csv_table() -> Vec<(String, DType, Vec<usize>)> {
    let text = std::fs::read_to_string(fixture(
        "fixtures/pytorch-ssd/state_dict_mb2_ssd_lite_voc21.csv",
    ))
    .unwrap();
    let mut lines = text.lines();
    assert_eq!(lines.next(), Some("index,key,dtype,shape"));
    lines
        .enumerate()
        .map(|(i, line)| {
            let f: Vec<&str> = line.split(',').collect();
            assert_eq!(f.len(), 4, "bad csv line {line}");
            assert_eq!(f[0].parse::<usize>().unwrap(), i);
            let dtype = match f[2] {
                "float32" => DType::F32,
                "int64" => DType::I64,
                other => panic!("unexpected dtype {other}"),
            };
            let shape = match f[3] {
                "scalar" => vec![],
                s => s.split('x').map(|d| d.parse().unwrap()).collect(),
            };
            (f[1].to_string(), dtype, shape)
        })
        .collect()
}

fn assert_matches_table(sd: &StateDict) {
    let table = csv_table();
    assert_eq!(table.len(), 478);
    assert_eq!(sd.len(), 478);
    for (t, (name, dtype, shape)) in sd.iter().zip(&table) {
        assert_eq!(&t.name, name);
        assert_eq!(t.dtype(), *dtype, "{name}");
        assert_eq!(&t.shape, shape, "{name}");
        assert_eq!(t.numel(), shape.iter().product::<usize>(), "{name}");
    }
}

fn bits(d: &TensorData) -> Vec<u64> {
    match d {
        TensorData::F32(v) => v.iter().map(|x| u64::from(x.to_bits())).collect(),
        TensorData::I64(v) => v.iter().map(|&x| x as u64).collect(),
    }
}

#[test]
fn zip_fixture_matches_key_table() {
    let sd = load_pth(&mb2_zip()).unwrap();
    assert_matches_table(&sd);
    let w = sd.get("base_net.0.0.weight").unwrap();
    assert_eq!(w.shape, vec![32, 3, 3, 3]);
    assert!(w.as_f32().unwrap().iter().all(|x| x.is_finite()));
    assert!(w.as_f32().unwrap().iter().any(|&x| x != 0.0));
}

#[test]
fn legacy_fixture_matches_key_table_and_zip_bit_for_bit() {
    let legacy = load_pth(&mb2_legacy()).unwrap();
    assert_matches_table(&legacy);
    let zip = load_pth(&mb2_zip()).unwrap();
    for (a, b) in zip.iter().zip(legacy.iter()) {
        assert_eq!(a.name, b.name);
        assert_eq!(a.shape, b.shape, "{}", a.name);
        assert_eq!(bits(&a.data), bits(&b.data), "{}", a.name);
    }
}

#[test]
fn num_batches_tracked_are_i64_scalars() {
    let sd = load_pth(&mb2_zip()).unwrap();
    let nbt: Vec<_> = sd
        .iter()
        .filter(|t| t.name.ends_with("num_batches_tracked"))
        .collect();
    assert!(!nbt.is_empty());
    for t in nbt {
        assert_eq!(
            (t.dtype(), t.shape.as_slice(), t.numel()),
            (DType::I64, &[][..], 1),
            "{}",
            t.name
        );
        assert!(t.as_f32().is_none() && t.as_i64().unwrap()[0] >= 0);
    }
}

#[test]
fn ultraface_windows_legacy_files_load() {
    for (file, count) in [("version-slim-320.pth", 184), ("version-RFB-320.pth", 244)] {
        let sd = load_pth(&ultraface(file)).unwrap();
        assert_eq!(sd.len(), count, "{file}");
        let w = sd.get("base_net.0.0.weight").unwrap();
        assert_eq!(w.shape, vec![16, 3, 3, 3], "{file}");
        for t in sd.iter() {
            match &t.data {
                TensorData::F32(v) => assert!(v.iter().all(|x| x.is_finite()), "{file} {}", t.name),
                // LongStorage elements are 8 bytes even though sys_info says long=4:
                // reading 4 would misalign everything after and give garbage counts.
                TensorData::I64(v) => assert!(
                    v.iter().all(|&x| (0..1 << 40).contains(&x)),
                    "{} {v:?}",
                    t.name
                ),
            }
        }
    }
}

#[test]
fn load_state_dict_dispatches_pth_by_content() {
    let (sd, meta) = load_state_dict(&mb2_legacy()).unwrap();
    assert_eq!(sd.len(), 478);
    assert!(meta.is_empty());
    // The extension is irrelevant: a zip .pth copied to a .bin name still loads.
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("weights.bin");
    std::fs::copy(mb2_zip(), &p).unwrap();
    assert_eq!(load_state_dict(&p).unwrap().0.len(), 478);
}

#[test]
fn strides_offsets_and_views_are_honoured() {
    // 6-element storage 0..5; "t" is a transposed [3, 2] view, "o" a [2] slice at offset 4.
    let state = ordered_dict_pickle(&[
        (
            "t",
            tensor_pickle("FloatStorage", "0", 6, 0, &[3, 2], &[1, 3], true),
        ),
        (
            "o",
            tensor_pickle("FloatStorage", "0", 6, 4, &[2], &[1], true),
        ),
    ]);
    let file = legacy_file(&state, &[("0", 6, f32_ramp(6))]);
    let sd = load_pth_bytes(&file, "strided.pth").unwrap();
    assert_eq!(
        sd.get("t").unwrap().as_f32().unwrap(),
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );
    assert_eq!(sd.get("o").unwrap().as_f32().unwrap(), &[4.0, 5.0]);

    // The same through the zip container, under an unusual archive directory name.
    let state = ordered_dict_pickle(&[(
        "t",
        tensor_pickle("FloatStorage", "s", 6, 0, &[3, 2], &[1, 3], false),
    )]);
    let file = zip_file("some_archive_name", &state, &[("s", f32_ramp(6))]);
    let sd = load_pth_bytes(&file, "strided_zip.pth").unwrap();
    assert_eq!(
        sd.get("t").unwrap().as_f32().unwrap(),
        &[0.0, 3.0, 1.0, 4.0, 2.0, 5.0]
    );

    // Legacy view metadata ('view_key', offset, size): the storage is root[2..5].
    let mut t = tensor_pickle("FloatStorage", "0", 6, 1, &[2], &[1], true);
    let n = t.windows(3).position(|w| w == b"NtQ").unwrap();
    let mut view = b"(".to_vec();
    view.extend(su("v"));
    view.extend(b"K\x02K\x03t");
    t.splice(n..n + 1, view);
    let file = legacy_file(&ordered_dict_pickle(&[("v", t)]), &[("0", 6, f32_ramp(6))]);
    let sd = load_pth_bytes(&file, "view.pth").unwrap();
    assert_eq!(sd.get("v").unwrap().as_f32().unwrap(), &[3.0, 4.0]);
}

#[test]
fn other_storage_types_convert() {
    let half: Vec<u8> = [0x3c00u16, 0xc000]
        .iter()
        .flat_map(|h| h.to_le_bytes())
        .collect();
    let ints: Vec<u8> = [-3i32, 7].iter().flat_map(|h| h.to_le_bytes()).collect();
    let state = ordered_dict_pickle(&[
        (
            "h",
            tensor_pickle("HalfStorage", "a", 2, 0, &[2], &[1], true),
        ),
        (
            "i",
            tensor_pickle("IntStorage", "b", 2, 0, &[2], &[1], true),
        ),
        (
            "b",
            tensor_pickle("BoolStorage", "c", 2, 0, &[2], &[1], true),
        ),
    ]);
    let file = legacy_file(
        &state,
        &[("a", 2, half), ("b", 2, ints), ("c", 2, vec![1, 0])],
    );
    let sd = load_pth_bytes(&file, "types.pth").unwrap();
    assert_eq!(sd.get("h").unwrap().as_f32().unwrap(), &[1.0, -2.0]);
    assert_eq!(sd.get("i").unwrap().as_i64().unwrap(), &[-3, 7]);
    assert_eq!(sd.get("b").unwrap().as_i64().unwrap(), &[1, 0]);
}

#[test]
fn checkpoint_wrappers_are_unwrapped() {
    for key in ["state_dict", "model", "net"] {
        let inner = ordered_dict_pickle(&[(
            "w",
            tensor_pickle("FloatStorage", "0", 2, 0, &[2], &[1], true),
        )]);
        let inner = &inner[2..inner.len() - 1]; // drop PROTO and STOP
        let mut p = b"\x80\x02}(".to_vec();
        p.extend(su("epoch"));
        p.extend(b"K\x05");
        p.extend(su(key));
        p.extend(inner);
        p.extend(b"u.");
        let sd = load_pth_bytes(&legacy_file(&p, &[("0", 2, f32_ramp(2))]), "ckpt.pth").unwrap();
        assert_eq!(sd.len(), 1, "{key}");
        assert_eq!(sd.get("w").unwrap().as_f32().unwrap(), &[0.0, 1.0]);
    }
    // Tensors outside the wrapped state dict (optimizer state) are skipped,
    // but their storages still sit in the legacy data section.
    let inner = ordered_dict_pickle(&[(
        "w",
        tensor_pickle("FloatStorage", "0", 2, 0, &[2], &[1], true),
    )]);
    let mut p = b"\x80\x02}(".to_vec();
    p.extend(su("model"));
    p.extend(&inner[2..inner.len() - 1]);
    p.extend(su("optimizer"));
    p.extend(b"}(");
    p.extend(su("momentum"));
    p.extend(tensor_pickle("DoubleStorage", "1", 3, 0, &[3], &[1], true));
    p.extend(b"uu.");
    let storages = [("1", 3, vec![0u8; 24]), ("0", 2, f32_ramp(2))];
    let sd = load_pth_bytes(&legacy_file(&p, &storages), "ckpt_opt.pth").unwrap();
    assert_eq!(sd.len(), 1);
    assert_eq!(sd.get("w").unwrap().as_f32().unwrap(), &[0.0, 1.0]);

    // Without a wrapper, a non-tensor value is an error naming the key.
    let mut p = b"\x80\x02}(".to_vec();
    p.extend(su("epoch"));
    p.extend(b"K\x05u.");
    let err = load_pth_bytes(&legacy_file(&p, &[]), "plain.pth").unwrap_err();
    assert!(matches!(err, FormatError::NotAStateDict { .. }), "{err}");
    assert!(
        err.to_string().contains("epoch") && err.to_string().contains("plain.pth"),
        "{err}"
    );
}

#[test]
fn missing_storages_are_reported() {
    let state = ordered_dict_pickle(&[(
        "w",
        tensor_pickle("FloatStorage", "9", 2, 0, &[2], &[1], false),
    )]);
    let err = load_pth_bytes(&zip_file("a", &state, &[]), "nostorage.pth").unwrap_err();
    assert!(
        matches!(err, FormatError::MissingStorage { ref key, .. } if key == "9"),
        "{err}"
    );
    let state = ordered_dict_pickle(&[(
        "w",
        tensor_pickle("FloatStorage", "9", 2, 0, &[2], &[1], true),
    )]);
    let err = load_pth_bytes(&legacy_file(&state, &[]), "nostorage.pth").unwrap_err();
    assert!(matches!(err, FormatError::MissingStorage { .. }), "{err}");
    // Stride walking past the storage end.
    let state = ordered_dict_pickle(&[(
        "w",
        tensor_pickle("FloatStorage", "0", 4, 1, &[2, 2], &[2, 1], true),
    )]);
    let err =
        load_pth_bytes(&legacy_file(&state, &[("0", 4, f32_ramp(4))]), "oob.pth").unwrap_err();
    assert!(
        matches!(err, FormatError::OutOfBounds { ref tensor, .. } if tensor == "w"),
        "{err}"
    );
}
