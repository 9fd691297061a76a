//! Result files: one row per evaluated model variant, written atomically to
//! `results/<YYYY-MM-DD_HHMMSS>_<command>.csv` with a JSON twin (`.json`, a list of
//! objects with the same keys in the same order).
//!
//! The columns are documented in the README ("Results files"); [`COLUMNS`] is that list,
//! and `ap_<class>` columns (one per class, in class order) follow `map`.

use std::path::{Path, PathBuf};

use serde_json::Value;

use crate::error::{Error, Result};

/// The fixed columns, in order. `ap_<class>` columns are inserted after `map`.
pub const COLUMNS: [&str; 36] = [
    "timestamp",
    "command",
    "variant",
    "model",
    "dataset",
    "split",
    "images",
    "metric",
    "map",
    "params",
    "macs",
    "macs_effective",
    "sparsity_conv",
    "sparsity_all",
    "mean_layer_sparsity",
    "file_bytes",
    "file_gz_bytes",
    "forward_mean_ms",
    "forward_std_ms",
    "forward_p50_ms",
    "forward_p90_ms",
    "forward_fps",
    "pipeline_mean_ms",
    "pipeline_std_ms",
    "pipeline_p50_ms",
    "pipeline_p90_ms",
    "pipeline_fps",
    "peak_rss_bytes",
    "arena_bytes",
    "weight_bytes",
    "threads",
    "kernels",
    "cpu",
    "git_rev",
    "eval_wall_s",
    "reproduce",
];

/// One result row: `(column, value)` in column order.
#[derive(Clone, Debug, Default, PartialEq)]
pub struct ResultRow {
    /// Columns and values, in order.
    pub fields: Vec<(String, Value)>,
}

impl ResultRow {
    /// Sets a column (appending it if new).
    pub fn set(&mut self, key: &str, v: impl Into<Value>) {
        let v = v.into();
        match self.fields.iter_mut().find(|(k, _)| k == key) {
            Some(slot) => slot.1 = v,
            None => self.fields.push((key.to_string(), v)),
        }
    }

    /// Column names in order.
    pub fn columns(&self) -> Vec<String> {
        self.fields.iter().map(|(k, _)| k.clone()).collect()
    }

    /// Orders the fields as documented: [`COLUMNS`] with the `ap_*` columns after `map`.
    /// Fails if a documented column is missing or an undocumented one is present.
    pub fn normalized(&self) -> Result<ResultRow> {
        let expected = expected_columns(
            self.fields
                .iter()
                .map(|(k, _)| k.as_str())
                .filter(|k| k.starts_with("ap_")),
        );
        let mut got = self.columns();
        let mut want = expected.clone();
        got.sort();
        want.sort();
        if got != want {
            return Err(Error::Columns {
                expected,
                got: self.columns(),
            });
        }
        let fields = expected
            .iter()
            .map(|k| {
                (
                    k.clone(),
                    self.fields
                        .iter()
                        .find(|(f, _)| f == k)
                        .map(|(_, v)| v.clone())
                        .unwrap_or(Value::Null),
                )
            })
            .collect();
        Ok(ResultRow { fields })
    }
}

/// The documented column list for the given `ap_*` columns.
pub fn expected_columns<'a>(ap: impl Iterator<Item = &'a str>) -> Vec<String> {
    let ap: Vec<String> = ap.map(str::to_string).collect();
    let mut out = Vec::new();
    for c in COLUMNS {
        out.push(c.to_string());
        if c == "map" {
            out.extend(ap.iter().cloned());
        }
    }
    out
}

/// A CSV cell: strings quoted when needed, numbers as JSON prints them, null empty.
fn cell(v: &Value) -> String {
    match v {
        Value::Null => String::new(),
        Value::String(s) if s.contains([',', '"', '\n']) => {
            format!("\"{}\"", s.replace('"', "\"\""))
        }
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

/// Renders rows as CSV (header from the first row).
pub fn to_csv(rows: &[ResultRow]) -> String {
    let mut s = String::new();
    if let Some(first) = rows.first() {
        s += &first
            .columns()
            .iter()
            .map(|c| cell(&Value::String(c.clone())))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
    }
    for r in rows {
        s += &r
            .fields
            .iter()
            .map(|(_, v)| cell(v))
            .collect::<Vec<_>>()
            .join(",");
        s.push('\n');
    }
    s
}

/// Renders rows as a JSON list of objects, keys in column order.
pub fn to_json(rows: &[ResultRow]) -> String {
    let items: Vec<String> = rows
        .iter()
        .map(|r| {
            let body: Vec<String> = r
                .fields
                .iter()
                .map(|(k, v)| format!("{}: {}", Value::String(k.clone()), v))
                .collect();
            format!("  {{{}}}", body.join(", "))
        })
        .collect();
    format!("[\n{}\n]\n", items.join(",\n"))
}

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Writes `dir/<stamp>_<command>.csv` and `.json` (creating `dir`); returns both paths.
pub fn write_results(
    dir: &Path,
    stamp: &str,
    command: &str,
    rows: &[ResultRow],
) -> Result<(PathBuf, PathBuf)> {
    std::fs::create_dir_all(dir).map_err(|source| Error::Io {
        path: dir.to_path_buf(),
        source,
    })?;
    let rows: Vec<ResultRow> = rows
        .iter()
        .map(ResultRow::normalized)
        .collect::<Result<_>>()?;
    let csv = dir.join(format!("{stamp}_{command}.csv"));
    let json = dir.join(format!("{stamp}_{command}.json"));
    write_atomic(&csv, to_csv(&rows).as_bytes())?;
    write_atomic(&json, to_json(&rows).as_bytes())?;
    Ok((csv, json))
}

/// UTC `YYYY-MM-DD_HHMMSS` for a Unix time in seconds.
pub fn timestamp(unix_s: u64) -> String {
    let days = (unix_s / 86_400) as i64;
    let secs = unix_s % 86_400;
    // Civil-from-days (Howard Hinnant's algorithm).
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z - era * 146_097;
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = doy - (153 * mp + 2) / 5 + 1;
    let m = if mp < 10 { mp + 3 } else { mp - 9 };
    let y = yoe + era * 400 + i64::from(m <= 2);
    format!(
        "{y:04}-{m:02}-{d:02}_{:02}{:02}{:02}",
        secs / 3600,
        secs / 60 % 60,
        secs % 60
    )
}

/// The current UTC time as [`timestamp`].
pub fn now_stamp() -> String {
    let s = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    timestamp(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn timestamps() {
        assert_eq!(timestamp(0), "1970-01-01_000000");
        assert_eq!(timestamp(951_782_400), "2000-02-29_000000");
        assert_eq!(timestamp(1_795_000_000), "2026-11-18_110640");
    }

    #[test]
    fn rows_are_checked_and_ordered() {
        let mut r = ResultRow::default();
        for c in COLUMNS.iter().rev() {
            r.set(c, 1);
        }
        r.set("ap_cat", 0.5);
        let n = r.normalized().unwrap();
        let cols = n.columns();
        assert_eq!(cols[0], "timestamp");
        assert_eq!(
            cols[cols.iter().position(|c| c == "map").unwrap() + 1],
            "ap_cat"
        );
        r.set("surprise", 1);
        assert!(r.normalized().is_err());
        let mut short = ResultRow::default();
        short.set("variant", "x");
        assert!(short.normalized().is_err());
    }

    #[test]
    fn csv_quotes_and_json_twin() {
        let mut r = ResultRow::default();
        r.set("reproduce", "slimdet eval --model \"a,b\"");
        r.set("map", Value::Null);
        let csv = to_csv(std::slice::from_ref(&r));
        assert_eq!(
            csv,
            "reproduce,map\n\"slimdet eval --model \"\"a,b\"\"\",\n"
        );
        let v: Value = serde_json::from_str(&to_json(&[r])).unwrap();
        assert_eq!(v[0]["reproduce"], "slimdet eval --model \"a,b\"");
    }
}
