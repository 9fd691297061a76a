//! Studies beyond one machine: `slimdet study --shard I/N` runs the variants whose index in
//! the grid is `I` modulo `N` (a deterministic 1/N), and `slimdet study merge DIR...`
//! checks that the shards belong to one study and together cover it once, then writes the
//! whole study's CSV, JSON and report. A shard's rows are those an unsharded run computes:
//! every variant is built from the same base model and evaluated on its own.

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde_json::Value;
use slimdet_eval::results::now_stamp;

use super::config::StudyConfig;
use super::grid;
use super::rows::{Journal, get};

/// One shard of a study: `index` in `0..count`.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Shard {
    /// Which part, from 0.
    pub index: usize,
    /// How many parts.
    pub count: usize,
}

impl Shard {
    /// Parses `I/N` with `N >= 1` and `I < N`.
    pub fn parse(s: &str) -> std::result::Result<Shard, String> {
        let bad = || format!("{s:?}: expected I/N with 0 <= I < N, e.g. 0/4");
        let (i, n) = s.split_once('/').ok_or_else(bad)?;
        let (index, count) = (
            i.trim().parse::<usize>().map_err(|_| bad())?,
            n.trim().parse::<usize>().map_err(|_| bad())?,
        );
        if count == 0 || index >= count {
            return Err(bad());
        }
        Ok(Shard { index, count })
    }

    /// The variants of this shard, in grid order.
    pub fn select(self, variants: Vec<grid::Variant>) -> Vec<grid::Variant> {
        variants
            .into_iter()
            .enumerate()
            .filter(|(i, _)| i % self.count == self.index)
            .map(|(_, v)| v)
            .collect()
    }
}

impl std::fmt::Display for Shard {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}/{}", self.index, self.count)
    }
}

/// Options of `slimdet study merge`.
#[derive(clap::Args)]
pub struct MergeArgs {
    /// The shards' output folders (each holds the latest study its `--shard` run wrote).
    #[arg(required = true)]
    dirs: Vec<PathBuf>,
    /// Output folder for the merged study's CSV, JSON and report.
    #[arg(long, short = 'o', default_value = "results")]
    out: PathBuf,
    /// Do not write the report.
    #[arg(long)]
    no_report: bool,
}

/// One shard's study as found on disk.
struct Found {
    dir: PathBuf,
    journal: Journal,
    shard: Shard,
    /// The recorded fingerprint without its `shard` entry.
    rest: Value,
}

fn read_shard(dir: &Path) -> Result<Found> {
    let Some((journal, _)) = Journal::latest(dir, "")? else {
        bail!(
            "{}: no study here (run `slimdet study --shard I/N --out {0}`)",
            dir.display()
        );
    };
    let text = std::fs::read_to_string(&journal.config)
        .with_context(|| format!("reading {}", journal.config.display()))?;
    let mut rest: Value = serde_json::from_str(&text)
        .with_context(|| format!("{}: not a study configuration", journal.config.display()))?;
    let shard = rest
        .as_object_mut()
        .and_then(|o| o.remove("shard"))
        .and_then(|v| v.as_str().map(str::to_string))
        .with_context(|| {
            format!(
                "{}: study {} was not run with --shard",
                dir.display(),
                journal.stamp
            )
        })?;
    let shard = Shard::parse(&shard)
        .map_err(anyhow::Error::msg)
        .with_context(|| format!("{}", journal.config.display()))?;
    Ok(Found {
        dir: dir.to_path_buf(),
        journal,
        shard,
        rest,
    })
}

/// Runs `slimdet study merge`.
pub fn merge(a: MergeArgs) -> Result<ExitCode> {
    let found: Vec<Found> = a
        .dirs
        .iter()
        .map(|d| read_shard(d))
        .collect::<Result<_>>()?;
    let first = &found[0];
    let count = first.shard.count;
    let mut by_index: BTreeMap<usize, &Found> = BTreeMap::new();
    for f in &found {
        if f.rest != first.rest || f.shard.count != count {
            bail!(
                "{} and {} hold different studies (configuration, dataset, model or shard \
                 count differ): merge the shards of one study",
                first.dir.display(),
                f.dir.display()
            );
        }
        if let Some(other) = by_index.insert(f.shard.index, f) {
            bail!(
                "shard {} appears twice: {} and {}",
                f.shard,
                other.dir.display(),
                f.dir.display()
            );
        }
    }
    let missing: Vec<String> = (0..count)
        .filter(|i| !by_index.contains_key(i))
        .map(|i| format!("{i}/{count}"))
        .collect();
    if !missing.is_empty() {
        bail!(
            "missing shard(s) {}: give every shard's folder",
            missing.join(", ")
        );
    }

    // The grid the shards were cut from, from the recorded configuration.
    let cfg: StudyConfig = serde_json::from_value(first.rest["config"].clone())
        .with_context(|| format!("{}: configuration", first.journal.config.display()))?;
    let only: Vec<String> = serde_json::from_value(first.rest["only"].clone()).unwrap_or_default();
    let variants = grid::select(grid::expand(&cfg)?, &only)?;
    let mut rows = Vec::with_capacity(variants.len());
    for (i, v) in variants.iter().enumerate() {
        let f = by_index[&(i % count)];
        let matching: Vec<_> = f
            .journal
            .rows
            .iter()
            .filter(|r| get(r, "variant").as_str() == Some(v.name.as_str()))
            .collect();
        match matching.as_slice() {
            [row] => rows.push((*row).clone()),
            [] => bail!(
                "shard {} ({}) is unfinished: variant {} has no row (continue it with \
                 --shard {} --resume)",
                f.shard,
                f.dir.display(),
                v.name,
                f.shard
            ),
            _ => bail!(
                "shard {} ({}) has variant {} twice",
                f.shard,
                f.dir.display(),
                v.name
            ),
        }
    }
    let extra: usize = found.iter().map(|f| f.journal.rows.len()).sum::<usize>() - rows.len();
    if extra != 0 {
        bail!("the shards hold {extra} row(s) outside their part of the grid: not one study");
    }

    let fingerprint = serde_json::to_string_pretty(&first.rest)?;
    let mut journal = Journal::create(&a.out, &now_stamp(), &fingerprint)?;
    for r in &rows {
        journal.append(r)?;
    }
    eprintln!(
        "merged {count} shards, {} variants; wrote {} and {}",
        rows.len(),
        journal.csv.display(),
        journal.json.display()
    );
    if !a.no_report {
        let html = super::report_for(&cfg, &a.out, &journal)?;
        eprintln!("wrote {}", html.display());
    }
    Ok(ExitCode::SUCCESS)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shards_parse_and_partition_the_grid() {
        assert_eq!(Shard::parse("1/4"), Ok(Shard { index: 1, count: 4 }));
        for bad in ["4/4", "0/0", "1", "-1/2", "a/b", ""] {
            assert!(Shard::parse(bad).is_err(), "{bad}");
        }
        let all = grid::expand(&StudyConfig::default()).unwrap();
        let n = all.len();
        let mut seen: Vec<String> = (0..3)
            .flat_map(|i| Shard { index: i, count: 3 }.select(all.clone()))
            .map(|v| v.name)
            .collect();
        seen.sort();
        let mut want: Vec<String> = all.into_iter().map(|v| v.name).collect();
        want.sort();
        assert_eq!(seen, want);
        assert_eq!(seen.len(), n);
    }
}
