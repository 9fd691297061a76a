//! Unstructured pruning on a randomly initialised MobileNetV2-SSD-Lite.

use slimdet_core::{Graph, Op};
use slimdet_models::{Arch, Detector};
use slimdet_prune::{
    Method, PruneError, Scope, UnstructuredOptions, apply_masks, masks, prune_unstructured,
};

fn model() -> Detector {
    let arch = Arch::Mb2SsdLite {
        width_mult: 1.0,
        num_classes: 21,
    };
    let names = arch.default_classes();
    Detector::random(arch, names, 3)
}

fn conv_weights(g: &Graph) -> Vec<(String, Vec<f32>)> {
    g.nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some((n.name.clone(), c.weight.data().to_vec())),
            _ => None,
        })
        .collect()
}

#[test]
fn layer_scope_is_exact_for_both_methods() {
    for method in [Method::L1, Method::Random] {
        for amount in [0.0, 0.3, 0.5, 0.8, 0.95] {
            let mut det = model();
            let opts = UnstructuredOptions {
                method,
                amount,
                scope: Scope::Layer,
                ..Default::default()
            };
            let rep = prune_unstructured(&mut det, &opts).unwrap();
            let convs = conv_weights(&det.graph).len();
            assert_eq!(rep.layers.len(), convs, "every conv is a candidate");
            for l in &rep.layers {
                let want = amount * l.numel as f64;
                assert!(
                    (l.zeros_after as f64 - want).abs() <= 1.0,
                    "{method:?} {amount}: {} has {} zeros of {}",
                    l.key,
                    l.zeros_after,
                    l.numel
                );
            }
        }
    }
}

#[test]
fn l1_removes_the_smallest_magnitudes() {
    let mut det = model();
    let before = conv_weights(&det.graph);
    let opts = UnstructuredOptions {
        method: Method::L1,
        amount: 0.6,
        ..Default::default()
    };
    prune_unstructured(&mut det, &opts).unwrap();
    for ((name, b), (_, a)) in before.iter().zip(conv_weights(&det.graph)) {
        let max_removed = b
            .iter()
            .zip(&a)
            .filter(|(_, x)| **x == 0.0)
            .map(|(v, _)| v.abs())
            .fold(0.0, f32::max);
        let min_kept = a
            .iter()
            .map(|v| v.abs())
            .filter(|v| *v > 0.0)
            .fold(f32::INFINITY, f32::min);
        assert!(
            max_removed <= min_kept,
            "{name}: removed {max_removed} > kept {min_kept}"
        );
        // Kept weights are untouched.
        for (x, y) in b.iter().zip(&a) {
            assert!(*y == 0.0 || x == y);
        }
    }
}

#[test]
fn random_is_reproducible_by_seed() {
    let run = |seed| {
        let mut det = model();
        let opts = UnstructuredOptions {
            method: Method::Random,
            amount: 0.5,
            seed,
            ..Default::default()
        };
        prune_unstructured(&mut det, &opts).unwrap();
        conv_weights(&det.graph)
    };
    assert_eq!(run(1), run(1));
    assert_ne!(run(1), run(2));
}

#[test]
fn global_scope_hits_the_pooled_amount_with_uneven_layers() {
    let mut det = model();
    let opts = UnstructuredOptions {
        method: Method::L1,
        amount: 0.7,
        scope: Scope::Global,
        ..Default::default()
    };
    let rep = prune_unstructured(&mut det, &opts).unwrap();
    let n: usize = rep.layers.iter().map(|l| l.numel).sum();
    let z: usize = rep.layers.iter().map(|l| l.zeros_after).sum();
    assert!((z as f64 - 0.7 * n as f64).abs() <= 1.0);
    let s: Vec<f64> = rep.layers.iter().map(|l| l.sparsity()).collect();
    let spread = s.iter().cloned().fold(0.0, f64::max) - s.iter().cloned().fold(1.0, f64::min);
    assert!(
        spread > 0.2,
        "global magnitude pruning should not be uniform"
    );
}

#[test]
fn excludes_and_bn_option() {
    let mut det = model();
    let first = conv_weights(&det.graph)[0].1.clone();
    let opts = UnstructuredOptions {
        amount: 0.5,
        include_bn: true,
        exclude: vec!["base_net.0.0".into(), "*headers*".into()],
        ..Default::default()
    };
    let rep = prune_unstructured(&mut det, &opts).unwrap();
    assert_eq!(conv_weights(&det.graph)[0].1, first);
    assert!(rep.excluded.contains(&"base_net.0.0".to_string()));
    assert!(rep.layers.iter().all(|l| !l.key.contains("headers")));
    assert!(
        rep.layers
            .iter()
            .any(|l| l.key == "base_net.1.conv.1.weight")
    );
    for n in &det.graph.nodes {
        if let Op::BatchNorm(b) = &n.op
            && n.name != "base_net.0.1"
            && !n.name.contains("headers")
        {
            assert_eq!(
                b.gamma.zeros_count(),
                (b.gamma.numel() as f64 * 0.5).round() as usize,
                "{}",
                n.name
            );
        }
    }
    let m = masks(&det.graph);
    assert!(m.contains_key("base_net.1.conv.1.weight"));
    assert!(!m.contains_key("base_net.0.0.weight"));
}

#[test]
fn masks_restore_zeros_after_an_update() {
    let mut det = model();
    prune_unstructured(&mut det, &UnstructuredOptions::default()).unwrap();
    let m = masks(&det.graph);
    let pruned = conv_weights(&det.graph);
    for (_, t) in det.graph.params_mut() {
        for v in t.data_mut() {
            *v += 0.01;
        }
    }
    assert!(apply_masks(&mut det.graph, &m) > 0);
    for ((_, p), (_, a)) in pruned.iter().zip(conv_weights(&det.graph)) {
        for (x, y) in p.iter().zip(&a) {
            assert_eq!(*x == 0.0, *y == 0.0);
        }
    }
}

#[test]
fn bad_amounts_are_refused() {
    for amount in [-0.1, 1.0, 1.5, f64::NAN] {
        let mut det = model();
        let opts = UnstructuredOptions {
            amount,
            ..Default::default()
        };
        assert!(matches!(
            prune_unstructured(&mut det, &opts),
            Err(PruneError::Amount { .. })
        ));
    }
    let mut det = model();
    let opts = UnstructuredOptions {
        exclude: vec!["*".into()],
        ..Default::default()
    };
    assert!(matches!(
        prune_unstructured(&mut det, &opts),
        Err(PruneError::NothingToPrune { .. })
    ));
}
