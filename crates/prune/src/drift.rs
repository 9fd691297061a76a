//! Label-free output drift: each conv pruned alone at several amounts, the effect
//! measured on the detector's outputs.
//!
//! The measure is the deviation of the class probabilities (softmax of the logits) from
//! the unpruned model's on the given inputs: mean and max absolute difference. It needs no
//! labels and tracks which layers tolerate pruning; mAP on a dataset is the real judge
//! (see [`crate::sensitivity`], which scores each pruned model with a caller's metric).

use slimdet_core::{Plan, PlanOptions};
use slimdet_models::Detector;

use crate::error::Result;
use crate::unstructured::{Method, Scope, UnstructuredOptions, prune_unstructured};

/// One measurement.
#[derive(Clone, Debug, PartialEq)]
pub struct DriftRow {
    /// The conv pruned (node name).
    pub layer: String,
    /// Fraction of its weights zeroed.
    pub amount: f64,
    /// Mean |Δ probability| over all priors, classes and inputs.
    pub mean_abs: f64,
    /// Max |Δ probability|.
    pub max_abs: f64,
}

/// Class probabilities of `det` on each input (`[N·P·K]` flattened per input).
fn probabilities(det: &Detector, inputs: &[Vec<f32>], threads: usize) -> Result<Vec<Vec<f32>>> {
    let opts = PlanOptions {
        threads,
        ..Default::default()
    };
    let mut plan = Plan::new(&det.graph, &det.input_shape(), &opts)?;
    let k = det.class_names.len().max(1);
    let mut out = Vec::with_capacity(inputs.len());
    for x in inputs {
        let logits = plan.run(x)?[0].to_vec();
        let mut p = vec![0.0; logits.len()];
        for (o, l) in p.chunks_mut(k).zip(logits.chunks(k)) {
            slimdet_core::exec::softmax_row(l, o);
        }
        out.push(p);
    }
    Ok(out)
}

/// Prunes each conv whose name satisfies `select` alone, by magnitude, at each of
/// `amounts`, and measures the probability deviation on `inputs` (NHWC, the model's input
/// shape). Rows are in layer then amount order.
pub fn output_drift(
    det: &Detector,
    inputs: &[Vec<f32>],
    amounts: &[f64],
    select: &dyn Fn(&str) -> bool,
    threads: usize,
) -> Result<Vec<DriftRow>> {
    for &a in amounts {
        crate::check_amount(a)?;
    }
    let base = probabilities(det, inputs, threads)?;
    let layers: Vec<String> = det
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, slimdet_core::Op::Conv(_)) && select(&n.name))
        .map(|n| n.name.clone())
        .collect();
    let mut rows = Vec::new();
    for layer in &layers {
        // Exclude every other conv: prune `layer` only.
        let others: Vec<String> = layers_except(det, layer);
        for &amount in amounts {
            let mut d = det.clone();
            let opts = UnstructuredOptions {
                method: Method::L1,
                amount,
                scope: Scope::Layer,
                include_bn: false,
                exclude: others.clone(),
                seed: 0,
            };
            prune_unstructured(&mut d, &opts)?;
            let probs = probabilities(&d, inputs, threads)?;
            let (mut sum, mut max, mut n) = (0.0f64, 0.0f64, 0usize);
            for (p, q) in probs.iter().zip(&base) {
                for (a, b) in p.iter().zip(q) {
                    let e = (a - b).abs() as f64;
                    sum += e;
                    max = max.max(e);
                    n += 1;
                }
            }
            rows.push(DriftRow {
                layer: layer.clone(),
                amount,
                mean_abs: sum / n.max(1) as f64,
                max_abs: max,
            });
        }
    }
    Ok(rows)
}

/// Names of every conv of `det` except `layer`.
fn layers_except(det: &Detector, layer: &str) -> Vec<String> {
    det.graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, slimdet_core::Op::Conv(_)) && n.name != layer)
        .map(|n| n.name.clone())
        .collect()
}
