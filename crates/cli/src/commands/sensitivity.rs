//! `slimdet sensitivity`: every layer group (structured methods) or conv (unstructured)
//! pruned alone at several levels, each model scored by VOC07 mAP on a seeded subset of a
//! VOC split; a CSV, a JSON, a plot (SVG and PNG) and a table. With `--target-macs`, the
//! per-group ratios that meet a MAC budget with the least predicted mAP loss are chosen
//! from that table ([`slimdet_prune::budget`]), applied, and measured.
//!
//! The JSON (`sensitivity.json`) is also the input of `slimdet prune --target-macs
//! --sensitivity FILE`, so a budget can be re-solved without re-running the analysis.

use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Value, json};
use slimdet_eval::quant_sensitivity::EvalSet;
use slimdet_eval::{ApMetric, Detection, NanPolicy};
use slimdet_models::{Detector, Predictor};
use slimdet_prune::{
    Allocation, Criterion, Method, SensitivityTable, UnitCurve, UnitMethod, UnitPruner,
};

use crate::model_arg::{ModelArgs, ThreadArgs};
use crate::output::write_atomic;

/// Options of `slimdet sensitivity`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// VOC-layout dataset scored on.
    #[arg(long)]
    voc: PathBuf,
    /// Split file under ImageSets/Main.
    #[arg(long, default_value = "test")]
    split: String,
    /// Images of the seeded validation subset (all of the split when larger).
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u64).range(1..))]
    images: u64,
    /// Seed of the subset and of the random methods.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// filter-l1, filter-l2, bn-scale, random-channel: units are channel groups (dense
    /// MACs drop); l1, random: units are single convs (effective MACs drop).
    #[arg(long, default_value = "filter-l1", value_parser = METHODS)]
    method: String,
    /// Levels (fractions pruned), comma-separated, each in (0, 1).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "0.1,0.2,0.3,0.5,0.7",
        allow_negative_numbers = true
    )]
    levels: Vec<f64>,
    /// Units to leave alone (module path or glob, see `slimdet prune`). Repeatable.
    #[arg(long)]
    exclude: Vec<String>,
    /// Structured only: round kept channel counts up to a multiple of this.
    #[arg(long, default_value_t = 8)]
    channel_multiple: usize,
    /// Output folder: sensitivity.csv, sensitivity.json, sensitivity.svg/.png.
    #[arg(short = 'o', long, default_value = "sensitivity")]
    out: PathBuf,
    /// MAC budget: a fraction of the model's MACs to keep (0.6) or a count (400M);
    /// per-unit ratios are chosen from the analysis, applied and measured.
    #[arg(long, allow_hyphen_values = true)]
    target_macs: Option<String>,
    /// With --target-macs: write the pruned model here (safetensors).
    #[arg(long, requires = "target_macs")]
    out_model: Option<PathBuf>,
    #[command(flatten)]
    threads: ThreadArgs,
}

/// The accepted `--method` values.
pub const METHODS: [&str; 6] = [
    "filter-l1",
    "filter-l2",
    "bn-scale",
    "random-channel",
    "l1",
    "random",
];

/// The unit method of a `--method` name.
pub fn unit_method(name: &str) -> Result<UnitMethod> {
    Ok(match name {
        "filter-l1" => UnitMethod::Structured(Criterion::FilterL1),
        "filter-l2" => UnitMethod::Structured(Criterion::FilterL2),
        "bn-scale" => UnitMethod::Structured(Criterion::BnScale),
        "random-channel" => UnitMethod::Structured(Criterion::Random),
        "l1" => UnitMethod::Unstructured(Method::L1),
        "random" => UnitMethod::Unstructured(Method::Random),
        other => bail!(
            "unknown pruning method `{other}` (one of {})",
            METHODS.join(", ")
        ),
    })
}

/// VOC07 mAP (0..1) of `det` on `set`, images spread over `threads` workers, each with
/// its own predictor; detections down to 0.01 as in `slimdet eval`.
fn score(det: &Detector, set: &EvalSet, threads: usize) -> Result<f64> {
    let workers = threads.clamp(1, set.len().max(1));
    let parts: Vec<Result<Vec<Detection>>> = std::thread::scope(|s| {
        let hs: Vec<_> = (0..workers)
            .map(|w| {
                s.spawn(move || -> Result<Vec<Detection>> {
                    let mut pred = Predictor::new(det, 1)?;
                    let mut out = Vec::new();
                    for i in (w..set.len()).step_by(workers) {
                        pred.forward(&set.inputs[i])?;
                        let (wd, ht) = set.sizes[i];
                        out.extend(pred.postprocess(wd, ht, 0.01, 0).into_iter().map(|d| {
                            Detection {
                                image: set.ids[i].clone(),
                                class_index: d.label,
                                score: d.score,
                                bbox: d.bbox,
                            }
                        }));
                    }
                    Ok(out)
                })
            })
            .collect();
        hs.into_iter()
            .map(|h| {
                h.join()
                    .unwrap_or_else(|_| Err(anyhow::anyhow!("a scoring worker panicked")))
            })
            .collect()
    });
    let mut dets = Vec::new();
    for p in parts {
        dets.extend(p?);
    }
    let r = slimdet_eval::evaluate(
        &set.truth,
        &dets,
        &set.class_names,
        ApMetric::Voc07,
        NanPolicy::Strict,
        set.len(),
    );
    // Mean over the classes present in the subset (all of them on a full split).
    let present: Vec<f64> = r
        .per_class
        .iter()
        .zip(&r.num_gt)
        .filter(|(_, n)| **n > 0)
        .map(|((_, ap), _)| if ap.is_finite() { *ap } else { 0.0 })
        .collect();
    Ok(present.iter().sum::<f64>() / present.len().max(1) as f64)
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    let method = unit_method(&a.method)?;
    if a.channel_multiple == 0 {
        bail!("--channel-multiple must be at least 1");
    }
    let levels = slimdet_prune::sensitivity::check_levels(&a.levels).context("--levels")?;
    let det = a.model.load()?;
    let pruner = UnitPruner {
        method,
        exclude: a.exclude.clone(),
        channel_multiple: a.channel_multiple,
        seed: a.seed,
    };
    // Check the budget before the (long) analysis.
    if let Some(t) = &a.target_macs {
        slimdet_prune::parse_budget(t, pruner.macs(&det)?).context("--target-macs")?;
    }
    let ds =
        crate::dataset_arg::open_for_model(&a.voc, &a.split, &det.class_names, &a.model.model)?;
    let set = EvalSet::from_voc(&det, &ds, a.images as usize, a.seed)
        .with_context(|| format!("loading the validation subset of {}", a.voc.display()))?;
    let threads = a.threads.get();
    let units = pruner.units(&det)?;
    eprintln!(
        "sensitivity: {} units x {} levels on {} images of {} ({}), {} threads",
        units.len(),
        levels.len(),
        set.len(),
        a.voc.display(),
        a.split,
        threads
    );
    let bar = ProgressBar::new((1 + units.len() * levels.len()) as u64).with_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} models  eta {eta}  {msg}")
            .unwrap_or_else(|_| ProgressStyle::default_bar()),
    );
    let start = std::time::Instant::now();
    let table = slimdet_prune::analyze(&det, &pruner, &levels, &mut |d, step| {
        bar.set_message(match step.unit {
            Some(u) => format!("{u} @ {:.0}%", step.level * 100.0),
            None => "baseline".into(),
        });
        let r = score(d, &set, threads).map_err(|e| format!("{e:#}"));
        bar.set_position(step.done as u64 + 1);
        r
    })?;
    bar.finish_and_clear();
    let wall = start.elapsed().as_secs_f64();
    eprintln!(
        "scored {} models in {:.0} s",
        1 + units.len() * levels.len(),
        wall
    );
    std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    let meta = json!({
        "model": a.model.model.display().to_string(), "voc": a.voc.display().to_string(),
        "split": a.split, "images": set.len(), "seed": a.seed, "method": a.method,
        "exclude": a.exclude, "channel_multiple": a.channel_multiple,
        "metric": "voc07 mAP over the classes present in the subset",
        "cost": if pruner.is_structured() { "dense MACs" } else { "effective MACs (non-zero weights)" },
        "wall_s": wall, "threads": threads,
    });
    let written = write_outputs(&a.out, &table, meta)?;
    print_table(&table);
    for p in written {
        eprintln!("wrote {}", p.display());
    }
    if let Some(t) = &a.target_macs {
        let alloc = allocate(&det, &pruner, &table, t)?;
        let pruned = pruner.apply(&det, &alloc.ratios)?;
        let measured = score(&pruned, &set, threads)?;
        print_allocation(&table, &alloc, Some(measured));
        let v = allocation_json(&table, &alloc, Some(measured), t);
        let path = a.out.join("allocation.json");
        write_atomic(&path, serde_json::to_string_pretty(&v)?.as_bytes())?;
        eprintln!("wrote {}", path.display());
        if let Some(out) = &a.out_model {
            pruned
                .save_safetensors(out)
                .with_context(|| format!("writing {}", out.display()))?;
            eprintln!("wrote {}", out.display());
        }
    }
    Ok(ExitCode::SUCCESS)
}

/// Solves `budget` (text of `--target-macs`) on `table`, measuring exact MACs with
/// `pruner`.
pub fn allocate(
    det: &Detector,
    pruner: &UnitPruner,
    table: &SensitivityTable,
    budget: &str,
) -> Result<Allocation> {
    let base = pruner.macs(det)?;
    if base != table.base_macs {
        bail!(
            "the sensitivity table was measured on a model of {} MACs, this one has {base}: re-run `slimdet sensitivity` on this model",
            table.base_macs
        );
    }
    let b = slimdet_prune::parse_budget(budget, base).context("--target-macs")?;
    let mut exact = |r: &[(String, f64)]| pruner.macs(&pruner.apply(det, r)?);
    slimdet_prune::solve(table, b, &mut exact).context("--target-macs")
}

/// Prints the chosen ratios and the predicted (and measured) mAP.
pub fn print_allocation(t: &SensitivityTable, a: &Allocation, measured: Option<f64>) {
    let g = crate::commands::info::group;
    println!("\nunit ratios chosen for the MAC budget:");
    for (u, (name, r)) in a.ratios.iter().enumerate() {
        let idx = t.units.iter().position(|c| &c.name == name).unwrap_or(u);
        let k = a.level_index.get(idx).copied().unwrap_or(0);
        println!(
            "  {name:<28} {:>4.0}%  predicted drop {:.2}",
            r * 100.0,
            100.0 * t.loss(idx, k)
        );
    }
    println!(
        "MACs          {} -> {} ({:.1}%)",
        g(t.base_macs),
        g(a.macs),
        100.0 * a.macs as f64 / t.base_macs.max(1) as f64
    );
    println!(
        "mAP (subset)  baseline {:.2}, predicted {:.2}{}",
        100.0 * t.baseline,
        100.0 * a.predicted,
        measured.map_or(String::new(), |m| format!(", measured {:.2}", 100.0 * m))
    );
}

/// The allocation as JSON.
pub fn allocation_json(
    t: &SensitivityTable,
    a: &Allocation,
    measured: Option<f64>,
    budget: &str,
) -> Value {
    json!({
        "target_macs": budget, "base_macs": t.base_macs, "macs": a.macs,
        "baseline_map": t.baseline, "predicted_map": a.predicted, "measured_map": measured,
        "ratios": a.ratios.iter().map(|(u, r)| json!({"unit": u, "ratio": r})).collect::<Vec<_>>(),
    })
}

fn write_outputs(dir: &Path, t: &SensitivityTable, meta: Value) -> Result<Vec<PathBuf>> {
    let mut csv = String::from("unit,level,map,map_drop,macs,macs_removed_fraction\n");
    for c in &t.units {
        for (k, l) in t.levels.iter().enumerate() {
            csv.push_str(&format!(
                "{},{},{:.6},{:.6},{},{:.6}\n",
                c.name,
                l,
                c.scores[k],
                t.baseline - c.scores[k],
                c.macs[k],
                1.0 - c.macs[k] as f64 / t.base_macs.max(1) as f64
            ));
        }
    }
    let mut v = meta;
    v["levels"] = json!(t.levels);
    v["baseline_map"] = json!(t.baseline);
    v["base_macs"] = json!(t.base_macs);
    v["units"] = json!(
        t.units
            .iter()
            .map(|c| json!({"name": c.name, "map": c.scores, "macs": c.macs}))
            .collect::<Vec<_>>()
    );
    let (p_csv, p_json) = (dir.join("sensitivity.csv"), dir.join("sensitivity.json"));
    write_atomic(&p_csv, csv.as_bytes())?;
    write_atomic(&p_json, serde_json::to_string_pretty(&v)?.as_bytes())?;
    // The eight most sensitive units in colour, the others grey.
    let labelled: Vec<usize> = t.most_sensitive().into_iter().take(8).collect();
    let lines: Vec<slimdet_report::Line> = t
        .units
        .iter()
        .enumerate()
        .map(|(u, c)| {
            let mut points = vec![(0.0, 100.0 * t.baseline)];
            points.extend(
                t.levels
                    .iter()
                    .zip(&c.scores)
                    .map(|(l, s)| (100.0 * l, 100.0 * s)),
            );
            slimdet_report::Line {
                label: labelled.contains(&u).then(|| c.name.clone()),
                points,
            }
        })
        .collect();
    let fig = slimdet_report::Figure::lines(
        "sensitivity",
        "mAP against pruning level, each unit pruned alone",
        ("pruning level of the unit (%)", "mAP on the subset (%)"),
        &lines,
        (900, 560),
    )
    .context("drawing the sensitivity plot")?;
    let (p_svg, p_png) = (dir.join("sensitivity.svg"), dir.join("sensitivity.png"));
    write_atomic(&p_svg, fig.svg.as_bytes())?;
    write_atomic(&p_png, &fig.png)?;
    Ok(vec![p_csv, p_json, p_svg, p_png])
}

fn print_table(t: &SensitivityTable) {
    println!(
        "baseline mAP {:.2} (subset), {} MACs",
        100.0 * t.baseline,
        crate::commands::info::group(t.base_macs)
    );
    print!("{:<28} {:>9}", "unit", "MACs@max");
    for l in &t.levels {
        print!(" {:>6}", format!("{:.0}%", 100.0 * l));
    }
    println!();
    for c in &t.units {
        let top = c.macs.last().copied().unwrap_or(t.base_macs);
        print!(
            "{:<28} {:>8.1}%",
            c.name,
            -100.0 * (1.0 - top as f64 / t.base_macs.max(1) as f64)
        );
        for s in &c.scores {
            print!(" {:>6.2}", 100.0 * s);
        }
        println!();
    }
    println!(
        "(mAP % on the subset with the unit alone pruned at each level; MACs@max: change of the model's MACs at the highest level)"
    );
}

/// Reads a `sensitivity.json` written by this command: the table and the pruner it was
/// measured with.
pub fn load_table(path: &Path) -> Result<(SensitivityTable, UnitPruner, String)> {
    let text =
        std::fs::read_to_string(path).with_context(|| format!("reading {}", path.display()))?;
    let v: Value =
        serde_json::from_str(&text).with_context(|| format!("parsing {}", path.display()))?;
    let bad = |what: &str| anyhow::anyhow!("{}: missing or invalid `{what}`", path.display());
    let f = |x: &Value| x.as_f64();
    let method = v["method"]
        .as_str()
        .ok_or_else(|| bad("method"))?
        .to_string();
    let levels: Vec<f64> = v["levels"]
        .as_array()
        .ok_or_else(|| bad("levels"))?
        .iter()
        .filter_map(f)
        .collect();
    let mut units = Vec::new();
    for u in v["units"].as_array().ok_or_else(|| bad("units"))? {
        let scores: Vec<f64> = u["map"]
            .as_array()
            .ok_or_else(|| bad("units[].map"))?
            .iter()
            .filter_map(f)
            .collect();
        let macs: Vec<u64> = u["macs"]
            .as_array()
            .ok_or_else(|| bad("units[].macs"))?
            .iter()
            .filter_map(Value::as_u64)
            .collect();
        if scores.len() != levels.len() || macs.len() != levels.len() {
            return Err(bad("units[] (one map and macs per level)"));
        }
        units.push(UnitCurve {
            name: u["name"]
                .as_str()
                .ok_or_else(|| bad("units[].name"))?
                .to_string(),
            scores,
            macs,
        });
    }
    let table = SensitivityTable {
        baseline: v["baseline_map"]
            .as_f64()
            .ok_or_else(|| bad("baseline_map"))?,
        base_macs: v["base_macs"].as_u64().ok_or_else(|| bad("base_macs"))?,
        levels,
        units,
    };
    let pruner = UnitPruner {
        method: unit_method(&method)?,
        exclude: v["exclude"]
            .as_array()
            .map(|a| {
                a.iter()
                    .filter_map(|s| s.as_str().map(str::to_string))
                    .collect()
            })
            .unwrap_or_default(),
        channel_multiple: v["channel_multiple"].as_u64().unwrap_or(8) as usize,
        seed: v["seed"].as_u64().unwrap_or(0),
    };
    Ok((table, pruner, method))
}
