//! `slimdet bench`: times the forward pass after warm-up and reports the median, p10 and
//! p90, mean and standard deviation, and the achieved GFLOP/s (2 × conv MACs / median).

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use serde_json::json;
use slimdet_core::stats::model_stats;
use slimdet_core::{Plan, PlanOptions};

use crate::model_arg::{ModelArgs, ThreadArgs};

/// Options of `slimdet bench`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    threads: ThreadArgs,
    /// Timed forward passes (1 to 100000).
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    runs: u32,
    /// Untimed warm-up passes.
    #[arg(long, default_value_t = 5)]
    warmup: u32,
    /// Numeric precision of the run.
    #[arg(long, default_value = "fp32", value_parser = ["fp32"])]
    precision: String,
    /// Use this image (resized and normalised) instead of a seeded random input.
    #[arg(long)]
    image: Option<PathBuf>,
    /// Print a JSON object as the last line.
    #[arg(long)]
    json: bool,
    /// Also print the time of each step, summed by kind, over the timed runs.
    #[arg(long)]
    profile: bool,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let det = a.model.load()?;
    let shape = det.input_shape();
    let macs = model_stats(&det.graph, &shape)?.macs;
    let mut plan = Plan::new(
        &det.graph,
        &shape,
        &PlanOptions {
            threads: a.threads.get(),
            ..PlanOptions::default()
        },
    )?;
    let input = match &a.image {
        Some(p) => {
            let img = slimdet_data::load_rgb(p)?;
            let r = slimdet_data::resize_rgb(&img, shape[2], shape[1]);
            let mut v = vec![0.0; shape.iter().product()];
            slimdet_data::normalize_into(&r, det.config.mean, det.config.std, &mut v);
            v
        }
        None => {
            let mut s = 0x9E37_79B9_7F4A_7C15u64;
            (0..shape.iter().product::<usize>())
                .map(|_| {
                    s ^= s << 13;
                    s ^= s >> 7;
                    s ^= s << 17;
                    ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
                })
                .collect()
        }
    };
    // A quantized model runs on its own backend (the int8 engine).
    let mut backend = match &det.backend {
        Some(f) => Some(f.build(a.threads.get())?),
        None => None,
    };
    let mut logits = vec![0f32; det.priors.len() * det.class_names.len()];
    let mut locations = vec![0f32; det.priors.len() * 4];
    let mut forward = |plan: &mut Plan| -> Result<()> {
        match backend.as_mut() {
            Some(b) => b.forward(&input, &mut logits, &mut locations)?,
            None => {
                std::hint::black_box(plan.run(&input)?);
            }
        }
        Ok(())
    };
    for _ in 0..a.warmup {
        forward(&mut plan)?;
    }
    let mut ms = Vec::with_capacity(a.runs as usize);
    for _ in 0..a.runs {
        let t = Instant::now();
        forward(&mut plan)?;
        ms.push(t.elapsed().as_secs_f64() * 1e3);
    }
    let engine = det
        .backend
        .as_ref()
        .map(|f| f.build(1).map(|b| b.name().to_string()))
        .transpose()?;
    let precision = engine.unwrap_or_else(|| a.precision.clone());
    if a.profile {
        print_profile(&mut plan, &input, a.runs)?;
    }
    let t = slimdet_eval::metrics::summarize(&ms).context("no timed runs")?;
    if !t.p50_ms.is_finite() || t.p50_ms <= 0.0 {
        bail!("timer returned no usable measurement");
    }
    let gflops = 2.0 * macs as f64 / (t.p50_ms * 1e-3) / 1e9;
    println!(
        "{} ({}): {} threads, {} precision, kernels {}: median {:.3} ms, p10 {:.3}, p90 {:.3}, mean {:.3} ± {:.3}, min {:.3} over {} runs; {:.1} GFLOP/s; arena {} bytes",
        a.model.model.display(),
        det.name,
        plan.threads(),
        precision,
        plan.tier().name(),
        t.p50_ms,
        t.p10_ms,
        t.p90_ms,
        t.mean_ms,
        t.std_ms,
        t.min_ms,
        a.runs,
        gflops,
        plan.arena_bytes()
    );
    if a.json {
        let v = json!({
            "model": a.model.model.display().to_string(), "arch": det.name, "median_ms": t.p50_ms, "p10_ms": t.p10_ms,
            "p90_ms": t.p90_ms, "mean_ms": t.mean_ms, "std_ms": t.std_ms, "min_ms": t.min_ms, "runs": a.runs, "warmup": a.warmup,
            "threads": plan.threads(), "precision": precision, "kernels": plan.tier().name(), "macs": macs,
            "gflops": gflops, "fps": 1e3 / t.p50_ms, "arena_bytes": plan.arena_bytes(),
            "peak_rss_bytes": slimdet_eval::metrics::peak_rss_bytes(),
        });
        println!("{v}");
    }
    Ok(ExitCode::SUCCESS)
}

/// Times every step over `runs` passes and prints the totals per kind, slowest first.
fn print_profile(plan: &mut Plan, input: &[f32], runs: u32) -> Result<()> {
    let mut acc: Vec<(String, Vec<usize>, f64)> = plan.profile(input)?;
    for _ in 1..runs {
        for (slot, (_, _, ms)) in acc.iter_mut().zip(plan.profile(input)?) {
            slot.2 += ms;
        }
    }
    let total: f64 = acc.iter().map(|x| x.2).sum();
    let mut by_kind: Vec<(String, f64, usize)> = Vec::new();
    for (k, _, ms) in &acc {
        match by_kind.iter_mut().find(|x| &x.0 == k) {
            Some(e) => {
                e.1 += ms;
                e.2 += 1;
            }
            None => by_kind.push((k.clone(), *ms, 1)),
        }
    }
    by_kind.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!(
        "{:<40} {:>6} {:>10} {:>7}",
        "step", "count", "ms/run", "share"
    );
    for (k, ms, n) in by_kind {
        println!(
            "{k:<40} {n:>6} {:>10.3} {:>6.1}%",
            ms / runs as f64,
            100.0 * ms / total
        );
    }
    Ok(())
}
