//! `slimdet demo` on a short clip of synthetic frames: GIF and PNG-folder output, the FPS
//! line, video input through ffmpeg (when installed) and the message without it.

mod common;

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

use common::{init_model, ok, slimdet, synth_dataset};

/// 6 synthetic 300x300 frames and a random width-0.5 model.
fn clip(dir: &Path) -> (PathBuf, PathBuf) {
    let data = dir.join("synth");
    ok(&synth_dataset(&data, "0", "6", &[]));
    let model = dir.join("m.safetensors");
    ok(&init_model(
        &data.join("labels.txt"),
        &["--width", "0.5"],
        &model,
    ));
    (data.join("JPEGImages"), model)
}

fn demo(model: &Path, input: &Path, out: &Path) -> Output {
    slimdet()
        .args(["demo", "--threshold", "0.05", "--threads", "2", "--model"])
        .arg(model)
        .arg("--input")
        .arg(input)
        .arg("-o")
        .arg(out)
        .output()
        .unwrap()
}

fn gif_frames(path: &Path) -> Vec<image::RgbaImage> {
    use image::AnimationDecoder;
    let f = std::io::BufReader::new(std::fs::File::open(path).unwrap());
    image::codecs::gif::GifDecoder::new(f)
        .unwrap()
        .into_frames()
        .map(|f| f.unwrap().into_buffer())
        .collect()
}

#[test]
fn demo_writes_an_annotated_gif_and_png_frames() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, model) = clip(dir.path());
    let gif = dir.path().join("demo.gif");
    let o = demo(&model, &frames, &gif);
    ok(&o);
    let stdout = String::from_utf8_lossy(&o.stdout);
    assert!(
        stdout.starts_with("6 frames, mean ") && stdout.contains(" FPS"),
        "{stdout}"
    );
    let decoded = gif_frames(&gif);
    assert_eq!(decoded.len(), 6);
    // The FPS overlay: a black band with white text at the bottom-left of every frame.
    for f in &decoded {
        assert_eq!(f.dimensions(), (300, 300));
        let band: Vec<[u8; 4]> = (2..120)
            .flat_map(|x| (288..296).map(move |y| (x, y)))
            .map(|(x, y)| f.get_pixel(x, y).0)
            .collect();
        let white = band
            .iter()
            .filter(|p| p[0] > 200 && p[1] > 200 && p[2] > 200)
            .count();
        let black = band
            .iter()
            .filter(|p| p[0] < 50 && p[1] < 50 && p[2] < 50)
            .count();
        assert!(
            white > 40 && black > 200,
            "overlay: {white} white, {black} black"
        );
    }
    let pngs = dir.path().join("pngs");
    ok(&demo(&model, &frames, &pngs));
    let mut names: Vec<String> = std::fs::read_dir(&pngs)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().to_string())
        .collect();
    names.sort();
    assert_eq!(names.first().map(String::as_str), Some("frame_000001.png"));
    assert_eq!(names.len(), 6);
}

#[test]
fn video_input_uses_ffmpeg_or_explains_why_not() {
    let dir = tempfile::tempdir().unwrap();
    let (frames, model) = clip(dir.path());
    let video = dir.path().join("clip.mp4");
    let have_ffmpeg = Command::new("ffmpeg")
        .arg("-version")
        .output()
        .is_ok_and(|o| o.status.success());
    if have_ffmpeg {
        let o = Command::new("ffmpeg")
            .args([
                "-loglevel",
                "error",
                "-nostdin",
                "-y",
                "-framerate",
                "5",
                "-pattern_type",
                "glob",
                "-i",
            ])
            .arg(frames.join("*.jpg"))
            .args(["-c:v", "mpeg4", "-q:v", "3"])
            .arg(&video)
            .output()
            .unwrap();
        ok(&o);
        let gif = dir.path().join("video.gif");
        ok(&demo(&model, &video, &gif));
        assert_eq!(gif_frames(&gif).len(), 6);
    } else {
        println!("skipped: ffmpeg missing (video decoding)");
        std::fs::write(&video, b"not really a video").unwrap();
    }
    // Without ffmpeg on PATH the error says what to do.
    let o = slimdet()
        .env("PATH", dir.path())
        .args(["demo", "--model"])
        .arg(&model)
        .arg("--input")
        .arg(&video)
        .arg("-o")
        .arg(dir.path().join("x.gif"))
        .output()
        .unwrap();
    assert_eq!(o.status.code(), Some(2));
    let err = String::from_utf8_lossy(&o.stderr);
    assert!(err.contains("needs `ffmpeg` on PATH"), "{err}");
}
