//! `slimdet demo`: runs a detector over a folder of frames, one image or a video, draws
//! boxes, labels, scores and the frame rate on every frame, and writes an animated GIF
//! (`-o out.gif`, encoded in-process) or one PNG per frame (`-o DIR`). Videos are split
//! into frames by the system `ffmpeg`, when present. Prints the mean FPS.

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

use anyhow::{Context, Result, bail};
use image::codecs::gif::{GifEncoder, Repeat};
use image::{Delay, Frame, RgbaImage};
use slimdet_data::RgbImage;
use slimdet_models::Predictor;

use crate::draw;
use crate::model_arg::{ModelArgs, ThreadArgs};
use crate::output::write_atomic;

/// Options of `slimdet demo`.
#[derive(clap::Args)]
pub struct Args {
    #[command(flatten)]
    model: ModelArgs,
    /// A folder of frames (JPEG/PNG, in name order), one image, or a video file (needs
    /// `ffmpeg` on PATH).
    #[arg(long, short = 'i')]
    input: PathBuf,
    /// Output: `*.gif` for an animated GIF, anything else is a folder of PNG frames.
    #[arg(long, short = 'o')]
    out: PathBuf,
    /// Score threshold of drawn detections.
    #[arg(long, default_value_t = 0.4)]
    threshold: f32,
    /// Playback rate of the GIF, frames per second (1 to 50).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u32).range(1..=50))]
    gif_fps: u32,
    /// Use at most this many frames.
    #[arg(long)]
    max_frames: Option<usize>,
    #[command(flatten)]
    threads: ThreadArgs,
}

const IMAGE_EXT: [&str; 3] = ["jpg", "jpeg", "png"];

fn has_ext(p: &Path, exts: &[&str]) -> bool {
    p.extension()
        .and_then(|e| e.to_str())
        .is_some_and(|e| exts.iter().any(|x| x.eq_ignore_ascii_case(e)))
}

/// The frame files of `input`, in order; `_tmp` keeps extracted video frames alive.
fn frames(input: &Path, tmp: &mut Option<tempfile::TempDir>) -> Result<Vec<PathBuf>> {
    if input.is_dir() {
        let mut v: Vec<PathBuf> = std::fs::read_dir(input)
            .with_context(|| format!("reading {}", input.display()))?
            .filter_map(|e| e.ok().map(|e| e.path()))
            .filter(|p| p.is_file() && has_ext(p, &IMAGE_EXT))
            .collect();
        v.sort();
        if v.is_empty() {
            bail!("{} holds no .jpg, .jpeg or .png frames", input.display());
        }
        return Ok(v);
    }
    if !input.is_file() {
        bail!("input {} does not exist", input.display());
    }
    if has_ext(input, &IMAGE_EXT) {
        return Ok(vec![input.to_path_buf()]);
    }
    let dir = tempfile::tempdir().context("creating a folder for video frames")?;
    let pattern = dir.path().join("frame_%06d.png");
    let status = std::process::Command::new("ffmpeg")
        .args(["-loglevel", "error", "-nostdin", "-i"])
        .arg(input)
        .args(["-vsync", "0"])
        .arg(&pattern)
        .status();
    match status {
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => bail!(
            "{} is not a .jpg/.png image or a folder: reading it as a video needs `ffmpeg` \
             on PATH (e.g. `apt-get install ffmpeg`), or pass a folder of frames",
            input.display()
        ),
        Err(e) => return Err(e).context("running ffmpeg"),
        Ok(s) if !s.success() => bail!("ffmpeg could not decode {} ({s})", input.display()),
        Ok(_) => {}
    }
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir.path())?
        .filter_map(|e| e.ok().map(|e| e.path()))
        .collect();
    v.sort();
    if v.is_empty() {
        bail!("ffmpeg found no frames in {}", input.display());
    }
    *tmp = Some(dir);
    Ok(v)
}

/// Pastes `img` at the top-left of a black `w x h` RGBA canvas.
fn to_canvas(img: &RgbImage, w: usize, h: usize) -> RgbaImage {
    let mut out = RgbaImage::from_pixel(w as u32, h as u32, image::Rgba([0, 0, 0, 255]));
    for y in 0..img.height.min(h) {
        for x in 0..img.width.min(w) {
            let i = (y * img.width + x) * 3;
            let p = &img.data[i..i + 3];
            out.put_pixel(x as u32, y as u32, image::Rgba([p[0], p[1], p[2], 255]));
        }
    }
    out
}

/// Runs the command.
pub fn run(a: Args) -> Result<ExitCode> {
    if !(0.0..1.0).contains(&a.threshold) {
        bail!("--threshold {} is outside [0, 1)", a.threshold);
    }
    let det = a.model.load()?;
    let mut tmp = None;
    let mut files = frames(&a.input, &mut tmp)?;
    if let Some(n) = a.max_frames {
        files.truncate(n.max(1));
    }
    let gif = has_ext(&a.out, &["gif"]);
    if !gif {
        std::fs::create_dir_all(&a.out).with_context(|| format!("creating {}", a.out.display()))?;
    }
    let mut pred = Predictor::new(&det, a.threads.get())?;
    let mut drawn = Vec::with_capacity(if gif { files.len() } else { 0 });
    let mut total_ms = 0.0;
    for (i, path) in files.iter().enumerate() {
        let img = slimdet_data::load_rgb(path)
            .with_context(|| format!("reading frame {}", path.display()))?;
        let t = Instant::now();
        let dets = pred.predict(&img, a.threshold, 0)?;
        let ms = t.elapsed().as_secs_f64() * 1e3;
        total_ms += ms;
        let mut canvas = img;
        for d in &dets {
            let text = format!("{}: {:.2}", det.class_names[d.label], d.score);
            draw::detection(&mut canvas, d.bbox, d.label, &text);
        }
        let fps = format!(
            "{:.1} FPS (mean {:.1})",
            1e3 / ms,
            1e3 * (i + 1) as f64 / total_ms
        );
        let scale = if canvas.width >= 600 { 2 } else { 1 };
        let y = canvas.height as i64 - 8 * scale - 4;
        draw::label(&mut canvas, 2, y, &fps, scale, [255, 255, 255], [0, 0, 0]);
        if gif {
            drawn.push(canvas);
        } else {
            let out = a.out.join(format!("frame_{:06}.png", i + 1));
            slimdet_data::save_png(&out, &canvas)
                .with_context(|| format!("writing {}", out.display()))?;
        }
    }
    if gif {
        write_gif(&a.out, &drawn, a.gif_fps)?;
    }
    let mean_fps = 1e3 * files.len() as f64 / total_ms;
    println!(
        "{} frames, mean {:.1} FPS ({:.2} ms per frame: preprocessing, network, NMS; {} threads)",
        files.len(),
        mean_fps,
        total_ms / files.len() as f64,
        a.threads.get()
    );
    eprintln!("wrote {}", a.out.display());
    Ok(ExitCode::SUCCESS)
}

/// Encodes `frames` (on a canvas of the largest frame size) as a looping GIF.
fn write_gif(path: &Path, frames: &[RgbImage], fps: u32) -> Result<()> {
    let w = frames.iter().map(|f| f.width).max().unwrap_or(1);
    let h = frames.iter().map(|f| f.height).max().unwrap_or(1);
    let mut bytes = Vec::new();
    {
        let mut enc = GifEncoder::new_with_speed(&mut bytes, 10);
        enc.set_repeat(Repeat::Infinite)?;
        let delay = Delay::from_numer_denom_ms(1000, fps);
        enc.encode_frames(
            frames
                .iter()
                .map(|f| Frame::from_parts(to_canvas(f, w, h), 0, 0, delay)),
        )
        .with_context(|| format!("encoding {}", path.display()))?;
    }
    write_atomic(path, &bytes)
}
