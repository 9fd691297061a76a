//! Study reports for slimdet: figures (SVG and PNG, drawn with plotters), conclusions
//! computed from the rows, and a self-contained report.html with its Markdown twin.
//!
//! Why a crate of its own: the study command measures, this crate only reads the rows it
//! wrote (one JSON object per variant, see the README's "Study output"), so a report can
//! be rebuilt from a finished or partial study without re-running anything.
//!
//! - [`data`]: the rows and the columns the report interprets.
//! - [`analysis`]: Pareto fronts, budgets, per-class drops, safe pruning levels.
//! - [`plots`]: the figures.
//! - [`reference`]: the tables of the 2020 reference study, rebuilt from the rows.
//! - [`render`]: HTML and Markdown.
//! - [`write_report`]: everything, written atomically under one folder.

pub mod analysis;
pub mod data;
mod error;
mod font;
pub mod plots;
pub mod reference;
pub mod render;

use std::path::{Path, PathBuf};

pub use analysis::ReportOptions;
pub use data::{Row, rows_from_json};
pub use error::{Error, Result};
pub use plots::{Figure, Line};

/// What [`write_report`] wrote.
#[derive(Clone, Debug)]
pub struct Written {
    /// `report.html`.
    pub html: PathBuf,
    /// `report.md`.
    pub markdown: PathBuf,
    /// `plots/<name>.svg` and `.png` for every figure.
    pub plots: Vec<PathBuf>,
}

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}

/// Draws every figure and writes `dir/plots/*.svg`, `dir/plots/*.png`, `dir/report.html`
/// and `dir/report.md`. `setup` is shown as a table of `(what, value)` (machine, versions,
/// dataset, model, ...). Fails on an empty row list.
pub fn write_report(
    dir: &Path,
    title: &str,
    setup: &[(String, String)],
    rows: &[Row],
    opts: &ReportOptions,
) -> Result<Written> {
    if rows.is_empty() {
        return Err(Error::Input("no study rows to report on".into()));
    }
    let plots_dir = dir.join("plots");
    std::fs::create_dir_all(&plots_dir).map_err(|source| Error::Io {
        path: plots_dir.clone(),
        source,
    })?;
    let figures = Figure::all(rows)?;
    let mut plots = Vec::new();
    for f in &figures {
        let svg = plots_dir.join(format!("{}.svg", f.name));
        let png = plots_dir.join(format!("{}.png", f.name));
        write_atomic(&svg, f.svg.as_bytes())?;
        write_atomic(&png, &f.png)?;
        plots.extend([svg, png]);
    }
    let conclusions = analysis::conclusions(rows, opts);
    let html = dir.join("report.html");
    let markdown = dir.join("report.md");
    write_atomic(
        &html,
        render::html(title, setup, rows, &figures, &conclusions).as_bytes(),
    )?;
    write_atomic(
        &markdown,
        render::markdown(title, setup, rows, &figures, &conclusions).as_bytes(),
    )?;
    Ok(Written {
        html,
        markdown,
        plots,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    fn rows() -> Vec<Row> {
        let mut out = Vec::new();
        let mut add = |v: &str, m: &str, l: f64, q: &str, map: f64, lat: f64, gz: f64| {
            out.push(Row::from_pairs([
                ("variant".into(), json!(v)),
                ("prune_method".into(), json!(m)),
                ("prune_level".into(), json!(l)),
                ("quant".into(), json!(q)),
                ("finetuned".into(), json!(false)),
                ("metric".into(), json!("voc07")),
                ("images".into(), json!(50)),
                ("map".into(), json!(map)),
                ("ap_circle".into(), json!(map + 0.05)),
                ("ap_pottedplant".into(), json!(map - 0.05 * l)),
                ("sparsity_conv".into(), json!(l)),
                ("params".into(), json!(1000)),
                ("macs_effective".into(), json!(1e8 * (1.0 - l))),
                ("file_bytes".into(), json!(4e6)),
                ("file_gz_bytes".into(), json!(gz)),
                ("forward_mean_ms".into(), json!(lat)),
                ("forward_std_ms".into(), json!(0.1)),
                ("forward_p90_ms".into(), json!(lat + 0.2)),
                ("forward_fps".into(), json!(1000.0 / lat)),
                ("peak_rss_bytes".into(), json!(5e7)),
            ]));
        };
        add("baseline", "", 0.0, "fp32", 0.6, 10.0, 3.7e6);
        for (i, l) in [0.1, 0.3, 0.5].iter().enumerate() {
            add(
                &format!("l1-{l:.2}"),
                "l1",
                *l,
                "fp32",
                0.6 - 0.1 * l * l,
                10.0 - i as f64,
                3.7e6 * (1.0 - l),
            );
            add(
                &format!("filter-l1-{l:.2}"),
                "filter-l1",
                *l,
                "fp32",
                0.6 - 0.3 * l,
                9.0 - 2.0 * i as f64,
                3.7e6 * (1.0 - l),
            );
        }
        add("fp16", "", 0.0, "fp16", 0.6, 11.0, 1.8e6);
        out
    }

    #[test]
    fn report_files_are_written_with_inline_svg_and_png() {
        let dir = tempfile::tempdir().unwrap();
        let setup = vec![("CPU".to_string(), "test <cpu>".to_string())];
        let w = write_report(
            dir.path(),
            "Study",
            &setup,
            &rows(),
            &ReportOptions::default(),
        )
        .unwrap();
        let html = std::fs::read_to_string(&w.html).unwrap();
        assert_eq!(html.matches("<svg").count(), 5, "five inline figures");
        assert!(html.contains("test &lt;cpu&gt;"));
        assert!(!html.contains("<script"), "no scripts");
        assert!(!html.contains("src=\"http"), "no network resources");
        assert!(html.contains("pottedplant"));
        let md = std::fs::read_to_string(&w.markdown).unwrap();
        assert!(md.contains("![mAP against pruning level](plots/map_vs_level.png)"));
        assert_eq!(w.plots.len(), 10);
        for p in w
            .plots
            .iter()
            .filter(|p| p.extension().is_some_and(|e| e == "png"))
        {
            let img = image::open(p).unwrap().to_rgb8();
            // Text and lines are drawn: a good share of pixels is not white.
            let ink = img.pixels().filter(|px| px.0 != [255, 255, 255]).count();
            assert!(
                ink > 2000,
                "{} has only {ink} non-white pixels",
                p.display()
            );
        }
        assert!(write_report(dir.path(), "x", &[], &[], &ReportOptions::default()).is_err());
    }

    #[test]
    fn png_text_is_rendered_with_the_embedded_font() {
        // The heatmap is all text and cells: with no font, plotters would fail or draw
        // nothing, so its left label column must contain dark pixels.
        let f = Figure::class_heatmap(&rows()).unwrap();
        let img = image::load_from_memory(&f.png).unwrap().to_rgb8();
        let dark = (0..img.height())
            .flat_map(|y| (0..60).map(move |x| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(dark > 50, "variant labels missing: {dark} dark pixels");
        assert!(f.svg.contains("<text"), "SVG text is native");
    }
}
