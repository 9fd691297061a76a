//! The report's figures, each drawn once through a generic plotters backend and rendered
//! twice: SVG (text as `<text>` elements, inlined into report.html) and PNG (text
//! rasterised with the embedded DejaVu Sans, so no system font is needed).
//!
//! - [`Figure::map_vs_level`]: mAP against pruning level, one line per method.
//! - [`Figure::class_heatmap`]: per-class AP change against the baseline, one row per variant.
//! - [`Figure::pareto`]: mAP against a cost column with the Pareto front.
//! - [`Figure::latency_vs_macs`]: forward latency against effective MACs.

use plotters::coord::Shift;
use plotters::prelude::*;
use plotters::style::text_anchor::{HPos, Pos, VPos};

use crate::analysis::{class_deltas, front_rows, points};
use crate::data::{Row, baseline, families};
use crate::error::{Error, Result};
use crate::font::FAMILY;

/// Categorical colours (Tableau 10).
const PALETTE: [RGBColor; 10] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
    RGBColor(227, 119, 194),
    RGBColor(127, 127, 127),
    RGBColor(188, 189, 34),
    RGBColor(23, 190, 207),
];

fn color(i: usize) -> RGBColor {
    PALETTE[i % PALETTE.len()]
}

/// A rendered figure.
#[derive(Clone, Debug)]
pub struct Figure {
    /// File stem (`map_vs_level`, ...).
    pub name: String,
    /// Caption.
    pub title: String,
    /// SVG document.
    pub svg: String,
    /// PNG file bytes.
    pub png: Vec<u8>,
}

/// What a figure draws; implemented per plot so that one drawing routine serves both
/// backends.
trait Draw {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()>;
}

fn plot_err<E: std::fmt::Display>(e: E) -> Error {
    Error::Plot(e.to_string())
}

/// Renders `d` to SVG and PNG at `w x h` pixels.
fn render(name: &str, title: &str, (w, h): (u32, u32), d: &impl Draw) -> Result<Figure> {
    crate::font::register()?;
    let mut svg = String::new();
    {
        let area = SVGBackend::with_string(&mut svg, (w, h)).into_drawing_area();
        area.fill(&WHITE).map_err(plot_err)?;
        d.draw(&area)?;
        area.present().map_err(plot_err)?;
    }
    let mut rgb = vec![255u8; (w * h * 3) as usize];
    {
        let area = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        area.fill(&WHITE).map_err(plot_err)?;
        d.draw(&area)?;
        area.present().map_err(plot_err)?;
    }
    let mut png = Vec::new();
    image::ImageEncoder::write_image(
        image::codecs::png::PngEncoder::new(&mut png),
        &rgb,
        w,
        h,
        image::ExtendedColorType::Rgb8,
    )
    .map_err(plot_err)?;
    Ok(Figure {
        name: name.into(),
        title: title.into(),
        svg,
        png,
    })
}

/// An axis range around `vals` with 5 % padding (a unit range when empty or flat).
fn range(vals: impl Iterator<Item = f64>, floor_zero: bool) -> std::ops::Range<f64> {
    let (mut lo, mut hi) = vals.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), v| {
        (a.min(v), b.max(v))
    });
    if !lo.is_finite() {
        return 0.0..1.0;
    }
    if floor_zero {
        lo = lo.min(0.0);
    }
    if hi - lo < 1e-9 {
        hi += 0.5 * hi.abs().max(1e-3);
        lo -= 0.5 * lo.abs().max(1e-3);
    }
    let pad = (hi - lo) * 0.05;
    (lo - pad)..(hi + pad)
}

struct MapVsLevel<'a>(&'a [Row]);

impl Draw for MapVsLevel<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let rows = self.0;
        let base = baseline(rows).and_then(Row::map);
        let methods = crate::analysis::prune_methods(rows);
        let lines: Vec<Line> = methods
            .iter()
            .map(|m| {
                let mut pts: Vec<(f64, f64)> = base.map(|b| (0.0, b * 100.0)).into_iter().collect();
                pts.extend(
                    rows.iter()
                        .filter(|r| {
                            r.prune_method().as_deref() == Some(m)
                                && r.quant() == "fp32"
                                && !r.finetuned()
                        })
                        .filter_map(|r| Some((r.prune_level() * 100.0, r.map()? * 100.0))),
                );
                pts.sort_by(|a, b| a.0.total_cmp(&b.0));
                Line {
                    label: Some(m.clone()),
                    points: pts,
                }
            })
            .collect();
        Lines {
            x_desc: "pruning level (%)",
            y_desc: "mAP (%)",
            lines: &lines,
        }
        .draw(area)
    }
}

struct Heatmap<'a>(&'a [Row]);

impl Draw for Heatmap<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let (names, deltas) = class_deltas(self.0);
        let keep: Vec<usize> = (0..self.0.len())
            .filter(|&i| !self.0[i].is_baseline())
            .collect();
        let (left, top, cw, ch) = heatmap_layout(self.0, &names);
        let max = keep
            .iter()
            .flat_map(|&i| deltas[i].iter().flatten())
            .fold(1e-6f64, |m, v| m.max(v.abs()));
        let font = |size| TextStyle::from((FAMILY, size).into_font());
        let centre = Pos::new(HPos::Center, VPos::Center);
        for (j, c) in names.iter().enumerate() {
            let x = left + j as i32 * cw + cw / 2;
            area.draw(&Text::new(c.clone(), (x, top - 12), font(12).pos(centre)))
                .map_err(plot_err)?;
        }
        for (k, &i) in keep.iter().enumerate() {
            let y = top + k as i32 * ch;
            let label_pos = Pos::new(HPos::Right, VPos::Center);
            area.draw(&Text::new(
                self.0[i].variant(),
                (left - 6, y + ch / 2),
                font(12).pos(label_pos),
            ))
            .map_err(plot_err)?;
            for (j, d) in deltas[i].iter().enumerate() {
                let x = left + j as i32 * cw;
                let fill = match d {
                    Some(d) => diverging(*d / max),
                    None => RGBColor(220, 220, 220),
                };
                area.draw(&Rectangle::new(
                    [(x, y), (x + cw - 1, y + ch - 1)],
                    fill.filled(),
                ))
                .map_err(plot_err)?;
                let text = d.map_or("n/a".to_string(), |d| format!("{:+.1}", d * 100.0));
                area.draw(&Text::new(
                    text,
                    (x + cw / 2, y + ch / 2),
                    font(11).pos(centre),
                ))
                .map_err(plot_err)?;
            }
        }
        let y = top + keep.len() as i32 * ch + 16;
        let note = format!(
            "AP change in points against the baseline (red: worse, blue: better, full colour at ±{:.1})",
            max * 100.0
        );
        area.draw(&Text::new(note, (left, y), font(12)))
            .map_err(plot_err)?;
        Ok(())
    }
}

/// `(left, top, cell width, cell height)` of the heatmap grid in pixels.
fn heatmap_layout(rows: &[Row], names: &[String]) -> (i32, i32, i32, i32) {
    let longest_variant = rows
        .iter()
        .map(|r| r.variant().chars().count())
        .max()
        .unwrap_or(8);
    let longest_class = names.iter().map(|c| c.chars().count()).max().unwrap_or(4);
    let left = 16 + (longest_variant as i32) * 7;
    let cw = (longest_class as i32 * 7 + 10).max(48);
    (left, 36, cw, 22)
}

/// White at 0, red towards -1, blue towards +1.
fn diverging(t: f64) -> RGBColor {
    let t = t.clamp(-1.0, 1.0);
    let mix = |a: u8, b: u8, f: f64| (a as f64 + (b as f64 - a as f64) * f).round() as u8;
    if t < 0.0 {
        let f = -t;
        RGBColor(mix(255, 214, f), mix(255, 39, f), mix(255, 40, f))
    } else {
        RGBColor(mix(255, 31, t), mix(255, 119, t), mix(255, 180, t))
    }
}

/// Scatter of `y_key` (or mAP) against `x_key`, coloured by family, with an optional
/// Pareto front (mAP only).
struct Scatter<'a> {
    rows: &'a [Row],
    x_key: &'a str,
    x_scale: f64,
    x_desc: &'a str,
    /// `None`: mAP (in %), with the Pareto front drawn.
    y_key: Option<(&'a str, &'a str)>,
}

impl Draw for Scatter<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let rows = self.rows;
        let pts: Vec<(usize, f64, f64)> = match self.y_key {
            None => points(rows, self.x_key)
                .into_iter()
                .map(|(i, x, y)| (i, x * self.x_scale, y * 100.0))
                .collect(),
            Some((k, _)) => rows
                .iter()
                .enumerate()
                .filter_map(|(i, r)| Some((i, r.num(self.x_key)? * self.x_scale, r.num(k)?)))
                .collect(),
        };
        let xr = range(pts.iter().map(|p| p.1), true);
        let yr = range(pts.iter().map(|p| p.2), self.y_key.is_some());
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(xr, yr)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_key.map_or("mAP (%)", |k| k.1))
            .label_style((FAMILY, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .map_err(plot_err)?;
        if self.y_key.is_none() {
            let front = front_rows(rows, self.x_key);
            let line: Vec<(f64, f64)> = front
                .iter()
                .filter_map(|i| pts.iter().find(|p| p.0 == *i).map(|p| (p.1, p.2)))
                .collect();
            chart
                .draw_series(LineSeries::new(
                    line.iter().copied(),
                    BLACK.mix(0.6).stroke_width(1),
                ))
                .map_err(plot_err)?
                .label("Pareto front")
                .legend(|(x, y)| PathElement::new(vec![(x, y), (x + 18, y)], BLACK.mix(0.6)));
            let style =
                TextStyle::from((FAMILY, 11).into_font()).pos(Pos::new(HPos::Left, VPos::Bottom));
            chart
                .draw_series(
                    front.iter().zip(&line).map(|(&i, &p)| {
                        Text::new(format!(" {}", rows[i].variant()), p, style.clone())
                    }),
                )
                .map_err(plot_err)?;
        }
        for (f, fam) in families(rows).iter().enumerate() {
            let c = color(f);
            let mine: Vec<(f64, f64)> = pts
                .iter()
                .filter(|p| rows[p.0].family() == *fam)
                .map(|p| (p.1, p.2))
                .collect();
            if mine.is_empty() {
                continue;
            }
            chart
                .draw_series(mine.iter().map(|&p| Circle::new(p, 4, c.filled())))
                .map_err(plot_err)?
                .label(fam.as_str())
                .legend(move |(x, y)| Circle::new((x + 9, y), 4, c.filled()));
        }
        chart
            .configure_series_labels()
            .label_font((FAMILY, 12))
            .background_style(WHITE.mix(0.85))
            .border_style(BLACK)
            .position(if self.y_key.is_some() {
                SeriesLabelPosition::UpperLeft
            } else {
                SeriesLabelPosition::LowerRight
            })
            .draw()
            .map_err(plot_err)?;
        Ok(())
    }
}

/// One line of [`Figure::lines`]: labelled lines get a palette colour and a legend
/// entry; unlabelled ones are drawn light grey behind them (context, e.g. the many
/// insensitive layers of a sensitivity plot).
#[derive(Clone, Debug)]
pub struct Line {
    /// Legend text, or `None` for a grey context line.
    pub label: Option<String>,
    /// `(x, y)` points, drawn in order.
    pub points: Vec<(f64, f64)>,
}

struct Lines<'a> {
    x_desc: &'a str,
    y_desc: &'a str,
    lines: &'a [Line],
}

impl Draw for Lines<'_> {
    fn draw<DB: DrawingBackend>(&self, area: &DrawingArea<DB, Shift>) -> Result<()> {
        let all = self.lines.iter().flat_map(|l| l.points.iter().copied());
        let xr = range(all.clone().map(|p| p.0), true);
        let yr = range(all.map(|p| p.1), false);
        let mut chart = ChartBuilder::on(area)
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(xr, yr)
            .map_err(plot_err)?;
        chart
            .configure_mesh()
            .x_desc(self.x_desc)
            .y_desc(self.y_desc)
            .label_style((FAMILY, 13))
            .light_line_style(WHITE)
            .bold_line_style(BLACK.mix(0.15))
            .draw()
            .map_err(plot_err)?;
        let grey = RGBColor(190, 190, 190);
        for l in self.lines.iter().filter(|l| l.label.is_none()) {
            chart
                .draw_series(LineSeries::new(
                    l.points.iter().copied(),
                    grey.stroke_width(1),
                ))
                .map_err(plot_err)?;
        }
        let mut labelled = 0;
        for (i, l) in self.lines.iter().filter(|l| l.label.is_some()).enumerate() {
            let c = color(i);
            chart
                .draw_series(LineSeries::new(l.points.iter().copied(), c.stroke_width(2)))
                .map_err(plot_err)?
                .label(l.label.clone().unwrap_or_default())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], c.stroke_width(2))
                });
            chart
                .draw_series(l.points.iter().map(|&p| Circle::new(p, 3, c.filled())))
                .map_err(plot_err)?;
            labelled += 1;
        }
        if labelled > 0 {
            chart
                .configure_series_labels()
                .label_font((FAMILY, 12))
                .background_style(WHITE.mix(0.85))
                .border_style(BLACK)
                .position(SeriesLabelPosition::LowerLeft)
                .draw()
                .map_err(plot_err)?;
        }
        Ok(())
    }
}

impl Figure {
    /// mAP against pruning level, one line per method (fp32, not fine-tuned); every line
    /// starts at the baseline (level 0).
    pub fn map_vs_level(rows: &[Row]) -> Result<Figure> {
        render(
            "map_vs_level",
            "mAP against pruning level",
            (760, 480),
            &MapVsLevel(rows),
        )
    }

    /// Per-class AP change against the baseline: one row per variant, one column per class.
    pub fn class_heatmap(rows: &[Row]) -> Result<Figure> {
        let (names, _) = class_deltas(rows);
        let n = rows.iter().filter(|r| !r.is_baseline()).count() as i32;
        let (left, top, cw, ch) = heatmap_layout(rows, &names);
        let w = (left + names.len() as i32 * cw + 16).max(left + 560) as u32;
        let h = (top + n * ch + 32).max(120) as u32;
        render(
            "class_ap_change",
            "Per-class AP change against the baseline",
            (w, h),
            &Heatmap(rows),
        )
    }

    /// mAP against `x_key` (lower is better) with the Pareto front; `x_scale` converts
    /// the column to the axis unit.
    pub fn pareto(
        rows: &[Row],
        name: &str,
        title: &str,
        x_key: &str,
        x_scale: f64,
        x_desc: &str,
    ) -> Result<Figure> {
        let s = Scatter {
            rows,
            x_key,
            x_scale,
            x_desc,
            y_key: None,
        };
        render(name, title, (760, 480), &s)
    }

    /// Mean forward latency against effective MACs.
    pub fn latency_vs_macs(rows: &[Row]) -> Result<Figure> {
        let s = Scatter {
            rows,
            x_key: "macs_effective",
            x_scale: 1e-6,
            x_desc: "effective MACs (millions)",
            y_key: Some(("forward_mean_ms", "forward latency (ms)")),
        };
        render(
            "latency_vs_macs",
            "Forward latency against effective MACs",
            (760, 480),
            &s,
        )
    }

    /// A generic line chart of `lines` (used by `slimdet sensitivity`: mAP against
    /// pruning level, one line per layer group), `w x h` pixels.
    pub fn lines(
        name: &str,
        title: &str,
        (x_desc, y_desc): (&str, &str),
        lines: &[Line],
        size: (u32, u32),
    ) -> Result<Figure> {
        let d = Lines {
            x_desc,
            y_desc,
            lines,
        };
        render(name, title, size, &d)
    }

    /// Every figure of the report, in report order.
    pub fn all(rows: &[Row]) -> Result<Vec<Figure>> {
        Ok(vec![
            Figure::map_vs_level(rows)?,
            Figure::class_heatmap(rows)?,
            Figure::pareto(
                rows,
                "pareto_latency",
                "mAP against forward latency (Pareto front)",
                "forward_mean_ms",
                1.0,
                "forward latency, mean (ms)",
            )?,
            Figure::pareto(
                rows,
                "pareto_size",
                "mAP against gzip file size (Pareto front)",
                "file_gz_bytes",
                1.0 / 1024.0,
                "model file, gzip-compressed (KiB)",
            )?,
            Figure::latency_vs_macs(rows)?,
        ])
    }
}
