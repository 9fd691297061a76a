//! `slimdet detect`: run the predictor on images, draw labelled boxes, write PNGs and
//! print the detections.
//!
//! Output format (a public interface): with `--format json`, one JSON list of
//! `{"image", "label", "label_index", "score", "box": [x1, y1, x2, y2]}` objects, boxes in
//! original-image pixels (not clipped), `image` the path as given; with `--format csv`,
//! the header `image,label,label_index,score,x1,y1,x2,y2` then one row per detection.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::{Context, Result, bail};
use serde::Serialize;
use slimdet_models::Predictor;

use crate::draw;
use crate::model_arg::{ModelArgs, ThreadArgs};
use crate::output::write_atomic;

/// Options of `slimdet detect`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    #[command(flatten)]
    threads: ThreadArgs,
    /// Images (JPEG or PNG).
    #[arg(required = true)]
    images: Vec<PathBuf>,
    /// Directory for the annotated PNGs (created if missing).
    #[arg(long, short = 'o')]
    out: Option<PathBuf>,
    /// Output format of the printed detections.
    #[arg(long, default_value = "json", value_parser = ["json", "csv"])]
    format: String,
    /// Probability threshold in [0, 1); 0 means the model's default (0.01 for
    /// mb2-ssd-lite as in pytorch-ssd's evaluation, 0.7 for UltraFace).
    #[arg(long, default_value_t = 0.0)]
    threshold: f32,
    /// Keep at most this many boxes per class (0: no limit).
    #[arg(long, default_value_t = 0)]
    top_k: usize,
    /// Draw only boxes scoring at least this (the printed list is not affected).
    #[arg(long, default_value_t = 0.3)]
    draw_threshold: f32,
}

/// One printed detection.
#[derive(Serialize)]
pub struct DetectionRecord {
    /// The image path as given.
    pub image: String,
    /// Class name.
    pub label: String,
    /// Class index (1.. ; 0 is background).
    pub label_index: usize,
    /// Probability.
    pub score: f32,
    /// `[x1, y1, x2, y2]` in original-image pixels.
    #[serde(rename = "box")]
    pub bbox: [f32; 4],
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&a.threshold) {
        bail!("--threshold {} is outside [0, 1)", a.threshold);
    }
    let det = a.model.load()?;
    let mut pred = Predictor::new(&det, a.threads.get())?;
    if let Some(dir) = &a.out {
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
    }
    let mut records = Vec::new();
    for path in &a.images {
        let img = slimdet_data::load_rgb(path)
            .with_context(|| format!("reading image {}", path.display()))?;
        let dets = pred.predict(&img, a.threshold, a.top_k)?;
        if let Some(dir) = &a.out {
            let mut canvas = img.clone();
            for d in dets.iter().filter(|d| d.score >= a.draw_threshold) {
                let text = format!("{}: {:.2}", det.class_names[d.label], d.score);
                draw::detection(&mut canvas, d.bbox, d.label, &text);
            }
            let stem = path
                .file_stem()
                .map(|s| s.to_string_lossy().to_string())
                .unwrap_or_else(|| "image".into());
            let out = dir.join(format!("{stem}.png"));
            slimdet_data::save_png(&out, &canvas)
                .with_context(|| format!("writing {}", out.display()))?;
        }
        for d in dets {
            records.push(DetectionRecord {
                image: path.display().to_string(),
                label: det.class_names[d.label].clone(),
                label_index: d.label,
                score: d.score,
                bbox: d.bbox,
            });
        }
    }
    let text = if a.format == "json" {
        serde_json::to_string_pretty(&records)? + "\n"
    } else {
        let mut s = String::from("image,label,label_index,score,x1,y1,x2,y2\n");
        for r in &records {
            let [x1, y1, x2, y2] = r.bbox;
            s += &format!(
                "{},{},{},{},{x1},{y1},{x2},{y2}\n",
                r.image, r.label, r.label_index, r.score
            );
        }
        s
    };
    use std::io::Write;
    std::io::stdout().write_all(text.as_bytes())?;
    if let Some(dir) = &a.out {
        write_atomic(
            &dir.join(format!("detections.{}", a.format)),
            text.as_bytes(),
        )?;
    }
    Ok(ExitCode::SUCCESS)
}
