//! Forward-pass latency of an f32 model and its quantized twin, measured alternately in
//! one process so that both see the same machine load:
//! `cargo run --release -p slimdet-quant --example compare_fp32_int8 -- FP32_MODEL QUANT_FILE [RUNS]`.

use std::path::Path;
use std::time::Instant;

use slimdet_models::{Detector, Predictor};

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let (fp, q) = (
        args.next().ok_or("FP32_MODEL")?,
        args.next().ok_or("QUANT_FILE")?,
    );
    let runs: usize = args.next().map_or(Ok(100), |s| s.parse())?;
    let det = Detector::load(Path::new(&fp), None)?;
    let qdet = slimdet_quant::QuantizedDetector::load(Path::new(&q))?.to_detector();
    let mut a = Predictor::new(&det, 1)?;
    let mut b = Predictor::new(&qdet, 1)?;
    let mut s = 0x9E37_79B9_7F4A_7C15u64;
    let input: Vec<f32> = (0..det.input_shape().iter().product::<usize>())
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect();
    for _ in 0..3 {
        a.forward(&input)?;
        b.forward(&input)?;
    }
    let (mut ta, mut tb) = (Vec::new(), Vec::new());
    for _ in 0..runs {
        let t = Instant::now();
        a.forward(&input)?;
        ta.push(t.elapsed().as_secs_f64() * 1e3);
        let t = Instant::now();
        b.forward(&input)?;
        tb.push(t.elapsed().as_secs_f64() * 1e3);
    }
    ta.sort_by(f64::total_cmp);
    tb.sort_by(f64::total_cmp);
    let (ma, mb) = (ta[runs / 2], tb[runs / 2]);
    println!(
        "fp32: min {:.3} ms, median {:.3} ms | int8: min {:.3} ms, median {:.3} ms | speed-up min {:.2}x, median {:.2}x ({runs} alternating runs)",
        ta[0],
        ma,
        tb[0],
        mb,
        ta[0] / tb[0],
        ma / mb
    );
    Ok(())
}
