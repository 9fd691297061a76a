//! report.html (self-contained: inline CSS and SVG, no network) and its Markdown twin
//! report.md (figures as `plots/<name>.png`). Both hold the same sections: setup, results
//! table, per-class AP table, the comparison with the reference study (when the grid has
//! its variants), figures, conclusions.

use crate::data::{Row, baseline};
use crate::plots::Figure;

/// One cell of the results table.
type Cell = String;

/// Header and rows of the main results table.
pub fn results_table(rows: &[Row]) -> (Vec<&'static str>, Vec<Vec<Cell>>) {
    let head = vec![
        "variant",
        "mAP (%)",
        "Δ mAP",
        "conv sparsity (%)",
        "params",
        "MACs eff. (M)",
        "file (KiB)",
        "gzip (KiB)",
        "latency (ms)",
        "p90 (ms)",
        "FPS",
        "peak RSS (MiB)",
    ];
    let base = baseline(rows).and_then(Row::map);
    let f = |v: Option<f64>, scale: f64, prec: usize| {
        v.map_or("–".to_string(), |v| format!("{:.*}", prec, v * scale))
    };
    let body = rows
        .iter()
        .map(|r| {
            let map = r.map();
            let delta = match (map, base) {
                (Some(m), Some(b)) => format!("{:+.2}", (m - b) * 100.0),
                _ => "–".into(),
            };
            let lat = match (r.num("forward_mean_ms"), r.num("forward_std_ms")) {
                (Some(m), Some(s)) => format!("{m:.2} ± {s:.2}"),
                (Some(m), None) => format!("{m:.2}"),
                _ => "–".into(),
            };
            vec![
                r.variant(),
                f(map, 100.0, 2),
                delta,
                f(r.num("sparsity_conv"), 100.0, 1),
                f(r.num("params"), 1.0, 0),
                f(r.num("macs_effective"), 1e-6, 1),
                f(r.num("file_bytes"), 1.0 / 1024.0, 0),
                f(r.num("file_gz_bytes"), 1.0 / 1024.0, 0),
                lat,
                f(r.num("forward_p90_ms"), 1.0, 2),
                f(r.num("forward_fps"), 1.0, 1),
                f(r.num("peak_rss_bytes"), 1.0 / (1024.0 * 1024.0), 1),
            ]
        })
        .collect();
    (head, body)
}

/// Header and rows of the per-class AP table (AP in %).
pub fn class_table(rows: &[Row]) -> (Vec<String>, Vec<Vec<Cell>>) {
    let classes: Vec<String> = rows
        .first()
        .map(|r| r.class_aps().into_iter().map(|(c, _)| c).collect())
        .unwrap_or_default();
    let mut head = vec!["variant".to_string()];
    head.extend(classes.iter().cloned());
    let body = rows
        .iter()
        .map(|r| {
            let aps = r.class_aps();
            let mut line = vec![r.variant()];
            line.extend(classes.iter().map(|c| {
                aps.iter()
                    .find(|(k, _)| k == c)
                    .and_then(|(_, v)| *v)
                    .map_or("–".into(), |v| format!("{:.1}", v * 100.0))
            }));
            line
        })
        .collect();
    (head, body)
}

fn esc(s: &str) -> String {
    s.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Markdown inline code (`` `x` ``) to `<code>x</code>`, the rest escaped.
fn md_inline_to_html(s: &str) -> String {
    esc(s)
        .split('`')
        .enumerate()
        .map(|(i, part)| {
            if i % 2 == 1 {
                format!("<code>{part}</code>")
            } else {
                part.to_string()
            }
        })
        .collect()
}

fn html_table<S: AsRef<str>>(head: &[S], body: &[Vec<String>]) -> String {
    let mut s = String::from("<table>\n<thead><tr>");
    for h in head {
        s += &format!("<th>{}</th>", esc(h.as_ref()));
    }
    s += "</tr></thead>\n<tbody>\n";
    for row in body {
        s += "<tr>";
        for (i, c) in row.iter().enumerate() {
            let tag = if i == 0 { "th" } else { "td" };
            s += &format!("<{tag}>{}</{tag}>", esc(c));
        }
        s += "</tr>\n";
    }
    s + "</tbody>\n</table>\n"
}

fn md_table<S: AsRef<str>>(head: &[S], body: &[Vec<String>]) -> String {
    let cell = |c: &str| c.replace('|', "\\|");
    let mut s = format!(
        "| {} |\n|{}\n",
        head.iter()
            .map(|h| cell(h.as_ref()))
            .collect::<Vec<_>>()
            .join(" | "),
        "---|".repeat(head.len())
    );
    for row in body {
        s += &format!(
            "| {} |\n",
            row.iter().map(|c| cell(c)).collect::<Vec<_>>().join(" | ")
        );
    }
    s
}

/// The SVG document without an XML declaration, ready to inline.
fn inline_svg(svg: &str) -> &str {
    match svg.find("<svg") {
        Some(i) => &svg[i..],
        None => svg,
    }
}

const CSS: &str = "body{font-family:sans-serif;max-width:1200px;margin:2em auto;padding:0 1em;color:#222}\
table{border-collapse:collapse;margin:1em 0;font-size:13px}\
th,td{border:1px solid #ccc;padding:3px 7px;text-align:right}\
thead th{background:#f0f0f0;text-align:center}tbody th{text-align:left;font-weight:normal}\
figure{margin:1.5em 0}figcaption{font-weight:bold;margin-bottom:.4em}\
code{background:#f4f4f4;padding:0 3px}.scroll{overflow-x:auto}\
table.setup td{text-align:left}";

/// Renders report.html.
pub fn html(
    title: &str,
    setup: &[(String, String)],
    rows: &[Row],
    figures: &[Figure],
    conclusions: &[String],
) -> String {
    let mut s = format!(
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n<title>{}</title>\n<style>{CSS}</style>\n</head>\n<body>\n<h1>{}</h1>\n",
        esc(title),
        esc(title)
    );
    s += "<h2>Setup</h2>\n";
    let setup_rows: Vec<Vec<String>> = setup
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    s += &html_table(&["", "value"], &setup_rows).replacen("<table>", "<table class=\"setup\">", 1);
    s += "<h2>Conclusions</h2>\n<ul>\n";
    for c in conclusions {
        s += &format!("<li>{}</li>\n", md_inline_to_html(c));
    }
    s += "</ul>\n<h2>Results</h2>\n<div class=\"scroll\">\n";
    let (head, body) = results_table(rows);
    s += &html_table(&head, &body);
    s += "</div>\n<h2>Per-class AP (%)</h2>\n<div class=\"scroll\">\n";
    let (head, body) = class_table(rows);
    s += &html_table(&head, &body);
    s += "</div>\n";
    if let Some(sec) = crate::reference::section(rows) {
        s += "<h2>Compared with the reference study</h2>\n";
        for t in &sec.tables {
            s += &format!("<h3>{}</h3>\n<div class=\"scroll\">\n", esc(&t.title));
            s += &html_table(&t.head, &t.body);
            s += "</div>\n";
        }
        s += "<ul>\n";
        for n in &sec.notes {
            s += &format!("<li>{}</li>\n", md_inline_to_html(n));
        }
        s += "</ul>\n";
    }
    s += "<h2>Figures</h2>\n";
    for f in figures {
        s += &format!(
            "<figure id=\"{}\">\n<figcaption>{}</figcaption>\n<div class=\"scroll\">{}</div>\n</figure>\n",
            esc(&f.name),
            esc(&f.title),
            inline_svg(&f.svg)
        );
    }
    s + "</body>\n</html>\n"
}

/// Renders report.md; figures are linked as `plots/<name>.png`.
pub fn markdown(
    title: &str,
    setup: &[(String, String)],
    rows: &[Row],
    figures: &[Figure],
    conclusions: &[String],
) -> String {
    let mut s = format!("# {title}\n\n## Setup\n\n");
    let setup_rows: Vec<Vec<String>> = setup
        .iter()
        .map(|(k, v)| vec![k.clone(), v.clone()])
        .collect();
    s += &md_table(&["", "value"], &setup_rows);
    s += "\n## Conclusions\n\n";
    for c in conclusions {
        s += &format!("- {c}\n");
    }
    s += "\n## Results\n\n";
    let (head, body) = results_table(rows);
    s += &md_table(&head, &body);
    s += "\n## Per-class AP (%)\n\n";
    let (head, body) = class_table(rows);
    s += &md_table(&head, &body);
    if let Some(sec) = crate::reference::section(rows) {
        s += "\n## Compared with the reference study\n";
        for t in &sec.tables {
            s += &format!("\n### {}\n\n", t.title);
            s += &md_table(&t.head, &t.body);
        }
        s += "\n";
        for n in &sec.notes {
            s += &format!("- {n}\n");
        }
    }
    s += "\n## Figures\n\n";
    for f in figures {
        s += &format!(
            "### {}\n\n![{}](plots/{}.png)\n\n",
            f.title, f.title, f.name
        );
    }
    s
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_and_inline_code() {
        assert_eq!(md_inline_to_html("a `<b>` c"), "a <code>&lt;b&gt;</code> c");
        assert_eq!(
            md_table(&["a|b"], &[vec!["x".into()]]),
            "| a\\|b |\n|---|\n| x |\n"
        );
        assert_eq!(inline_svg("<?xml version=\"1.0\"?>\n<svg x>"), "<svg x>");
    }
}
