//! Conclusions computed from the study rows: Pareto fronts, the best variant under a size
//! or latency budget, the largest per-class AP drop and how far each pruning method goes
//! before accuracy falls by more than a tolerance. Nothing here is written by hand: every
//! sentence of the report's "Conclusions" comes from these numbers.

use crate::data::{Row, baseline};

/// Budgets and tolerances of the conclusions.
#[derive(Clone, Debug, PartialEq)]
pub struct ReportOptions {
    /// Size budget as a fraction of the baseline's gzip-compressed file size.
    pub size_budget_frac: f64,
    /// Latency budget as a fraction of the baseline's mean forward latency.
    pub latency_budget_frac: f64,
    /// mAP drop (absolute, e.g. 0.01 = one point) still counted as "no loss".
    pub map_tolerance: f64,
}

impl Default for ReportOptions {
    /// Half the baseline's size, 80 % of its latency, one mAP point.
    fn default() -> Self {
        Self {
            size_budget_frac: 0.5,
            latency_budget_frac: 0.8,
            map_tolerance: 0.01,
        }
    }
}

/// Indices of the Pareto-optimal points when `x` is minimised and `y` maximised, sorted
/// by `x`. A point is kept if no other point has `x <=` and `y >=` with one strict.
pub fn pareto_front(points: &[(f64, f64)]) -> Vec<usize> {
    let mut idx: Vec<usize> = (0..points.len()).collect();
    idx.sort_by(|&a, &b| {
        points[a]
            .0
            .total_cmp(&points[b].0)
            .then(points[b].1.total_cmp(&points[a].1))
    });
    let mut out = Vec::new();
    let mut best = f64::NEG_INFINITY;
    for i in idx {
        if points[i].1 > best {
            best = points[i].1;
            out.push(i);
        }
    }
    out
}

/// `(row index, x, mAP)` of rows that have both `x_key` and mAP.
pub fn points(rows: &[Row], x_key: &str) -> Vec<(usize, f64, f64)> {
    rows.iter()
        .enumerate()
        .filter_map(|(i, r)| Some((i, r.num(x_key)?, r.map()?)))
        .collect()
}

/// Row indices on the Pareto front of mAP against `x_key` (lower is better).
pub fn front_rows(rows: &[Row], x_key: &str) -> Vec<usize> {
    let p = points(rows, x_key);
    let xy: Vec<(f64, f64)> = p.iter().map(|&(_, x, y)| (x, y)).collect();
    pareto_front(&xy).into_iter().map(|k| p[k].0).collect()
}

/// The highest-mAP row whose `key` is at most `budget`.
pub fn best_under(rows: &[Row], key: &str, budget: f64) -> Option<usize> {
    points(rows, key)
        .into_iter()
        .filter(|&(_, x, _)| x <= budget)
        .max_by(|a, b| a.2.total_cmp(&b.2).then(b.1.total_cmp(&a.1)))
        .map(|(i, _, _)| i)
}

/// A per-class AP change against the baseline.
#[derive(Clone, Debug, PartialEq)]
pub struct ClassDrop {
    /// Row index of the variant.
    pub row: usize,
    /// Class name.
    pub class: String,
    /// Baseline AP.
    pub before: f64,
    /// The variant's AP.
    pub after: f64,
}

/// Per-class AP change (`variant - baseline`) for every row and class with both values.
/// Returns `(class names, per row: changes aligned with the names)`.
pub fn class_deltas(rows: &[Row]) -> (Vec<String>, Vec<Vec<Option<f64>>>) {
    let Some(base) = baseline(rows) else {
        return (Vec::new(), Vec::new());
    };
    let base_aps = base.class_aps();
    let names = base_aps.iter().map(|(c, _)| c.clone()).collect();
    let deltas = rows
        .iter()
        .map(|r| {
            let aps = r.class_aps();
            base_aps
                .iter()
                .map(|(c, b)| {
                    let a = aps.iter().find(|(k, _)| k == c).and_then(|(_, v)| *v)?;
                    Some(a - (*b)?)
                })
                .collect()
        })
        .collect();
    (names, deltas)
}

/// The largest per-class AP drop over all variants.
pub fn largest_class_drop(rows: &[Row]) -> Option<ClassDrop> {
    let base = baseline(rows)?;
    let base_aps = base.class_aps();
    let mut best: Option<ClassDrop> = None;
    for (i, r) in rows.iter().enumerate() {
        if r.is_baseline() {
            continue;
        }
        for (c, a) in r.class_aps() {
            let (Some(a), Some(b)) = (a, base_aps.iter().find(|(k, _)| *k == c).and_then(|x| x.1))
            else {
                continue;
            };
            if best.as_ref().is_none_or(|d| b - a > d.before - d.after) {
                best = Some(ClassDrop {
                    row: i,
                    class: c,
                    before: b,
                    after: a,
                });
            }
        }
    }
    best
}

/// For one pruning method (fp32, not fine-tuned): the largest level whose mAP stays
/// within `tol` of the baseline at it and at every lower level, and the mAP at the
/// method's largest level. `None` if the method has no rows or there is no baseline.
pub fn safe_level(rows: &[Row], method: &str, tol: f64) -> Option<(f64, f64, f64)> {
    let base = baseline(rows)?.map()?;
    let mut pts: Vec<(f64, f64)> = rows
        .iter()
        .filter(|r| {
            r.prune_method().as_deref() == Some(method) && r.quant() == "fp32" && !r.finetuned()
        })
        .filter_map(|r| Some((r.prune_level(), r.map()?)))
        .collect();
    if pts.is_empty() {
        return None;
    }
    pts.sort_by(|a, b| a.0.total_cmp(&b.0));
    let mut safe = 0.0;
    for &(l, m) in &pts {
        if base - m > tol {
            break;
        }
        safe = l;
    }
    let &(max_level, map_at_max) = pts.last()?;
    Some((safe, max_level, map_at_max))
}

/// Pruning methods present (fp32 rows), in first-appearance order.
pub fn prune_methods(rows: &[Row]) -> Vec<String> {
    let mut out: Vec<String> = Vec::new();
    for r in rows {
        if let Some(m) = r.prune_method()
            && r.quant() == "fp32"
            && !out.contains(&m)
        {
            out.push(m);
        }
    }
    out
}

/// The conclusions as sentences (Markdown inline syntax: backticks for names).
pub fn conclusions(rows: &[Row], opts: &ReportOptions) -> Vec<String> {
    let mut out = Vec::new();
    let Some(base) = baseline(rows) else {
        out.push("No baseline row: changes against the baseline cannot be computed.".into());
        return out;
    };
    let pct = |v: f64| format!("{:.2}", v * 100.0);
    let base_map = base.map().unwrap_or(f64::NAN);
    out.push(format!(
        "The baseline `{}` reaches mAP {} ({}, {} images).",
        base.variant(),
        pct(base_map),
        base.text("metric"),
        base.text("images")
    ));
    let describe = |i: usize| {
        let r = &rows[i];
        format!(
            "`{}` (mAP {}, {:+.2} points; {:.2} ms; {:.0} KiB gzip)",
            r.variant(),
            pct(r.map().unwrap_or(f64::NAN)),
            (r.map().unwrap_or(f64::NAN) - base_map) * 100.0,
            r.num("forward_mean_ms").unwrap_or(f64::NAN),
            r.num("file_gz_bytes").unwrap_or(f64::NAN) / 1024.0
        )
    };
    if let Some(size) = base.num("file_gz_bytes") {
        let budget = size * opts.size_budget_frac;
        match best_under(rows, "file_gz_bytes", budget) {
            Some(i) => out.push(format!(
                "Best variant within {:.0} % of the baseline's gzip size ({:.0} KiB): {}.",
                opts.size_budget_frac * 100.0,
                budget / 1024.0,
                describe(i)
            )),
            None => out.push(format!(
                "No variant fits within {:.0} % of the baseline's gzip size ({:.0} KiB).",
                opts.size_budget_frac * 100.0,
                budget / 1024.0
            )),
        }
    }
    if let Some(lat) = base.num("forward_mean_ms") {
        let budget = lat * opts.latency_budget_frac;
        match best_under(rows, "forward_mean_ms", budget) {
            Some(i) => out.push(format!(
                "Best variant within {:.0} % of the baseline's forward latency ({:.2} ms): {}.",
                opts.latency_budget_frac * 100.0,
                budget,
                describe(i)
            )),
            None => out.push(format!(
                "No variant runs within {:.0} % of the baseline's forward latency ({:.2} ms).",
                opts.latency_budget_frac * 100.0,
                budget
            )),
        }
    }
    for m in prune_methods(rows) {
        if let Some((safe, max, at_max)) = safe_level(rows, &m, opts.map_tolerance) {
            let reach = if safe > 0.0 {
                format!(
                    "keeps mAP within {} points of the baseline up to {:.0} %",
                    pct(opts.map_tolerance),
                    safe * 100.0
                )
            } else {
                format!(
                    "loses more than {} points from its first level on",
                    pct(opts.map_tolerance)
                )
            };
            out.push(format!(
                "`{m}` pruning {reach} (at {:.0} %: mAP {}, {:+.2} points).",
                max * 100.0,
                pct(at_max),
                (at_max - base_map) * 100.0
            ));
        }
    }
    if let Some(d) = largest_class_drop(rows) {
        out.push(format!(
            "Largest per-class drop: `{}` in `{}`, AP {} → {} ({:+.2} points).",
            d.class,
            rows[d.row].variant(),
            pct(d.before),
            pct(d.after),
            (d.after - d.before) * 100.0
        ));
    }
    for (key, what) in [
        ("forward_mean_ms", "latency"),
        ("file_gz_bytes", "gzip size"),
    ] {
        let front = front_rows(rows, key);
        if !front.is_empty() {
            let names: Vec<String> = front
                .iter()
                .map(|&i| format!("`{}`", rows[i].variant()))
                .collect();
            out.push(format!(
                "Pareto front of mAP against {what}: {}.",
                names.join(", ")
            ));
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    #[allow(clippy::too_many_arguments)]
    fn row(v: &str, m: &str, l: f64, q: &str, map: f64, lat: f64, gz: f64, cat: f64) -> Row {
        Row::from_pairs([
            ("variant".into(), json!(v)),
            ("prune_method".into(), json!(m)),
            ("prune_level".into(), json!(l)),
            ("quant".into(), json!(q)),
            ("finetuned".into(), json!(false)),
            ("metric".into(), json!("voc07")),
            ("images".into(), json!(10)),
            ("map".into(), json!(map)),
            ("ap_cat".into(), json!(cat)),
            ("ap_dog".into(), json!(map)),
            ("forward_mean_ms".into(), json!(lat)),
            ("file_gz_bytes".into(), json!(gz)),
        ])
    }

    fn rows() -> Vec<Row> {
        vec![
            row("baseline", "", 0.0, "fp32", 0.60, 10.0, 1000.0, 0.7),
            row("l1-0.25", "l1", 0.25, "fp32", 0.595, 9.0, 800.0, 0.69),
            row("l1-0.50", "l1", 0.5, "fp32", 0.50, 8.0, 450.0, 0.3),
            row("fp16", "", 0.0, "fp16", 0.60, 12.0, 500.0, 0.7),
        ]
    }

    #[test]
    fn pareto_front_minimises_x_and_maximises_y() {
        let p = [(1.0, 0.5), (2.0, 0.4), (2.0, 0.7), (3.0, 0.7), (0.5, 0.1)];
        assert_eq!(pareto_front(&p), vec![4, 0, 2]);
        assert!(pareto_front(&[]).is_empty());
    }

    #[test]
    fn budgets_drops_and_safe_levels() {
        let r = rows();
        assert_eq!(best_under(&r, "file_gz_bytes", 500.0), Some(3));
        assert_eq!(best_under(&r, "forward_mean_ms", 8.0), Some(2));
        assert_eq!(best_under(&r, "forward_mean_ms", 1.0), None);
        let d = largest_class_drop(&r).unwrap();
        assert_eq!((d.row, d.class.as_str()), (2, "cat"));
        assert_eq!(safe_level(&r, "l1", 0.01), Some((0.25, 0.5, 0.5)));
        assert_eq!(front_rows(&r, "forward_mean_ms"), vec![2, 1, 0]);
        let (names, deltas) = class_deltas(&r);
        assert_eq!(names, vec!["cat", "dog"]);
        assert!((deltas[2][0].unwrap() + 0.4).abs() < 1e-12);
        let text = conclusions(&r, &ReportOptions::default()).join("\n");
        assert!(text.contains("`fp16`"), "{text}");
        assert!(text.contains("up to 25 %"), "{text}");
        assert!(text.contains("`cat` in `l1-0.50`"), "{text}");
        let mut more = r.clone();
        more.push(row(
            "filter-l1-0.25",
            "filter-l1",
            0.25,
            "fp32",
            0.55,
            7.0,
            700.0,
            0.7,
        ));
        let text = conclusions(&more, &ReportOptions::default()).join("\n");
        assert!(
            text.contains(
                "`filter-l1` pruning loses more than 1.00 points from its first level on"
            ),
            "{text}"
        );
    }
}
