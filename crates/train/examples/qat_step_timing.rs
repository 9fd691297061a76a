//! Times one QAT step (fake-quant forward, STE backward) against one f32 training step
//! (`TrainGraph` on the unfolded graph, training-mode BN) on the built-in model, batch B.
//!
//! `cargo run --release -p slimdet-train --example qat_step_timing -- [B] [reps]`

use std::time::Instant;

use slimdet_core::Tensor;
use slimdet_data::synth::{SynthConfig, render_sample};
use slimdet_models::Detector;
use slimdet_quant::{CalibInput, QuantOptions, quantize};
use slimdet_train::qat::QatNet;
use slimdet_train::{BackwardOptions, Mode, TrainGraph};

fn main() {
    let args: Vec<usize> = std::env::args()
        .skip(1)
        .filter_map(|a| a.parse().ok())
        .collect();
    let (b, reps) = (
        args.first().copied().unwrap_or(4),
        args.get(1).copied().unwrap_or(3),
    );
    let p = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/mb2-ssd-lite-synth.safetensors"
    );
    let det = Detector::load(std::path::Path::new(p), None).expect("built-in model");
    let cfg = SynthConfig::default();
    let imgs: Vec<_> = (0..b).map(|i| render_sample(&cfg, i).0).collect();
    let q = quantize(&det, &imgs[..2], &QuantOptions::default()).expect("quantize");
    let [_, h, w, c] = det.input_shape();
    let data: Vec<f32> = imgs
        .iter()
        .enumerate()
        .flat_map(|(i, im)| im.to_input(&det, i).expect("input"))
        .collect();
    let x = Tensor::new(vec![b, h, w, c], data).expect("tensor");
    let net = QatNet::new(&det, q, 1).expect("net");
    let tg = TrainGraph::new(1).expect("exec");
    for r in 0..reps {
        let t = Instant::now();
        let tape = net.forward(&x).expect("forward");
        let tf = t.elapsed().as_secs_f64();
        let (lv, _, l) = tape.output("logits").expect("logits");
        let (bv, _, bx) = tape.output("locations").expect("locations");
        let (dl, db) = (vec![1e-3f32; l.len()], vec![1e-3f32; bx.len()]);
        let t = Instant::now();
        net.backward(&tape, &[(lv, &dl), (bv, &db)])
            .expect("backward");
        let tb = t.elapsed().as_secs_f64();
        drop(tape);
        let t = Instant::now();
        let tape = tg.forward(&det.graph, &x, Mode::Train).expect("forward");
        let ff = t.elapsed().as_secs_f64();
        let (lv, _, _) = tape.output("logits").expect("logits");
        let (bv, _, _) = tape.output("locations").expect("locations");
        let t = Instant::now();
        tg.backward(
            &det.graph,
            &tape,
            &[(lv, &dl), (bv, &db)],
            &BackwardOptions::default(),
        )
        .expect("backward");
        let fb = t.elapsed().as_secs_f64();
        println!(
            "rep {r}: QAT forward {tf:.2} s backward {tb:.2} s | f32 forward {ff:.2} s backward {fb:.2} s"
        );
    }
}
