//! Hostile and broken input: every case returns a clear error naming the file,
//! and no input (random, truncated, bit-flipped) makes the loader panic.

mod common;

use std::panic::{AssertUnwindSafe, catch_unwind};

use common::*;
use slimdet_formats::{
    FormatError, load_pth, load_pth_bytes, load_state_dict, load_state_dict_bytes,
};

/// Loads `bytes` as `.pth` and by content; fails the test if either panics.
fn must_not_panic(bytes: &[u8], case: &str) {
    let r = catch_unwind(AssertUnwindSafe(|| {
        let _ = load_pth_bytes(bytes, case);
        let _ = load_state_dict_bytes(bytes, case);
    }));
    assert!(r.is_ok(), "loader panicked on {case}");
}

fn expect_err(bytes: &[u8], name: &str) -> FormatError {
    let err = load_pth_bytes(bytes, name).expect_err(name);
    assert!(
        err.to_string().contains(name),
        "error does not name the file: {err}"
    );
    err
}

#[test]
fn empty_file_is_an_error_naming_it() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("empty.pth");
    std::fs::write(&path, b"").unwrap();
    for err in [
        load_pth(&path).unwrap_err(),
        load_state_dict(&path).unwrap_err(),
    ] {
        assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
        assert!(
            err.to_string().contains("empty.pth") && err.to_string().contains("empty"),
            "{err}"
        );
    }
    let err = load_pth(&dir.path().join("absent.pth")).unwrap_err();
    assert!(
        matches!(err, FormatError::Io { .. }) && err.to_string().contains("absent.pth"),
        "{err}"
    );
}

#[test]
fn truncated_fixtures_fail_cleanly() {
    for path in [mb2_zip(), mb2_legacy(), ultraface("version-slim-320.pth")] {
        let bytes = std::fs::read(&path).unwrap();
        for cut in [10, 100, bytes.len() / 2, bytes.len() - 1] {
            let name = format!("{}[..{cut}]", path.file_name().unwrap().to_string_lossy());
            let err = expect_err(&bytes[..cut], &name);
            let legacy = bytes.starts_with(b"\x80");
            if legacy {
                assert!(matches!(err, FormatError::Truncated { .. }), "{err}");
            } else {
                assert!(matches!(err, FormatError::Zip { .. }), "{err}");
            }
        }
    }
}

#[test]
fn wrong_magic_and_protocol() {
    let mut bytes = std::fs::read(mb2_legacy()).unwrap();
    bytes[5] ^= 0x01; // inside the LONG1 magic number
    let err = expect_err(&bytes, "badmagic.pth");
    assert!(matches!(err, FormatError::BadMagic { .. }), "{err}");
    let err = expect_err(b"GIF89a not a model", "picture.pth");
    assert!(matches!(err, FormatError::BadMagic { .. }), "{err}");

    let state = ordered_dict_pickle(&[]);
    let mut file = [LEGACY_MAGIC, b"\x80\x02M\xea\x03.", SYS_INFO, &state].concat();
    file.extend(b"\x80\x02].");
    let err = expect_err(&file, "proto.pth");
    assert!(
        matches!(err, FormatError::UnsupportedProtocol { version: 1002, .. }),
        "{err}"
    );
}

#[test]
fn os_system_is_refused_in_every_container() {
    let evil = b"\x80\x02cos\nsystem\nX\x05\x00\x00\x00touch\x85R.";
    let legacy = [LEGACY_MAGIC, LEGACY_PROTO, SYS_INFO, evil].concat();
    let zip = zip_file("archive", evil, &[]);
    for (bytes, name) in [
        (&evil[..], "evil.pkl"),
        (&legacy[..], "evil_legacy.pth"),
        (&zip[..], "evil_zip.pth"),
    ] {
        let err = expect_err(bytes, name);
        let FormatError::ForbiddenGlobal {
            module,
            name: global,
            ..
        } = &err
        else {
            panic!("{name}: {err}")
        };
        assert_eq!((module.as_str(), global.as_str()), ("os", "system"));
        let msg = err.to_string();
        assert!(msg.contains("os") && msg.contains("system"), "{msg}");
    }
    // builtins.eval through STACK_GLOBAL (protocol 4), and torch's own byte loader.
    let mut p = b"\x80\x04".to_vec();
    p.extend(su("builtins"));
    p.extend(su("eval"));
    p.extend(b"\x93.");
    assert!(matches!(
        expect_err(&p, "eval.pth"),
        FormatError::ForbiddenGlobal { .. }
    ));
    let p = b"\x80\x02ctorch.storage\n_load_from_bytes\n.";
    assert!(matches!(
        expect_err(p, "bytes.pth"),
        FormatError::ForbiddenGlobal { .. }
    ));
}

#[test]
fn non_state_dict_top_levels() {
    let file = legacy_file(b"\x80\x02](K\x01e.", &[]);
    let err = expect_err(&file, "list.pth");
    assert!(matches!(err, FormatError::NotAStateDict { .. }), "{err}");
    let err = expect_err(&zip_file("x", b"\x80\x02N.", &[]), "none.pth");
    assert!(matches!(err, FormatError::NotAStateDict { .. }), "{err}");
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    w.start_file("readme.txt", zip::write::SimpleFileOptions::default())
        .unwrap();
    let bytes = w.finish().unwrap().into_inner();
    assert!(matches!(
        expect_err(&bytes, "plain.zip"),
        FormatError::NotAStateDict { .. }
    ));
}

#[test]
fn random_garbage_never_panics() {
    let mut rng = XorShift(0x9e37_79b9_7f4a_7c15);
    let prefixes: [&[u8]; 5] = [
        b"",
        b"PK\x03\x04",
        b"\x80\x02",
        LEGACY_MAGIC,
        b"\x20\x00\x00\x00\x00\x00\x00\x00{",
    ];
    for i in 0..200 {
        let len = rng.below(4096);
        let mut buf: Vec<u8> = prefixes[i % prefixes.len()].to_vec();
        buf.extend((0..len).map(|_| rng.next() as u8));
        must_not_panic(&buf, &format!("random#{i}"));
        // Random opcode soup from the pickle alphabet reaches deeper into the VM.
        let alphabet = b"()012NKMJ\x88\x89]}lstuea\x85\x86\x87qhrj\x94RbQ.X\x8c\x8a";
        let mut soup = [LEGACY_MAGIC, LEGACY_PROTO, SYS_INFO, b"\x80\x02"].concat();
        soup.extend((0..len).map(|_| alphabet[rng.below(alphabet.len())]));
        must_not_panic(&soup, &format!("soup#{i}"));
    }
}

#[test]
fn mutated_fixtures_never_panic() {
    let mut rng = XorShift(0x2545_f491_4f6c_dd1d);
    for path in [mb2_legacy(), mb2_zip(), ultraface("version-RFB-320.pth")] {
        let original = std::fs::read(&path).unwrap();
        let name = path.file_name().unwrap().to_string_lossy().into_owned();
        for i in 0..40 {
            let mut bytes = original.clone();
            // Mostly hit the pickle / headers near the start, sometimes anywhere.
            let span = if i % 4 == 0 {
                bytes.len()
            } else {
                bytes.len().min(90_000)
            };
            for _ in 0..1 + rng.below(8) {
                let at = rng.below(span);
                bytes[at] ^= 1 << rng.below(8);
            }
            if i % 3 == 0 {
                bytes.truncate(rng.below(bytes.len()));
            }
            must_not_panic(&bytes, &format!("{name} mutation #{i}"));
        }
    }
}

/// A zip `.pth` whose storage entry is 64 MiB of zeros deflated to a few KiB: its
/// declared size is far above the file's decompression budget, so it is refused before a
/// byte is inflated; with the declared size patched to 4 GB the same.
#[test]
fn zip_decompression_bombs_are_refused() {
    use std::io::Write;
    let pkl = ordered_dict_pickle(&[(
        "w",
        tensor_pickle("FloatStorage", "0", 4, 0, &[4], &[1], false),
    )]);
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let stored =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    let deflated = zip::write::SimpleFileOptions::default()
        .compression_method(zip::CompressionMethod::Deflated)
        .large_file(true);
    w.start_file("archive/data.pkl", stored).unwrap();
    w.write_all(&pkl).unwrap();
    w.start_file("archive/data/0", deflated).unwrap();
    let zeros = vec![0u8; 1 << 20];
    for _ in 0..64 {
        w.write_all(&zeros).unwrap();
    }
    let bomb = w.finish().unwrap().into_inner();
    assert!(bomb.len() < 1 << 20, "bomb is {} bytes", bomb.len());
    let err = expect_err(&bomb, "bomb.pth");
    assert!(
        matches!(err, FormatError::Limit { .. }) && err.to_string().contains("decompression bomb"),
        "{err}"
    );

    // The same archive claiming 4 GB (ZIP64 extra fields hold the sizes).
    let mut claims = bomb.clone();
    let want = (64u64 << 20).to_le_bytes();
    let mut patched = 0;
    for i in 0..claims.len() - 8 {
        if claims[i..i + 8] == want {
            claims[i..i + 8].copy_from_slice(&4_000_000_000u64.to_le_bytes());
            patched += 1;
        }
    }
    assert!(patched >= 1, "no size field found to patch");
    let err = expect_err(&claims, "claims4g.pth");
    assert!(err.to_string().contains("refused"), "{err}");
}

/// Shapes whose element count overflows are errors, not allocations.
#[test]
fn overflowing_shapes_are_refused() {
    let huge = u64::MAX / 2;
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    p.extend(su("w"));
    p.extend(b"ctorch._utils\n_rebuild_tensor_v2\n((");
    p.extend(su("storage"));
    p.extend(b"ctorch\nFloatStorage\n");
    p.extend(su("0"));
    p.extend(su("cpu"));
    p.extend(b"K\x04tQK\x00(");
    for _ in 0..3 {
        p.push(b'\x8a');
        p.push(8);
        p.extend(huge.to_le_bytes());
    }
    p.extend(b"t(K\x01K\x01K\x01t\x89ccollections\nOrderedDict\n)RtRu.");
    let f = zip_file("archive", &p, &[("0", f32_ramp(4))]);
    let err = expect_err(&f, "overflow.pth");
    assert!(
        err.to_string().contains("overflow") || err.to_string().contains("too large"),
        "{err}"
    );

    // safetensors: a header whose shape product overflows.
    let header =
        br#"{"w":{"dtype":"F32","shape":[4294967296,4294967296,16],"data_offsets":[0,16]}}"#;
    let mut st = (header.len() as u64).to_le_bytes().to_vec();
    st.extend_from_slice(header);
    st.extend([0u8; 16]);
    let err = load_state_dict_bytes(&st, "overflow.safetensors").expect_err("overflow");
    assert!(err.to_string().contains("overflow.safetensors"), "{err}");
}
