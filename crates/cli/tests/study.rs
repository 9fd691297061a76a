//! `slimdet study` end to end on a small synthetic dataset and a randomly initialised
//! model: the documented CSV columns, resuming after SIGKILL, configuration errors, the
//! report (and, where Chromium is installed, the report rendered by a browser).

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};
use std::sync::OnceLock;
use std::time::{Duration, Instant};

use common::{documented_columns, init_model, ok, run, slimdet, synth_dataset};

/// `(dataset, model)`: 16 trainval and 24 test synthetic images and a width-0.5 random
/// model, made once per test process.
fn fixture() -> &'static (PathBuf, PathBuf) {
    static F: OnceLock<(PathBuf, PathBuf)> = OnceLock::new();
    F.get_or_init(|| {
        let dir = PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
            .join(format!("study-{}", std::process::id()));
        let data = dir.join("synth");
        let model = dir.join("m.safetensors");
        ok(&synth_dataset(&data, "16", "24", &["--threads", "2"]));
        ok(&init_model(
            &data.join("labels.txt"),
            &["--width", "0.5", "--seed", "3"],
            &model,
        ));
        (data, model)
    })
}

fn study_args<'a>(out: &'a Path, extra: &[&'a str]) -> Vec<String> {
    let (data, model) = fixture();
    let mut v: Vec<String> = [
        "study",
        "--voc",
        data.to_str().unwrap(),
        "--model",
        model.to_str().unwrap(),
        "--threads",
        "2",
        "--out",
        out.to_str().unwrap(),
    ]
    .iter()
    .map(|s| s.to_string())
    .collect();
    v.extend(extra.iter().map(|s| s.to_string()));
    v
}

/// Runs `slimdet` with `args` followed by `-o <out>`.
fn run_to(args: &[&str], out: &Path) -> Output {
    slimdet().args(args).arg("-o").arg(out).output().unwrap()
}

/// Runs `slimdet study` on the fixture (see [`study_args`]).
fn study(out: &Path, extra: &[&str]) -> Output {
    slimdet().args(study_args(out, extra)).output().unwrap()
}

/// Runs `slimdet study --quick` of `model` into `out`.
fn quick_study(model: &str, out: &Path) -> Output {
    run(&[
        "study",
        "--quick",
        "--model",
        model,
        "--out",
        out.to_str().unwrap(),
    ])
}

/// The entries of `dir` whose path ends with `suffix`, in directory order.
fn files_with_suffix(dir: &Path, suffix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.to_string_lossy().ends_with(suffix))
        .collect()
}

/// The one entry of `dir` whose path ends with `suffix`.
fn file_with_suffix(dir: &Path, suffix: &str) -> PathBuf {
    let mut found = files_with_suffix(dir, suffix);
    assert_eq!(
        found.len(),
        1,
        "one *{suffix} in {}: {found:?}",
        dir.display()
    );
    found.pop().unwrap()
}

/// The rows of the one `*_study.json` in `dir`.
fn study_json(dir: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(file_with_suffix(dir, "_study.json")).unwrap())
        .unwrap()
}

/// `(variant, accuracy columns)` of every row of a study CSV.
fn accuracy(csv: &Path) -> Vec<(String, Vec<String>)> {
    let text = std::fs::read_to_string(csv).unwrap();
    let mut lines = text.lines();
    let head: Vec<&str> = lines.next().unwrap().split(',').collect();
    let keep: Vec<usize> = head
        .iter()
        .enumerate()
        .filter(|(_, c)| {
            [
                "variant",
                "metric",
                "images",
                "map",
                "prune_method",
                "prune_level",
                "quant",
            ]
            .contains(c)
                || c.starts_with("ap_")
                || c.starts_with("sparsity")
        })
        .map(|(i, _)| i)
        .collect();
    let v = head.iter().position(|c| *c == "variant").unwrap();
    lines
        .map(|l| {
            // No accuracy column holds a comma; `reproduce` (last) may, harmlessly.
            let cells: Vec<&str> = l.split(',').collect();
            (
                cells[v].to_string(),
                keep.iter().map(|&i| cells[i].to_string()).collect(),
            )
        })
        .collect()
}

#[test]
fn quick_study_writes_documented_columns_and_a_report() {
    let out = tempfile::tempdir().unwrap();
    ok(&study(out.path(), &["--quick"]));
    let csv = file_with_suffix(out.path(), "_study.csv");
    let text = std::fs::read_to_string(&csv).unwrap();
    let header: Vec<String> = text
        .lines()
        .next()
        .unwrap()
        .split(',')
        .map(String::from)
        .collect();
    let mut expected = Vec::new();
    for c in documented_columns("Study output") {
        if c == "ap_<class>" {
            for k in [
                "circle", "square", "triangle", "star", "cross", "ring", "diamond", "hexagon",
                "bar", "heart",
            ] {
                expected.push(format!("ap_{k}"));
            }
        } else {
            expected.push(c);
        }
    }
    assert_eq!(header, expected, "CSV header vs README Study output table");
    let rows = accuracy(&csv);
    assert_eq!(rows[0].0, "baseline");
    assert!(rows.iter().any(|r| r.0 == "l1-0.5"));
    let json = study_json(out.path());
    assert_eq!(json.as_array().unwrap().len(), rows.len());
    let l1 = json
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["variant"] == "l1-0.5")
        .unwrap();
    assert!(
        (l1["sparsity_conv"].as_f64().unwrap() - 0.5).abs() < 0.01,
        "{l1}"
    );
    assert!(l1["reproduce"].as_str().unwrap().ends_with("--only l1-0.5"));
    assert!(l1["forward_mean_ms"].as_f64().unwrap() > 0.0);
    let report = file_with_suffix(out.path(), "_report").join("report.html");
    let html = std::fs::read_to_string(&report).unwrap();
    assert_eq!(html.matches("<svg").count(), 5, "five inline SVG figures");
    for id in [
        "map_vs_level",
        "class_ap_change",
        "pareto_latency",
        "pareto_size",
        "latency_vs_macs",
    ] {
        assert!(html.contains(&format!("<figure id=\"{id}\"")), "{id}");
    }
    assert!(html.contains("l1-0.5") && html.contains("Conclusions"));
    chromium_screenshot(&report);

    // The row's `reproduce` command, run as written, recomputes the same accuracy.
    let cmd: Vec<&str> = l1["reproduce"].as_str().unwrap().split(' ').collect();
    assert_eq!(cmd[0], "slimdet");
    ok(&slimdet()
        .args(&cmd[1..])
        .arg("--no-report")
        .output()
        .unwrap());
    let mut csvs = files_with_suffix(out.path(), "_study.csv");
    csvs.sort();
    assert_eq!(csvs.len(), 2);
    let again = accuracy(&csvs[1]);
    assert_eq!(again.len(), 1);
    assert_eq!(Some(&again[0]), rows.iter().find(|r| r.0 == "l1-0.5"));
}

/// Renders the report in headless Chromium (if installed): the DOM must hold the five
/// SVG figures and the screenshot must be a real image.
fn chromium_screenshot(report: &Path) {
    let Some(chromium) = ["chromium", "chromium-browser"].into_iter().find(|c| {
        Command::new(c)
            .arg("--version")
            .output()
            .is_ok_and(|o| o.status.success())
    }) else {
        println!("skipped: chromium missing");
        return;
    };
    let url = format!("file://{}", report.display());
    let flags = ["--headless", "--no-sandbox", "--disable-gpu"];
    let dom = Command::new(chromium)
        .args(flags)
        .args(["--dump-dom", &url])
        .output()
        .unwrap();
    let dom = String::from_utf8_lossy(&dom.stdout);
    assert_eq!(
        dom.matches("<svg").count(),
        5,
        "figures in the rendered DOM"
    );
    let shot = report.with_file_name("screenshot.png");
    let o = Command::new(chromium)
        .args(flags)
        .args([
            &format!("--screenshot={}", shot.display()),
            "--window-size=1280,2400",
            &url,
        ])
        .output()
        .unwrap();
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
    let bytes = std::fs::read(&shot).unwrap();
    assert!(
        bytes.starts_with(b"\x89PNG") && bytes.len() > 20_000,
        "{} bytes",
        bytes.len()
    );
    if let Ok(dest) = std::env::var("SLIMDET_REPORT_SCREENSHOT") {
        std::fs::copy(&shot, dest).unwrap();
    }
}

#[test]
fn killed_study_resumes_to_the_same_rows() {
    let whole = tempfile::tempdir().unwrap();
    ok(&study(whole.path(), &["--quick", "--no-report"]));
    let reference = accuracy(&file_with_suffix(whole.path(), "_study.csv"));
    assert!(reference.len() >= 4);

    let out = tempfile::tempdir().unwrap();
    let mut child = slimdet()
        .args(study_args(out.path(), &["--quick", "--no-report"]))
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let start = Instant::now();
    let rows_done = || {
        std::fs::read_dir(out.path())
            .ok()
            .and_then(|d| {
                d.filter_map(|e| e.ok())
                    .find(|e| e.file_name().to_string_lossy().ends_with("_study.jsonl"))
            })
            .and_then(|e| std::fs::read_to_string(e.path()).ok())
            .map_or(0, |t| t.lines().count())
    };
    while rows_done() < 2 {
        assert!(
            child.try_wait().unwrap().is_none(),
            "study ended before it was killed"
        );
        assert!(start.elapsed() < Duration::from_secs(300), "no progress");
        std::thread::sleep(Duration::from_millis(20));
    }
    child.kill().unwrap(); // SIGKILL
    child.wait().unwrap();
    let partial = rows_done();
    assert!(
        partial >= 2 && partial < reference.len(),
        "killed midway: {partial} rows"
    );

    let o = study(out.path(), &["--quick", "--no-report", "--resume"]);
    ok(&o);
    assert!(String::from_utf8_lossy(&o.stderr).contains("already done"));
    let resumed = accuracy(&file_with_suffix(out.path(), "_study.csv"));
    assert_eq!(
        resumed, reference,
        "same rows, same accuracy, no duplicates"
    );
    let o = study(out.path(), &["--quick", "--resume", "--report-only"]);
    ok(&o);
    let html = file_with_suffix(out.path(), "_report").join("report.html");
    assert!(
        std::fs::read_to_string(html)
            .unwrap()
            .contains("filter-l1-0.5")
    );
}

#[test]
fn bad_configurations_fail_before_any_work() {
    let dir = tempfile::tempdir().unwrap();
    let cases = [
        (
            "[prune]\nmethods = [\"magic\"]\n",
            "unknown pruning method \"magic\"",
        ),
        ("[prune]\nlevels = [0.5, 1.0]\n", "outside [0, 1)"),
        (
            "[prune]\nmethods = []\n[quant]\nmodes = []\n[combos]\nprune = []\nquant = []\n",
            "grid is empty",
        ),
        ("[prune]\nlevelz = [0.5]\n", "unknown field"),
        ("[quant]\nmodes = [\"int3\"]\n", "unknown quantization mode"),
        (
            "[finetune]\nprecision = \"fp8\"\n",
            "finetune.precision: unknown precision `fp8`",
        ),
    ];
    for (i, (toml, msg)) in cases.iter().enumerate() {
        let cfg = dir.path().join(format!("c{i}.toml"));
        std::fs::write(&cfg, toml).unwrap();
        let out = dir.path().join(format!("out{i}"));
        let o = run(&[
            "study",
            "--config",
            cfg.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
            "--model",
            "/nonexistent/model.safetensors",
        ]);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{toml}: {err}");
        assert!(err.contains(msg), "{toml}: expected {msg:?} in {err}");
        assert!(
            err.contains(&format!("c{i}.toml")),
            "error names the file: {err}"
        );
        assert!(!out.exists(), "nothing written for {toml}");
    }
    let o = quick_study("/nonexistent/m.safetensors", &dir.path().join("x"));
    assert_eq!(o.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&o.stderr).contains("does not exist"));

    // A quantized model is refused: the study quantizes the float model itself.
    let q = dir.path().join("fp16.safetensors");
    let golden = slimdet_testkit::mb2_model();
    let golden = golden.to_str().unwrap();
    ok(&run(&[
        "quantize",
        "--model",
        golden,
        "--mode",
        "fp16",
        "-o",
        q.to_str().unwrap(),
    ]));
    let out = dir.path().join("q");
    let o = quick_study(q.to_str().unwrap(), &out);
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(err.contains("is quantized"), "{err}");
    assert!(!out.exists());
}

#[test]
fn fine_tuned_variant_keeps_its_zeros() {
    let dir = tempfile::tempdir().unwrap();
    let cfg = dir.path().join("ft.toml");
    std::fs::write(
        &cfg,
        "[data]\nlimit = 8\n[eval]\ntiming_runs = 0\n[prune]\nmethods = [\"l1\"]\nlevels = [0.5]\n\
         [quant]\nmodes = []\n[combos]\nprune = []\nquant = []\n\
         [finetune]\nvariants = [[\"l1\", 0.5]]\nepochs = 1\nbatch = 8\n",
    )
    .unwrap();
    let out = dir.path().join("out");
    ok(&study(
        &out,
        &["--config", cfg.to_str().unwrap(), "--no-report"],
    ));
    let json = study_json(&out);
    let rows = json.as_array().unwrap();
    let names: Vec<&str> = rows
        .iter()
        .map(|r| r["variant"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["baseline", "l1-0.5", "l1-0.5-ft"]);
    let (pruned, tuned) = (&rows[1], &rows[2]);
    assert_eq!(tuned["finetuned"], true);
    assert_eq!(
        tuned["sparsity_conv"], pruned["sparsity_conv"],
        "zeros kept"
    );
    assert_ne!(
        tuned["file_gz_bytes"], pruned["file_gz_bytes"],
        "fine-tuning changed the weights"
    );
}

/// The README's first command on its quick preset: no `--voc`, no `--model`: the built-in
/// VOC model on the repository's real evaluation set (`datasets/voc2007`, split `val200`,
/// 60 photos), with the reference-study comparison in the report.
#[test]
fn default_quick_study_runs_the_builtin_model_on_real_photos() {
    let out = tempfile::tempdir().unwrap();
    let o = run_to(&["study", "--quick", "--threads", "2"], out.path());
    ok(&o);
    let rows = accuracy(&file_with_suffix(out.path(), "_study.csv"));
    assert_eq!(rows[0].0, "baseline");
    let json = study_json(out.path());
    let base = &json[0];
    assert_eq!(base["split"], "val200");
    assert_eq!(base["images"], 60);
    assert!(base["ap_person"].is_number(), "the 20 VOC classes: {base}");
    assert!(
        base["map"].as_f64().unwrap() > 0.15,
        "a real detector: {base}"
    );
    let report = std::fs::read_dir(out.path())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .find(|p| p.to_string_lossy().ends_with("_report"))
        .unwrap();
    let md = std::fs::read_to_string(report.join("report.md")).unwrap();
    assert!(md.contains("## Compared with the reference study"), "{md}");
}

/// A dataset folder that is not there is refused with its path and what to do, and the
/// output folder gets no rows.
#[test]
fn missing_dataset_is_a_clear_error() {
    let out = tempfile::tempdir().unwrap();
    let o = run_to(
        &["study", "--quick", "--voc", "/nonexistent/voc"],
        out.path(),
    );
    let err = String::from_utf8_lossy(&o.stderr);
    assert_eq!(o.status.code(), Some(2), "{err}");
    assert!(
        err.contains("/nonexistent/voc") && err.contains("is not there"),
        "{err}"
    );
    let rows = std::fs::read_dir(out.path())
        .map(|d| d.count())
        .unwrap_or(0);
    assert_eq!(rows, 0, "nothing written");
}

/// `--shard I/N` runs split the grid; `study merge` joins them into the rows of an
/// unsharded run (the same accuracy columns, in grid order) and refuses a missing or a
/// duplicated shard.
#[test]
fn sharded_study_merges_to_the_unsharded_rows() {
    let whole = tempfile::tempdir().unwrap();
    ok(&study(whole.path(), &["--quick", "--no-report"]));
    let reference = accuracy(&file_with_suffix(whole.path(), "_study.csv"));

    let shards = tempfile::tempdir().unwrap();
    let dirs: Vec<PathBuf> = (0..2)
        .map(|i| shards.path().join(format!("s{i}")))
        .collect();
    for (i, d) in dirs.iter().enumerate() {
        let s = format!("{i}/2");
        ok(&study(d, &["--quick", "--no-report", "--shard", &s]));
        let part = accuracy(&file_with_suffix(d, "_study.csv"));
        assert!(
            !part.is_empty() && part.len() < reference.len(),
            "shard {s}"
        );
    }
    let merged = shards.path().join("merged");
    let d0 = dirs[0].to_str().unwrap();
    let d1 = dirs[1].to_str().unwrap();
    let m = merged.to_str().unwrap();
    ok(&run(&["study", "merge", d0, d1, "-o", m]));
    assert_eq!(
        accuracy(&file_with_suffix(&merged, "_study.csv")),
        reference
    );
    assert!(
        file_with_suffix(&merged, "_report")
            .join("report.html")
            .exists()
    );

    let fail = |args: &[&str], want: &str| {
        let o = run(args);
        let err = String::from_utf8_lossy(&o.stderr);
        assert_eq!(o.status.code(), Some(2), "{args:?}: {err}");
        assert!(err.contains(want), "{args:?}: {err}");
    };
    fail(&["study", "merge", d0, "-o", m], "missing shard(s) 1/2");
    fail(&["study", "merge", d0, d0, d1, "-o", m], "appears twice");
    fail(
        &["study", "merge", whole.path().to_str().unwrap(), "-o", m],
        "not run with --shard",
    );
    fail(
        &study_args(&merged, &["--shard", "2/2"])
            .iter()
            .map(String::as_str)
            .collect::<Vec<_>>(),
        "0 <= I < N",
    );
}
