//! Arbitrary bytes through the readers of `eval --detections` (CSV and JSON detection
//! files: labels by name or index, numbers, bad-row reporting). Any outcome but a panic
//! is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_eval::detections_io::{parse_csv, parse_json};

fuzz_target!(|data: &[u8]| {
    let classes = slimdet_data::voc::default_classes();
    let path = std::path::Path::new("fuzz.dets");
    for skip in [false, true] {
        let _ = parse_csv(data, path, &classes, skip);
        if let Ok(text) = std::str::from_utf8(data) {
            let _ = parse_json(text, path, &classes, skip);
        }
    }
});
