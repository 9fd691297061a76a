//! Helpers shared by the integration tests: fixture paths, raw f32 files, comparisons.
#![allow(dead_code)]

use std::path::PathBuf;

/// `shared/fixtures/ultraface/<rel>`.
pub fn ultraface(rel: &str) -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/fixtures/ultraface/"
    ))
    .join(rel)
}

/// The MobileNetV2-SSD-Lite VOC golden model (random weights, seed 0).
pub fn mb2_model() -> PathBuf {
    PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../../shared/golden/mb2-ssd-lite-voc21-seed0/model.pth"
    ))
}

/// A little-endian f32 file.
pub fn read_f32(path: PathBuf) -> Vec<f32> {
    let b = std::fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Writes `v` as a little-endian f32 file.
pub fn write_f32(path: &std::path::Path, v: &[f32]) {
    let bytes: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
    std::fs::write(path, bytes).unwrap();
}

/// Largest absolute difference (lengths must agree).
pub fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// The UltraFace golden input `(v − 127) / 128` in NCHW `[1, 3, 240, 320]`.
pub fn ultraface_input_nchw() -> Vec<f32> {
    let hwc = std::fs::read(ultraface("golden/13_resized_320x240_rgb_u8.bin")).unwrap();
    assert_eq!(hwc.len(), 240 * 320 * 3);
    let mut out = vec![0.0; hwc.len()];
    for y in 0..240 {
        for x in 0..320 {
            for c in 0..3 {
                out[(c * 240 + y) * 320 + x] = (hwc[(y * 320 + x) * 3 + c] as f32 - 127.0) / 128.0;
            }
        }
    }
    out
}

/// NHWC `[1, H, W, C]` to NCHW.
pub fn nhwc_to_nchw(x: &[f32], h: usize, w: usize, c: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    for y in 0..h {
        for xx in 0..w {
            for ch in 0..c {
                out[(ch * h + y) * w + xx] = x[(y * w + xx) * c + ch];
            }
        }
    }
    out
}

/// Deterministic xorshift64* generator.
pub struct XorShift(pub u64);

impl XorShift {
    /// Next 64 random bits.
    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform in `[-1, 1)`.
    pub fn unit(&mut self) -> f32 {
        (self.next_u64() >> 40) as f32 / (1u64 << 23) as f32 - 1.0
    }
}
