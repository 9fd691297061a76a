//! The executor's sparse path keeps the function: a pruned MobileNetV2-SSD-Lite (golden
//! weights) gives the same outputs on the golden inputs with the sparse kernel forced on,
//! automatic, and off.

use std::path::PathBuf;

use slimdet_core::sparse::{BREAK_EVEN_SPARSITY, SparseMode, layer_decisions};
use slimdet_core::{Plan, PlanOptions};
use slimdet_models::Detector;
use slimdet_prune::{Method, UnstructuredOptions, prune_unstructured};

fn golden_dir() -> PathBuf {
    slimdet_testkit::mb2_golden_dir()
}

fn outputs(det: &Detector, mode: SparseMode, threads: usize, x: &[f32]) -> (Vec<Vec<f32>>, usize) {
    let opts = PlanOptions {
        threads,
        ..Default::default()
    };
    let mut plan = Plan::with_sparse_mode(&det.graph, &det.input_shape(), &opts, mode).unwrap();
    let n = plan.sparse_convs();
    (
        plan.run(x)
            .unwrap()
            .into_iter()
            .map(<[f32]>::to_vec)
            .collect(),
        n,
    )
}

#[test]
fn sparse_path_matches_dense_on_golden_inputs() {
    let mut det = Detector::load(&golden_dir().join("model.pth"), None).unwrap();
    let opts = UnstructuredOptions {
        method: Method::L1,
        amount: 0.8,
        exclude: vec!["base_net.0.0".into()],
        ..Default::default()
    };
    prune_unstructured(&mut det, &opts).unwrap();
    let decisions = layer_decisions(&det.graph, slimdet_kernels::tier(), SparseMode::Auto);
    let auto = decisions.iter().filter(|(_, d)| d.sparse).count();
    assert!(
        auto > 30,
        "most 1x1 layers at 80% take the sparse path ({auto})"
    );
    for (name, d) in &decisions {
        if d.sparse {
            assert!(d.sparsity >= BREAK_EVEN_SPARSITY, "{name}");
        } else {
            assert!(!d.reason.is_empty());
        }
    }
    for id in ["000002", "000004"] {
        let x = slimdet_testkit::mb2_golden_input(id);
        let (dense, n0) = outputs(&det, SparseMode::Off, 1, &x);
        assert_eq!(n0, 0);
        for (mode, threads) in [(SparseMode::Always, 1), (SparseMode::Auto, 2)] {
            let (got, n) = outputs(&det, mode, threads, &x);
            assert!(n >= auto);
            for (a, b) in got.iter().zip(&dense) {
                let scale = b.iter().fold(1.0f32, |m, v| m.max(v.abs()));
                let d = a
                    .iter()
                    .zip(b)
                    .map(|(p, q)| (p - q).abs())
                    .fold(0.0, f32::max);
                assert!(
                    d <= 1e-5 * scale,
                    "{id} {mode:?}: max diff {d} (scale {scale})"
                );
            }
        }
    }
}
