//! Times training steps of MobileNetV2-SSD-Lite on random data and prints where the time
//! goes: forward, loss, backward and SGD per step, and per op kind.
//!
//! ```sh
//! cargo run --release -p slimdet-train --example profile_step -- BATCH THREADS STEPS [WIDTH [PRECISION]]
//! ```
//!
//! The input is uniform noise in [−1, 1] `[B, 300, 300, 3]`; each image has 12 positive
//! priors with random classes and box targets, so the loss mines 36 negatives per image.
//! The first step is a warm-up and is not counted. PRECISION is `fp32` (default) or `bf16`.

use std::time::Instant;

use slimdet_core::Tensor;
use slimdet_models::{Arch, Detector};
use slimdet_train::loss::MultiboxLoss;
use slimdet_train::optim::Sgd;
use slimdet_train::rng::Rng;
use slimdet_train::{BackwardOptions, Mode, TrainGraph};

fn arg(i: usize, default: f64) -> f64 {
    std::env::args()
        .nth(i)
        .and_then(|s| s.parse().ok())
        .unwrap_or(default)
}

fn main() {
    let batch = arg(1, 8.0) as usize;
    let threads = arg(2, 1.0) as usize;
    let steps = arg(3, 3.0) as usize;
    let width = arg(4, 1.0);
    let precision: slimdet_train::Precision = std::env::args()
        .nth(5)
        .map(|s| s.parse().expect("precision: fp32 or bf16"))
        .unwrap_or_default();
    let classes = 11;
    let arch = Arch::Mb2SsdLite {
        width_mult: width,
        num_classes: classes,
    };
    let mut det = Detector::new(arch);
    slimdet_train::init::init_ssd(&mut det.graph, 0);
    let p = det.priors.len();
    let mut rng = Rng::derive(1, &[7]);
    let n = batch * 300 * 300 * 3;
    let x = Tensor::new(
        vec![batch, 300, 300, 3],
        (0..n).map(|_| rng.uniform(-1.0, 1.0) as f32).collect(),
    )
    .expect("input shape");
    let mut labels = vec![0usize; batch * p];
    let mut locs = vec![0.0f32; batch * p * 4];
    for b in 0..batch {
        for _ in 0..12 {
            let i = b * p + (rng.uniform(0.0, p as f64) as usize).min(p - 1);
            labels[i] = 1 + (rng.uniform(0.0, (classes - 1) as f64) as usize).min(classes - 2);
            for v in &mut locs[i * 4..i * 4 + 4] {
                *v = rng.uniform(-1.0, 1.0) as f32;
            }
        }
    }
    let mut exec = TrainGraph::new(threads).expect("thread pool");
    exec.set_profiling(true);
    exec.set_precision(precision);
    let loss_fn = MultiboxLoss::new(classes);
    let mut opt = Sgd::new(0.9, 5e-4);
    let opts = BackwardOptions::default();
    let mut phases = [0.0f64; 4];
    let mut tape_bytes = 0;
    let t_all = Instant::now();
    for step in 0..=steps {
        if step == 1 {
            exec.take_profile();
            phases = [0.0; 4];
        }
        let t = Instant::now();
        let tape = exec.forward(&det.graph, &x, Mode::Train).expect("forward");
        phases[0] += t.elapsed().as_secs_f64();
        tape_bytes = tape.bytes();
        let t = Instant::now();
        let (lv, _, logits) = tape.output("logits").expect("logits");
        let (locv, _, loc) = tape.output("locations").expect("locations");
        let out = loss_fn
            .compute(batch, logits, loc, &labels, &locs)
            .expect("loss");
        phases[1] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        let seeds = [
            (lv, out.d_logits.as_slice()),
            (locv, out.d_locations.as_slice()),
        ];
        let grads = exec
            .backward(&det.graph, &tape, &seeds, &opts)
            .expect("backward");
        phases[2] += t.elapsed().as_secs_f64();
        let t = Instant::now();
        tape.update_bn_running_stats(&mut det.graph, 0.1);
        exec.recycle(tape);
        opt.step(&mut det.graph, &grads, 0.01);
        phases[3] += t.elapsed().as_secs_f64();
        eprintln!("step {step}: loss {:.4}", out.value.total());
    }
    let _ = t_all;
    let steps_f = steps.max(1) as f64;
    let total: f64 = phases.iter().sum();
    println!(
        "batch {batch}, {threads} thread(s), width {width}, {precision}, {steps} timed steps: {:.3} s/step, {:.2} images/s (model only, no data loading), tape {:.1} MiB ({:.1} MiB/image)",
        total / steps_f,
        batch as f64 * steps_f / total,
        tape_bytes as f64 / (1 << 20) as f64,
        tape_bytes as f64 / (1 << 20) as f64 / batch as f64
    );
    for (name, v) in ["forward", "loss", "backward", "bn stats + sgd"]
        .iter()
        .zip(phases)
    {
        println!("  {name:<16} {:>8.1} ms/step", v * 1e3 / steps_f);
    }
    println!(
        "  {:<16} {:>10} {:>10} {:>7}",
        "op", "fwd ms", "bwd ms", "calls"
    );
    for o in exec.take_profile() {
        println!(
            "  {:<16} {:>10.1} {:>10.1} {:>7}",
            o.kind,
            o.forward_s * 1e3 / steps_f,
            o.backward_s * 1e3 / steps_f,
            o.calls / steps.max(1)
        );
    }
}
