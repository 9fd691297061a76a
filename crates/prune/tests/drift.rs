//! Output-drift rows on the golden model: no change at amount 0, a change when pruned.

use safetensors::SafeTensors;
use slimdet_models::Detector;
use slimdet_prune::output_drift;

#[test]
fn deviation_is_zero_at_zero_and_positive_when_pruned() {
    let dir = slimdet_testkit::mb2_golden_dir();
    let det = Detector::load(&dir.join("model.pth"), None).unwrap();
    let bytes = std::fs::read(dir.join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let x: Vec<f32> = st
        .tensor("000002.input")
        .unwrap()
        .data()
        .chunks_exact(4)
        .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
        .collect();
    let select = |n: &str| n == "base_net.0.0" || n == "base_net.14.conv.0";
    let rows = output_drift(&det, &[x], &[0.0, 0.5, 0.95], &select, 2).unwrap();
    assert_eq!(rows.len(), 6);
    for layer in rows.chunks(3) {
        assert_eq!(layer[0].amount, 0.0);
        assert_eq!(layer[0].max_abs, 0.0, "{}", layer[0].layer);
        assert!(layer[1].mean_abs > 0.0);
        // The golden network has random weights, so the deviation need not grow
        // monotonically; heavy pruning of either layer must move the outputs.
        assert!(layer[2].mean_abs > 1e-4, "{layer:?}");
    }
}
