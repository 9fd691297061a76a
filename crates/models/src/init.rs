//! Random initialisation as pytorch-ssd does it: PyTorch's default for the backbone
//! convs (`kaiming_uniform_(a=√5)`, i.e. U(±1/√fan_in), and biases U(±1/√fan_in)), Xavier
//! uniform for the extras' and heads' conv weights (`init_from_base_net`), and BN at γ = 1,
//! β = 0, μ = 0, σ² = 1. Deterministic for a seed.

use slimdet_core::{Graph, Op};

/// SplitMix64: a small, well-mixed generator for seeded initialisation.
struct SplitMix(u64);

impl SplitMix {
    fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }

    /// Uniform in [-bound, bound).
    fn uniform(&mut self, bound: f32) -> f32 {
        let u = (self.next() >> 40) as f32 / (1u64 << 24) as f32;
        (2.0 * u - 1.0) * bound
    }
}

/// Re-initialises every parameter of `g` from `seed`. Convs whose node name starts with one
/// of `xavier_prefixes` get Xavier-uniform weights; the others PyTorch's default.
pub fn random_init(g: &mut Graph, seed: u64, xavier_prefixes: &[&str]) {
    let mut rng = SplitMix(seed);
    for n in &mut g.nodes {
        match &mut n.op {
            Op::Conv(c) => {
                let s = c.weight.shape().to_vec();
                let receptive = s[2] * s[3];
                let fan_in = (s[1] * receptive) as f32;
                let fan_out = (s[0] * receptive) as f32;
                let xavier = xavier_prefixes.iter().any(|p| n.name.starts_with(p));
                let bound = if xavier {
                    (6.0 / (fan_in + fan_out)).sqrt()
                } else {
                    1.0 / fan_in.sqrt()
                };
                for w in c.weight.data_mut() {
                    *w = rng.uniform(bound);
                }
                if let Some(b) = &mut c.bias {
                    for v in b.data_mut() {
                        *v = rng.uniform(1.0 / fan_in.sqrt());
                    }
                }
            }
            Op::BatchNorm(b) => {
                b.gamma.data_mut().fill(1.0);
                b.beta.data_mut().fill(0.0);
                b.mean.data_mut().fill(0.0);
                b.var.data_mut().fill(1.0);
                b.num_batches_tracked = Some(0);
            }
            _ => {}
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::{Arch, Detector};

    #[test]
    fn init_is_seeded_and_bounded() {
        let arch = Arch::Mb2SsdLite {
            width_mult: 1.0,
            num_classes: 11,
        };
        let mut a = Detector::new(arch.clone());
        let mut b = Detector::new(arch);
        random_init(
            &mut a.graph,
            3,
            &["extras", "classification_headers", "regression_headers"],
        );
        random_init(
            &mut b.graph,
            3,
            &["extras", "classification_headers", "regression_headers"],
        );
        assert_eq!(a.graph, b.graph);
        random_init(&mut b.graph, 4, &[]);
        assert_ne!(a.graph, b.graph);
        let (_, w) = a
            .graph
            .params()
            .into_iter()
            .find(|(k, _)| k == "base_net.0.0.weight")
            .unwrap();
        let bound = 1.0 / 27f32.sqrt();
        assert!(
            w.data().iter().all(|v| v.abs() <= bound)
                && w.data().iter().any(|v| v.abs() > bound / 2.0)
        );
    }
}
