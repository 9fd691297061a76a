//! Prior (anchor) boxes, centre form `[cx, cy, w, h]` in 0..1 units, in the order the
//! heads emit them.

/// One SSD feature map's prior specification (pytorch-ssd's `SSDSpec`).
#[derive(Clone, Copy, Debug)]
pub struct SsdSpec {
    /// Feature map size (square).
    pub feature_map: usize,
    /// Stride in input pixels; `image_size / shrinkage` is the centre scale.
    pub shrinkage: f64,
    /// Min box size in pixels.
    pub min: f64,
    /// Max box size in pixels.
    pub max: f64,
    /// Aspect ratios (each adds two priors).
    pub ratios: &'static [f64],
}

/// An [`SsdSpec`] (pytorch-ssd's `SSDSpec(feature_map, shrinkage, SSDBoxSizes(min, max),
/// ratios)`).
const fn spec(
    feature_map: usize,
    shrinkage: f64,
    min: f64,
    max: f64,
    ratios: &'static [f64],
) -> SsdSpec {
    SsdSpec {
        feature_map,
        shrinkage,
        min,
        max,
        ratios,
    }
}

/// The six specs of `mobilenetv1_ssd_config` (MobileNetV1-SSD(-Lite), MobileNetV2- and
/// MobileNetV3-SSD-Lite, 300x300).
pub const MB2_SSD_LITE_SPECS: [SsdSpec; 6] = [
    spec(19, 16.0, 60.0, 105.0, &[2.0, 3.0]),
    spec(10, 32.0, 105.0, 150.0, &[2.0, 3.0]),
    spec(5, 64.0, 150.0, 195.0, &[2.0, 3.0]),
    spec(3, 100.0, 195.0, 240.0, &[2.0, 3.0]),
    spec(2, 150.0, 240.0, 285.0, &[2.0, 3.0]),
    spec(1, 300.0, 285.0, 330.0, &[2.0, 3.0]),
];

/// The specs of `squeezenet_ssd_config` (SqueezeNet-SSD-Lite: a 17x17 first map).
pub const SQ_SSD_LITE_SPECS: [SsdSpec; 6] = [
    spec(17, 16.0, 60.0, 105.0, &[2.0, 3.0]),
    spec(10, 32.0, 105.0, 150.0, &[2.0, 3.0]),
    spec(5, 64.0, 150.0, 195.0, &[2.0, 3.0]),
    spec(3, 100.0, 195.0, 240.0, &[2.0, 3.0]),
    spec(2, 150.0, 240.0, 285.0, &[2.0, 3.0]),
    spec(1, 300.0, 285.0, 330.0, &[2.0, 3.0]),
];

/// The specs of `vgg_ssd_config` (VGG16-SSD: 4, 6, 6, 6, 4, 4 priors per location).
pub const VGG_SSD_SPECS: [SsdSpec; 6] = [
    spec(38, 8.0, 30.0, 60.0, &[2.0]),
    spec(19, 16.0, 60.0, 111.0, &[2.0, 3.0]),
    spec(10, 32.0, 111.0, 162.0, &[2.0, 3.0]),
    spec(5, 64.0, 162.0, 213.0, &[2.0, 3.0]),
    spec(3, 100.0, 213.0, 264.0, &[2.0]),
    spec(1, 300.0, 264.0, 315.0, &[2.0]),
];

/// `generate_ssd_priors(specs, image_size, clamp=True)`: computed in f64, stored as f32,
/// then clamped to [0, 1] (spec §5). Returns `[P, 4]` flattened.
pub fn ssd_priors(specs: &[SsdSpec], image_size: f64) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for s in specs {
        let scale = image_size / s.shrinkage;
        for j in 0..s.feature_map {
            for i in 0..s.feature_map {
                let cx = (i as f64 + 0.5) / scale;
                let cy = (j as f64 + 0.5) / scale;
                let size = s.min / image_size;
                out.push([cx, cy, size, size]);
                let size = (s.max * s.min).sqrt() / image_size;
                out.push([cx, cy, size, size]);
                let size = s.min / image_size;
                for r in s.ratios {
                    let r = r.sqrt();
                    out.push([cx, cy, size * r, size / r]);
                    out.push([cx, cy, size / r, size * r]);
                }
            }
        }
    }
    out.into_iter()
        .map(|p| p.map(|v| (v as f32).clamp(0.0, 1.0)))
        .collect()
}

/// UltraFace priors (`fd_config.py`): for each map k (`[w, h]` cells), row j, column i and
/// min box m: `[(i+0.5)/w, (j+0.5)/h, m/image_w, m/image_h]`, clamped to [0, 1].
pub fn ultraface_priors(
    maps: &[[usize; 2]],
    min_boxes: &[&[f64]],
    image_w: f64,
    image_h: f64,
) -> Vec<[f32; 4]> {
    let mut out = Vec::new();
    for (&[fw, fh], boxes) in maps.iter().zip(min_boxes) {
        for j in 0..fh {
            for i in 0..fw {
                let cx = (i as f64 + 0.5) / fw as f64;
                let cy = (j as f64 + 0.5) / fh as f64;
                for &m in *boxes {
                    let p = [cx, cy, m / image_w, m / image_h];
                    out.push(p.map(|v| (v as f32).clamp(0.0, 1.0)));
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn mb2_priors_match_fixture_table_bit_exactly() {
        let path = slimdet_testkit::path("fixtures/pytorch-ssd/priors_mb2_ssd_lite_300.csv");
        let text = std::fs::read_to_string(path).expect("priors fixture");
        let ours = ssd_priors(&MB2_SSD_LITE_SPECS, 300.0);
        assert_eq!(ours.len(), 3000);
        let mut rows = 0;
        for line in text.lines().skip(1) {
            let f: Vec<&str> = line.split(',').collect();
            let idx: usize = f[0].parse().unwrap();
            for k in 0..4 {
                let want: f32 = f[k + 1].parse().unwrap();
                assert_eq!(
                    ours[idx][k].to_bits(),
                    want.to_bits(),
                    "prior {idx} component {k}"
                );
            }
            rows += 1;
        }
        assert_eq!(rows, 3000);
        assert_eq!(ours[0], [0.026666667, 0.026666667, 0.2, 0.2]);
    }

    #[test]
    fn ultraface_prior_count() {
        let p = ultraface_priors(
            &[[40, 30], [20, 15], [10, 8], [5, 4]],
            &[
                &[10.0, 16.0, 24.0],
                &[32.0, 48.0],
                &[64.0, 96.0],
                &[128.0, 192.0, 256.0],
            ],
            320.0,
            240.0,
        );
        assert_eq!(p.len(), 4420);
    }
}
