//! `slimdet prune`: unstructured (weights to zero) or structured (channels removed)
//! pruning of a model, written as safetensors.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::json;
use slimdet_core::stats::model_stats;
use slimdet_prune::{
    Criterion, Method, Scope, StructuredOptions, UnstructuredOptions, check_amount,
    prune_structured_with_report, prune_unstructured,
};

use crate::model_arg::ModelArgs;

/// Least fraction of the tensor bytes the sparse layout must save to be written by
/// default.
const MIN_SPARSE_SAVING: f64 = 0.05;

/// Options of `slimdet prune`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// l1 and random zero individual weights (unstructured); filter-l1, filter-l2,
    /// bn-scale and random-channel remove whole channels (structured).
    #[arg(long, value_parser = ["l1", "random", "filter-l1", "filter-l2", "bn-scale", "random-channel"])]
    method: String,
    /// Fraction to remove, in [0, 1): of the weights (unstructured) or of each channel
    /// group (structured). Required unless --target-macs is given.
    #[arg(
        long,
        allow_negative_numbers = true,
        required_unless_present = "target_macs"
    )]
    amount: Option<f64>,
    /// MAC budget instead of --amount: a fraction of the model's MACs to keep (0.6) or a
    /// count (400M). Per-group ratios are chosen from --sensitivity (the JSON of `slimdet
    /// sensitivity` for this model and --method) with the least predicted mAP loss.
    #[arg(
        long,
        requires = "sensitivity",
        conflicts_with = "amount",
        allow_hyphen_values = true
    )]
    target_macs: Option<String>,
    /// The `sensitivity.json` used by --target-macs.
    #[arg(long, requires = "target_macs")]
    sensitivity: Option<PathBuf>,
    /// Unstructured only: the same sparsity in every layer, or one global ranking.
    #[arg(long, value_parser = ["layer", "global"])]
    scope: Option<String>,
    /// Layers to leave alone: a module path (`base_net.0.0`, matches what is under it)
    /// or a glob (`*headers*`). Repeatable.
    #[arg(long)]
    exclude: Vec<String>,
    /// Unstructured only: also prune BN γ.
    #[arg(long)]
    include_bn: bool,
    /// Seed of the random methods.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Store mostly-zero tensors in the sparse bitmap-v1 encoding: the default, each tensor
    /// encoded only where that is smaller (loads transparently).
    #[arg(long, conflicts_with = "dense")]
    sparse_format: bool,
    /// Write every tensor densely (the plain safetensors layout) even where the sparse
    /// encoding would be smaller.
    #[arg(long)]
    dense: bool,
    /// Structured only: round kept channel counts up to a multiple of this.
    #[arg(long, default_value_t = 8)]
    channel_multiple: usize,
    /// Output safetensors file.
    #[arg(short = 'o', long)]
    output: PathBuf,
    /// Report format.
    #[arg(long, default_value = "text", value_parser = ["text", "json"])]
    format: String,
    /// Fine-tune the pruned model for this many epochs on `--voc` (pruned weights are
    /// held at zero by masks; 0 = no fine-tuning).
    #[arg(long, default_value_t = 0)]
    finetune_epochs: usize,
    /// VOC-layout dataset for fine-tuning (its `--finetune-split`).
    #[arg(long)]
    voc: Option<PathBuf>,
    /// Split of `--voc` to fine-tune on.
    #[arg(long, default_value = "trainval")]
    finetune_split: String,
    /// Fine-tuning learning rate (cosine-annealed to 0 over the epochs).
    #[arg(long, default_value_t = 1e-3)]
    finetune_lr: f64,
    /// Fine-tuning arithmetic: fp32, or bf16 products on AVX512-BF16 (`slimdet train
    /// --precision`).
    #[arg(long, default_value = "fp32")]
    precision: slimdet_train::Precision,
    /// Fine-tuning batch size.
    #[arg(long, default_value_t = 16)]
    batch: usize,
    /// Fine-tune without data augmentation (the built-in model's last epochs were trained
    /// without it).
    #[arg(long)]
    no_augment: bool,
    #[command(flatten)]
    threads: crate::model_arg::ThreadArgs,
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if let Some(amount) = a.amount {
        check_amount(amount).with_context(|| format!("--amount {amount}"))?;
    }
    let structured = matches!(
        a.method.as_str(),
        "filter-l1" | "filter-l2" | "bn-scale" | "random-channel"
    );
    if structured && (a.scope.is_some() || a.include_bn) {
        bail!("--scope and --include-bn apply to the unstructured methods (l1, random) only");
    }
    if a.finetune_epochs > 0 && a.voc.is_none() {
        bail!("--finetune-epochs needs --voc DIR (the dataset to fine-tune on)");
    }
    if a.channel_multiple == 0 {
        bail!("--channel-multiple must be at least 1");
    }
    if slimdet_quant::is_quantized_file(&a.model.model) {
        bail!(
            "{} is a quantized model (int8 or fp16 weights, batch norm folded): pruning works on \
             the float model; prune that, then quantize the pruned file",
            a.model.model.display()
        );
    }
    let det = a.model.load()?;
    let input = det.input_shape();
    let before = model_stats(&det.graph, &input)?;
    let (pruned, detail) = if let (Some(budget), Some(table)) = (&a.target_macs, &a.sensitivity) {
        budget_prune(&a, &det, budget, table)?
    } else if structured {
        let criterion = match a.method.as_str() {
            "filter-l1" => Criterion::FilterL1,
            "filter-l2" => Criterion::FilterL2,
            "bn-scale" => Criterion::BnScale,
            _ => Criterion::Random,
        };
        let opts = StructuredOptions {
            criterion,
            amount: a.amount.unwrap_or(0.0),
            exclude: a.exclude.clone(),
            channel_multiple: a.channel_multiple,
            seed: a.seed,
        };
        let (p, rep) = prune_structured_with_report(&det, &opts)?;
        let groups: Vec<_> = rep
            .iter()
            .map(|g| json!({"group": g.name, "before": g.before, "after": g.after, "skipped": g.skipped}))
            .collect();
        (p, json!({"groups": groups}))
    } else {
        let opts = UnstructuredOptions {
            method: if a.method == "l1" {
                Method::L1
            } else {
                Method::Random
            },
            amount: a.amount.unwrap_or(0.0),
            scope: if a.scope.as_deref() == Some("global") {
                Scope::Global
            } else {
                Scope::Layer
            },
            include_bn: a.include_bn,
            exclude: a.exclude.clone(),
            seed: a.seed,
        };
        let mut p = det.clone();
        let rep = prune_unstructured(&mut p, &opts)?;
        let layers: Vec<_> = rep
            .layers
            .iter()
            .map(|l| json!({"key": l.key, "numel": l.numel, "sparsity": l.sparsity()}))
            .collect();
        (
            p,
            json!({"pruned_sparsity": rep.sparsity(), "excluded": rep.excluded, "layers": layers}),
        )
    };
    let pruned = if a.finetune_epochs > 0 {
        finetune(&a, pruned)?
    } else {
        pruned
    };
    let after = model_stats(&pruned.graph, &pruned.input_shape())?;
    // Sparse by default where it pays: the writer encodes only the tensors that get
    // smaller, and a file that would shrink by less than MIN_SPARSE_SAVING (a structured
    // pruning's few zero biases) is written in the plain dense layout instead.
    let dense = a.dense && !a.sparse_format; // clap refuses both together
    let mut storage = slimdet_formats::SparseSaveReport::default();
    if !dense {
        storage = pruned
            .save_safetensors_sparse(&a.output)
            .with_context(|| format!("writing {}", a.output.display()))?;
    }
    let sparse = !storage.encoded.is_empty()
        && (storage.data_bytes as f64)
            < (1.0 - MIN_SPARSE_SAVING) * storage.dense_data_bytes as f64;
    if !sparse {
        pruned
            .save_safetensors(&a.output)
            .with_context(|| format!("writing {}", a.output.display()))?;
    }
    let file_bytes = std::fs::metadata(&a.output)
        .with_context(|| format!("reading {}", a.output.display()))?
        .len();
    if a.format == "json" {
        let v = json!({
            "model": a.model.model.display().to_string(), "output": a.output.display().to_string(),
            "method": a.method, "amount": a.amount, "target_macs": a.target_macs, "sparse_format": sparse,
            "sparse_tensors": if sparse { storage.encoded.len() } else { 0 },
            "params_before": before.params, "params_after": after.params,
            "macs_before": before.macs, "macs_after": after.macs,
            "macs_effective_after": after.macs_effective, "sparsity_conv": after.conv_sparsity,
            "file_bytes": file_bytes, "detail": detail,
        });
        println!("{}", serde_json::to_string_pretty(&v)?);
        return Ok(ExitCode::SUCCESS);
    }
    let g = crate::commands::info::group;
    println!(
        "pruned        {} -> {}",
        a.model.model.display(),
        a.output.display()
    );
    match (a.amount, &a.target_macs) {
        (Some(x), _) => println!("method        {} amount {x}", a.method),
        (None, Some(t)) => println!("method        {} target MACs {t}", a.method),
        (None, None) => {}
    }
    println!(
        "parameters    {} -> {} ({:.1}%)",
        g(before.params as u64),
        g(after.params as u64),
        100.0 * after.params as f64 / before.params.max(1) as f64
    );
    println!(
        "MACs          {} -> {} ({:.1}%), effective {}",
        g(before.macs),
        g(after.macs),
        100.0 * after.macs as f64 / before.macs.max(1) as f64,
        g(after.macs_effective)
    );
    println!("conv sparsity {:.2}%", 100.0 * after.conv_sparsity);
    let layout = if sparse {
        format!(
            "sparse bitmap-v1 for {} tensors, tensor data {} bytes instead of {}; --dense \
             writes the plain layout",
            storage.encoded.len(),
            g(storage.data_bytes as u64),
            g(storage.dense_data_bytes as u64)
        )
    } else if dense {
        "dense, --dense".to_string()
    } else {
        format!(
            "dense: sparse storage would save less than {:.0}%",
            100.0 * MIN_SPARSE_SAVING
        )
    };
    println!("file          {} bytes ({layout})", g(file_bytes));
    Ok(ExitCode::SUCCESS)
}

/// `--target-macs`: ratios per unit chosen from the sensitivity table, then applied.
fn budget_prune(
    a: &Args,
    det: &slimdet_models::Detector,
    budget: &str,
    table_path: &std::path::Path,
) -> Result<(slimdet_models::Detector, serde_json::Value)> {
    use crate::commands::sensitivity as sens;
    let (table, pruner, method) = sens::load_table(table_path)?;
    if method != a.method {
        bail!(
            "{} was measured with --method {method}, not {}: use the same method",
            table_path.display(),
            a.method
        );
    }
    if !a.exclude.is_empty() || a.scope.is_some() || a.include_bn {
        bail!(
            "--target-macs takes its exclusions from {} (--exclude, --scope and --include-bn do not apply)",
            table_path.display()
        );
    }
    let alloc = sens::allocate(det, &pruner, &table, budget)
        .with_context(|| format!("solving the MAC budget with {}", table_path.display()))?;
    let pruned = pruner.apply(det, &alloc.ratios)?;
    if a.format != "json" {
        sens::print_allocation(&table, &alloc, None);
        println!();
    }
    Ok((pruned, sens::allocation_json(&table, &alloc, None, budget)))
}

/// Fine-tunes `det` on `--voc` (`--finetune-split`) with masks that keep its zeros, writing the
/// training run (checkpoints, logs) beside the output in `<output>.finetune/`.
fn finetune(a: &Args, det: slimdet_models::Detector) -> Result<slimdet_models::Detector> {
    let voc = a.voc.as_ref().context("--voc is required")?;
    let mut out_dir = a.output.clone().into_os_string();
    out_dir.push(".finetune");
    let mut cfg = slimdet_train::TrainConfig::new(voc, PathBuf::from(out_dir));
    cfg.split = a.finetune_split.clone();
    cfg.epochs = a.finetune_epochs;
    cfg.batch = a.batch;
    cfg.threads = a.threads.get();
    cfg.seed = a.seed;
    cfg.val_split = None;
    cfg.val_every = 0;
    cfg.augment = !a.no_augment;
    cfg.precision = a.precision;
    cfg.schedule = slimdet_train::schedule::LrSchedule {
        base_lr: a.finetune_lr,
        policy: slimdet_train::schedule::LrPolicy::Cosine {
            t_max: a.finetune_epochs,
        },
        warmup_epochs: 0,
    };
    let mut masks = slimdet_train::WeightMasks::new();
    for (k, m) in slimdet_prune::masks(&det.graph) {
        masks.insert(k, m);
    }
    let start = slimdet_train::TrainStart {
        model: Some(det),
        masks: Some(masks),
    };
    let mut report = |p: &slimdet_train::Progress| {
        if let slimdet_train::Progress::EpochEnd(e) = p {
            eprintln!("fine-tune epoch {}: loss {:.4}", e.epoch + 1, e.loss);
        }
    };
    let (_, det) = slimdet_train::train_from(&cfg, start, &mut report)
        .with_context(|| format!("fine-tuning on {}", voc.display()))?;
    Ok(det)
}
