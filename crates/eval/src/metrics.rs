//! Model metrics beyond accuracy, each usable for any model: file size (raw and
//! gzip-compressed), latency of the forward pass alone and of the whole pipeline
//! (decode + resize + forward + NMS) with mean, std, p50, p90 and FPS after warm-up, and
//! memory (the process's measured peak RSS; the runtime's own arena and weight bytes).
//!
//! Parameters, MACs (dense and effective) and sparsity come from
//! [`slimdet_core::stats::model_stats`].

use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use slimdet_models::{Detector, Predictor};

use crate::error::{Error, Result};

/// Size of a model file on disk.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
pub struct FileSize {
    /// Bytes on disk.
    pub bytes: u64,
    /// Bytes after gzip at the default level (what a download or flash image costs).
    pub gz_bytes: u64,
}

/// Reads `path` and measures its raw and gzip-compressed size.
pub fn file_size(path: &Path) -> Result<FileSize> {
    let data = std::fs::read(path).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    let mut enc = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    enc.write_all(&data)
        .and_then(|_| enc.flush())
        .map_err(|source| Error::Io {
            path: path.to_path_buf(),
            source,
        })?;
    let gz = enc.finish().map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })?;
    Ok(FileSize {
        bytes: data.len() as u64,
        gz_bytes: gz.len() as u64,
    })
}

/// Summary of repeated timings, in milliseconds.
#[derive(Clone, Copy, Debug, PartialEq, Serialize)]
pub struct Timing {
    /// Mean.
    pub mean_ms: f64,
    /// Sample standard deviation.
    pub std_ms: f64,
    /// Median.
    pub p50_ms: f64,
    /// 10th percentile.
    pub p10_ms: f64,
    /// 90th percentile.
    pub p90_ms: f64,
    /// Fastest run.
    pub min_ms: f64,
    /// `1000 / mean`.
    pub fps: f64,
    /// Timed runs.
    pub runs: usize,
}

/// Summarises timings (percentiles by linear interpolation, as numpy's default).
/// Returns `None` for an empty slice.
pub fn summarize(ms: &[f64]) -> Option<Timing> {
    if ms.is_empty() {
        return None;
    }
    let mut v = ms.to_vec();
    v.sort_by(f64::total_cmp);
    let q = |p: f64| {
        let pos = p * (v.len() - 1) as f64;
        let (lo, hi) = (pos.floor() as usize, pos.ceil() as usize);
        v[lo] + (v[hi] - v[lo]) * (pos - lo as f64)
    };
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let var = if v.len() > 1 {
        v.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (v.len() - 1) as f64
    } else {
        0.0
    };
    Some(Timing {
        mean_ms: mean,
        std_ms: var.sqrt(),
        p50_ms: q(0.5),
        p10_ms: q(0.1),
        p90_ms: q(0.9),
        min_ms: v[0],
        fps: 1e3 / mean,
        runs: v.len(),
    })
}

/// A deterministic input in [-1, 1) of `len` values (xorshift64).
pub fn seeded_input(len: usize, seed: u64) -> Vec<f32> {
    let mut s = seed | 1;
    (0..len)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

/// Times the forward pass alone (network, softmax and box decoding; no image I/O, resize
/// or NMS) over `runs` passes after `warmup`.
pub fn time_forward(det: &Detector, threads: usize, warmup: usize, runs: usize) -> Result<Timing> {
    let mut pred = Predictor::new(det, threads)?;
    let input = seeded_input(det.input_shape().iter().product(), 0x5EED);
    for _ in 0..warmup {
        pred.forward(&input)?;
    }
    let mut ms = Vec::with_capacity(runs);
    for _ in 0..runs {
        let t = Instant::now();
        pred.forward(&input)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summarize(&ms).ok_or(Error::NoRuns)
}

/// Times the whole pipeline per image: JPEG decode, resize, normalise, forward, NMS,
/// cycling over `images`.
pub fn time_pipeline(
    det: &Detector,
    images: &[PathBuf],
    threads: usize,
    warmup: usize,
    runs: usize,
) -> Result<Timing> {
    if images.is_empty() {
        return Err(Error::NoRuns);
    }
    let mut pred = Predictor::new(det, threads)?;
    let mut once = |i: usize| -> Result<()> {
        let img = slimdet_data::load_rgb(&images[i % images.len()])?;
        std::hint::black_box(pred.predict(&img, det.config.default_threshold, 0)?);
        Ok(())
    };
    for i in 0..warmup {
        once(i)?;
    }
    let mut ms = Vec::with_capacity(runs);
    for i in 0..runs {
        let t = Instant::now();
        once(i)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    summarize(&ms).ok_or(Error::NoRuns)
}

/// This process's peak resident set size in bytes (`VmHWM` of `/proc/self/status`);
/// `None` where the platform does not expose it.
pub fn peak_rss_bytes() -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kb: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kb * 1024)
}

/// The CPU model name (first `model name` of `/proc/cpuinfo`), or the architecture.
pub fn cpu_name() -> String {
    std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .and_then(|l| l.split(':').nth(1))
                .map(|v| v.trim().to_string())
        })
        .unwrap_or_else(|| std::env::consts::ARCH.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn summary_statistics_on_known_values() {
        let t = summarize(&[4.0, 1.0, 3.0, 2.0, 5.0]).unwrap();
        assert_eq!(t.p50_ms, 3.0);
        assert_eq!(t.mean_ms, 3.0);
        assert!((t.p10_ms - 1.4).abs() < 1e-12);
        assert!((t.p90_ms - 4.6).abs() < 1e-12);
        assert!((t.std_ms - 2.5f64.sqrt()).abs() < 1e-12);
        assert_eq!(t.min_ms, 1.0);
        assert!(summarize(&[]).is_none());
    }

    #[test]
    fn gzip_shrinks_repetitive_files() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("zeros.bin");
        std::fs::write(&p, vec![0u8; 100_000]).unwrap();
        let s = file_size(&p).unwrap();
        assert_eq!(s.bytes, 100_000);
        assert!(s.gz_bytes < 1_000, "{s:?}");
        assert!(file_size(&dir.path().join("missing")).is_err());
    }

    #[test]
    fn peak_rss_is_measured_on_linux() {
        if cfg!(target_os = "linux") {
            assert!(peak_rss_bytes().unwrap() > 1_000_000);
        }
    }
}
