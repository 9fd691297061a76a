//! Arbitrary text through the VOC annotation parser (XML, sizes, boxes, flags, class
//! names, the object and node limits). Any outcome but a panic is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_data::voc::{default_classes, parse_annotation_text};

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let classes = default_classes();
    for skip in [false, true] {
        let _ = parse_annotation_text(text, std::path::Path::new("fuzz.xml"), &classes, skip);
    }
});
