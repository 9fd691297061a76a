//! One image of the stream: background, 1-6 objects painted in order over
//! each other, occasional thin occluders on top, the camera pass, and the
//! annotations read back from a per-pixel ownership mask.
//!
//! The mask is what makes the labels honest: an object's box is the tight
//! box of the pixels it still owns after everything later was painted, and
//! its visible fraction is those pixels over its full area (counted as if
//! the image had no border), so occlusion and truncation both lower it.

use super::background;
use super::paint::{self, Canvas, Fill};
use super::rng::Rng;
use super::shapes::{Kind, SYNTH_CLASSES, Shape};
use super::{SynthConfig, SynthObject, SynthScene};
use crate::RgbImage;

/// Below this visible fraction an object is marked difficult.
pub const DIFFICULT_VISIBLE: f32 = 0.25;
/// Below this short box side (pixels) an object is marked difficult.
pub const DIFFICULT_SIDE: u32 = 10;
/// Below this visible fraction an object is left out of the annotations.
pub const DROP_VISIBLE: f32 = 0.1;
/// Below this short box side (pixels) an object is left out of the annotations.
pub const DROP_SIDE: u32 = 3;

/// Most objects painted into one image.
pub const MAX_OBJECTS: usize = 6;

/// Chance that an object after the first is placed to overlap an earlier one.
const OVERLAP_CHANCE: f64 = 0.4;

/// What the painter knows about one painted object.
struct Painted {
    kind: Kind,
    /// Pixels inside the shape, on an unbounded grid.
    area: usize,
    /// Some shape pixel lies outside the image.
    truncated: bool,
}

/// Renders image `index` of the stream of `cfg` (see [`super::render_scene`]).
pub(crate) fn render(cfg: &SynthConfig, index: usize) -> SynthScene {
    let side = cfg.size;
    let mut rng = Rng::for_image(cfg.seed, index as u64);
    let mut cv = Canvas::new(side);
    background::background(&mut cv, &mut rng);

    // owner[p] = 1 + paint order of the object that owns pixel p, 0 = none.
    let mut owner = vec![0u8; side * side];
    let mut painted = Vec::with_capacity(MAX_OBJECTS);
    let mut shapes: Vec<Shape> = Vec::with_capacity(MAX_OBJECTS);
    let n_objects = 1 + rng.below(MAX_OBJECTS);
    for k in 0..n_objects {
        let kind = Kind::from_class(1 + rng.below(SYNTH_CLASSES.len()));
        let mut shape = Shape::sample(kind, side as f64, &mut rng);
        // Overlap an earlier object on purpose 40 % of the time.
        if k > 0 && rng.chance(OVERLAP_CHANCE) {
            let j = rng.below(k);
            shape.move_near(&shapes[j], side as f64, &mut rng);
        }
        let (ex, ey) = shape.half_extent();
        let long = 2.0 * ex.max(ey);
        let under = cv.mean_around(shape.cx as i64, shape.cy as i64, 2);
        let fill = if kind.low_contrast() {
            let a = paint::colour_near(&mut rng, under);
            let b = paint::colour_near(&mut rng, a);
            Fill::sample(&mut rng, a, b, long, true)
        } else {
            let a = paint::colour_away_from(&mut rng, under, 150.0);
            let b = paint::colour_away_from(&mut rng, a, 80.0);
            Fill::sample(&mut rng, a, b, long, false)
        };
        let (x0, y0, x1, y1) = shape.pixel_bounds();
        let mut info = Painted {
            kind,
            area: 0,
            truncated: false,
        };
        for y in y0..y1 {
            for x in x0..x1 {
                if !shape.contains(x, y) {
                    continue;
                }
                info.area += 1;
                match cv.at(x, y) {
                    Some(i) => {
                        let (u, v) = shape.local(x, y);
                        cv.px[i] = fill.colour(u, v);
                        owner[i] = k as u8 + 1;
                    }
                    None => info.truncated = true,
                }
            }
        }
        painted.push(info);
        shapes.push(shape);
    }
    // Thin occluders over everything in a quarter of the images.
    if rng.chance(0.25) {
        for _ in 0..1 + rng.below(2) {
            let colour = paint::random_colour(&mut rng);
            background::scribble(&mut cv, &mut rng, colour, |i| owner[i] = 0);
        }
    }
    paint::photometric(&mut cv, &mut rng);

    let (objects, annotated) = annotate(&painted, &owner, side);
    // Renumber the mask: 1 + annotation index, 0 for unannotated pixels.
    let owner = owner
        .iter()
        .map(|&o| if o == 0 { 0 } else { annotated[o as usize - 1] })
        .collect();
    SynthScene {
        image: RgbImage {
            width: side,
            height: side,
            data: cv.to_u8(),
        },
        objects,
        owner,
    }
}

/// Boxes, visibility and flags from the ownership mask. Returns the kept
/// objects in paint order and, for each painted object, its mask value in
/// the renumbered mask (0 if dropped).
fn annotate(painted: &[Painted], owner: &[u8], side: usize) -> (Vec<SynthObject>, Vec<u8>) {
    let n = painted.len();
    let mut count = vec![0usize; n];
    let mut bbox = vec![[u32::MAX, u32::MAX, 0, 0]; n];
    for (i, &o) in owner.iter().enumerate() {
        if o == 0 {
            continue;
        }
        let k = o as usize - 1;
        let (x, y) = ((i % side) as u32, (i / side) as u32);
        let b = &mut bbox[k];
        *b = [b[0].min(x), b[1].min(y), b[2].max(x), b[3].max(y)];
        count[k] += 1;
    }
    let mut objects = Vec::with_capacity(n);
    let mut renumber = vec![0u8; n];
    for k in 0..n {
        if count[k] == 0 {
            continue;
        }
        let visible_fraction = count[k] as f32 / painted[k].area.max(1) as f32;
        let b = bbox[k];
        let short = (b[2] - b[0] + 1).min(b[3] - b[1] + 1);
        if visible_fraction < DROP_VISIBLE || short < DROP_SIDE {
            continue;
        }
        objects.push(SynthObject {
            class_index: painted[k].kind.class_index(),
            bbox: b,
            difficult: visible_fraction < DIFFICULT_VISIBLE || short < DIFFICULT_SIDE,
            truncated: painted[k].truncated,
            visible_fraction,
        });
        renumber[k] = objects.len() as u8;
    }
    (objects, renumber)
}
