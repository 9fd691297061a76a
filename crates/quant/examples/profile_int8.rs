//! Per-step profile of the integer engine on a quantized file:
//! `cargo run --release -p slimdet-quant --example profile_int8 -- MODEL.safetensors [RUNS]`.

use std::collections::BTreeMap;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let path = args.next().ok_or("usage: profile_int8 MODEL [RUNS]")?;
    let runs: usize = args.next().map_or(Ok(20), |s| s.parse())?;
    let q = slimdet_quant::QuantizedDetector::load(std::path::Path::new(&path))?;
    let det = q.to_detector();
    let mut e = slimdet_quant::Int8Engine::new(&q, 1)?;
    let input = vec![0.1f32; det.input_shape().iter().product()];
    // Per step, the fastest of `runs` (the machine may be shared).
    let mut best: Vec<(String, f64)> = Vec::new();
    for r in 0..runs {
        for (i, (k, ms)) in e.profile(&input)?.into_iter().enumerate() {
            if r == 0 {
                best.push((k, ms));
            } else {
                best[i].1 = best[i].1.min(ms);
            }
        }
    }
    if let Some(step) = std::env::var("STEP")
        .ok()
        .and_then(|s| s.parse::<usize>().ok())
    {
        let kinds = e.profile(&input)?;
        println!(
            "step {step} ({}): hot {:.3} ms",
            kinds[step].0,
            e.time_step(&input, step, 200)?
        );
        return Ok(());
    }
    let mut by_kind: BTreeMap<String, f64> = BTreeMap::new();
    let mut total = 0.0;
    for (k, ms) in best {
        let key = k.split(' ').next().unwrap_or("").to_string();
        *by_kind.entry(key).or_default() += ms;
        *by_kind.entry(k).or_default() += ms;
        total += ms;
    }
    let mut v: Vec<_> = by_kind.into_iter().collect();
    v.sort_by(|a, b| b.1.total_cmp(&a.1));
    println!("total {total:.2} ms per run");
    for (k, ms) in v.iter().take(40) {
        println!("{ms:8.3} ms  {k}");
    }
    Ok(())
}
