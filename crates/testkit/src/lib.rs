//! Test support for slimdet's integration tests: where the fixtures are and how to read
//! the golden files.
//!
//! The fixtures live in the repository (`testdata/`, origin, licence and sha256 of each in
//! `testdata/SOURCES.md`), so a fresh clone tests itself. `SLIMDET_TESTDATA=DIR` points the
//! tests at another copy with the same layout. A missing fixture fails the test that needs
//! it with a message naming the file; nothing is skipped silently.
//!
//! Layout (paths given to [`path`] and [`dir`] are relative to it):
//! - `fixtures/voc2007/VOCdevkit/VOC2007`: four annotated VOC2007 photos (`test` split);
//! - `fixtures/ultraface`: UltraFace slim and RFB (`.pth`, `.onnx`), photos, goldens;
//! - `fixtures/tf-ssdlite-person`: a TF Object Detection API SSDLite frozen graph and
//!   TensorFlow's outputs;
//! - `fixtures/pytorch-ssd`: pytorch-ssd's state_dict key table and priors;
//! - `golden/mb2-ssd-lite-voc21-seed0`: MobileNetV2-SSD-Lite with seeded weights and
//!   PyTorch's outputs on the four VOC photos.

use std::path::{Path, PathBuf};

/// The variable that points the tests at another copy of `testdata/`.
pub const TESTDATA_VAR: &str = "SLIMDET_TESTDATA";

/// The fixture root: `$SLIMDET_TESTDATA`, or the repository's `testdata/`.
pub fn root() -> PathBuf {
    match std::env::var_os(TESTDATA_VAR) {
        Some(dir) if !dir.is_empty() => PathBuf::from(dir),
        _ => Path::new(env!("CARGO_MANIFEST_DIR")).join("../../testdata"),
    }
}

/// The fixture file or directory `rel` under [`root`]; panics (fails the calling test) if
/// it is missing.
pub fn path(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.exists(), "{}", missing(&p));
    p
}

/// The fixture directory `rel` under [`root`]; panics if it is missing.
pub fn dir(rel: &str) -> PathBuf {
    let p = root().join(rel);
    assert!(p.is_dir(), "{}", missing(&p));
    p
}

fn missing(p: &Path) -> String {
    format!(
        "fixture missing: {} (the repository's testdata/, see testdata/SOURCES.md; \
         {TESTDATA_VAR} overrides the directory)",
        p.display()
    )
}

/// The MobileNetV2-SSD-Lite golden directory (`model.pth`, `golden.safetensors`, ...).
pub fn mb2_golden_dir() -> PathBuf {
    dir("golden/mb2-ssd-lite-voc21-seed0")
}

/// The MobileNetV2-SSD-Lite golden model (pytorch-ssd's VOC layout, seeded weights).
pub fn mb2_model() -> PathBuf {
    path("golden/mb2-ssd-lite-voc21-seed0/model.pth")
}

/// A file of the pytorch-ssd zoo goldens (`golden/pytorch-ssd/`, README there): e.g.
/// `mb1-ssd-voc21-seed0/model.pth` or `images/000002.png`.
pub fn zoo(rel: &str) -> PathBuf {
    path(&format!("golden/pytorch-ssd/{rel}"))
}

/// The four-photo VOC2007 fixture (`VOCdevkit/VOC2007`).
pub fn voc2007() -> PathBuf {
    dir("fixtures/voc2007/VOCdevkit/VOC2007")
}

/// The VOC devkit folder that holds [`voc2007`].
pub fn vocdevkit() -> PathBuf {
    dir("fixtures/voc2007/VOCdevkit")
}

/// A file of the UltraFace fixture (`models/...`, `images/...`, `golden/...`).
pub fn ultraface(rel: &str) -> PathBuf {
    path(&format!("fixtures/ultraface/{rel}"))
}

/// A file of the TF SSDLite person-detector fixture.
pub fn tf_ssdlite(rel: &str) -> PathBuf {
    path(&format!("fixtures/tf-ssdlite-person/{rel}"))
}

/// The f32 tensor `name` of a golden safetensors file, with its shape; panics with the
/// file and tensor named if either is missing or not f32.
pub fn golden_f32(file: &Path, name: &str) -> (Vec<usize>, Vec<f32>) {
    let bytes = std::fs::read(file).unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let st = safetensors::SafeTensors::deserialize(&bytes)
        .unwrap_or_else(|e| panic!("{}: {e}", file.display()));
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("{}: golden tensor {name}: {e}", file.display()));
    (t.shape().to_vec(), st_f32(&st, name))
}

/// The f32 tensor `name` of an open safetensors file; panics naming the tensor if it is
/// missing or not f32.
pub fn st_f32(st: &safetensors::SafeTensors, name: &str) -> Vec<f32> {
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("golden tensor {name}: {e}"));
    assert_eq!(
        t.dtype(),
        safetensors::Dtype::F32,
        "golden tensor {name} is not f32"
    );
    t.data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect()
}

/// The largest `|a[i] − b[i]|`; panics if the lengths differ.
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "lengths differ");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The MobileNetV2-SSD-Lite golden network input of image `id` (`000002` .. `000005`),
/// NHWC `(resized − 127) / 128` (see `testdata/golden/README.md`).
pub fn mb2_golden_input(id: &str) -> Vec<f32> {
    golden_f32(
        &mb2_golden_dir().join("golden.safetensors"),
        &format!("{id}.input"),
    )
    .1
}

/// A little-endian f32 file.
pub fn read_f32(path: &Path) -> Vec<f32> {
    let b = std::fs::read(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}
