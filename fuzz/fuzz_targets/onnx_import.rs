//! Arbitrary bytes through the ONNX loader: protobuf decoding, import (initializer
//! decoding, shape folding, layer translation, quantized forms) and, for models with a
//! small input, compilation and one run. Any outcome but a panic (or a sanitizer
//! report) is fine: errors are the expected answer to garbage.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_onnx::{OnnxModel, import_bytes};

/// Largest input (elements) the target runs, to keep each execution fast.
const MAX_RUN_INPUT: usize = 1 << 14;

fuzz_target!(|data: &[u8]| {
    let Ok(imported) = import_bytes(data, "fuzz.onnx") else {
        return;
    };
    let numel: usize = imported.input_shape_nchw.iter().product();
    let work: usize = imported
        .engine_output_shapes
        .iter()
        .map(|s| s.iter().product::<usize>())
        .sum();
    if numel > MAX_RUN_INPUT || work > MAX_RUN_INPUT * 16 || imported.graph.nodes.len() > 64 {
        return;
    }
    if let Ok(mut model) = OnnxModel::new(imported, &Default::default()) {
        let input: Vec<f32> = (0..numel).map(|i| (i % 7) as f32 - 3.0).collect();
        let _ = model.run_nchw(&input);
    }
});
