//! Shared helpers for the integration tests: fixture paths and hand-built files.
#![allow(dead_code)] // each test binary uses a different subset

use std::path::PathBuf;

pub use slimdet_testkit::path as fixture;

pub fn mb2_zip() -> PathBuf {
    fixture("golden/mb2-ssd-lite-voc21-seed0/model.pth")
}

pub fn mb2_legacy() -> PathBuf {
    fixture("golden/mb2-ssd-lite-voc21-seed0/model_legacy.pth")
}

pub fn ultraface(name: &str) -> PathBuf {
    fixture(&format!("fixtures/ultraface/models/{name}"))
}

/// SHORT_BINUNICODE opcode for `s`.
pub fn su(s: &str) -> Vec<u8> {
    let mut v = vec![0x8c, s.len() as u8];
    v.extend_from_slice(s.as_bytes());
    v
}

/// Pickle body (no PROTO/STOP) of `_rebuild_tensor_v2(storage(kind, key, numel), offset, size, stride, ...)`.
pub fn tensor_pickle(
    kind: &str,
    key: &str,
    numel: u8,
    offset: u8,
    size: &[u8],
    stride: &[u8],
    legacy: bool,
) -> Vec<u8> {
    let mut p = b"ctorch._utils\n_rebuild_tensor_v2\n((".to_vec();
    p.extend(su("storage"));
    p.extend(format!("ctorch\n{kind}\n").as_bytes());
    p.extend(su(key));
    p.extend(su("cpu"));
    p.extend([b'K', numel]);
    if legacy {
        p.push(b'N');
    }
    p.extend(b"tQ");
    p.extend([b'K', offset]);
    for dims in [size, stride] {
        p.push(b'(');
        for &d in dims {
            p.extend([b'K', d]);
        }
        p.push(b't');
    }
    p.extend(b"\x89ccollections\nOrderedDict\n)RtR");
    p
}

/// Wraps `(name, tensor_pickle)` pairs into an OrderedDict pickle.
pub fn ordered_dict_pickle(entries: &[(&str, Vec<u8>)]) -> Vec<u8> {
    let mut p = b"\x80\x02ccollections\nOrderedDict\n)R(".to_vec();
    for (name, t) in entries {
        p.extend(su(name));
        p.extend(t);
    }
    p.extend(b"u.");
    p
}

pub const LEGACY_MAGIC: &[u8] = b"\x80\x02\x8a\x0a\x6c\xfc\x9c\x46\xf9\x20\x6a\xa8\x50\x19.";
pub const LEGACY_PROTO: &[u8] = b"\x80\x02M\xe9\x03.";
pub const SYS_INFO: &[u8] = b"\x80\x02}q\x00.";

/// A legacy-format file: magic, protocol, sys_info, `state`, key list, storages `(key, count, bytes)`.
pub fn legacy_file(state: &[u8], storages: &[(&str, i64, Vec<u8>)]) -> Vec<u8> {
    let mut f = [LEGACY_MAGIC, LEGACY_PROTO, SYS_INFO, state].concat();
    f.extend(b"\x80\x02](");
    for (k, _, _) in storages {
        f.extend(su(k));
    }
    f.extend(b"e.");
    for (_, n, data) in storages {
        f.extend(n.to_le_bytes());
        f.extend(data);
    }
    f
}

/// Little-endian f32 bytes of 0.0, 1.0, ..., (n-1).
pub fn f32_ramp(n: usize) -> Vec<u8> {
    (0..n).flat_map(|i| (i as f32).to_le_bytes()).collect()
}

/// A zip-format file with archive directory `prefix`, the given data.pkl and storages.
pub fn zip_file(prefix: &str, pkl: &[u8], storages: &[(&str, Vec<u8>)]) -> Vec<u8> {
    use std::io::Write;
    let mut w = zip::ZipWriter::new(std::io::Cursor::new(Vec::new()));
    let opts =
        zip::write::SimpleFileOptions::default().compression_method(zip::CompressionMethod::Stored);
    w.start_file(format!("{prefix}/data.pkl"), opts).unwrap();
    w.write_all(pkl).unwrap();
    w.start_file(format!("{prefix}/byteorder"), opts).unwrap();
    w.write_all(b"little").unwrap();
    for (k, d) in storages {
        w.start_file(format!("{prefix}/data/{k}"), opts).unwrap();
        w.write_all(d).unwrap();
    }
    w.finish().unwrap().into_inner()
}

/// Deterministic xorshift64 generator.
pub struct XorShift(pub u64);

impl XorShift {
    pub fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        self.0 = x;
        x
    }

    pub fn below(&mut self, n: usize) -> usize {
        (self.next() % n.max(1) as u64) as usize
    }
}
