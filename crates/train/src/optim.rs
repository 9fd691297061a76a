//! SGD with momentum and weight decay, with PyTorch's `torch.optim.SGD` semantics, and
//! gradient clipping by global norm.
//!
//! Per parameter `p` with gradient `g` (dampening 0, no Nesterov, as pytorch-ssd):
//! `d = g + wd·p`; `buf = d` on the first step, else `buf = m·buf + d`; `p −= lr·buf`.
//! Weight decay applies to every trainable parameter (BN γ/β and biases included).
//! Parameters without a gradient (frozen) are untouched and get no buffer.

use std::collections::BTreeMap;

use slimdet_core::Graph;

use crate::autograd::Gradients;

/// Stochastic gradient descent with momentum.
#[derive(Clone, Debug, PartialEq)]
pub struct Sgd {
    /// Momentum factor (0.9).
    pub momentum: f32,
    /// L2 weight decay added to the gradient (5e-4).
    pub weight_decay: f32,
    buffers: BTreeMap<String, Vec<f32>>,
}

impl Sgd {
    /// An optimiser with no momentum buffers yet.
    pub fn new(momentum: f32, weight_decay: f32) -> Self {
        Self {
            momentum,
            weight_decay,
            buffers: BTreeMap::new(),
        }
    }

    /// Momentum buffers by parameter key (same shapes, flattened).
    pub fn buffers(&self) -> &BTreeMap<String, Vec<f32>> {
        &self.buffers
    }

    /// Replaces the momentum buffers (when resuming).
    pub fn set_buffers(&mut self, buffers: BTreeMap<String, Vec<f32>>) {
        self.buffers = buffers;
    }

    /// One update of every parameter of `g` that has a gradient in `grads`, with learning
    /// rate `lr`.
    pub fn step(&mut self, g: &mut Graph, grads: &Gradients, lr: f32) {
        let (m, wd) = (self.momentum, self.weight_decay);
        for (key, p) in g.params_mut() {
            let Some(gr) = grads.get(&key) else {
                continue;
            };
            let p = p.data_mut();
            let d: Vec<f32> = gr
                .data()
                .iter()
                .zip(p.iter())
                .map(|(g, p)| g + wd * p)
                .collect();
            let buf = if m == 0.0 {
                d
            } else {
                match self.buffers.get_mut(&key) {
                    Some(b) => {
                        for (bv, dv) in b.iter_mut().zip(&d) {
                            *bv = m * *bv + dv;
                        }
                        b.clone()
                    }
                    None => {
                        self.buffers.insert(key.clone(), d.clone());
                        d
                    }
                }
            };
            for (pv, bv) in p.iter_mut().zip(&buf) {
                *pv -= lr * bv;
            }
        }
    }
}

/// Scales all gradients so that their global L2 norm is at most `max_norm`, as
/// `torch.nn.utils.clip_grad_norm_` (`coef = max_norm / (norm + 1e-6)`, applied when
/// below 1). Returns the norm before clipping.
pub fn clip_grad_norm(grads: &mut Gradients, max_norm: f64) -> f64 {
    let norm = grads.global_norm();
    let coef = max_norm / (norm + 1e-6);
    if coef < 1.0 {
        for t in grads.params.values_mut() {
            for v in t.data_mut() {
                *v = (*v as f64 * coef) as f32;
            }
        }
    }
    norm
}

#[cfg(test)]
mod tests {
    use super::*;
    use slimdet_core::{Conv2d, Tensor};

    fn graph(w: Vec<f32>) -> Graph {
        let mut g = Graph::new();
        let c = Conv2d::new(Tensor::new(vec![w.len(), 1, 1, 1], w).unwrap(), 1, 0, 1, 1);
        let y = g.conv("c", 0, c);
        g.output("y", y);
        g
    }

    fn grads(v: Vec<f32>) -> Gradients {
        let mut gr = Gradients::default();
        gr.params.insert(
            "c.weight".into(),
            Tensor::new(vec![v.len(), 1, 1, 1], v).unwrap(),
        );
        gr
    }

    #[test]
    fn matches_pytorch_sgd_by_hand() {
        // p0 = 1, g = 0.5 then 0.25, lr 0.1, m 0.9, wd 0.01.
        let mut g = graph(vec![1.0]);
        let mut opt = Sgd::new(0.9, 0.01);
        opt.step(&mut g, &grads(vec![0.5]), 0.1);
        let d1 = 0.5 + 0.01 * 1.0;
        let p1 = 1.0 - 0.1 * d1;
        assert!((g.params()[0].1.data()[0] - p1).abs() < 1e-7);
        opt.step(&mut g, &grads(vec![0.25]), 0.1);
        let buf2 = 0.9 * d1 + (0.25 + 0.01 * p1);
        let p2 = p1 - 0.1 * buf2;
        assert!((g.params()[0].1.data()[0] - p2).abs() < 1e-6);
        assert!((opt.buffers()["c.weight"][0] - buf2).abs() < 1e-6);
    }

    #[test]
    fn parameters_without_gradient_are_untouched() {
        let mut g = graph(vec![1.0, 2.0]);
        let mut opt = Sgd::new(0.9, 5e-4);
        opt.step(&mut g, &Gradients::default(), 0.1);
        assert_eq!(g.params()[0].1.data(), &[1.0, 2.0]);
        assert!(opt.buffers().is_empty());
    }

    #[test]
    fn clipping_scales_to_the_max_norm() {
        let mut gr = grads(vec![3.0, 4.0]);
        let n = clip_grad_norm(&mut gr, 1.0);
        assert_eq!(n, 5.0);
        assert!((gr.global_norm() - 1.0).abs() < 1e-5);
        let mut small = grads(vec![0.3, 0.4]);
        clip_grad_norm(&mut small, 1.0);
        assert_eq!(small.get("c.weight").unwrap().data(), &[0.3, 0.4]);
    }
}
