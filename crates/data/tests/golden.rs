//! Golden tests against OpenCV output recorded in `testdata/golden` and
//! `testdata/fixtures`: the exact resize, PNG decoding and the agreement of
//! our JPEG decoder with libjpeg-turbo. A missing fixture fails the test.

use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};
use slimdet_data::{RgbImage, load_rgb, resize_linear_u8, resize_rgb};

fn golden_dir() -> PathBuf {
    slimdet_testkit::mb2_golden_dir()
}

fn voc_dir() -> PathBuf {
    slimdet_testkit::voc2007()
}

fn ultraface_dir() -> PathBuf {
    slimdet_testkit::dir("fixtures/ultraface")
}

const IDS: [&str; 4] = ["000002", "000003", "000004", "000005"];

fn read(path: &Path) -> Vec<u8> {
    std::fs::read(path).unwrap_or_else(|e| panic!("fixture {}: {e}", path.display()))
}

/// `(shape, bytes)` of a uint8 tensor in golden.safetensors.
fn golden_u8(st: &SafeTensors, name: &str) -> (Vec<usize>, Vec<u8>) {
    let t = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(t.dtype(), Dtype::U8, "{name}");
    (t.shape().to_vec(), t.data().to_vec())
}

fn golden_image(st: &SafeTensors, name: &str) -> RgbImage {
    let (shape, data) = golden_u8(st, name);
    assert_eq!(shape.len(), 3, "{name}: shape {shape:?}");
    assert_eq!(shape[2], 3, "{name}: shape {shape:?}");
    RgbImage {
        width: shape[1],
        height: shape[0],
        data,
    }
}

/// (fraction exactly equal, fraction within 2 levels, max |diff|); prints
/// the within-1 fraction too.
fn agreement(a: &[u8], b: &[u8]) -> (f64, f64, u8) {
    assert_eq!(a.len(), b.len());
    let (mut eq, mut one, mut near, mut max) = (0usize, 0usize, 0usize, 0u8);
    for (&x, &y) in a.iter().zip(b) {
        let d = x.abs_diff(y);
        eq += usize::from(d == 0);
        one += usize::from(d <= 1);
        near += usize::from(d <= 2);
        max = max.max(d);
    }
    let n = a.len() as f64;
    println!(
        "  ({} values, within 1 level {:.4}%)",
        a.len(),
        one as f64 / n * 100.0
    );
    (eq as f64 / n, near as f64 / n, max)
}

fn golden_file() -> Vec<u8> {
    read(&golden_dir().join("golden.safetensors"))
}

#[test]
fn resize_matches_opencv_on_golden_images() {
    let bytes = golden_file();
    let st = SafeTensors::deserialize(&bytes).expect("golden.safetensors");
    for id in IDS {
        let rgb = golden_image(&st, &format!("{id}.rgb"));
        let (shape, want) = golden_u8(&st, &format!("{id}.resized"));
        assert_eq!(shape, [300, 300, 3]);
        let got = resize_rgb(&rgb, 300, 300);
        let diffs = got.data.iter().zip(&want).filter(|(a, b)| a != b).count();
        assert_eq!(
            diffs,
            0,
            "{id}: {diffs} of {} values differ from cv2.resize",
            want.len()
        );
    }
}

#[test]
fn png_copies_decode_exactly() {
    let bytes = golden_file();
    let st = SafeTensors::deserialize(&bytes).expect("golden.safetensors");
    for id in IDS {
        let want = golden_image(&st, &format!("{id}.rgb"));
        let got = load_rgb(&golden_dir().join(format!("{id}.png"))).expect("png");
        assert_eq!((got.width, got.height), (want.width, want.height), "{id}");
        assert!(got.data == want.data, "{id}: PNG pixels differ");
    }
}

#[test]
fn jpeg_decoder_agrees_with_libjpeg_turbo() {
    let bytes = golden_file();
    let st = SafeTensors::deserialize(&bytes).expect("golden.safetensors");
    let (mut all_a, mut all_b) = (Vec::new(), Vec::new());
    for id in IDS {
        let want = golden_image(&st, &format!("{id}.rgb"));
        let got = load_rgb(&voc_dir().join(format!("JPEGImages/{id}.jpg"))).expect("jpg");
        assert_eq!((got.width, got.height), (want.width, want.height), "{id}");
        let (eq, near, max) = agreement(&got.data, &want.data);
        println!(
            "jpeg {id}: exact {:.4}%, within 2 levels {:.4}%, max diff {max}",
            eq * 100.0,
            near * 100.0
        );
        assert!(near >= 0.99, "{id}: only {near} within 2 levels");
        all_a.extend_from_slice(&got.data);
        all_b.extend_from_slice(&want.data);
    }
    let (eq, near, max) = agreement(&all_a, &all_b);
    println!(
        "jpeg all 4: exact {:.4}%, within 2 levels {:.4}%, max diff {max}",
        eq * 100.0,
        near * 100.0
    );
}

#[test]
fn ultraface_decode_then_resize_close_to_opencv() {
    let img = load_rgb(&ultraface_dir().join("images/13.jpg")).expect("13.jpg");
    let want = read(&ultraface_dir().join("golden/13_resized_320x240_rgb_u8.bin"));
    assert_eq!(want.len(), 240 * 320 * 3);
    let got = resize_linear_u8(&img.data, img.width, img.height, 3, 320, 240);
    let (eq, near, max) = agreement(&got, &want);
    println!(
        "ultraface 13.jpg ({}x{}) -> 320x240: exact {:.4}%, within 2 levels {:.4}%, max diff {max}",
        img.width,
        img.height,
        eq * 100.0,
        near * 100.0
    );
    assert!(near >= 0.99, "only {near} within 2 levels");
}
