//! `slimdet info`: layers, parameters, MACs (dense and effective), sparsity and sizes.

use std::process::ExitCode;

use anyhow::{Context, Result};
use serde_json::json;
use slimdet_core::stats::model_stats;
use slimdet_core::{Plan, PlanOptions};

use crate::model_arg::ModelArgs;

/// Options of `slimdet info`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// Output format.
    #[arg(long, default_value = "table", value_parser = ["table", "json"])]
    format: String,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let det = a.model.load()?;
    let file_bytes = std::fs::metadata(&a.model.model)
        .with_context(|| format!("reading {}", a.model.model.display()))?
        .len();
    let input = det.input_shape();
    let st = model_stats(&det.graph, &input)?;
    let plan = Plan::new(&det.graph, &input, &PlanOptions::default())?;
    let exec = slimdet_core::sparse::layer_decisions(
        &det.graph,
        plan.tier(),
        slimdet_core::sparse::mode(),
    );
    if a.format == "json" {
        let layers: Vec<_> = st
            .layers
            .iter()
            .zip(&exec)
            .map(|(l, (_, d))| {
                json!({"name": l.name, "kind": l.kind, "weight_shape": l.weight_shape, "out_shape": l.out_shape,
                       "params": l.params, "macs": l.macs, "macs_effective": l.macs_effective, "sparsity": l.sparsity(),
                       "sparse_kernel": d.sparse, "sparse_reason": d.reason})
            })
            .collect();
        let v = json!({
            "model": a.model.model.display().to_string(), "arch": det.name, "classes": det.class_names.len(),
            "input": input, "params": st.params, "macs": st.macs, "macs_effective": st.macs_effective,
            "sparsity": st.conv_sparsity, "sparsity_all": st.sparsity_all, "mean_layer_sparsity": st.mean_layer_sparsity,
            "file_bytes": file_bytes, "arena_bytes": plan.arena_bytes(), "weight_bytes": plan.weight_bytes(),
            "conv_layers": st.layers.len(), "sparse_convs": plan.sparse_convs(), "layers": layers,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    println!(
        "{:<44} {:<7} {:<18} {:<16} {:>9} {:>13} {:>8}  exec",
        "layer", "kind", "weight", "output", "params", "MACs", "sparsity"
    );
    for (l, (_, d)) in st.layers.iter().zip(&exec) {
        let how = if d.sparse {
            format!("sparse ({})", d.reason)
        } else if d.sparsity > 0.0 {
            format!("dense ({})", d.reason)
        } else {
            "dense".to_string()
        };
        println!(
            "{:<44} {:<7} {:<18} {:<16} {:>9} {:>13} {:>7.2}%  {how}",
            l.name,
            l.kind,
            format!("{:?}", l.weight_shape),
            format!("{:?}", &l.out_shape[1..]),
            l.params,
            l.macs,
            100.0 * l.sparsity()
        );
    }
    println!();
    println!(
        "model            {} ({}, {} classes, input {}x{})",
        a.model.model.display(),
        det.name,
        det.class_names.len(),
        input[2],
        input[1]
    );
    println!(
        "conv layers      {} ({} on the sparse kernel)",
        st.layers.len(),
        plan.sparse_convs()
    );
    println!("parameters       {}", group(st.params as u64));
    println!("MACs             {}", group(st.macs));
    println!("MACs effective   {}", group(st.macs_effective));
    println!(
        "sparsity         {:.4}% of conv weights, {:.4}% of all parameters",
        100.0 * st.conv_sparsity,
        100.0 * st.sparsity_all
    );
    println!("file size        {} bytes", group(file_bytes));
    println!(
        "weights (packed) {} bytes, activation arena {} bytes",
        group(plan.weight_bytes() as u64),
        group(plan.arena_bytes() as u64)
    );
    Ok(ExitCode::SUCCESS)
}

/// `660828976` → `660,828,976`.
pub fn group(n: u64) -> String {
    let s = n.to_string();
    let mut out = String::new();
    for (i, ch) in s.chars().enumerate() {
        if i > 0 && (s.len() - i).is_multiple_of(3) {
            out.push(',');
        }
        out.push(ch);
    }
    out
}
