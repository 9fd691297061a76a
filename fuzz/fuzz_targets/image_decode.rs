//! Arbitrary bytes through the image path the CLI uses (format sniffing, JPEG and PNG
//! decoding under the size and allocation limits, EXIF orientation, RGB conversion).
//! Any outcome but a panic is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    if let Ok(img) = slimdet_data::decode_rgb(data, std::path::Path::new("fuzz.img")) {
        assert!(img.is_consistent());
    }
});
