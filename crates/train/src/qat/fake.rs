//! Fake quantization for training: the forward of [`FakeQuant`] with a record of which
//! values fell inside the clamp range, and the straight-through estimator (STE) that
//! uses it in the backward.
//!
//! `y = (clamp(round(x / s) + zp, qmin, qmax) − zp) · s`. The STE treats the rounding as
//! the identity and the clamp as itself: `dy/dx = 1` where `round(x / s) + zp` lies in
//! `[qmin, qmax]`, else 0 (PyTorch's `FakeQuantize` backward).

use slimdet_quant::float_exec::FakeQuant;

/// One bit per element: set where the value was inside the clamp range.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct Mask {
    bits: Vec<u64>,
    len: usize,
}

impl Mask {
    /// Whether element `i` passes its gradient.
    pub fn get(&self, i: usize) -> bool {
        self.bits[i / 64] >> (i % 64) & 1 == 1
    }

    /// Elements covered.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the mask covers nothing.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Elements that pass.
    pub fn count_inside(&self) -> usize {
        self.bits.iter().map(|b| b.count_ones() as usize).sum()
    }
}

/// Fake-quantizes `xs` in place (exactly [`FakeQuant::apply`]) and returns the STE mask.
pub fn fake_quant_forward(fq: &FakeQuant, xs: &mut [f32]) -> Mask {
    let mut bits = vec![0u64; xs.len().div_ceil(64)];
    let inv = 1.0 / fq.scale;
    for (i, x) in xs.iter_mut().enumerate() {
        let code = (*x * inv).round() as i32 + fq.zero_point;
        if (fq.qmin..=fq.qmax).contains(&code) {
            bits[i / 64] |= 1 << (i % 64);
        }
        let q = code.clamp(fq.qmin, fq.qmax);
        *x = (q - fq.zero_point) as f32 * fq.scale;
    }
    Mask {
        bits,
        len: xs.len(),
    }
}

/// The STE backward: zeroes `grad` where the forward clamped.
pub fn ste_backward(mask: &Mask, grad: &mut [f32]) {
    for (i, g) in grad.iter_mut().enumerate().take(mask.len) {
        if !mask.get(i) {
            *g = 0.0;
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn fq() -> FakeQuant {
        // u8 asymmetric over [-1, 2]: scale 3/255, zero point 85.
        FakeQuant {
            scale: 3.0 / 255.0,
            zero_point: 85,
            qmin: 0,
            qmax: 255,
        }
    }

    #[test]
    fn forward_matches_the_simulation_and_masks_the_clamped_values() {
        let f = fq();
        let xs: Vec<f32> = (0..400).map(|i| -1.6 + i as f32 * 0.01).collect();
        let mut a = xs.clone();
        let mut b = xs.clone();
        let m = fake_quant_forward(&f, &mut a);
        f.apply(&mut b);
        assert_eq!(a, b);
        for (i, &x) in xs.iter().enumerate() {
            let inside = x >= -1.0 - 0.5 * f.scale && x <= 2.0 + 0.5 * f.scale;
            // Away from the half-step edges the mask is exactly the range.
            if (x + 1.0).abs() > f.scale && (x - 2.0).abs() > f.scale {
                assert_eq!(m.get(i), inside, "x = {x}");
            }
        }
        assert!(m.count_inside() > 0 && m.count_inside() < xs.len());
    }

    /// The STE gradient equals the finite-difference derivative of the surrogate the STE
    /// stands for (`clamp(x, lo, hi)`, the rounding taken as the identity): 1 inside the
    /// range, 0 outside.
    #[test]
    fn ste_gradient_matches_finite_differences_of_the_clamp() {
        let f = fq();
        let (lo, hi) = (
            (f.qmin - f.zero_point) as f64 * f.scale as f64,
            (f.qmax - f.zero_point) as f64 * f.scale as f64,
        );
        let surrogate = |x: f64| x.clamp(lo, hi);
        let xs: Vec<f32> = vec![-3.0, -1.2, -0.9, -0.3, 0.0, 0.41, 1.0, 1.97, 2.2, 5.0];
        let mut y = xs.clone();
        let m = fake_quant_forward(&f, &mut y);
        let mut g = vec![1.0f32; xs.len()];
        ste_backward(&m, &mut g);
        let h = 1e-4;
        for (i, &x) in xs.iter().enumerate() {
            let x = x as f64;
            let fd = (surrogate(x + h) - surrogate(x - h)) / (2.0 * h);
            assert!(
                (g[i] as f64 - fd).abs() < 1e-6,
                "x = {x}: STE {} fd {fd}",
                g[i]
            );
        }
        assert_eq!(g, [0.0, 0.0, 1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 0.0, 0.0]);
    }
}
