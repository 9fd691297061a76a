//! Arbitrary bytes through the TensorFlow frozen-graph reader: protobuf decoding,
//! constant conversion (packed and listed values, fill expansion within its budget) and
//! the graph queries the importers use. Any outcome but a panic is fine.

#![no_main]

use libfuzzer_sys::fuzz_target;
use slimdet_formats::tf::load_graphdef_bytes;

fuzz_target!(|data: &[u8]| {
    let Ok(g) = load_graphdef_bytes(data, "fuzz.pb") else {
        return;
    };
    for n in &g.nodes {
        for k in 0..n.inputs.len() {
            let _ = g.input(n, k).and_then(|p| p.const_value());
        }
        let _ = g.consumers(&n.name).count();
        let _ = (n.attr_str("padding"), n.attr_ints("strides"), n.attr_f32("epsilon"));
    }
});
