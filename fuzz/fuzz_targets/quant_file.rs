//! Arbitrary bytes through the reader of `slimdet quantize`'s files (static, dynamic and
//! fp16 int8 models: checksum, metadata, per-layer scales and zero points, tensor dtypes
//! and shapes). Any outcome but a panic is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_quant::QuantizedDetector;

fuzz_target!(|data: &[u8]| {
    let _ = QuantizedDetector::load_bytes(data, std::path::Path::new("fuzz.safetensors"));
});
