//! Helpers shared by the command-line integration tests: running the `slimdet` binary,
//! checking how it exited, and reading the README's documented column tables.
#![allow(dead_code)]

use std::path::Path;
use std::process::{Command, Output};

/// A command for the `slimdet` binary under test, with no arguments yet.
pub fn slimdet() -> Command {
    Command::new(env!("CARGO_BIN_EXE_slimdet"))
}

/// Runs `slimdet` with `args` and returns what it printed and how it exited.
pub fn run(args: &[&str]) -> Output {
    slimdet().args(args).output().expect("run slimdet")
}

/// `o`'s standard error as text.
pub fn stderr(o: &Output) -> String {
    String::from_utf8_lossy(&o.stderr).to_string()
}

/// Asserts that `o` exited successfully; the failure message is its standard error.
#[track_caller]
pub fn assert_success(o: &Output) {
    assert!(o.status.success(), "{}", String::from_utf8_lossy(&o.stderr));
}

/// Asserts that `o` exited successfully; the failure message shows its standard output
/// and standard error.
#[track_caller]
pub fn ok(o: &Output) {
    assert!(
        o.status.success(),
        "stdout: {}\nstderr: {}",
        String::from_utf8_lossy(&o.stdout),
        String::from_utf8_lossy(&o.stderr)
    );
}

/// `p` as a string, for an argument list.
pub fn s(p: &Path) -> String {
    p.display().to_string()
}

/// Column names documented in the table of the README section `## {section}`, the cells
/// of its first column split at commas (`` `a`, `b` `` gives `a` and `b`); `ap_<class>`
/// stands for the per-class columns.
pub fn documented_columns(section: &str) -> Vec<String> {
    let readme =
        std::fs::read_to_string(concat!(env!("CARGO_MANIFEST_DIR"), "/../../README.md")).unwrap();
    let section = readme
        .split(&format!("## {section}"))
        .nth(1)
        .unwrap_or_else(|| panic!("README has a {section} section"));
    let mut cols = Vec::new();
    for line in section
        .lines()
        .skip_while(|l| !l.starts_with("| column"))
        .skip(2)
    {
        if !line.starts_with('|') {
            break;
        }
        let cell = line.split('|').nth(1).unwrap();
        cols.extend(
            cell.split(',')
                .map(|c| c.trim().trim_matches('`').to_string()),
        );
    }
    cols
}

/// Asserts that `o` failed with `needle` in its standard error; the failure message is
/// that standard error.
#[track_caller]
pub fn assert_fails_with(o: &Output, needle: &str) {
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(!o.status.success() && err.contains(needle), "{err}");
}

/// Runs `slimdet quantize` of `model` in static mode, calibrated with the min-max observer
/// on `images` images of the `test` split of `voc`, written to `out`, followed by the
/// `extra` arguments.
pub fn quantize_calibrated(
    model: &Path,
    voc: &Path,
    images: &str,
    out: &Path,
    extra: &[&str],
) -> Output {
    let (model, voc, out) = (s(model), s(voc), s(out));
    let mut args = calibrated_quantize_args(&model, &voc, &out);
    args.extend_from_slice(&["--calib-images", images, "--observer", "minmax"]);
    args.extend_from_slice(extra);
    run(&args)
}

/// The arguments of `slimdet quantize` of `model` in static mode, calibrated on the `test`
/// split of `voc`, written to `out`.
pub fn calibrated_quantize_args<'a>(model: &'a str, voc: &'a str, out: &'a str) -> Vec<&'a str> {
    vec![
        "quantize",
        "--model",
        model,
        "--calib-voc",
        voc,
        "--calib-split",
        "test",
        "-o",
        out,
    ]
}

/// Runs `slimdet dataset synth` writing `train` training and `test` test images into
/// `out`, followed by the `extra` arguments.
pub fn synth_dataset(out: &Path, train: &str, test: &str, extra: &[&str]) -> Output {
    let mut args = vec![
        "dataset",
        "synth",
        "--out",
        out.to_str().unwrap(),
        "--train",
        train,
        "--test",
        test,
    ];
    args.extend_from_slice(extra);
    run(&args)
}

/// Runs `slimdet init` of a randomly initialised model for the class list `classes`,
/// written to `out`, with the `extra` arguments (width, seed) before `-o`.
pub fn init_model(classes: &Path, extra: &[&str], out: &Path) -> Output {
    let mut args = vec!["init", "--classes", classes.to_str().unwrap()];
    args.extend_from_slice(extra);
    args.extend(["-o", out.to_str().unwrap()]);
    run(&args)
}
