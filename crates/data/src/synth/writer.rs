//! Writing the stream to disk as a Pascal VOC year folder, in parallel,
//! atomically per file, and in an order that never lets a half-written
//! dataset pass for a complete one.

use std::path::Path;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::mpsc;

use image::ImageEncoder;

use super::{SYNTH_CLASSES, SYNTH_VERSION, SynthConfig, SynthObject, SynthSummary};
use super::{render_scene, sample_id};
use crate::{Error, Result};

/// JPEG quality of the written images.
const JPEG_QUALITY: u8 = 90;

/// Renders the stream of `cfg` and writes it under `out` (the VOC "year
/// folder"), on all available cores; see [`generate_with_threads`].
pub fn generate(
    out: &Path,
    cfg: &SynthConfig,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SynthSummary> {
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    generate_with_threads(out, cfg, threads, progress)
}

/// Renders the stream of `cfg` on `threads` threads and writes:
///
/// - `out/JPEGImages/<id>.jpg`, JPEG quality 90, ids `s000001`... in stream order;
/// - `out/Annotations/<id>.xml`, VOC XML with 1-based `bndbox` corners
///   (the [`SynthObject::bbox`] + 1), `truncated` and `difficult` flags;
/// - `out/labels.txt`, the class names one per line (no `BACKGROUND`);
/// - `out/synth.json`, the config and [`SYNTH_VERSION`] ([`manifest_json`]);
/// - `out/ImageSets/Main/trainval.txt` (the first `train` ids) and
///   `test.txt` (the rest), written last.
///
/// Every file is written to a temporary file and renamed into place. Split
/// files and `synth.json` from an earlier run are deleted first, so a run
/// that fails half way leaves a folder [`is_generated`] rejects (callers
/// that cache check [`is_generated`] before calling this). Files of other
/// ids, say from an earlier larger run, are left alone: no split lists
/// them. The bytes written do not depend on `threads`. `progress(done, total)` is called
/// on the calling thread after each image. Errors name the file.
pub fn generate_with_threads(
    out: &Path,
    cfg: &SynthConfig,
    threads: usize,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<SynthSummary> {
    let main = out.join("ImageSets").join("Main");
    for dir in [
        out.join("JPEGImages"),
        out.join("Annotations"),
        main.clone(),
    ] {
        std::fs::create_dir_all(&dir).map_err(|source| Error::Io { path: dir, source })?;
    }
    let splits = [main.join("trainval.txt"), main.join("test.txt")];
    for path in splits.iter().chain([&out.join("synth.json")]) {
        match std::fs::remove_file(path) {
            Err(e) if e.kind() != std::io::ErrorKind::NotFound => {
                return Err(Error::Io {
                    path: path.clone(),
                    source: e,
                });
            }
            _ => {}
        }
    }

    let total = cfg.total();
    let mut summary = SynthSummary {
        per_class: vec![0; SYNTH_CLASSES.len()],
        ..SynthSummary::default()
    };
    let mut first_error = None;
    let next = AtomicUsize::new(0);
    let stop = AtomicBool::new(false);
    let (tx, rx) = mpsc::channel::<Result<Vec<SynthObject>>>();
    std::thread::scope(|scope| {
        for _ in 0..threads.clamp(1, total.max(1)) {
            let (tx, next, stop) = (tx.clone(), &next, &stop);
            scope.spawn(move || {
                while !stop.load(Ordering::Relaxed) {
                    let index = next.fetch_add(1, Ordering::Relaxed);
                    if index >= total || tx.send(write_image(out, cfg, index)).is_err() {
                        break;
                    }
                }
            });
        }
        drop(tx);
        for result in rx {
            match result {
                Ok(objects) => {
                    summary.images += 1;
                    summary.objects += objects.len();
                    for o in &objects {
                        summary.difficult += usize::from(o.difficult);
                        summary.per_class[o.class_index - 1] += 1;
                    }
                    progress(summary.images, total);
                }
                Err(e) => {
                    stop.store(true, Ordering::Relaxed);
                    first_error.get_or_insert(e);
                }
            }
        }
    });
    if let Some(e) = first_error {
        return Err(e);
    }

    write_atomic(&out.join("labels.txt"), SYNTH_CLASSES.join("\n").as_bytes())?;
    write_atomic(&out.join("synth.json"), manifest_json(cfg).as_bytes())?;
    let ids =
        |range: std::ops::Range<usize>| -> String { range.map(|i| sample_id(i) + "\n").collect() };
    write_atomic(&splits[0], ids(0..cfg.train).as_bytes())?;
    write_atomic(&splits[1], ids(cfg.train..total).as_bytes())?;
    Ok(summary)
}

/// The exact contents of `synth.json` for `cfg`: generator name,
/// [`SYNTH_VERSION`], the config fields and the class names.
pub fn manifest_json(cfg: &SynthConfig) -> String {
    let classes: Vec<String> = SYNTH_CLASSES.iter().map(|c| format!("\"{c}\"")).collect();
    format!(
        "{{\n  \"generator\": \"slimdet-synth\",\n  \"version\": {SYNTH_VERSION},\n  \
         \"train\": {},\n  \"test\": {},\n  \"seed\": {},\n  \"size\": {},\n  \
         \"classes\": [{}]\n}}\n",
        cfg.train,
        cfg.test,
        cfg.seed,
        cfg.size,
        classes.join(", ")
    )
}

/// Whether `dir` holds a complete dataset generated for `cfg` by this
/// [`SYNTH_VERSION`]: `synth.json` matches [`manifest_json`], `labels.txt`
/// exists and both split files list the expected number of ids. Does not
/// look at every image (a cache check, not a verification).
pub fn is_generated(dir: &Path, cfg: &SynthConfig) -> bool {
    let matches = std::fs::read_to_string(dir.join("synth.json"))
        .is_ok_and(|text| text == manifest_json(cfg));
    let lines = |split: &str| {
        let path = dir
            .join("ImageSets")
            .join("Main")
            .join(format!("{split}.txt"));
        std::fs::read_to_string(path)
            .map(|t| t.lines().count())
            .ok()
    };
    matches
        && dir.join("labels.txt").is_file()
        && lines("trainval") == Some(cfg.train)
        && lines("test") == Some(cfg.test)
}

/// Renders image `index`, writes its JPEG and XML, returns its objects.
fn write_image(out: &Path, cfg: &SynthConfig, index: usize) -> Result<Vec<SynthObject>> {
    let id = sample_id(index);
    let scene = render_scene(cfg, index);
    let jpg = out.join("JPEGImages").join(format!("{id}.jpg"));
    let img = &scene.image;
    let (Ok(w), Ok(h)) = (u32::try_from(img.width), u32::try_from(img.height)) else {
        return Err(Error::BadImageBuffer {
            path: jpg,
            width: img.width,
            height: img.height,
            expected: img.data.len(),
            got: img.data.len(),
        });
    };
    let mut bytes = Vec::with_capacity(img.data.len() / 8);
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, JPEG_QUALITY)
        .write_image(&img.data, w, h, image::ExtendedColorType::Rgb8)
        .map_err(|source| Error::Encode {
            path: jpg.clone(),
            source,
        })?;
    write_atomic(&jpg, &bytes)?;
    let xml = annotation_xml(&id, cfg.size, &scene.objects);
    write_atomic(
        &out.join("Annotations").join(format!("{id}.xml")),
        xml.as_bytes(),
    )?;
    Ok(scene.objects)
}

/// The VOC annotation of one image.
fn annotation_xml(id: &str, size: usize, objects: &[SynthObject]) -> String {
    let mut s = format!(
        "<annotation>\n\t<folder>synth</folder>\n\t<filename>{id}.jpg</filename>\n\
         \t<source>\n\t\t<database>slimdet synthetic shapes v{SYNTH_VERSION}</database>\n\t</source>\n\
         \t<size>\n\t\t<width>{size}</width>\n\t\t<height>{size}</height>\n\t\t<depth>3</depth>\n\t</size>\n\
         \t<segmented>0</segmented>\n"
    );
    for o in objects {
        let [x1, y1, x2, y2] = o.bbox.map(|v| u64::from(v) + 1);
        s += &format!(
            "\t<object>\n\t\t<name>{}</name>\n\t\t<pose>Unspecified</pose>\n\
             \t\t<truncated>{}</truncated>\n\t\t<difficult>{}</difficult>\n\
             \t\t<bndbox>\n\t\t\t<xmin>{x1}</xmin>\n\t\t\t<ymin>{y1}</ymin>\n\
             \t\t\t<xmax>{x2}</xmax>\n\t\t\t<ymax>{y2}</ymax>\n\t\t</bndbox>\n\t</object>\n",
            SYNTH_CLASSES[o.class_index - 1],
            u8::from(o.truncated),
            u8::from(o.difficult),
        );
    }
    s + "</annotation>\n"
}

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).map_err(|source| Error::Io {
        path: path.to_path_buf(),
        source,
    })
}
