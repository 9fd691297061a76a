//! Sensitivity analysis and the MAC-budget solver on the golden MobileNetV2-SSD-Lite,
//! with a cheap stand-in score (the L1 mass of all conv weights; the CLI passes mAP).

use slimdet_core::Op;
use slimdet_models::Detector;
use slimdet_prune::{
    Criterion, Method, PruneError, UnitMethod, UnitPruner, analyze, prune_structured, solve,
};

fn golden() -> Detector {
    let dir = slimdet_testkit::mb2_golden_dir();
    Detector::load(&dir.join("model.pth"), None).unwrap()
}

fn l1_mass(det: &Detector) -> f64 {
    det.graph
        .nodes
        .iter()
        .filter_map(|n| match &n.op {
            Op::Conv(c) => Some(c.weight.data().iter().map(|w| w.abs() as f64).sum::<f64>()),
            _ => None,
        })
        .sum()
}

fn structured() -> UnitPruner {
    UnitPruner {
        method: UnitMethod::Structured(Criterion::FilterL1),
        exclude: Vec::new(),
        channel_multiple: 1,
        seed: 0,
    }
}

#[test]
fn structured_units_are_the_unpinned_groups_and_every_level_is_scored() {
    let det = golden();
    let p = structured();
    let units = p.units(&det).unwrap();
    assert!(units.len() > 10, "{units:?}");
    assert!(
        units.iter().any(|u| u == "base_net.0.0"),
        "the stem is a unit (the file carries the graph, so no width is read from it)"
    );
    let mut calls = Vec::new();
    let t = analyze(&det, &p, &[0.5, 0.25], &mut |d, s| {
        calls.push((s.unit.map(str::to_string), s.level, s.done, s.total));
        Ok(l1_mass(d))
    })
    .unwrap();
    assert_eq!(t.levels, vec![0.25, 0.5], "levels are sorted");
    assert_eq!(calls.len(), 1 + 2 * units.len());
    assert_eq!(calls[0].0, None);
    assert!(
        calls
            .iter()
            .enumerate()
            .all(|(i, c)| c.2 == i && c.3 == calls.len())
    );
    for (u, c) in t.units.iter().enumerate() {
        assert!(c.macs[0] < t.base_macs && c.macs[1] < c.macs[0], "{c:?}");
        assert!(
            c.scores[1] < c.scores[0] && c.scores[0] < t.baseline,
            "{c:?}"
        );
        assert!(t.loss(u, 2) >= t.loss(u, 1) && t.loss(u, 1) > 0.0);
    }
}

#[test]
fn one_unit_at_the_uniform_ratio_matches_prune_structured_for_all() {
    let det = golden();
    let p = structured();
    let units = p.units(&det).unwrap();
    let all: Vec<(String, f64)> = units.iter().map(|u| (u.clone(), 0.5)).collect();
    let a = p.apply(&det, &all).unwrap();
    let opts = slimdet_prune::StructuredOptions {
        amount: 0.5,
        channel_multiple: 1,
        ..Default::default()
    };
    let b = prune_structured(&det, &opts).unwrap();
    assert_eq!(p.macs(&a).unwrap(), p.macs(&b).unwrap());
    assert_eq!(
        p.apply(&det, &[]).unwrap().graph,
        det.graph,
        "no ratios: identity"
    );
    let bad = p.apply(&det, &[("nope".into(), 0.5)]).unwrap_err();
    assert!(matches!(bad, PruneError::Structure(_)), "{bad}");
    assert!(matches!(
        p.apply(&det, &[(units[0].clone(), 1.0)]),
        Err(PruneError::Amount { .. })
    ));
}

#[test]
fn unstructured_units_are_convs_and_cost_is_effective_macs() {
    let det = golden();
    let p = UnitPruner {
        method: UnitMethod::Unstructured(Method::L1),
        exclude: vec!["base_net.0.0".into()],
        channel_multiple: 1,
        seed: 0,
    };
    let units = p.units(&det).unwrap();
    assert!(!units.contains(&"base_net.0.0".to_string()));
    let d = p.apply(&det, &[(units[3].clone(), 0.5)]).unwrap();
    let Some(Op::Conv(c)) = d
        .graph
        .nodes
        .iter()
        .find(|n| n.name == units[3])
        .map(|n| &n.op)
    else {
        panic!("conv {} missing", units[3]);
    };
    let zeros = c.weight.data().iter().filter(|w| **w == 0.0).count();
    assert_eq!(zeros, (c.weight.numel() as f64 * 0.5).round() as usize);
    assert!(p.macs(&d).unwrap() < p.macs(&det).unwrap());
    // Every other conv is untouched.
    let changed = det
        .graph
        .nodes
        .iter()
        .zip(&d.graph.nodes)
        .filter(|(a, b)| a.op != b.op)
        .count();
    assert_eq!(changed, 1);
}

#[test]
fn solver_reaches_a_real_budget_and_refuses_an_impossible_one() {
    let det = golden();
    let p = structured();
    let t = analyze(&det, &p, &[0.25, 0.5, 0.75], &mut |d, _| Ok(l1_mass(d))).unwrap();
    let budget = (t.base_macs as f64 * 0.7) as u64;
    let mut exact = |r: &[(String, f64)]| p.macs(&p.apply(&det, r)?);
    let a = solve(&t, budget, &mut exact).unwrap();
    assert!(a.macs <= budget, "{} > {budget}", a.macs);
    let applied = p.apply(&det, &a.ratios).unwrap();
    assert_eq!(p.macs(&applied).unwrap(), a.macs);
    assert!(a.predicted < t.baseline);
    let e = solve(&t, t.base_macs / 50, &mut exact).unwrap_err();
    assert!(matches!(e, PruneError::Budget(_)));
    assert!(e.to_string().contains("cannot be reached"), "{e}");
}
