//! The embedded font. PNG text is rasterised by plotters' `ab_glyph` backend, which only
//! knows fonts registered at run time; embedding DejaVu Sans (Bitstream Vera licence, see
//! `assets/DejaVuSans-LICENSE.txt`) makes PNG output work on machines without any fonts.

use std::sync::OnceLock;

use plotters::style::FontStyle;

use crate::error::{Error, Result};

/// The family name every figure uses.
pub const FAMILY: &str = "sans-serif";

static DEJAVU_SANS: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

/// Registers the embedded font as `sans-serif` (and `serif`, `monospace`, which plotters
/// may ask for) once per process.
pub fn register() -> Result<()> {
    static DONE: OnceLock<bool> = OnceLock::new();
    let ok = *DONE.get_or_init(|| {
        ["sans-serif", "serif", "monospace"].iter().all(|name| {
            plotters::style::register_font(name, FontStyle::Normal, DEJAVU_SANS).is_ok()
        })
    });
    if ok {
        Ok(())
    } else {
        Err(Error::Plot(
            "the embedded DejaVu Sans font could not be parsed".into(),
        ))
    }
}
