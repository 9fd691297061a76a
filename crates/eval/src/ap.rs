//! The two AP formulas of `vision/utils/measurements.py`, with numpy's
//! semantics: `np.max`/`np.maximum` propagate NaN, `NaN >= t` is false,
//! `NaN != x` is true, and `ndarray.sum()` sums pairwise.

/// `np.maximum(a, b)`: NaN if either is NaN.
pub(crate) fn nan_max(a: f64, b: f64) -> f64 {
    if a.is_nan() || b.is_nan() {
        f64::NAN
    } else {
        a.max(b)
    }
}

/// VOC2007 11-point AP (`compute_voc2007_average_precision`).
///
/// For `t = k * 0.1`, `k = 0..=10` (computed as `(k as f64) * 0.1`, the same
/// float64 values as `np.arange(0., 1.1, 0.1)`): `p = max(precision[i] for
/// recall[i] >= t)`, or 0 if no recall reaches `t`; `ap += p / 11`.
///
/// NaN: a NaN precision at a point with `recall >= t` makes that `p`, and so
/// the AP, NaN (numpy's `max` propagates it). NaN recalls never satisfy
/// `>= t`, so a class without non-difficult ground truth (recall `0/0`)
/// gets 0. `precision` and `recall` are `[n]` curves of the same length;
/// extra entries of the longer one are ignored.
pub fn average_precision_voc07(precision: &[f64], recall: &[f64]) -> f64 {
    debug_assert_eq!(precision.len(), recall.len());
    let mut ap = 0.0;
    for k in 0..11 {
        let t = k as f64 * 0.1;
        let p = precision
            .iter()
            .zip(recall)
            .filter(|(_, r)| **r >= t)
            .map(|(p, _)| *p)
            .reduce(nan_max)
            .unwrap_or(0.0);
        ap += p / 11.0;
    }
    ap
}

/// All-point AP, VOC2010+ style (`compute_average_precision`).
///
/// `prec = [0, precision.., 0]` made non-increasing from the right with
/// `np.maximum`; `rec = [0, recall.., 1]`; the AP is the sum over
/// `i` with `rec[i+1] != rec[i]` of `(rec[i+1] - rec[i]) * prec[i+1]`,
/// summed in numpy's pairwise order.
///
/// NaN: a NaN precision spreads to every earlier point of the envelope, and
/// a NaN recall makes every step touching it count (NaN != anything), so
/// the AP is NaN whenever such a point enters the sum. With no detections
/// the AP is 0. Lengths as in [`average_precision_voc07`].
pub fn average_precision_all_point(precision: &[f64], recall: &[f64]) -> f64 {
    debug_assert_eq!(precision.len(), recall.len());
    let n = precision.len().min(recall.len());
    let mut prec = Vec::with_capacity(n + 2);
    prec.push(0.0);
    prec.extend_from_slice(&precision[..n]);
    prec.push(0.0);
    for i in (1..prec.len()).rev() {
        prec[i - 1] = nan_max(prec[i - 1], prec[i]);
    }
    let mut rec = Vec::with_capacity(n + 2);
    rec.push(0.0);
    rec.extend_from_slice(&recall[..n]);
    rec.push(1.0);
    let areas: Vec<f64> = (0..rec.len() - 1)
        .filter(|&i| rec[i + 1] != rec[i])
        .map(|i| (rec[i + 1] - rec[i]) * prec[i + 1])
        .collect();
    numpy_sum(&areas)
}

/// `ndarray.sum()` of a contiguous float64 array: the reduction starts at
/// the identity 0.0 and adds [`pairwise_sum`] of the whole array (checked
/// against numpy 2.4 on 20,000-element arrays, where summing in 8192-element
/// blocks would differ).
pub(crate) fn numpy_sum(a: &[f64]) -> f64 {
    0.0 + pairwise_sum(a)
}

/// numpy's `pairwise_sum_DOUBLE`: plain loop below 8 elements, eight
/// accumulators up to 128, recursive halving (at a multiple of 8) above.
fn pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        a.iter().fold(0.0, |s, &v| s + v)
    } else if n <= 128 {
        let mut r = [0.0f64; 8];
        r.copy_from_slice(&a[..8]);
        let full = n - n % 8;
        for block in a[8..full].chunks_exact(8) {
            for (acc, &v) in r.iter_mut().zip(block) {
                *acc += v;
            }
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        for &v in &a[full..] {
            res += v;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        pairwise_sum(&a[..n2]) + pairwise_sum(&a[n2..])
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairwise_matches_plain_sum_on_integers() {
        for n in [0usize, 1, 7, 8, 9, 127, 128, 129, 1000, 9000] {
            let a: Vec<f64> = (0..n).map(|i| (i % 13) as f64).collect();
            assert_eq!(numpy_sum(&a), a.iter().sum::<f64>(), "n={n}");
        }
    }

    #[test]
    fn pairwise_order_differs_from_sequential() {
        // numpy 2.4: a = np.ones(16); a[0] = 1e16; a.sum() == 1.0000000000000014e16,
        // while Python's sequential sum(a) == 1e16.
        let mut a = vec![1.0f64; 16];
        a[0] = 1e16;
        let seq = a.iter().fold(0.0, |s, v| s + v);
        assert_eq!(seq, 1e16);
        assert_eq!(numpy_sum(&a), 1.0000000000000014e16);
    }

    #[test]
    fn nan_max_propagates() {
        assert!(nan_max(f64::NAN, 1.0).is_nan());
        assert!(nan_max(1.0, f64::NAN).is_nan());
        assert_eq!(nan_max(1.0, 2.0), 2.0);
    }
}
