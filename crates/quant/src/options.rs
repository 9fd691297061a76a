//! What to quantize and how: observers, granularity, activation type, mode, mixed
//! precision.

use std::fmt;
use std::str::FromStr;

use crate::error::{QuantError, Result};

/// How an activation's range is estimated from calibration data.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum Observer {
    /// Global minimum and maximum.
    MinMax,
    /// Per-image min/max averaged with momentum 0.01 (PyTorch's
    /// `MovingAverageMinMaxObserver`).
    MovingAverage,
    /// Clip `|x|` at this percentile (e.g. 99.99) of its histogram.
    Percentile(f64),
    /// TensorRT's entropy calibration: the clip threshold minimising the KL divergence
    /// between the 2048-bin histogram and its quantized version.
    Entropy,
    /// The clip threshold minimising the expected squared error (rounding + clipping)
    /// estimated from the histogram.
    Mse,
}

impl Observer {
    /// Whether the observer needs a second calibration pass to build histograms.
    pub fn needs_histogram(self) -> bool {
        matches!(
            self,
            Observer::Percentile(_) | Observer::Entropy | Observer::Mse
        )
    }
}

impl FromStr for Observer {
    type Err = QuantError;

    /// `minmax`, `moving-average` (or `ema`), `percentile` (99.99) or `percentile:P`,
    /// `entropy` (or `kl`), `mse`.
    fn from_str(s: &str) -> Result<Observer> {
        let l = s.trim().to_ascii_lowercase();
        Ok(match l.as_str() {
            "minmax" | "min-max" => Observer::MinMax,
            "moving-average" | "ema" | "moving_average" => Observer::MovingAverage,
            "percentile" => Observer::Percentile(99.99),
            "entropy" | "kl" => Observer::Entropy,
            "mse" => Observer::Mse,
            _ => match l.strip_prefix("percentile:").map(str::parse::<f64>) {
                Some(Ok(p)) if p > 0.0 && p <= 100.0 => Observer::Percentile(p),
                _ => return Err(QuantError::UnknownObserver(s.to_string())),
            },
        })
    }
}

impl fmt::Display for Observer {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Observer::MinMax => write!(f, "minmax"),
            Observer::MovingAverage => write!(f, "moving-average"),
            Observer::Percentile(p) => write!(f, "percentile:{p}"),
            Observer::Entropy => write!(f, "entropy"),
            Observer::Mse => write!(f, "mse"),
        }
    }
}

/// Weight scale granularity.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Granularity {
    /// One scale per output channel (the default).
    Channel,
    /// One scale per layer.
    Tensor,
}

impl FromStr for Granularity {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "channel" | "per-channel" => Ok(Granularity::Channel),
            "tensor" | "per-tensor" => Ok(Granularity::Tensor),
            _ => Err(QuantError::InvalidOption {
                option: "granularity",
                value: s.into(),
                expected: "channel or tensor",
            }),
        }
    }
}

impl fmt::Display for Granularity {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Granularity::Channel => "channel",
            Granularity::Tensor => "tensor",
        })
    }
}

/// Activation representation.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Activations {
    /// `u8` asymmetric: any zero point in 0..=255 (the default).
    U8,
    /// `i8` symmetric (zero point 0, range ±127 · scale). Executed in the `u8` domain with
    /// zero point 128, which is the same set of values.
    I8,
}

impl FromStr for Activations {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "u8" | "uint8" => Ok(Activations::U8),
            "i8" | "int8" => Ok(Activations::I8),
            _ => Err(QuantError::InvalidOption {
                option: "activations",
                value: s.into(),
                expected: "u8 or i8",
            }),
        }
    }
}

impl fmt::Display for Activations {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Activations::U8 => "u8",
            Activations::I8 => "i8",
        })
    }
}

/// What is stored and how the model runs.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Mode {
    /// Int8 weights and calibrated int8 activations, integer kernels end to end.
    Static,
    /// Int8 weights; activations quantized per tensor at run time (dense and pointwise
    /// convolutions; depthwise convolutions stay f32).
    Dynamic,
    /// Half-precision weight storage, f32 compute.
    Fp16,
}

impl FromStr for Mode {
    type Err = QuantError;

    fn from_str(s: &str) -> Result<Self> {
        match s.trim().to_ascii_lowercase().as_str() {
            "static" => Ok(Mode::Static),
            "dynamic" => Ok(Mode::Dynamic),
            "fp16" | "f16" | "half" => Ok(Mode::Fp16),
            _ => Err(QuantError::InvalidOption {
                option: "mode",
                value: s.into(),
                expected: "static, dynamic or fp16",
            }),
        }
    }
}

impl fmt::Display for Mode {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Mode::Static => "static",
            Mode::Dynamic => "dynamic",
            Mode::Fp16 => "fp16",
        })
    }
}

/// Everything [`crate::quantize`] needs to know.
#[derive(Clone, Debug, PartialEq)]
pub struct QuantOptions {
    /// Activation range estimator.
    pub observer: Observer,
    /// Weight scales per channel or per tensor.
    pub granularity: Granularity,
    /// Activation representation.
    pub activations: Activations,
    /// Static int8, dynamic int8 or fp16 storage.
    pub mode: Mode,
    /// Layers kept in f32, as glob patterns over node names (`*` matches any run of
    /// characters; a pattern without `*` matches a name or any name below it, e.g.
    /// `classification_headers` keeps every classification head in f32).
    pub keep_float: Vec<String>,
    /// Calibration images used (a seeded subset when more are given).
    pub calib_images: usize,
    /// Seed of the subset choice.
    pub seed: u64,
    /// Histogram bins of the histogram observers.
    pub bins: usize,
}

impl Default for QuantOptions {
    /// Static int8, MSE-calibrated `u8` activations, per-channel weights, 100 images.
    /// MSE is the default observer because it was the best or near-best on both the
    /// pretrained UltraFace models and the golden MobileNetV2-SSD-Lite, while entropy
    /// clipped too hard with few calibration images (see `tests/ultraface.rs`).
    fn default() -> Self {
        Self {
            observer: Observer::Mse,
            granularity: Granularity::Channel,
            activations: Activations::U8,
            mode: Mode::Static,
            keep_float: Vec::new(),
            calib_images: 100,
            seed: 0,
            bins: 2048,
        }
    }
}

/// Whether node `name` matches `pattern` (see [`QuantOptions::keep_float`]).
pub fn pattern_matches(pattern: &str, name: &str) -> bool {
    if !pattern.contains('*') {
        return name == pattern
            || name
                .strip_prefix(pattern)
                .is_some_and(|rest| rest.starts_with('.'));
    }
    glob(pattern.as_bytes(), name.as_bytes())
}

fn glob(p: &[u8], s: &[u8]) -> bool {
    match p.split_first() {
        None => s.is_empty(),
        Some((b'*', rest)) => (0..=s.len()).any(|i| glob(rest, &s[i..])),
        Some((c, rest)) => s.first() == Some(c) && glob(rest, &s[1..]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_names_and_rejects_unknown_ones() {
        assert_eq!("minmax".parse::<Observer>().unwrap(), Observer::MinMax);
        assert_eq!("KL".parse::<Observer>().unwrap(), Observer::Entropy);
        assert_eq!(
            "percentile:99.9".parse::<Observer>().unwrap(),
            Observer::Percentile(99.9)
        );
        assert!(matches!(
            "median".parse::<Observer>(),
            Err(QuantError::UnknownObserver(_))
        ));
        assert!("percentile:0".parse::<Observer>().is_err());
        assert!("row".parse::<Granularity>().is_err());
        assert_eq!("i8".parse::<Activations>().unwrap(), Activations::I8);
        assert_eq!("fp16".parse::<Mode>().unwrap(), Mode::Fp16);
        for o in [
            Observer::MinMax,
            Observer::MovingAverage,
            Observer::Percentile(99.5),
            Observer::Entropy,
            Observer::Mse,
        ] {
            assert_eq!(o.to_string().parse::<Observer>().unwrap(), o);
        }
    }

    #[test]
    fn patterns() {
        assert!(pattern_matches(
            "classification_headers",
            "classification_headers.5"
        ));
        assert!(pattern_matches(
            "classification_headers.5",
            "classification_headers.5"
        ));
        assert!(!pattern_matches(
            "classification_headers.5",
            "classification_headers.50"
        ));
        assert!(!pattern_matches("base_net.1", "base_net.12.conv.0"));
        assert!(pattern_matches("base_net.1*", "base_net.12.conv.0"));
        assert!(pattern_matches("*headers.5", "regression_headers.5"));
        assert!(!pattern_matches("*headers.5", "regression_headers.5.x"));
    }
}
