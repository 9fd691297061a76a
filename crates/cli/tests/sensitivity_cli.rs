//! `slimdet sensitivity` end to end on the synthetic-shapes model and a small generated synthetic
//! dataset: the CSV/JSON/plot, `--target-macs` reaching its budget (also through `slimdet
//! prune --sensitivity`), and clear refusals.

mod common;

use std::path::Path;
use std::process::Output;

use common::{run, synth_dataset};

/// Asserts that `o` succeeded (showing its standard error otherwise); returns its
/// standard output.
fn ok(o: &Output) -> String {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    String::from_utf8_lossy(&o.stdout).to_string()
}

/// The JSON file `p`, parsed.
fn read_json(p: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(p).unwrap()).unwrap()
}

/// `slimdet prune` of `model` (when given) by `method` to the MAC budget `target`, solved
/// from the sensitivity table `table`, written to `out`, followed by the `extra` arguments.
fn prune_to_budget(
    model: Option<&str>,
    method: &str,
    target: &str,
    table: &Path,
    out: &Path,
    extra: &[&str],
) -> Output {
    let mut args = vec!["prune"];
    if let Some(model) = model {
        args.extend(["--model", model]);
    }
    args.extend([
        "--method",
        method,
        "--target-macs",
        target,
        "--sensitivity",
        table.to_str().unwrap(),
    ]);
    args.extend_from_slice(extra);
    args.extend(["-o", out.to_str().unwrap()]);
    run(&args)
}

#[test]
fn analysis_outputs_budget_and_refusals() {
    let dir = tempfile::tempdir().unwrap();
    let voc = dir.path().join("voc");
    let voc_s = voc.to_str().unwrap();
    ok(&synth_dataset(&voc, "2", "8", &[]));
    let out = dir.path().join("sens");
    let model = dir.path().join("m.safetensors");
    let synth_model = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/mb2-ssd-lite-synth.safetensors"
    );
    let stdout = ok(&run(&[
        "sensitivity",
        "--model",
        synth_model,
        "--voc",
        voc_s,
        "--images",
        "6",
        "--levels",
        "0.5",
        "-o",
        out.to_str().unwrap(),
        "--threads",
        "2",
        "--target-macs",
        "0.9",
        "--out-model",
        model.to_str().unwrap(),
    ]));
    assert!(
        stdout.contains("baseline mAP") && stdout.contains("measured"),
        "{stdout}"
    );
    let j = read_json(&out.join("sensitivity.json"));
    let units = j["units"].as_array().unwrap();
    assert!(units.len() > 10);
    assert_eq!(j["images"], 6);
    assert_eq!(j["levels"], serde_json::json!([0.5]));
    let base = j["base_macs"].as_u64().unwrap();
    for u in units {
        assert!(u["macs"][0].as_u64().unwrap() < base, "{u}");
    }
    let csv = std::fs::read_to_string(out.join("sensitivity.csv")).unwrap();
    assert_eq!(csv.lines().count(), 1 + units.len());
    assert!(csv.starts_with("unit,level,map,"));
    for f in ["sensitivity.svg", "sensitivity.png"] {
        assert!(std::fs::metadata(out.join(f)).unwrap().len() > 1000, "{f}");
    }
    let alloc = read_json(&out.join("allocation.json"));
    let reached = alloc["macs"].as_u64().unwrap();
    assert!(reached <= base * 9 / 10, "{reached} > 0.9 x {base}");
    assert!(alloc["measured_map"].as_f64().is_some());
    // The written model has the MACs the solver reached.
    let info: serde_json::Value = serde_json::from_str(&ok(&run(&[
        "info",
        "--model",
        model.to_str().unwrap(),
        "--format",
        "json",
    ])))
    .unwrap();
    assert_eq!(info["macs"].as_u64().unwrap(), reached);
    // `slimdet prune` re-solves the same budget from the JSON to the same model size.
    let pruned = dir.path().join("p.safetensors");
    let table = out.join("sensitivity.json");
    let pj: serde_json::Value = serde_json::from_str(&ok(&prune_to_budget(
        Some(synth_model),
        "filter-l1",
        "0.9",
        &table,
        &pruned,
        &["--format", "json"],
    )))
    .unwrap();
    assert_eq!(pj["macs_after"].as_u64().unwrap(), reached);
    // An impossible budget: every group at 50 % cannot reach 5 % of the MACs.
    let e = prune_to_budget(Some(synth_model), "filter-l1", "0.05", &table, &pruned, &[]);
    let msg = String::from_utf8_lossy(&e.stderr);
    assert!(
        !e.status.success() && msg.contains("cannot be reached"),
        "{msg}"
    );
    // A table of another method is refused.
    let e = prune_to_budget(Some(synth_model), "filter-l2", "0.9", &table, &pruned, &[]);
    assert!(!e.status.success());
    assert!(String::from_utf8_lossy(&e.stderr).contains("measured with --method filter-l1"));
}

#[test]
fn bad_levels_and_budgets_are_refused_before_the_analysis() {
    let dir = tempfile::tempdir().unwrap();
    for (flag, value, needle) in [
        ("--levels", "0.5,1.5", "outside [0, 1)"),
        ("--levels", "0", "outside [0, 1)"),
        ("--target-macs", "-3", "not a fraction"),
        ("--target-macs", "lots", "not a fraction"),
    ] {
        let e = run(&[
            "sensitivity",
            "--voc",
            dir.path().to_str().unwrap(),
            flag,
            value,
            "-o",
            dir.path().join("o").to_str().unwrap(),
        ]);
        let msg = String::from_utf8_lossy(&e.stderr);
        assert!(
            !e.status.success() && msg.contains(needle),
            "{flag} {value}: {msg}"
        );
        assert!(!dir.path().join("o").exists());
    }
}

#[test]
fn broken_sensitivity_tables_are_refused_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("p.safetensors");
    for (name, text, needle) in [
        (
            "truncated.json",
            "{\"method\": \"filter-l1\", \"units\": [",
            "parsing",
        ),
        (
            "fields.json",
            "{\"units\": []}",
            "missing or invalid `method`",
        ),
    ] {
        let table = dir.path().join(name);
        std::fs::write(&table, text).unwrap();
        let e = prune_to_budget(None, "filter-l1", "0.9", &table, &out, &[]);
        let msg = String::from_utf8_lossy(&e.stderr);
        assert!(!e.status.success(), "{name}: {msg}");
        assert!(msg.contains(name) && msg.contains(needle), "{name}: {msg}");
        assert!(!out.exists(), "{name}: no output is written");
    }
}
