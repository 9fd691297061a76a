//! "Compared with the reference study": the tables of the 2020 study that started this
//! project (pruning and INT8 quantization of MobileNetV2-SSD-Lite on Pascal VOC), rebuilt
//! from this study's rows, next to the reference's own figures where it published them,
//! and what it could not show.
//!
//! - fp32 against static int8 (its figures 20–21): mAP, model size, inference time mean and
//!   std, and the per-class AP of both.
//! - L1 (magnitude) pruning at its levels 0–50 % (its figures 22–24): mAP and the AP of
//!   car, bicycle, train and person, file size, time and memory, with structured filter
//!   pruning at the same levels beside it.
//! - What it could not show: a file that really shrinks, a forward pass that really gets
//!   faster, peak memory measured per variant, and fine-tuning that recovers accuracy.

use crate::data::{Row, baseline};

/// The reference's published fp32 / int8 figures (its figures 20–21): mAP (%), model size
/// (MB) and inference time (s).
pub const REFERENCE_FP32_INT8: [(&str, f64, f64, f64); 2] =
    [("fp32", 25.1, 13.5, 0.2), ("int8", 25.2, 3.85, 0.08)];

/// The reference's pruning levels.
pub const REFERENCE_LEVELS: [f64; 12] = [
    0.0, 0.02, 0.04, 0.05, 0.08, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5,
];

/// The classes the reference plotted against the pruning level.
pub const REFERENCE_CLASSES: [&str; 4] = ["car", "bicycle", "train", "person"];

/// One table of the section.
#[derive(Clone, Debug, PartialEq)]
pub struct Table {
    /// Caption.
    pub title: String,
    /// Column names.
    pub head: Vec<String>,
    /// Rows of cells.
    pub body: Vec<Vec<String>>,
}

/// The section: tables and the closing observations.
#[derive(Clone, Debug, PartialEq)]
pub struct Section {
    /// The tables, in order.
    pub tables: Vec<Table>,
    /// Observations (Markdown inline code allowed).
    pub notes: Vec<String>,
}

fn pct(v: Option<f64>) -> String {
    v.map_or("–".into(), |v| format!("{:.2}", v * 100.0))
}

fn num(v: Option<f64>, scale: f64, prec: usize) -> String {
    v.map_or("–".into(), |v| format!("{:.*}", prec, v * scale))
}

fn time(r: &Row) -> String {
    match (r.num("forward_mean_ms"), r.num("forward_std_ms")) {
        (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
        (Some(m), None) => format!("{m:.2}"),
        _ => "–".into(),
    }
}

/// The unpruned, not fine-tuned row of a method at `level` (`None` for the baseline).
fn at_level<'a>(rows: &'a [Row], method: &str, level: f64) -> Option<&'a Row> {
    if level == 0.0 {
        return baseline(rows);
    }
    rows.iter().find(|r| {
        r.prune_method().as_deref() == Some(method)
            && (r.prune_level() - level).abs() < 1e-9
            && r.quant() == "fp32"
            && !r.finetuned()
    })
}

/// The static int8 row to compare (per channel preferred, then any static int8 mode).
fn int8_row(rows: &[Row]) -> Option<&Row> {
    let unpruned = |r: &&Row| r.prune_method().is_none() && !r.finetuned();
    rows.iter()
        .filter(unpruned)
        .find(|r| r.quant().starts_with("int8-channel"))
        .or_else(|| {
            rows.iter()
                .filter(unpruned)
                .find(|r| r.quant().starts_with("int8-"))
        })
}

fn class_ap(r: &Row, class: &str) -> Option<f64> {
    r.class_aps()
        .into_iter()
        .find(|(c, _)| c == class)
        .and_then(|(_, v)| v)
}

/// The section, or `None` when the rows hold neither an int8 variant nor L1 levels.
pub fn section(rows: &[Row]) -> Option<Section> {
    let base = baseline(rows)?;
    let mut tables = Vec::new();
    let mut notes = Vec::new();
    if let Some(q) = int8_row(rows) {
        let mut body: Vec<Vec<String>> = [(base, "fp32"), (q, "static int8")]
            .iter()
            .map(|(r, what)| {
                vec![
                    format!("{what} (`{}`)", r.variant()),
                    pct(r.map()),
                    num(r.num("file_bytes"), 1e-6, 2),
                    time(r),
                ]
            })
            .collect();
        for (what, map, mb, s) in REFERENCE_FP32_INT8 {
            body.push(vec![
                format!("reference {what}"),
                format!("{map:.1}"),
                format!("{mb:.2}"),
                format!("{:.0}", s * 1000.0),
            ]);
        }
        tables.push(Table {
            title: "fp32 against static int8 (reference figures 20–21)".into(),
            head: ["model", "mAP (%)", "size (MB)", "time (ms, mean ± std)"]
                .map(String::from)
                .to_vec(),
            body,
        });
        let body = base
            .class_aps()
            .into_iter()
            .map(|(c, fp)| {
                let i8 = class_ap(q, &c);
                let delta = match (fp, i8) {
                    (Some(a), Some(b)) => format!("{:+.2}", (b - a) * 100.0),
                    _ => "–".into(),
                };
                vec![c, pct(fp), pct(i8), delta]
            })
            .collect();
        tables.push(Table {
            title: "Per-class AP, fp32 against static int8 (%)".into(),
            head: ["class", "fp32", "int8", "Δ"].map(String::from).to_vec(),
            body,
        });
    }
    let l1: Vec<(f64, &Row)> = REFERENCE_LEVELS
        .iter()
        .filter_map(|&l| at_level(rows, "l1", l).map(|r| (l, r)))
        .collect();
    if l1.len() > 1 {
        let mut head: Vec<String> = ["L1 level", "mAP (%)"].map(String::from).to_vec();
        head.extend(REFERENCE_CLASSES.iter().map(|c| format!("{c} AP")));
        head.extend(
            [
                "file (KiB)",
                "time (ms)",
                "peak RSS (MiB)",
                "filter-l1 mAP (%)",
                "filter-l1 file (KiB)",
                "filter-l1 time (ms)",
            ]
            .map(String::from),
        );
        let body = l1
            .iter()
            .map(|&(l, r)| {
                let mut line = vec![format!("{:.0} %", l * 100.0), pct(r.map())];
                line.extend(REFERENCE_CLASSES.iter().map(|c| pct(class_ap(r, c))));
                line.push(num(r.num("file_bytes"), 1.0 / 1024.0, 0));
                line.push(time(r));
                line.push(num(r.num("peak_rss_bytes"), 1.0 / (1024.0 * 1024.0), 1));
                let f = at_level(rows, "filter-l1", l);
                line.push(pct(f.and_then(Row::map)));
                line.push(num(f.and_then(|f| f.num("file_bytes")), 1.0 / 1024.0, 0));
                line.push(f.map_or("–".into(), time));
                line
            })
            .collect();
        tables.push(Table {
            title: "L1 pruning at the reference's levels (reference figures 22–24), structured \
                    filter-l1 beside it"
                .into(),
            head,
            body,
        });
    }
    if tables.is_empty() {
        return None;
    }
    let (bf, bt) = (base.num("file_bytes"), base.num("forward_mean_ms"));
    if let (Some((l, r)), Some(bf)) = (l1.last(), bf)
        && let Some(f) = r.num("file_bytes")
    {
        notes.push(format!(
            "File size really drops with unstructured pruning (sparse encoding): `{}` is {:.0} % \
             of the baseline's {:.1} MB (the reference's pruned files stayed as large).",
            r.variant(),
            100.0 * f / bf,
            bf * 1e-6
        ));
        if let Some(s) = at_level(rows, "filter-l1", *l)
            && let (Some(sf), Some(st), Some(bt)) =
                (s.num("file_bytes"), s.num("forward_mean_ms"), bt)
        {
            notes.push(format!(
                "Structured pruning makes the network itself smaller and faster: `{}` is {:.0} % \
                 of the file and runs in {st:.2} ms against {bt:.2} ms (the reference measured \
                 no speed-up).",
                s.variant(),
                100.0 * sf / bf
            ));
        }
    }
    if rows.iter().all(|r| r.num("peak_rss_bytes").is_some()) {
        notes.push(
            "Memory is the peak resident set of a process that loads the variant and runs it \
             (each variant in its own process), not a figure read from the framework."
                .into(),
        );
    }
    for r in rows.iter().filter(|r| r.finetuned()) {
        let unt = rows.iter().find(|u| {
            !u.finetuned()
                && u.prune_method() == r.prune_method()
                && (u.prune_level() - r.prune_level()).abs() < 1e-9
                && u.quant() == r.quant()
        });
        if let (Some(u), Some(m), Some(b)) = (unt.and_then(Row::map), r.map(), base.map()) {
            notes.push(format!(
                "Fine-tuning recovers accuracy: `{}` at mAP {:.2} against {:.2} before fine-tuning \
                 (baseline {:.2}).",
                r.variant(),
                m * 100.0,
                u * 100.0,
                b * 100.0
            ));
        }
    }
    Some(Section { tables, notes })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn row(variant: &str, method: &str, level: f64, quant: &str, ft: bool, map: f64) -> Row {
        Row::from_pairs([
            ("variant".into(), json!(variant)),
            ("prune_method".into(), json!(method)),
            ("prune_level".into(), json!(level)),
            ("quant".into(), json!(quant)),
            ("finetuned".into(), json!(ft)),
            ("map".into(), json!(map)),
            ("ap_car".into(), json!(map + 0.1)),
            ("ap_person".into(), json!(map - 0.1)),
            ("file_bytes".into(), json!(13.6e6 * (1.0 - level))),
            ("forward_mean_ms".into(), json!(10.0 * (1.0 - level))),
            ("forward_std_ms".into(), json!(0.1)),
            ("peak_rss_bytes".into(), json!(5e7)),
        ])
    }

    #[test]
    fn tables_follow_the_reference_layout() {
        let rows = vec![
            row("baseline", "", 0.0, "fp32", false, 0.6),
            row(
                "int8-channel-entropy",
                "",
                0.0,
                "int8-channel-entropy",
                false,
                0.59,
            ),
            row("l1-0.3", "l1", 0.3, "fp32", false, 0.5),
            row("l1-0.5", "l1", 0.5, "fp32", false, 0.3),
            row("l1-0.5-ft", "l1", 0.5, "fp32", true, 0.55),
            row("filter-l1-0.5", "filter-l1", 0.5, "fp32", false, 0.2),
        ];
        let s = section(&rows).unwrap();
        assert_eq!(s.tables.len(), 3);
        let fp = &s.tables[0];
        assert_eq!(fp.body[0][1], "60.00");
        assert_eq!(fp.body[1][1], "59.00");
        assert_eq!(fp.body[2][0], "reference fp32");
        assert_eq!(fp.body[3][2], "3.85");
        let classes = &s.tables[1];
        assert_eq!(classes.body[0], ["car", "70.00", "69.00", "-1.00"]);
        let l1 = &s.tables[2];
        // Levels 0, 30 and 50 % (the fine-tuned row is not a level), filter-l1 beside 50 %.
        assert_eq!(l1.body.len(), 3);
        assert_eq!(l1.body[2][0], "50 %");
        assert_eq!(l1.body[2][1], "30.00");
        assert_eq!(l1.body[2][9], "20.00");
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("`l1-0.5-ft` at mAP 55.00 against 30.00"))
        );
        assert!(
            s.notes
                .iter()
                .any(|n| n.contains("`filter-l1-0.5` is 50 %"))
        );
        assert!(section(&rows[..1]).is_none(), "nothing to compare");
    }
}
