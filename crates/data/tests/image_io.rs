//! Image file I/O: PNG round trip, atomic writes, error messages.

use slimdet_data::{Error, RgbImage, load_rgb, normalize_into, save_png};

fn gradient(w: usize, h: usize) -> RgbImage {
    let data = (0..w * h * 3).map(|i| (i * 7 % 251) as u8).collect();
    RgbImage {
        width: w,
        height: h,
        data,
    }
}

#[test]
fn png_round_trip() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("x.png");
    let img = gradient(13, 7);
    save_png(&path, &img).unwrap();
    assert_eq!(load_rgb(&path).unwrap(), img);
    // Overwrite in place, and no temp files left behind.
    let img2 = gradient(5, 9);
    save_png(&path, &img2).unwrap();
    assert_eq!(load_rgb(&path).unwrap(), img2);
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().collect();
    assert_eq!(names.len(), 1);
}

#[test]
fn save_rejects_inconsistent_buffer() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("bad.png");
    let img = RgbImage {
        width: 4,
        height: 4,
        data: vec![0; 10],
    };
    let err = save_png(&path, &img).unwrap_err();
    assert!(
        matches!(
            err,
            Error::BadImageBuffer {
                got: 10,
                expected: 48,
                ..
            }
        ),
        "{err}"
    );
    assert!(!path.exists());
}

#[test]
fn save_into_missing_dir_names_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("no/such/dir/x.png");
    let err = save_png(&path, &gradient(2, 2)).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("x.png"), "{err}");
}

#[test]
fn load_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let missing = dir.path().join("missing.jpg");
    let err = load_rgb(&missing).unwrap_err();
    assert!(matches!(err, Error::Io { .. }), "{err}");
    assert!(err.to_string().contains("missing.jpg"), "{err}");

    let garbage = dir.path().join("garbage.jpg");
    std::fs::write(&garbage, b"\xff\xd8\xff\xe0 this is not really a jpeg").unwrap();
    let err = load_rgb(&garbage).unwrap_err();
    assert!(matches!(err, Error::Decode { .. }), "{err}");
    assert!(err.to_string().contains("garbage.jpg"), "{err}");

    let text = dir.path().join("notes.png");
    std::fs::write(&text, b"hello").unwrap();
    assert!(load_rgb(&text).is_err());
}

#[test]
fn normalize_matches_reference_formula() {
    let img = RgbImage {
        width: 2,
        height: 1,
        data: vec![0, 127, 255, 1, 128, 200],
    };
    let mut out = vec![f32::NAN; 6];
    normalize_into(&img, [127.0; 3], 128.0, &mut out);
    let want: Vec<f32> = img
        .data
        .iter()
        .map(|&v| (v as f32 - 127.0) / 128.0)
        .collect();
    assert_eq!(out, want);
    assert_eq!(out[0], -127.0 / 128.0);
    assert_eq!(out[1], 0.0);
    assert_eq!(out[2], 1.0);
    // A per-channel mean (VGG16-SSD's RGB mean, std 1) subtracts each channel's own.
    normalize_into(&img, [123.0, 117.0, 104.0], 1.0, &mut out);
    assert_eq!(out, vec![-123.0, 10.0, 151.0, -122.0, 11.0, 96.0]);
}

/// CRC-32 (IEEE) of a PNG chunk's type and data.
fn crc32(bytes: &[u8]) -> u32 {
    let mut c = !0u32;
    for &b in bytes {
        c ^= b as u32;
        for _ in 0..8 {
            c = if c & 1 == 1 {
                0xEDB8_8320 ^ (c >> 1)
            } else {
                c >> 1
            };
        }
    }
    !c
}

fn png_chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut c = (data.len() as u32).to_be_bytes().to_vec();
    let body = [&kind[..], data].concat();
    c.extend(&body);
    c.extend(crc32(&body).to_be_bytes());
    c
}

/// A 57-byte PNG that claims 100000 x 100000 pixels (30 GB of RGB) is refused by the
/// decoder's limits before anything that size is allocated.
#[test]
fn huge_dimensions_are_refused() {
    let mut ihdr = 100_000u32.to_be_bytes().to_vec();
    ihdr.extend(100_000u32.to_be_bytes());
    ihdr.extend([8, 2, 0, 0, 0]);
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    png.extend(png_chunk(b"IHDR", &ihdr));
    png.extend(png_chunk(b"IEND", &[]));
    let err = slimdet_data::decode_rgb(&png, std::path::Path::new("huge.png")).unwrap_err();
    let msg = err.to_string();
    assert!(msg.contains("huge.png"), "{msg}");
    assert!(msg.to_lowercase().contains("limit"), "{msg}");
}
