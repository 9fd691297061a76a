//! The study's result rows: the documented columns (the eval results columns plus the
//! variant's recipe and seed), the resumable journal and its CSV and JSON renderings.
//!
//! Files of one study, all under the output folder, `<stamp>` = UTC start time:
//! - `<stamp>_study.jsonl`: one JSON object per finished variant, rewritten atomically
//!   (temp file + rename) after each one, so a study killed at any moment loses at most
//!   the variant in progress;
//! - `<stamp>_study.csv`, `<stamp>_study.json`: the same rows, re-rendered each time;
//! - `<stamp>_study.config.json`: the resolved configuration; `--resume` continues the
//!   latest study whose configuration is identical and skips the variants it holds.

use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use serde_json::{Map, Value};
use slimdet_eval::results::{COLUMNS, ResultRow, to_csv, to_json, write_atomic};

/// Columns a study row adds to the eval results columns, with the column each follows.
pub const STUDY_EXTRA: [(&str, &str); 5] = [
    ("variant", "prune_method"),
    ("prune_method", "prune_level"),
    ("prune_level", "quant"),
    ("quant", "finetuned"),
    ("git_rev", "seed"),
];

/// The study CSV's columns in order, with `ap` (the `ap_<class>` columns) after `map`.
pub fn study_columns(ap: &[String]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for c in COLUMNS {
        out.push(c.to_string());
        let mut last = c;
        while let Some((_, next)) = STUDY_EXTRA.iter().find(|(after, _)| *after == last) {
            out.push(next.to_string());
            last = next;
        }
        if c == "map" {
            out.extend(ap.iter().cloned());
        }
    }
    out
}

/// Orders a row as documented; fails on missing or undocumented columns.
pub fn normalize(row: &ResultRow) -> Result<ResultRow> {
    let ap: Vec<String> = row
        .columns()
        .into_iter()
        .filter(|k| k.starts_with("ap_"))
        .collect();
    let want = study_columns(&ap);
    let mut got = row.columns();
    let mut sorted = want.clone();
    got.sort();
    sorted.sort();
    if got != sorted {
        bail!(
            "internal: study row columns {:?} differ from the documented {:?}",
            row.columns(),
            want
        );
    }
    let fields = want
        .iter()
        .map(|k| {
            let v = row
                .fields
                .iter()
                .find(|(f, _)| f == k)
                .map(|(_, v)| v.clone());
            (k.clone(), v.unwrap_or(Value::Null))
        })
        .collect();
    Ok(ResultRow { fields })
}

/// The value of `key` in `row` (null when missing).
pub fn get<'a>(row: &'a ResultRow, key: &str) -> &'a Value {
    row.fields
        .iter()
        .find(|(k, _)| k == key)
        .map_or(&Value::Null, |(_, v)| v)
}

/// The files and finished rows of one study run.
pub struct Journal {
    /// `<stamp>`.
    pub stamp: String,
    /// `<stamp>_study.jsonl`.
    pub jsonl: PathBuf,
    /// `<stamp>_study.csv`.
    pub csv: PathBuf,
    /// `<stamp>_study.json`.
    pub json: PathBuf,
    /// `<stamp>_study.config.json`.
    pub config: PathBuf,
    /// Finished rows, in order.
    pub rows: Vec<ResultRow>,
}

impl Journal {
    fn paths(dir: &Path, stamp: &str) -> Self {
        let p = |suffix: &str| dir.join(format!("{stamp}_study{suffix}"));
        Self {
            stamp: stamp.to_string(),
            jsonl: p(".jsonl"),
            csv: p(".csv"),
            json: p(".json"),
            config: p(".config.json"),
            rows: Vec::new(),
        }
    }

    /// Starts a new study in `dir` at `stamp`, recording its resolved configuration.
    pub fn create(dir: &Path, stamp: &str, config_json: &str) -> Result<Self> {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        let j = Self::paths(dir, stamp);
        write_atomic(&j.config, config_json.as_bytes())
            .with_context(|| format!("writing {}", j.config.display()))?;
        write_atomic(&j.jsonl, b"").with_context(|| format!("writing {}", j.jsonl.display()))?;
        Ok(j)
    }

    /// The latest study in `dir` (by stamp) with its rows, and whether its recorded
    /// configuration equals `config_json`; `None` if `dir` holds no study.
    pub fn latest(dir: &Path, config_json: &str) -> Result<Option<(Self, bool)>> {
        let Ok(entries) = std::fs::read_dir(dir) else {
            return Ok(None);
        };
        let mut stamps: Vec<String> = entries
            .filter_map(|e| e.ok())
            .filter_map(|e| {
                let n = e.file_name().to_string_lossy().to_string();
                n.strip_suffix("_study.config.json").map(str::to_string)
            })
            .collect();
        stamps.sort();
        let Some(stamp) = stamps.pop() else {
            return Ok(None);
        };
        let mut j = Self::paths(dir, &stamp);
        let recorded = std::fs::read_to_string(&j.config)
            .with_context(|| format!("reading {}", j.config.display()))?;
        let text = match std::fs::read_to_string(&j.jsonl) {
            Ok(t) => t,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => String::new(),
            Err(e) => return Err(e).with_context(|| format!("reading {}", j.jsonl.display())),
        };
        for (i, line) in text
            .lines()
            .enumerate()
            .filter(|(_, l)| !l.trim().is_empty())
        {
            let obj: Map<String, Value> = serde_json::from_str(line)
                .with_context(|| format!("{}:{}: not a study row", j.jsonl.display(), i + 1))?;
            j.rows.push(ResultRow {
                fields: obj.into_iter().collect(),
            });
        }
        Ok(Some((j, recorded == config_json)))
    }

    /// Whether `variant` is finished.
    pub fn has(&self, variant: &str) -> bool {
        self.rows
            .iter()
            .any(|r| get(r, "variant").as_str() == Some(variant))
    }

    /// Appends a finished row and rewrites the journal, CSV and JSON atomically.
    pub fn append(&mut self, row: &ResultRow) -> Result<()> {
        self.rows.push(normalize(row)?);
        let mut lines = String::new();
        for r in &self.rows {
            let obj: Map<String, Value> = r.fields.iter().cloned().collect();
            lines += &serde_json::to_string(&obj)?;
            lines.push('\n');
        }
        for (path, bytes) in [
            (&self.jsonl, lines.into_bytes()),
            (&self.csv, to_csv(&self.rows).into_bytes()),
            (&self.json, to_json(&self.rows).into_bytes()),
        ] {
            write_atomic(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn full_row(variant: &str) -> ResultRow {
        let mut r = ResultRow::default();
        for c in study_columns(&["ap_cat".into()]).iter().rev() {
            r.set(c, 1);
        }
        r.set("variant", variant);
        r
    }

    #[test]
    fn columns_extend_the_eval_columns() {
        let cols = study_columns(&["ap_cat".into()]);
        let at = |c: &str| cols.iter().position(|x| x == c).unwrap();
        assert_eq!(cols.len(), COLUMNS.len() + STUDY_EXTRA.len() + 1);
        assert_eq!(at("prune_method"), at("variant") + 1);
        assert_eq!(at("finetuned"), at("variant") + 4);
        assert_eq!(at("seed"), at("git_rev") + 1);
        assert_eq!(at("ap_cat"), at("map") + 1);
        let mut short = full_row("x");
        short.fields.retain(|(k, _)| k != "seed");
        assert!(normalize(&short).is_err());
    }

    #[test]
    fn journal_round_trip_and_resume_lookup() {
        let dir = tempfile::tempdir().unwrap();
        let mut j = Journal::create(dir.path(), "2026-01-01_000000", "{\"a\":1}").unwrap();
        let mut first = full_row("baseline");
        // Needs serde_json's exact float parsing (`float_roundtrip`) to read back equal.
        first.set("map", 0.010123418825946997);
        j.append(&first).unwrap();
        j.append(&full_row("l1-0.5")).unwrap();
        let (back, same) = Journal::latest(dir.path(), "{\"a\":1}").unwrap().unwrap();
        assert!(same);
        assert_eq!(back.rows, j.rows);
        assert!(back.has("l1-0.5") && !back.has("fp16"));
        let (_, same) = Journal::latest(dir.path(), "{\"a\":2}").unwrap().unwrap();
        assert!(!same);
        let csv = std::fs::read_to_string(&j.csv).unwrap();
        assert_eq!(csv.lines().count(), 3);
        assert!(
            Journal::latest(&dir.path().join("none"), "")
                .unwrap()
                .is_none()
        );
    }
}
