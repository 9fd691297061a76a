//! A pruned detector saved sparsely loads back to the same weights, from a smaller file.

use slimdet_models::{Arch, Detector};
use slimdet_prune::{Method, UnstructuredOptions, prune_unstructured};

#[test]
fn sparse_detector_round_trip_is_bit_exact_and_smaller() {
    let arch = Arch::Mb2SsdLite {
        width_mult: 1.0,
        num_classes: 21,
    };
    let mut det = Detector::random(arch.clone(), arch.default_classes(), 5);
    let opts = UnstructuredOptions {
        method: Method::L1,
        amount: 0.8,
        ..Default::default()
    };
    prune_unstructured(&mut det, &opts).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let dense = dir.path().join("dense.safetensors");
    let sparse = dir.path().join("sparse.safetensors");
    det.save_safetensors(&dense).unwrap();
    let rep = det.save_safetensors_sparse(&sparse).unwrap();
    for n in &det.graph.nodes {
        if let slimdet_core::Op::Conv(_) = n.op {
            let key = format!("{}.weight", n.name);
            assert!(rep.encoded.contains(&key), "{key} is encoded");
        }
    }
    let back = Detector::load(&sparse, None).unwrap();
    let bits = |d: &Detector| -> Vec<u32> {
        d.graph
            .params()
            .iter()
            .flat_map(|(_, t)| t.data().iter().map(|v| v.to_bits()))
            .collect()
    };
    assert_eq!(bits(&back), bits(&det));
    assert_eq!(back.graph, det.graph);
    assert_eq!(back.class_names, det.class_names);
    let d = std::fs::metadata(&dense).unwrap().len() as f64;
    let s = std::fs::metadata(&sparse).unwrap().len() as f64;
    assert!(s / d < 0.3, "80% sparse file is {:.3} of dense", s / d);
}
