//! The training loop on small synthetic datasets: exact resumption, weight masks, and the
//! errors a user can cause. The overfitting check lives in `overfit.rs`.

use std::path::Path;

use slimdet_data::synth::{SynthConfig, generate_with_threads};
use slimdet_models::Detector;
use slimdet_train::schedule::{LrPolicy, LrSchedule};
use slimdet_train::{TrainConfig, TrainError, TrainStart, WeightMasks, train, train_from};

/// A synthetic VOC folder with `train` trainval and `test` test images.
fn dataset(dir: &Path, train: usize, test: usize) {
    let cfg = SynthConfig {
        train,
        test,
        seed: 7,
        size: 300,
    };
    generate_with_threads(dir, &cfg, 1, &mut |_, _| {}).unwrap();
}

/// A tiny run: width 0.25, batch 4, augmentation on, 1 thread.
fn tiny(voc: &Path, out: &Path) -> TrainConfig {
    let mut c = TrainConfig::new(voc, out);
    c.width_mult = 0.25;
    c.batch = 4;
    c.epochs = 2;
    c.threads = 1;
    c.seed = 3;
    c.val_split = None;
    c.val_every = 0;
    c.schedule = LrSchedule {
        base_lr: 0.01,
        policy: LrPolicy::Cosine { t_max: 2 },
        warmup_epochs: 1,
    };
    c
}

fn weights(p: &Path) -> Vec<(String, Vec<f32>)> {
    Detector::load(p, None)
        .unwrap()
        .graph
        .params()
        .into_iter()
        .map(|(k, t)| (k, t.data().to_vec()))
        .collect()
}

#[test]
fn resumed_run_equals_uninterrupted_run() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    dataset(&voc, 8, 0);
    // 8 images, batch 4: 2 steps per epoch, 4 in all.
    let full_cfg = tiny(&voc, &tmp.path().join("full"));
    let full = train(&full_cfg, &mut |_| {}).unwrap();
    assert_eq!(full.step_losses.len(), 4);
    assert!(!full.stopped);

    // Stopped mid-epoch (after step 3), then resumed.
    let mut cut = tiny(&voc, &tmp.path().join("cut"));
    cut.max_steps = Some(3);
    let first = train(&cut, &mut |_| {}).unwrap();
    assert!(first.stopped);
    assert_eq!(first.global_step, 3);
    assert!(first.final_weights.is_none());
    cut.max_steps = None;
    cut.resume = Some(tmp.path().join("cut"));
    let resumed = train(&cut, &mut |_| {}).unwrap();
    assert_eq!(resumed.step_losses, full.step_losses, "loss curves differ");
    assert_eq!(resumed.epochs, full.epochs);
    assert_eq!(
        weights(resumed.final_weights.as_ref().unwrap()),
        weights(full.final_weights.as_ref().unwrap()),
        "final weights differ"
    );

    // Stopped exactly at an epoch boundary, then resumed.
    let mut edge = tiny(&voc, &tmp.path().join("edge"));
    edge.max_steps = Some(2);
    let first = train(&edge, &mut |_| {}).unwrap();
    assert!(first.stopped);
    assert_eq!(first.epochs.len(), 1);
    edge.max_steps = None;
    edge.resume = Some(first.checkpoint.clone());
    let resumed = train(&edge, &mut |_| {}).unwrap();
    assert_eq!(resumed.step_losses, full.step_losses);
}

#[test]
fn masked_weights_stay_zero_and_a_given_model_is_trained() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    dataset(&voc, 4, 0);
    let mut cfg = tiny(&voc, &tmp.path().join("out"));
    cfg.epochs = 1;
    // Start from a model of our own with every other weight of one layer zeroed.
    let mut det = Detector::new(slimdet_models::Arch::Mb2SsdLite {
        width_mult: 0.25,
        num_classes: 11,
    });
    slimdet_train::init::init_ssd(&mut det.graph, 5);
    let key = "base_net.1.conv.3.weight";
    let mut zeroed = 0;
    for (k, t) in det.graph.params_mut() {
        if k == key {
            for (i, v) in t.data_mut().iter_mut().enumerate() {
                if i % 2 == 0 {
                    *v = 0.0;
                    zeroed += 1;
                }
            }
        }
    }
    assert!(zeroed > 0);
    let masks = WeightMasks::from_zeros(&det.graph);
    assert_eq!(masks.len(), 1);
    let before: Vec<f32> = det
        .graph
        .params()
        .iter()
        .find(|(k, _)| k == key)
        .unwrap()
        .1
        .data()
        .to_vec();
    let start = TrainStart {
        model: Some(det),
        masks: Some(masks),
    };
    let (report, trained) = train_from(&cfg, start, &mut |_| {}).unwrap();
    assert_eq!(report.global_step, 1);
    let after = trained.graph.params();
    let w = after.iter().find(|(k, _)| k == key).unwrap().1.data();
    for (i, (a, b)) in w.iter().zip(&before).enumerate() {
        if i % 2 == 0 {
            assert_eq!(*a, 0.0, "masked weight {i} moved");
        } else {
            assert_ne!(a, b, "unmasked weight {i} did not train");
        }
    }
}

#[test]
fn bad_inputs_are_clear_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let voc = tmp.path().join("voc");
    dataset(&voc, 4, 0);
    let out = tmp.path().join("out");

    let mut c = tiny(&voc, &out);
    c.batch = 0;
    let e = train(&c, &mut |_| {}).unwrap_err();
    assert!(matches!(e, TrainError::Config(_)), "{e}");
    assert!(e.to_string().contains("batch size 0"), "{e}");

    let mut c = tiny(&voc, &out);
    c.schedule.base_lr = f64::NAN;
    let e = train(&c, &mut |_| {}).unwrap_err();
    assert!(e.to_string().contains("learning rate NaN"), "{e}");

    // A split whose only image has nothing but difficult objects.
    let id = std::fs::read_to_string(voc.join("ImageSets/Main/trainval.txt"))
        .unwrap()
        .lines()
        .next()
        .unwrap()
        .to_string();
    let ann = voc.join("Annotations").join(format!("{id}.xml"));
    let xml = std::fs::read_to_string(&ann)
        .unwrap()
        .replace("<difficult>0</difficult>", "<difficult>1</difficult>");
    std::fs::write(&ann, xml).unwrap();
    std::fs::write(voc.join("ImageSets/Main/hard.txt"), format!("{id}\n")).unwrap();
    let mut c = tiny(&voc, &out);
    c.split = "hard".into();
    let e = train(&c, &mut |_| {}).unwrap_err();
    assert!(
        matches!(e, TrainError::EmptyDataset { skipped: 1, .. }),
        "{e}"
    );

    // Resuming a width-0.25 checkpoint as a width-0.5 run.
    let mut c = tiny(&voc, &out);
    c.split = "trainval".into();
    c.max_steps = Some(1);
    train(&c, &mut |_| {}).unwrap();
    let mut c = tiny(&voc, &out);
    c.width_mult = 0.5;
    c.resume = Some(out.clone());
    let e = train(&c, &mut |_| {}).unwrap_err();
    assert!(matches!(e, TrainError::CheckpointMismatch { .. }), "{e}");
    assert!(e.to_string().contains("width 0.25"), "{e}");

    // A checkpoint that is not there.
    let mut c = tiny(&voc, &out);
    c.resume = Some(tmp.path().join("nowhere"));
    let e = train(&c, &mut |_| {}).unwrap_err();
    assert!(matches!(e, TrainError::Io { .. }), "{e}");
}
