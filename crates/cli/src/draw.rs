//! Drawing labelled boxes on RGB images, with an embedded 8x8 bitmap font (no font files
//! needed at run time).

use slimdet_data::RgbImage;

/// A distinct colour per class index.
pub fn class_colour(label: usize) -> [u8; 3] {
    const PALETTE: [[u8; 3]; 10] = [
        [255, 56, 56],
        [255, 157, 151],
        [255, 112, 31],
        [255, 178, 29],
        [207, 210, 49],
        [72, 249, 10],
        [26, 147, 52],
        [0, 212, 187],
        [44, 153, 168],
        [52, 69, 147],
    ];
    PALETTE[label % PALETTE.len()]
}

fn put(img: &mut RgbImage, x: i64, y: i64, c: [u8; 3]) {
    if x >= 0 && y >= 0 && (x as usize) < img.width && (y as usize) < img.height {
        let i = (y as usize * img.width + x as usize) * 3;
        img.data[i..i + 3].copy_from_slice(&c);
    }
}

/// Draws a rectangle outline `[x1, y1, x2, y2]` (pixels, clipped to the image).
pub fn rect(img: &mut RgbImage, b: [f32; 4], thickness: i64, c: [u8; 3]) {
    let [x1, y1, x2, y2] = b.map(|v| v.round() as i64);
    for t in 0..thickness {
        for x in x1..=x2 {
            put(img, x, y1 + t, c);
            put(img, x, y2 - t, c);
        }
        for y in y1..=y2 {
            put(img, x1 + t, y, c);
            put(img, x2 - t, y, c);
        }
    }
}

/// Draws `text` with its top-left corner at `(x, y)`, on a filled background, each font
/// pixel scaled by `scale`.
pub fn label(img: &mut RgbImage, x: i64, y: i64, text: &str, scale: i64, fg: [u8; 3], bg: [u8; 3]) {
    let w = text.chars().count() as i64 * 8 * scale;
    for yy in y..y + 8 * scale + 2 {
        for xx in x..x + w + 2 {
            put(img, xx, yy, bg);
        }
    }
    for (i, ch) in text.chars().enumerate() {
        let glyph = font8x8::legacy::BASIC_LEGACY[(ch as usize).min(127)];
        for (row, bits) in glyph.iter().enumerate() {
            for col in 0..8 {
                if bits >> col & 1 == 1 {
                    for dy in 0..scale {
                        for dx in 0..scale {
                            put(
                                img,
                                x + 1 + (i as i64 * 8 + col) * scale + dx,
                                y + 1 + row as i64 * scale + dy,
                                fg,
                            );
                        }
                    }
                }
            }
        }
    }
}

/// Draws one detection: box plus `name: score` above it (inside if at the top edge).
pub fn detection(img: &mut RgbImage, b: [f32; 4], label_index: usize, text: &str) {
    let c = class_colour(label_index);
    let scale = if img.width >= 600 { 2 } else { 1 };
    rect(img, b, scale + 1, c);
    let ty = b[1].round() as i64 - 8 * scale - 2;
    let ty = if ty < 0 { b[1].round() as i64 } else { ty };
    label(img, b[0].round() as i64, ty, text, scale, [0, 0, 0], c);
}
