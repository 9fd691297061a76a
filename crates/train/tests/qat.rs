//! Quantization-aware training on the built-in model: the fake-quant forward is the
//! quantizer's simulated path, a few QAT steps lower the loss on a tiny dataset, and the
//! exported int8 model tracks the fake-quant network.

use std::path::PathBuf;

use slimdet_core::Tensor;
use slimdet_data::synth::{SynthConfig, generate_with_threads, render_sample};
use slimdet_models::Detector;
use slimdet_quant::float_exec::FloatRunner;
use slimdet_quant::report::fake_quant_plan;
use slimdet_quant::{CalibInput, Int8Engine, Observer, QuantOptions, QuantizedDetector, quantize};
use slimdet_train::TrainConfig;
use slimdet_train::qat::{QatNet, qat_train};
use slimdet_train::schedule::{LrPolicy, LrSchedule};

fn builtin() -> Detector {
    let p = PathBuf::from(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../../models/mb2-ssd-lite-synth.safetensors"
    ));
    Detector::load(&p, None).unwrap()
}

fn calibrated(det: &Detector) -> QuantizedDetector {
    let cfg = SynthConfig::default();
    let calib: Vec<_> = (0..4).map(|i| render_sample(&cfg, i).0).collect();
    let opts = QuantOptions {
        observer: Observer::Mse,
        ..QuantOptions::default()
    };
    quantize(det, &calib, &opts).unwrap()
}

/// Inputs of synthetic test images `indices`, one `[1, H, W, 3]` each.
fn inputs(det: &Detector, indices: std::ops::Range<usize>) -> Vec<Vec<f32>> {
    let cfg = SynthConfig::default();
    indices
        .map(|i| render_sample(&cfg, i).0.to_input(det, i).unwrap())
        .collect()
}

fn sqnr_db(x: &[f32], y: &[f32]) -> f64 {
    let s: f64 = x.iter().map(|&a| (a as f64).powi(2)).sum();
    let n: f64 = x
        .iter()
        .zip(y)
        .map(|(&a, &b)| (a as f64 - b as f64).powi(2))
        .sum();
    if n == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (s / n).log10()
    }
}

/// Runs `net` on a batch of the given single-image inputs.
fn qat_outputs(net: &QatNet, det: &Detector, xs: &[Vec<f32>]) -> (Vec<f32>, Vec<f32>) {
    let [_, h, w, c] = det.input_shape();
    let data: Vec<f32> = xs.concat();
    let t = Tensor::new(vec![xs.len(), h, w, c], data).unwrap();
    let tape = net.forward(&t).unwrap();
    (
        tape.output("logits").unwrap().2.to_vec(),
        tape.output("locations").unwrap().2.to_vec(),
    )
}

#[test]
fn fake_quant_forward_is_the_simulated_path_and_export_tracks_it() {
    let det = builtin();
    let q = calibrated(&det);
    let xs = inputs(&det, 1500..1502);
    let net = QatNet::new(&det, q.clone(), 1).unwrap();
    let (logits, locs) = qat_outputs(&net, &det, &xs);

    // The quantizer's simulation: its f32 view with the same fake-quant plan.
    let sim = FloatRunner::new(&q.graph, &det.input_shape()).unwrap();
    let fake = fake_quant_plan(&q);
    let mut sim_l = Vec::new();
    let mut sim_b = Vec::new();
    for x in &xs {
        let o = sim.run(x, Some(&fake), &mut |_, _| {}).unwrap();
        sim_l.extend_from_slice(&o[0]);
        sim_b.extend_from_slice(&o[1]);
    }
    // Different f32 kernels (training im2col/sgemm vs inference packing) sum in other
    // orders, so a value near a rounding edge may land one code apart: tolerance 45 dB,
    // and 99% of the logits identical to 1e-4.
    let (dl, db) = (sqnr_db(&sim_l, &logits), sqnr_db(&sim_b, &locs));
    eprintln!("fake-quant net vs simulation: logits {dl:.1} dB, locations {db:.1} dB");
    assert!(
        dl > 45.0 && db > 45.0,
        "logits {dl:.1} dB, locations {db:.1} dB"
    );
    let close = sim_l
        .iter()
        .zip(&logits)
        .filter(|(a, b)| (*a - *b).abs() <= 1e-4)
        .count();
    eprintln!("{close} of {} logits within 1e-4", sim_l.len());
    assert!(
        close * 100 >= 99 * sim_l.len(),
        "{close} of {} equal",
        sim_l.len()
    );

    // Before any training, the export is the calibrated model itself.
    assert_eq!(net.export(), q);

    // The exported int8 model (real integer kernels) tracks the fake-quant network:
    // logits and locations within 30 dB (the integer requantization rounds differently
    // from f32 fake quantization in a few places).
    let mut engine = Int8Engine::new(&net.export(), 1).unwrap();
    let mut int_l = Vec::new();
    let mut int_b = Vec::new();
    for x in &xs {
        let o = engine.run(x).unwrap();
        int_l.extend_from_slice(o[0]);
        int_b.extend_from_slice(o[1]);
    }
    let (il, ib) = (sqnr_db(&logits, &int_l), sqnr_db(&locs, &int_b));
    eprintln!("int8 vs fake-quant (calibrated): logits {il:.1} dB, locations {ib:.1} dB");
    assert!(
        il > 30.0 && ib > 30.0,
        "int8 vs fake-quant: logits {il:.1} dB, locations {ib:.1} dB"
    );
}

#[test]
fn a_few_qat_steps_lower_the_loss_and_the_export_tracks_the_trained_network() {
    let det = builtin();
    let q = calibrated(&det);
    let dir = tempfile::tempdir().unwrap();
    let data = SynthConfig {
        train: 8,
        test: 1,
        seed: 7,
        size: 300,
    };
    generate_with_threads(dir.path(), &data, 1, &mut |_, _| {}).unwrap();
    let mut cfg = TrainConfig::new(dir.path(), dir.path().join("out"));
    cfg.epochs = 4;
    cfg.batch = 4;
    cfg.augment = false;
    cfg.val_split = None;
    cfg.val_every = 0;
    cfg.weight_decay = 0.0;
    cfg.schedule = LrSchedule {
        base_lr: 2e-3,
        policy: LrPolicy::Constant,
        warmup_epochs: 0,
    };
    let mut steps = 0;
    let (exported, report) = qat_train(&det, q.clone(), &cfg, &mut |p| {
        if let slimdet_train::Progress::Step(_) = p {
            steps += 1;
        }
    })
    .unwrap();
    assert_eq!(steps, report.global_step);
    let first = report.epochs.first().unwrap().loss;
    let last = report.epochs.last().unwrap().loss;
    assert!(report.epochs.len() == 4 && !report.stopped);
    assert!(last < 0.9 * first, "epoch losses {:?}", report.epochs);

    // The weights moved, the activation ranges did not.
    assert_eq!(exported.act, q.act);
    assert_ne!(exported.layers, q.layers);
    assert_eq!(exported.layers.len(), q.layers.len());

    // Saved and loaded like any quantized model, and its integer engine tracks the
    // fake-quant network of the trained weights (tolerance as above: 30 dB).
    let path = dir.path().join("qat-int8.safetensors");
    exported.save(&path).unwrap();
    let back = QuantizedDetector::load(&path).unwrap();
    assert_eq!(back.layers, exported.layers);
    let mut net = QatNet::new(&det, q, 1).unwrap();
    net.graph = exported.graph.clone();
    // The exported graph holds the int8 view; re-quantizing a view is the identity.
    assert_eq!(net.export().layers, exported.layers);
    let xs = inputs(&det, 1500..1501);
    let (logits, locs) = qat_outputs(&net, &det, &xs);
    let mut engine = Int8Engine::new(&back, 1).unwrap();
    let o = engine.run(&xs[0]).unwrap();
    let (il, ib) = (sqnr_db(&logits, o[0]), sqnr_db(&locs, o[1]));
    eprintln!("int8 vs fake-quant (trained): logits {il:.1} dB, locations {ib:.1} dB");
    eprintln!(
        "epoch losses {:?}",
        report.epochs.iter().map(|e| e.loss).collect::<Vec<_>>()
    );
    assert!(
        il > 30.0 && ib > 30.0,
        "logits {il:.1} dB, locations {ib:.1} dB"
    );
}

/// The fake-quant forward of networks with max pooling, squeeze-and-excite, h-swish and an
/// unfolded batch norm (pytorch-ssd's own files) is the quantizer's simulated path too.
#[test]
fn fake_quant_forward_matches_the_simulation_on_the_other_networks() {
    for net in ["sq-ssd-lite", "mb3-small-ssd-lite", "vgg16-ssd"] {
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let q = calibrated(&det);
        let xs = inputs(&det, 1500..1501);
        let net_q = QatNet::new(&det, q.clone(), 1).unwrap();
        let (logits, locs) = qat_outputs(&net_q, &det, &xs);
        let sim = FloatRunner::new(&q.graph, &det.input_shape()).unwrap();
        let o = sim
            .run(&xs[0], Some(&fake_quant_plan(&q)), &mut |_, _| {})
            .unwrap();
        let (dl, db) = (sqnr_db(&o[0], &logits), sqnr_db(&o[1], &locs));
        eprintln!("{net}: fake-quant net vs simulation: logits {dl:.1} dB, locations {db:.1} dB");
        assert!(dl > 45.0 && db > 45.0, "{net}: {dl:.1} dB, {db:.1} dB");
    }
}
