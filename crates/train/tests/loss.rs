//! MultiboxLoss and prior matching on hand-built cases.

use slimdet_models::box_coding::{encode, iou};
use slimdet_train::loss::{MultiboxLoss, assign_priors, corner_priors, match_priors};
use slimdet_train::rng::Rng;

#[test]
fn later_target_wins_a_shared_best_prior_and_best_prior_is_forced() {
    let priors = [
        [0.0, 0.0, 0.5, 0.5],
        [0.5, 0.0, 1.0, 0.5],
        [0.0, 0.5, 0.5, 1.0],
        [0.5, 0.5, 1.0, 1.0],
    ];
    let a = [0.0, 0.0, 0.5, 0.5]; // IoU 1 with prior 0.
    let b = [0.05, 0.05, 0.45, 0.45]; // IoU 0.64 with prior 0: its best prior too.
    let c = [0.5, 0.5, 0.7, 0.7]; // IoU 0.16 with prior 3, below 0.5 but forced.
    assert!(iou(&c, &priors[3]) < 0.5);
    let (boxes, labels) = assign_priors(&[a, b, c], &[1, 2, 3], &priors, 0.5);
    assert_eq!(labels, vec![2, 0, 0, 3]);
    assert_eq!(boxes[0], b);
    assert_eq!(boxes[3], c);
    // With the order swapped, `a` (later) takes prior 0.
    let (_, labels) = assign_priors(&[b, a], &[2, 1], &priors, 0.5);
    assert_eq!(labels, vec![1, 0, 0, 0]);
}

#[test]
fn threshold_is_inclusive_and_non_best_priors_match_by_iou() {
    let d = [0.1, 0.0, 1.0, 0.5];
    let priors = [
        [0.2, 0.0, 1.0, 0.5],  // IoU 0.889: best prior of d
        [0.5, 0.0, 1.0, 0.5],  // IoU 0.556: positive by the threshold
        [0.0, 0.0, 0.55, 0.5], // IoU 0.45/1.1... below 0.5: background
        [0.0, 0.5, 1.0, 1.0],  // IoU 0
    ];
    let ious: Vec<f32> = priors.iter().map(|p| iou(&d, p)).collect();
    assert!(
        ious[0] > ious[1] && ious[1] >= 0.5 && ious[2] < 0.5,
        "{ious:?}"
    );
    let (_, labels) = assign_priors(&[d], &[7], &priors, 0.5);
    assert_eq!(labels, vec![7, 7, 0, 0]);
    // Exactly at the threshold counts as a match (`labels[iou < thr] = 0`).
    let (_, labels) = assign_priors(&[d], &[7], &priors, ious[1]);
    assert_eq!(labels[1], 7);
}

#[test]
fn no_targets_means_all_background() {
    let (_, labels) = assign_priors(&[], &[], &[[0.0, 0.0, 1.0, 1.0]; 3], 0.5);
    assert_eq!(labels, vec![0, 0, 0]);
}

#[test]
fn match_priors_encodes_with_variances() {
    let priors = [[0.25, 0.25, 0.5, 0.5], [0.75, 0.75, 0.5, 0.5]];
    let corner = corner_priors(&priors);
    assert_eq!(corner[0], [0.0, 0.0, 0.5, 0.5]);
    let gt = [0.05, 0.1, 0.45, 0.5];
    let t = match_priors(&[gt], &[4], &priors, &corner, 0.1, 0.2);
    assert_eq!(t.labels, vec![4, 0]);
    let want = encode(&gt, &priors[0], 0.1, 0.2);
    assert_eq!(&t.locations[..4], &want);
    // l0 = (cx − pcx)/pw/0.1 = (0.25 − 0.25)/0.5/0.1 = 0; l3 = ln(0.4/0.5)/0.2.
    assert!(want[0].abs() < 1e-6);
    assert!((want[3] - (0.8f32).ln() / 0.2).abs() < 1e-5);
}

/// A random batch: `n` images of `p` priors, `k` classes, positives as given.
fn batch(
    n: usize,
    p: usize,
    k: usize,
    pos: &[&[(usize, usize)]],
    seed: u64,
) -> (Vec<f32>, Vec<f32>, Vec<usize>, Vec<f32>) {
    let mut r = Rng::new(seed);
    let logits = (0..n * p * k)
        .map(|_| r.uniform(-2.0, 2.0) as f32)
        .collect();
    let locs = (0..n * p * 4)
        .map(|_| r.uniform(-2.0, 2.0) as f32)
        .collect();
    let tlocs = (0..n * p * 4)
        .map(|_| r.uniform(-2.0, 2.0) as f32)
        .collect();
    let mut labels = vec![0; n * p];
    for (b, ps) in pos.iter().enumerate() {
        for &(i, l) in *ps {
            labels[b * p + i] = l;
        }
    }
    (logits, locs, labels, tlocs)
}

/// Direct f64 computation of the loss given the mask of priors in the classification term.
fn direct(
    logits: &[f32],
    locs: &[f32],
    labels: &[usize],
    tlocs: &[f32],
    k: usize,
    mask: &[bool],
) -> (f64, f64) {
    let num_pos = labels.iter().filter(|&&l| l > 0).count() as f64;
    let (mut cls, mut reg) = (0.0, 0.0);
    for i in 0..labels.len() {
        let row: Vec<f64> = logits[i * k..(i + 1) * k]
            .iter()
            .map(|v| *v as f64)
            .collect();
        if mask[i] {
            let lse = row.iter().map(|v| v.exp()).sum::<f64>().ln();
            cls += lse - row[labels[i]];
        }
        if labels[i] > 0 {
            for c in 0..4 {
                let d = (locs[i * 4 + c] - tlocs[i * 4 + c]) as f64;
                reg += if d.abs() < 1.0 {
                    0.5 * d * d
                } else {
                    d.abs() - 0.5
                };
            }
        }
    }
    (reg / num_pos, cls / num_pos)
}

/// Background loss `−log softmax[0]` of prior `i`.
fn bg(logits: &[f32], k: usize, i: usize) -> f64 {
    let row = &logits[i * k..(i + 1) * k];
    row.iter().map(|v| (*v as f64).exp()).sum::<f64>().ln() - row[0] as f64
}

#[test]
fn hard_negatives_are_three_per_positive_per_image_by_background_loss() {
    let (n, p, k) = (2, 12, 3);
    let pos: [&[(usize, usize)]; 2] = [&[(4, 1)], &[(0, 2), (7, 1)]];
    let (logits, locs, labels, tlocs) = batch(n, p, k, &pos, 5);
    let out = MultiboxLoss::new(k)
        .compute(n, &logits, &locs, &labels, &tlocs)
        .unwrap();
    assert_eq!(out.value.num_pos, 3);
    assert_eq!(out.value.num_neg, 3 + 6);
    for (b, pos_b) in pos.iter().enumerate().take(n) {
        let img = b * p..(b + 1) * p;
        let mut negs: Vec<usize> = img.clone().filter(|&i| labels[i] == 0).collect();
        negs.sort_by(|&x, &y| bg(&logits, k, y).total_cmp(&bg(&logits, k, x)));
        let want = 3 * pos_b.len();
        for (rank, &i) in negs.iter().enumerate() {
            let in_loss = out.d_logits[i * k..(i + 1) * k].iter().any(|v| *v != 0.0);
            assert_eq!(in_loss, rank < want, "image {b} prior {i} rank {rank}");
        }
    }
    let mask: Vec<bool> = (0..n * p)
        .map(|i| out.d_logits[i * k..(i + 1) * k].iter().any(|v| *v != 0.0))
        .collect();
    let (reg, cls) = direct(&logits, &locs, &labels, &tlocs, k, &mask);
    assert!(
        (out.value.regression as f64 - reg).abs() < 1e-5 * reg.max(1.0),
        "{} vs {reg}",
        out.value.regression
    );
    assert!((out.value.classification as f64 - cls).abs() < 1e-5 * cls.max(1.0));
    assert!((out.value.total() as f64 - reg - cls).abs() < 1e-4);
}

#[test]
fn negatives_are_capped_by_the_available_priors() {
    let (logits, locs, labels, tlocs) = batch(1, 5, 3, &[&[(0, 1), (1, 1)]], 6);
    let out = MultiboxLoss::new(3)
        .compute(1, &logits, &locs, &labels, &tlocs)
        .unwrap();
    assert_eq!(out.value.num_neg, 3);
}

#[test]
fn gradients_match_finite_differences() {
    let (n, p, k) = (2, 10, 4);
    let pos: [&[(usize, usize)]; 2] = [&[(1, 3)], &[(2, 1), (5, 2)]];
    let (logits, locs, labels, tlocs) = batch(n, p, k, &pos, 8);
    let loss = MultiboxLoss::new(k);
    let out = loss.compute(n, &logits, &locs, &labels, &tlocs).unwrap();
    let f = |lg: &[f32], lc: &[f32]| {
        loss.compute(n, lg, lc, &labels, &tlocs)
            .unwrap()
            .value
            .total() as f64
    };
    assert_central_differences("logit", &logits, &out.d_logits, |lg| f(lg, &locs));
    assert_central_differences("loc", &locs, &out.d_locations, |lc| f(&logits, lc));
}

#[test]
fn no_positive_gives_zero_and_bad_inputs_are_errors() {
    let (logits, locs, labels, tlocs) = batch(1, 4, 3, &[&[]], 9);
    let out = MultiboxLoss::new(3)
        .compute(1, &logits, &locs, &labels, &tlocs)
        .unwrap();
    assert_eq!(out.value.total(), 0.0);
    assert!(out.d_logits.iter().all(|v| *v == 0.0));
    let l = MultiboxLoss::new(3);
    assert!(l.compute(1, &logits[1..], &locs, &labels, &tlocs).is_err());
    assert!(l.compute(0, &logits, &locs, &labels, &tlocs).is_err());
    assert!(l.compute(1, &logits, &locs, &[0, 0, 5, 0], &tlocs).is_err());
}

/// The sigmoid form (TF OD API models): the value is `Σ_{pos ∪ neg} Σ_j BCE` over the
/// one-hot target (background column included) / num_pos, negatives are mined by that
/// loss as background, and the gradients match finite differences.
#[test]
fn sigmoid_loss_value_mining_and_gradients() {
    let (n, p, k) = (2, 10, 3);
    let pos: [&[(usize, usize)]; 2] = [&[(1, 2)], &[(2, 1), (5, 2)]];
    let (logits, locs, labels, tlocs) = batch(n, p, k, &pos, 11);
    let loss = MultiboxLoss {
        scores: slimdet_models::ScoreFn::Sigmoid,
        ..MultiboxLoss::new(k)
    };
    let out = loss.compute(n, &logits, &locs, &labels, &tlocs).unwrap();
    let bce = |i: usize, y: usize| -> f64 {
        (0..k)
            .map(|j| {
                let x = logits[i * k + j] as f64;
                let s = 1.0 / (1.0 + (-x).exp());
                if j == y { -s.ln() } else { -(1.0 - s).ln() }
            })
            .sum()
    };
    let mut cls = 0.0;
    for (b, pos_b) in pos.iter().enumerate() {
        let img = b * p..(b + 1) * p;
        let mut negs: Vec<usize> = img.clone().filter(|&i| labels[i] == 0).collect();
        negs.sort_by(|&x, &y| bce(y, 0).total_cmp(&bce(x, 0)));
        let kept: Vec<usize> = img
            .clone()
            .filter(|&i| labels[i] > 0)
            .chain(negs.into_iter().take(3 * pos_b.len()))
            .collect();
        cls += kept.iter().map(|&i| bce(i, labels[i])).sum::<f64>();
    }
    cls /= 3.0;
    assert!(
        (out.value.classification as f64 - cls).abs() < 1e-5 * cls.max(1.0),
        "{} vs {cls}",
        out.value.classification
    );
    let f = |lg: &[f32]| {
        loss.compute(n, lg, &locs, &labels, &tlocs)
            .unwrap()
            .value
            .total() as f64
    };
    assert_central_differences("logit", &logits, &out.d_logits, f);
}

/// Every `grad[i]` within 2e-3 of the central difference of `f` at `x` (step 1e-3).
fn assert_central_differences(what: &str, x: &[f32], grad: &[f32], f: impl Fn(&[f32]) -> f64) {
    let eps = 1e-3f32;
    for i in 0..x.len() {
        let (mut a, mut b) = (x.to_vec(), x.to_vec());
        a[i] += eps;
        b[i] -= eps;
        let num = (f(&a) - f(&b)) / (2.0 * eps as f64);
        assert!(
            (num - grad[i] as f64).abs() < 2e-3,
            "{what} {i}: {num} vs {}",
            grad[i]
        );
    }
}
