//! Range observers: statistics of one activation tensor over the calibration images,
//! turned into a clip range `[lo, hi]` by the chosen [`Observer`].
//!
//! Calibration makes one pass for min/max (and the moving average) and, for the
//! histogram observers, a second pass that fills a histogram of `|x|` over
//! `[0, max(|min|, |max|)]` (TensorRT's layout, 2048 bins by default).

use crate::options::Observer;

/// PyTorch's default averaging constant of `MovingAverageMinMaxObserver`.
const EMA_MOMENTUM: f32 = 0.01;

/// Statistics of one tensor.
#[derive(Clone, Debug, Default)]
pub struct RangeStats {
    /// Global minimum.
    pub min: f32,
    /// Global maximum.
    pub max: f32,
    /// Moving average of per-image minima.
    pub ema_min: f32,
    /// Moving average of per-image maxima.
    pub ema_max: f32,
    /// Images seen in the first pass.
    pub count: usize,
    /// Histogram of `|x|` over `[0, hist_max]`, if built.
    pub hist: Vec<u64>,
    /// Upper edge of the histogram.
    pub hist_max: f32,
}

impl RangeStats {
    /// First pass: folds one image's tensor into min/max and the moving average.
    pub fn observe(&mut self, x: &[f32]) {
        let (mut lo, mut hi) = (f32::INFINITY, f32::NEG_INFINITY);
        for &v in x {
            if v.is_finite() {
                lo = lo.min(v);
                hi = hi.max(v);
            }
        }
        if !lo.is_finite() {
            return;
        }
        if self.count == 0 {
            (self.min, self.max, self.ema_min, self.ema_max) = (lo, hi, lo, hi);
        } else {
            self.min = self.min.min(lo);
            self.max = self.max.max(hi);
            self.ema_min += EMA_MOMENTUM * (lo - self.ema_min);
            self.ema_max += EMA_MOMENTUM * (hi - self.ema_max);
        }
        self.count += 1;
    }

    /// Prepares an empty histogram of `bins` over the first pass's range.
    pub fn start_histogram(&mut self, bins: usize) {
        self.hist_max = self.min.abs().max(self.max.abs());
        self.hist = vec![0; bins.max(1)];
    }

    /// Second pass: adds one image's tensor to the histogram. Exact zeros (ReLU's
    /// dead half) are skipped: zero is always represented exactly, and a spike in
    /// bin 0 would make the entropy observer prefer the narrowest range it may pick.
    pub fn observe_histogram(&mut self, x: &[f32]) {
        let bins = self.hist.len();
        if bins == 0 || self.hist_max <= 0.0 {
            return;
        }
        let inv = bins as f32 / self.hist_max;
        for &v in x {
            if v.is_finite() && v != 0.0 {
                let b = ((v.abs() * inv) as usize).min(bins - 1);
                self.hist[b] += 1;
            }
        }
    }

    /// The clip range the observer picks. `levels` is the number of quantization steps
    /// available for `|x|` (255 for one-sided `u8`, 127 for symmetric ranges).
    pub fn range(&self, observer: Observer) -> (f32, f32) {
        if self.count == 0 {
            return (0.0, 0.0);
        }
        let (lo, hi) = match observer {
            Observer::MinMax => (self.min, self.max),
            Observer::MovingAverage => (self.ema_min, self.ema_max),
            Observer::Percentile(p) => {
                self.clip(percentile_threshold(&self.hist, self.hist_max, p))
            }
            Observer::Entropy => {
                let levels = if self.min >= 0.0 { 256 } else { 128 };
                self.clip(entropy_threshold(&self.hist, self.hist_max, levels))
            }
            Observer::Mse => self.clip(mse_threshold(&self.hist, self.hist_max, self.min >= 0.0)),
        };
        (lo.min(0.0), hi.max(0.0))
    }

    fn clip(&self, t: Option<f32>) -> (f32, f32) {
        match t {
            Some(t) => (self.min.max(-t), self.max.min(t)),
            None => (self.min, self.max),
        }
    }
}

/// The `p`-th percentile of `|x|` (upper edge of the bin where the cumulative count
/// reaches it).
pub fn percentile_threshold(hist: &[u64], hist_max: f32, p: f64) -> Option<f32> {
    let total: u64 = hist.iter().sum();
    if total == 0 || hist_max <= 0.0 {
        return None;
    }
    let target = (total as f64 * p / 100.0).ceil() as u64;
    let width = hist_max / hist.len() as f32;
    let mut acc = 0;
    for (i, &h) in hist.iter().enumerate() {
        acc += h;
        if acc >= target {
            return Some((i + 1) as f32 * width);
        }
    }
    Some(hist_max)
}

/// TensorRT / MXNet entropy calibration: for each candidate threshold `i` bins, the
/// reference distribution is `hist[..i]` with every outlier added to its last bin; the
/// candidate quantizes `hist[..i]` into `levels` groups spread back over their non-empty
/// bins. Returns the threshold (upper edge of bin `i − 1`) with the least KL divergence.
pub fn entropy_threshold(hist: &[u64], hist_max: f32, levels: usize) -> Option<f32> {
    let bins = hist.len();
    let total: u64 = hist.iter().sum();
    if total == 0 || hist_max <= 0.0 || bins < levels {
        return None;
    }
    let width = hist_max / bins as f32;
    let mut best = (f64::INFINITY, bins);
    let mut p = vec![0f64; bins];
    let mut q = vec![0f64; bins];
    let mut outliers: u64 = hist[levels..].iter().sum();
    for i in levels..=bins {
        if i > levels {
            outliers -= hist[i - 1];
        }
        for k in 0..i {
            p[k] = hist[k] as f64;
        }
        p[i - 1] += outliers as f64;
        // Quantize hist[..i] into `levels` groups.
        let merged = i as f64 / levels as f64;
        for j in 0..levels {
            let start = (j as f64 * merged) as usize;
            let stop = if j == levels - 1 {
                i
            } else {
                ((j + 1) as f64 * merged) as usize
            };
            let total_j: f64 = hist[start..stop].iter().map(|&h| h as f64).sum();
            let nonzero = hist[start..stop].iter().filter(|&&h| h > 0).count();
            for k in start..stop {
                q[k] = if hist[k] > 0 && nonzero > 0 {
                    total_j / nonzero as f64
                } else {
                    0.0
                };
            }
        }
        let kl = kl_divergence(&p[..i], &q[..i]);
        if kl < best.0 {
            best = (kl, i);
        }
    }
    Some(best.1 as f32 * width)
}

/// `KL(P ‖ Q)` of two unnormalised histograms; bins where P has mass and Q none get a
/// small floor instead of an infinite term (the usual smoothing).
fn kl_divergence(p: &[f64], q: &[f64]) -> f64 {
    let sp: f64 = p.iter().sum();
    let sq: f64 = q.iter().sum();
    if sp <= 0.0 || sq <= 0.0 {
        return f64::INFINITY;
    }
    let eps = 1e-4;
    let mut kl = 0.0;
    for (&a, &b) in p.iter().zip(q) {
        if a > 0.0 {
            let pa = a / sp;
            let qb = (b / sq).max(eps * pa);
            kl += pa * (pa / qb).ln();
        }
    }
    kl
}

/// The threshold `T` minimising the expected squared error of quantizing `|x|` to
/// `[0, T]` (one-sided, 255 steps) or `[−T, T]` (255 steps over twice the range):
/// rounding error `Δ²/12` inside, `(|x| − T)²` beyond, using bin centres.
pub fn mse_threshold(hist: &[u64], hist_max: f32, one_sided: bool) -> Option<f32> {
    let bins = hist.len();
    let total: u64 = hist.iter().sum();
    if total == 0 || hist_max <= 0.0 {
        return None;
    }
    let width = (hist_max / bins as f32) as f64;
    let mut best = (f64::INFINITY, bins);
    let step = (bins / 256).max(1);
    let mut i = step;
    while i <= bins {
        let t = i as f64 * width;
        let delta = if one_sided {
            t / 255.0
        } else {
            2.0 * t / 255.0
        };
        let mut err = 0.0;
        for (k, &h) in hist.iter().enumerate() {
            if h == 0 {
                continue;
            }
            let c = (k as f64 + 0.5) * width;
            err += h as f64
                * if c > t {
                    (c - t) * (c - t)
                } else {
                    delta * delta / 12.0
                };
        }
        if err < best.0 {
            best = (err, i);
        }
        i += step;
    }
    Some(best.1 as f32 * width as f32)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn stats(xs: &[f32], bins: usize) -> RangeStats {
        let mut s = RangeStats::default();
        s.observe(xs);
        s.start_histogram(bins);
        s.observe_histogram(xs);
        s
    }

    #[test]
    fn minmax_and_moving_average() {
        let mut s = RangeStats::default();
        s.observe(&[-1.0, 2.0]);
        s.observe(&[0.0, 4.0]);
        assert_eq!(s.range(Observer::MinMax), (-1.0, 4.0));
        let (lo, hi) = s.range(Observer::MovingAverage);
        assert!(
            (lo - (-0.99)).abs() < 1e-6 && (hi - 2.02).abs() < 1e-6,
            "{lo} {hi}"
        );
        // Ranges always include 0.
        let mut p = RangeStats::default();
        p.observe(&[1.0, 3.0]);
        assert_eq!(p.range(Observer::MinMax), (0.0, 3.0));
    }

    #[test]
    fn histogram_observers_clip_a_long_tail() {
        // 10000 values in [0, 1) and a single outlier at 100.
        let mut xs: Vec<f32> = (0..10_000).map(|i| i as f32 / 10_000.0).collect();
        xs.push(100.0);
        let s = stats(&xs, 2048);
        let (lo, hi) = s.range(Observer::Percentile(99.9));
        assert_eq!(lo, 0.0);
        assert!(hi > 0.9 && hi < 5.0, "percentile: {hi}");
        // One outlier costs more clipped ((100 − T)²) than the rounding it saves on
        // 10⁴ values, so MSE keeps it.
        let (_, hi) = s.range(Observer::Mse);
        assert!(hi > 95.0, "mse: {hi}");
        // Entropy never clips below `levels` bins (256 of 2048 here: 12.5), as TensorRT.
        let (_, hi) = s.range(Observer::Entropy);
        assert!(hi > 0.9 && hi <= 12.6, "entropy: {hi}");
        assert_eq!(s.range(Observer::MinMax).1, 100.0);
    }

    #[test]
    fn uniform_data_keeps_its_range() {
        let xs: Vec<f32> = (0..20_000).map(|i| (i as f32 / 10_000.0) - 1.0).collect();
        let s = stats(&xs, 2048);
        for o in [
            Observer::Entropy,
            Observer::Mse,
            Observer::Percentile(100.0),
        ] {
            let (lo, hi) = s.range(o);
            assert!(hi > 0.9 && lo < -0.9, "{o}: {lo} {hi}");
        }
    }
}
