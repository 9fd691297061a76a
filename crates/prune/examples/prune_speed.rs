//! Latency of pruned models measured per step, robust to a shared machine:
//! `cargo run --release -p slimdet-prune --example prune_speed -- MODEL [ROUNDS [CHANNEL_MULTIPLE]]`.
//!
//! For each unstructured sparsity (l1, per layer, stem excluded) the dense plan
//! (`SparseMode::Off`) and the automatic one (`SparseMode::Auto`) are profiled in
//! alternation `ROUNDS` times (default 30); for each structured amount (filter-l1) the
//! plan is profiled likewise. Each step keeps its fastest time over the rounds and the
//! table sums them: the forward time with the least interference from other processes.
//! "1x1" sums the pointwise convolutions (dense GEMM or sparse kernel). One thread.

use std::path::PathBuf;

use slimdet_core::sparse::SparseMode;
use slimdet_core::{Plan, PlanOptions};
use slimdet_models::Detector;
use slimdet_prune::{
    Criterion, Method, StructuredOptions, UnstructuredOptions, prune_structured, prune_unstructured,
};

/// Per-step minimum over the rounds, accumulated in place.
fn profile_min(plan: &mut Plan, x: &[f32], mins: &mut Vec<(bool, f64)>) {
    let steps = plan.profile(x).expect("profile");
    if mins.is_empty() {
        *mins = steps
            .iter()
            .map(|(k, _, _)| {
                (
                    k.starts_with("Pointwise") || k.starts_with("Sparse"),
                    f64::INFINITY,
                )
            })
            .collect();
    }
    for (m, (_, _, ms)) in mins.iter_mut().zip(&steps) {
        m.1 = m.1.min(*ms);
    }
}

fn sums(mins: &[(bool, f64)]) -> (f64, f64) {
    let all = mins.iter().map(|m| m.1).sum();
    let pw = mins.iter().filter(|m| m.0).map(|m| m.1).sum();
    (all, pw)
}

fn main() {
    let mut args = std::env::args().skip(1);
    let model = PathBuf::from(
        args.next()
            .expect("usage: prune_speed MODEL [ROUNDS [CHANNEL_MULTIPLE]]"),
    );
    let rounds: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(30);
    let channel_multiple: usize = args.next().and_then(|s| s.parse().ok()).unwrap_or(8);
    let det = Detector::load(&model, None).expect("model");
    let shape = det.input_shape();
    let mut s = 7u64;
    let x: Vec<f32> = (0..shape.iter().product::<usize>())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            (s >> 40) as f32 / (1u64 << 23) as f32 - 1.0
        })
        .collect();
    let opts = PlanOptions::default();
    println!("kernels {} rounds {rounds}", slimdet_kernels::tier().name());
    println!(
        "| sparsity | sparse 1x1 convs | forward dense (ms) | forward sparse (ms) | speed-up | 1x1 dense (ms) | 1x1 sparse (ms) | 1x1 speed-up |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for amount in [0.5, 0.7, 0.8, 0.9, 0.95] {
        let mut d = det.clone();
        let o = UnstructuredOptions {
            method: Method::L1,
            amount,
            exclude: vec!["base_net.0.0".into()],
            ..Default::default()
        };
        prune_unstructured(&mut d, &o).expect("prune");
        let mut dense = Plan::with_sparse_mode(&d.graph, &shape, &opts, SparseMode::Off).unwrap();
        let mut auto = Plan::with_sparse_mode(&d.graph, &shape, &opts, SparseMode::Auto).unwrap();
        let (mut md, mut ma) = (Vec::new(), Vec::new());
        for _ in 0..rounds {
            profile_min(&mut dense, &x, &mut md);
            profile_min(&mut auto, &x, &mut ma);
        }
        let ((fd, pd), (fa, pa)) = (sums(&md), sums(&ma));
        println!(
            "| {amount:.2} | {} | {fd:.2} | {fa:.2} | {:.2}x | {pd:.2} | {pa:.2} | {:.2}x |",
            auto.sparse_convs(),
            fd / fa,
            pd / pa
        );
    }
    println!();
    println!(
        "| structured amount (channel multiple {channel_multiple}) | MACs vs dense | forward (ms) | speed-up | 1x1 (ms) |"
    );
    println!("|---|---|---|---|---|");
    let base_macs = slimdet_core::stats::model_stats(&det.graph, &shape)
        .unwrap()
        .macs;
    let mut plans = Vec::new();
    for amount in [0.0, 0.1, 0.2, 0.3, 0.35, 0.4, 0.5] {
        let o = StructuredOptions {
            criterion: Criterion::FilterL1,
            amount,
            channel_multiple,
            ..Default::default()
        };
        let p = prune_structured(&det, &o).expect("prune");
        let macs = slimdet_core::stats::model_stats(&p.graph, &shape)
            .unwrap()
            .macs;
        let plan = Plan::with_sparse_mode(&p.graph, &shape, &opts, SparseMode::Off).unwrap();
        plans.push((amount, macs, plan, Vec::new()));
    }
    for _ in 0..rounds {
        for (_, _, plan, mins) in plans.iter_mut() {
            profile_min(plan, &x, mins);
        }
    }
    let base = sums(&plans[0].3).0;
    for (amount, macs, _, mins) in &plans {
        let (f, pw) = sums(mins);
        println!(
            "| {amount:.2} | {:.3} | {f:.2} | {:.2}x | {pw:.2} |",
            *macs as f64 / base_macs as f64,
            base / f
        );
    }
}
