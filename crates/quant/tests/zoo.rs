//! Static int8 on pytorch-ssd's other networks (`testdata/golden/pytorch-ssd`): max pooling
//! on codes, h-swish, h-sigmoid, squeeze-and-excite and VGG16-SSD's unfolded batch norm in
//! f32 between the integer layers. The integer engine follows the fake-quant simulation
//! and gives the same bits on every kernel tier. (The goldens' weights are random, so the
//! int8-vs-f32 figures say nothing about a trained model's accuracy.)

use slimdet_data::RgbImage;
use slimdet_models::Detector;
use slimdet_quant::{Int8Engine, Observer, QuantOptions, quantize, sqnr_report};

fn photos() -> Vec<RgbImage> {
    ["000002", "004545"]
        .iter()
        .map(|id| {
            slimdet_data::load_rgb(&slimdet_testkit::zoo(&format!("images/{id}.png"))).unwrap()
        })
        .collect()
}

#[test]
fn int8_engine_follows_the_simulation_on_every_network() {
    let photos = photos();
    for net in [
        "sq-ssd-lite",
        "mb3-small-ssd-lite",
        "mb3-large-ssd-lite",
        "vgg16-ssd",
    ] {
        let det = Detector::load(
            &slimdet_testkit::zoo(&format!("{net}-voc21-seed0/model.pth")),
            None,
        )
        .unwrap();
        let opts = QuantOptions {
            observer: Observer::MinMax,
            ..QuantOptions::default()
        };
        let q = quantize(&det, &photos, &opts).unwrap();
        let c = &det.config;
        let inputs: Vec<Vec<f32>> = photos
            .iter()
            .map(|img| {
                let mut x = vec![0.0; c.input_w * c.input_h * 3];
                slimdet_data::preprocess_into(
                    img, c.input_w, c.input_h, c.resize, c.mean, c.std, &mut x,
                );
                x
            })
            .collect();
        // VGG16-SSD (31 GMACs) on one photo and without the scalar-tier run, for time.
        let vgg = net == "vgg16-ssd";
        let inputs = &inputs[..if vgg { 1 } else { 2 }];
        let r = sqnr_report(&det, &q, inputs).unwrap();
        assert!(
            r.layers.iter().all(|l| l.int8),
            "{net}: every conv and add in int8"
        );
        for name in ["logits", "locations", "scores"] {
            let (sim, int8) = r.output(name).unwrap();
            eprintln!("{net} {name}: sim {sim:.1} dB, int8 {int8:.1} dB");
            assert!(
                (sim - int8).abs() < 1.5,
                "{net} {name}: sim {sim:.1} vs int8 {int8:.1}"
            );
        }
        if vgg {
            continue;
        }
        let mut engine = Int8Engine::new(&q, 1).unwrap();
        let mut bits = |tier| -> Vec<u32> {
            engine.set_tier(tier);
            engine
                .run(&inputs[0])
                .unwrap()
                .concat()
                .iter()
                .map(|v| v.to_bits())
                .collect()
        };
        let want = bits(slimdet_kernels::Tier::Scalar);
        for tier in slimdet_kernels::dispatch::available() {
            assert!(
                bits(tier) == want,
                "{net}: tier {} differs from scalar",
                tier.name()
            );
        }
    }
}
