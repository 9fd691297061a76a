//! A contact sheet of the stream with the ground-truth boxes drawn on,
//! for looking at the data (`docs/synth_samples.png`) and checking labels
//! by eye.
//!
//! Boxes are 1-pixel rectangles in a colour per class, labelled with the
//! 1-based class index in a 3x5 pixel font (drawn at 2x); difficult boxes
//! are dashed. Regenerate the picture in the docs with
//! `cargo test -p slimdet-data --test synth -- --ignored write_sample_grid`.

use super::{SynthConfig, render_sample};
use crate::RgbImage;

/// Pixels between tiles.
const GAP: usize = 4;

/// One colour per class, in class order.
const PALETTE: [[u8; 3]; 10] = [
    [255, 60, 60],
    [60, 200, 255],
    [255, 220, 0],
    [255, 255, 255],
    [0, 255, 120],
    [255, 120, 255],
    [255, 150, 0],
    [150, 110, 255],
    [0, 255, 255],
    [255, 0, 140],
];

/// Digits 0-9, five rows of three bits, top row in the high bits.
const DIGITS: [u16; 10] = [
    0b111_101_101_101_111,
    0b010_110_010_010_111,
    0b111_001_111_100_111,
    0b111_001_111_001_111,
    0b101_101_111_001_001,
    0b111_100_111_001_111,
    0b111_100_111_101_111,
    0b111_001_010_010_010,
    0b111_101_111_101_111,
    0b111_101_111_001_111,
];

/// Renders images `0 .. n_cols * n_rows` of the stream of `cfg` into an
/// `n_cols x n_rows` grid (4-pixel dark gaps), row by row, with every
/// annotated box drawn: `[H, W, 3]` with `W = n_cols * (size + 4) + 4`.
pub fn sample_grid(cfg: &SynthConfig, n_cols: usize, n_rows: usize) -> RgbImage {
    let tile = cfg.size;
    let width = n_cols * (tile + GAP) + GAP;
    let height = n_rows * (tile + GAP) + GAP;
    let mut out = RgbImage {
        width,
        height,
        data: [32u8, 32, 32].repeat(width * height),
    };
    for index in 0..n_cols * n_rows {
        let (ox, oy) = (
            GAP + (index % n_cols) * (tile + GAP),
            GAP + (index / n_cols) * (tile + GAP),
        );
        let (img, objects) = render_sample(cfg, index);
        for y in 0..tile {
            let src = &img.data[y * tile * 3..(y + 1) * tile * 3];
            let at = ((oy + y) * width + ox) * 3;
            out.data[at..at + tile * 3].copy_from_slice(src);
        }
        let mut pen = Pen {
            img: &mut out,
            ox,
            oy,
            tile,
        };
        for o in &objects {
            let colour = PALETTE[(o.class_index - 1) % PALETTE.len()];
            pen.rect(o.bbox.map(|v| v as usize), colour, o.difficult);
            pen.label(
                o.bbox[0] as usize,
                o.bbox[1] as usize,
                o.class_index,
                colour,
            );
        }
    }
    out
}

/// Draws into one tile of the grid, clipped to the tile.
struct Pen<'a> {
    img: &'a mut RgbImage,
    ox: usize,
    oy: usize,
    tile: usize,
}

impl Pen<'_> {
    fn put(&mut self, x: usize, y: usize, c: [u8; 3]) {
        if x < self.tile && y < self.tile {
            let i = ((self.oy + y) * self.img.width + self.ox + x) * 3;
            self.img.data[i..i + 3].copy_from_slice(&c);
        }
    }

    /// The outline of inclusive box `[x1, y1, x2, y2]`; dashed 3 on, 2 off.
    fn rect(&mut self, [x1, y1, x2, y2]: [usize; 4], c: [u8; 3], dashed: bool) {
        let on = |t: usize| !dashed || t % 5 < 3;
        for x in x1..=x2 {
            if on(x - x1) {
                self.put(x, y1, c);
                self.put(x, y2, c);
            }
        }
        for y in y1..=y2 {
            if on(y - y1) {
                self.put(x1, y, c);
                self.put(x2, y, c);
            }
        }
    }

    /// The decimal `n` at 2x scale on a black plate, just above `(x, y)`
    /// (inside the box when there is no room above).
    fn label(&mut self, x: usize, y: usize, n: usize, c: [u8; 3]) {
        let digits: Vec<usize> = n
            .to_string()
            .bytes()
            .map(|b| usize::from(b - b'0'))
            .collect();
        let (w, h) = (digits.len() * 8 + 1, 12);
        let top = if y >= h { y - h } else { y + 1 };
        for py in 0..h {
            for px in 0..w {
                self.put(x + px, top + py, [0, 0, 0]);
            }
        }
        for (k, &d) in digits.iter().enumerate() {
            for row in 0..5 {
                for col in 0..3 {
                    if DIGITS[d] >> (14 - (row * 3 + col)) & 1 == 1 {
                        for (dx, dy) in [(0, 0), (1, 0), (0, 1), (1, 1)] {
                            self.put(x + 1 + k * 8 + col * 2 + dx, top + 1 + row * 2 + dy, c);
                        }
                    }
                }
            }
        }
    }
}
