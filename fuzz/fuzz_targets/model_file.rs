//! Arbitrary bytes through the model loader every command uses: `.pth` (zip and legacy,
//! through the pickle subset), safetensors (slimdet's sparse bitmap-v1 encoding, the
//! architecture, class and structured-pruning metadata) and TF frozen graphs, recognised
//! by content, then mapped onto the detector's graph. Any outcome but a panic is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_models::Detector;

fuzz_target!(|data: &[u8]| {
    let _ = slimdet_formats::load_pth_bytes(data, "fuzz.pth");
    let _ = Detector::load_bytes(data, "fuzz.model", None);
});
