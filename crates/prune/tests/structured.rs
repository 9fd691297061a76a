//! Structured pruning of MobileNetV2-SSD-Lite: dependency groups, exactness when the
//! removed channels are zero, hand-counted MACs, and a save/load round trip.

use std::path::PathBuf;

use slimdet_core::stats::model_stats;
use slimdet_core::{Op, Plan, PlanOptions};
use slimdet_models::Detector;
use slimdet_prune::rng::SplitMix64;
use slimdet_prune::{
    Criterion, PruneError, StructuredOptions, dependency_groups, prune_structured,
    prune_structured_with_report, zero_channels,
};

fn golden_dir() -> PathBuf {
    slimdet_testkit::mb2_golden_dir()
}

fn golden() -> Detector {
    Detector::load(&golden_dir().join("model.pth"), None).unwrap()
}

fn golden_inputs() -> Vec<Vec<f32>> {
    ["000002", "000003", "000004", "000005"]
        .iter()
        .map(|id| slimdet_testkit::mb2_golden_input(id))
        .collect()
}

fn run(det: &Detector, x: &[f32]) -> Vec<Vec<f32>> {
    let mut plan = Plan::new(&det.graph, &det.input_shape(), &PlanOptions::default()).unwrap();
    plan.run(x)
        .unwrap()
        .into_iter()
        .map(<[f32]>::to_vec)
        .collect()
}

fn names(det: &Detector, idx: &[usize]) -> Vec<String> {
    idx.iter()
        .map(|&i| det.graph.nodes[i].name.clone())
        .collect()
}

#[test]
fn groups_follow_mobilenet_v2_ssd_lite_couplings() {
    let det = golden();
    let groups = dependency_groups(&det.graph);
    let find = |producer: &str| {
        groups
            .iter()
            .find(|g| names(&det, &g.producers).iter().any(|n| n == producer))
            .unwrap_or_else(|| panic!("no group produced by {producer}"))
    };
    // Residual adds tie the projections of a stage (blocks 4-6: 32 channels).
    let stage = find("base_net.4.conv.6");
    let p = names(&det, &stage.producers);
    assert_eq!(
        p,
        [
            "base_net.4.conv.6",
            "base_net.5.conv.6",
            "base_net.6.conv.6"
        ]
    );
    assert_eq!(stage.channels, 32);
    assert!(stage.pinned.is_none());
    // Expansion 14 couples its depthwise conv and the head-0 depthwise convs.
    let e14 = find("base_net.14.conv.0");
    let dw = names(&det, &e14.depthwise);
    assert!(dw.contains(&"base_net.14.conv.3".to_string()));
    assert!(dw.contains(&"classification_headers.0.0".to_string()));
    assert!(dw.contains(&"regression_headers.0.0".to_string()));
    let cons = names(&det, &e14.consumers);
    assert!(cons.contains(&"classification_headers.0.3".to_string()));
    assert!(cons.contains(&"base_net.14.conv.6".to_string()));
    // Head outputs are pinned.
    for h in ["classification_headers.0.3", "regression_headers.5"] {
        assert!(find(h).pinned.is_some(), "{h}");
    }
}

#[test]
fn removing_zeroed_channels_keeps_outputs() {
    let mut det = golden();
    let amount = 0.25;
    let groups = dependency_groups(&det.graph);
    let mut zeroed = 0;
    for (k, g) in groups.iter().enumerate() {
        if g.pinned.is_some() {
            continue;
        }
        let n = (amount * g.channels as f64).round() as usize;
        let mut chans: Vec<usize> = (0..g.channels).collect();
        SplitMix64::new(k as u64).choose(&mut chans, n);
        chans.truncate(n);
        zero_channels(&mut det.graph, g, &chans).unwrap();
        zeroed += chans.len();
    }
    assert!(zeroed > 1000);
    let opts = StructuredOptions {
        criterion: Criterion::FilterL1,
        amount,
        channel_multiple: 1,
        ..Default::default()
    };
    let (pruned, report) = prune_structured_with_report(&det, &opts).unwrap();
    let removed: usize = report.iter().map(|r| r.before - r.after).sum();
    assert_eq!(removed, zeroed, "exactly the zeroed channels are removed");
    let before = model_stats(&det.graph, &det.input_shape()).unwrap();
    let after = model_stats(&pruned.graph, &pruned.input_shape()).unwrap();
    assert!(
        after.macs < before.macs * 7 / 10,
        "{} vs {}",
        after.macs,
        before.macs
    );
    for x in golden_inputs() {
        let a = run(&det, &x);
        let b = run(&pruned, &x);
        for (p, q) in a.iter().zip(&b) {
            let d = p
                .iter()
                .zip(q)
                .map(|(u, v)| (u - v).abs())
                .fold(0.0, f32::max);
            assert!(d <= 1e-5, "max diff {d}");
        }
    }
}

#[test]
fn pruned_macs_match_a_hand_count() {
    let det = golden();
    let opts = StructuredOptions {
        criterion: Criterion::FilterL2,
        amount: 0.5,
        channel_multiple: 8,
        ..Default::default()
    };
    let pruned = prune_structured(&det, &opts).unwrap();
    let st = model_stats(&pruned.graph, &pruned.input_shape()).unwrap();
    let macs = |name: &str| st.layers.iter().find(|l| l.name == name).unwrap().macs;
    // Block 2 (16 -> 24, expansion 96, stride 2, 150x150 -> 75x75). Its input comes from
    // block 1's projection (16 channels, keep 8); its hidden width 96 keeps 48; its output
    // is tied to block 3's by the residual add: 24 keeps 12, rounded up to 16.
    assert_eq!(macs("base_net.2.conv.0"), 8 * 48 * 150 * 150);
    assert_eq!(macs("base_net.2.conv.3"), 9 * 48 * 75 * 75);
    assert_eq!(macs("base_net.2.conv.6"), 48 * 16 * 75 * 75);
    // Head outputs keep their widths.
    let w = |name: &str| {
        pruned
            .graph
            .nodes
            .iter()
            .find(|n| n.name == name)
            .map(|n| match &n.op {
                Op::Conv(c) => c.out_channels(),
                _ => 0,
            })
            .unwrap()
    };
    assert_eq!(w("classification_headers.0.3"), 126);
    assert_eq!(w("regression_headers.5"), 24);
    // The stem is a group like the others: 32 keeps 16.
    assert_eq!(w("base_net.0.0"), 16);
    assert_eq!(macs("base_net.0.0"), 27 * 16 * 150 * 150);
}

#[test]
fn pruned_model_saves_and_loads_with_its_shapes() {
    let det = golden();
    let dir = tempfile::tempdir().unwrap();
    let dense = dir.path().join("dense.safetensors");
    let small = dir.path().join("small.safetensors");
    det.save_safetensors(&dense).unwrap();
    for criterion in [Criterion::FilterL1, Criterion::BnScale, Criterion::Random] {
        let opts = StructuredOptions {
            criterion,
            amount: 0.4,
            seed: 3,
            ..Default::default()
        };
        let pruned = prune_structured(&det, &opts).unwrap();
        let stem = pruned.graph.nodes.iter().find(|n| n.name == "base_net.0.0");
        let Some(Op::Conv(stem)) = stem.map(|n| &n.op) else {
            panic!("no stem conv")
        };
        assert!(
            stem.out_channels() < 32,
            "{criterion:?}: the stem is pruned too"
        );
        pruned.save_safetensors(&small).unwrap();
        let back = Detector::load(&small, None).unwrap();
        assert_eq!(back.graph, pruned.graph, "{criterion:?}");
        let x = &golden_inputs()[0];
        assert_eq!(run(&back, x), run(&pruned, x));
        let ratio = std::fs::metadata(&small).unwrap().len() as f64
            / std::fs::metadata(&dense).unwrap().len() as f64;
        assert!(ratio < 0.6, "{criterion:?}: file ratio {ratio}");
    }
}

#[test]
fn bad_amount_is_refused() {
    let det = golden();
    let opts = StructuredOptions {
        amount: 1.0,
        ..Default::default()
    };
    assert!(matches!(
        prune_structured(&det, &opts),
        Err(PruneError::Amount { .. })
    ));
}

#[test]
fn ultraface_prunes_runs_and_reloads() {
    use slimdet_models::Arch;
    let dir = tempfile::tempdir().unwrap();
    for arch in [Arch::UltrafaceSlim, Arch::UltrafaceRfb] {
        let det = Detector::random(arch.clone(), arch.default_classes(), 1);
        let opts = StructuredOptions {
            amount: 0.3,
            ..Default::default()
        };
        let (pruned, report) = prune_structured_with_report(&det, &opts).unwrap();
        assert!(report.iter().any(|r| r.after < r.before), "{arch:?}");
        let a = model_stats(&det.graph, &det.input_shape()).unwrap();
        let b = model_stats(&pruned.graph, &pruned.input_shape()).unwrap();
        assert!(b.macs < a.macs, "{arch:?}");
        let path = dir.path().join("uf.safetensors");
        pruned.save_safetensors(&path).unwrap();
        let back = Detector::load(&path, None).unwrap();
        assert_eq!(back.graph, pruned.graph);
        let x = vec![0.1f32; det.input_shape().iter().product()];
        assert_eq!(run(&back, &x).len(), 2);
    }
}
