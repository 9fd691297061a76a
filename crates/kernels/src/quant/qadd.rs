//! Int8 residual add of two tensors with different scales, TFLite's quantized `ADD`:
//! both inputs are shifted left by 20 bits, rescaled to a common scale
//! (`2·max(s_a, s_b)`), summed, and requantized to the output scale.
//!
//! `out = clamp(zo + M_o((M_a((a − za)·2^20) + M_b((b − zb)·2^20))), qmin, qmax)` with
//! `M_a = s_a / (2·max)`, `M_b = s_b / (2·max)`, `M_o = 2·max / (2^20 · s_out)`.
//! Kernel ids: `<arch>/<isa>/qadd_u8_requant` (see the crate docs, "Kernel names").

use super::requant::QMul;
use crate::dispatch::Tier;

/// Left shift applied to both inputs before rescaling (TFLite's `left_shift = 20`).
pub const ADD_LEFT_SHIFT: i32 = 20;

/// Fixed-point parameters of one quantized add.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct QAddParams {
    /// Zero point of `a`.
    pub a_zp: i32,
    /// Multiplier of `a` into the common scale.
    pub a_mul: QMul,
    /// Zero point of `b`.
    pub b_zp: i32,
    /// Multiplier of `b` into the common scale.
    pub b_mul: QMul,
    /// Multiplier from the common scale to the output scale.
    pub out_mul: QMul,
    /// Output zero point.
    pub out_zp: i32,
    /// Lowest output value (activation clamp).
    pub qmin: u8,
    /// Highest output value.
    pub qmax: u8,
}

impl QAddParams {
    /// Parameters for inputs `(scale, zero point)` `a`, `b` and output `out`.
    pub fn new(a: (f32, i32), b: (f32, i32), out: (f32, i32), qmin: u8, qmax: u8) -> QAddParams {
        let twice_max = 2.0 * (a.0 as f64).max(b.0 as f64);
        QAddParams {
            a_zp: a.1,
            a_mul: QMul::from_real(a.0 as f64 / twice_max),
            b_zp: b.1,
            b_mul: QMul::from_real(b.0 as f64 / twice_max),
            out_mul: QMul::from_real(twice_max / ((1u64 << ADD_LEFT_SHIFT) as f64 * out.0 as f64)),
            out_zp: out.1,
            qmin,
            qmax,
        }
    }

    /// Whether the kernels accept these parameters.
    pub fn is_valid(&self) -> bool {
        [self.a_zp, self.b_zp, self.out_zp]
            .iter()
            .all(|z| (0..=255).contains(z))
            && self.a_mul.is_valid()
            && self.b_mul.is_valid()
            // Input multipliers below 1 keep the rescaled inputs (< 2^28) and their sum
            // inside i32.
            && self.a_mul.shift <= 0
            && self.b_mul.shift <= 0
            && self.out_mul.is_valid()
            && self.qmin <= self.qmax
    }

    /// The specification for one element.
    #[inline]
    pub fn apply(&self, a: u8, b: u8) -> u8 {
        let sa = self.a_mul.apply((a as i32 - self.a_zp) << ADD_LEFT_SHIFT);
        let sb = self.b_mul.apply((b as i32 - self.b_zp) << ADD_LEFT_SHIFT);
        let v = self.out_mul.apply_i64(sa.wrapping_add(sb)) + self.out_zp as i64;
        v.clamp(self.qmin as i64, self.qmax as i64) as u8
    }
}

/// The specification over slices.
pub fn qadd_reference(a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "qadd: lengths"
    );
    for ((o, &x), &y) in out.iter_mut().zip(a).zip(b) {
        *o = p.apply(x, y);
    }
}

/// `out = a ⊕ b` element-wise on the widest path `tier` allows.
///
/// # Panics
/// If the lengths differ or the parameters are invalid (programmer errors).
pub fn qadd_u8_requant(tier: Tier, a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) {
    assert!(
        a.len() == out.len() && b.len() == out.len(),
        "qadd: lengths"
    );
    assert!(p.is_valid(), "qadd: invalid parameters {p:?}");
    if crate::x86_64::quant::qadd(tier, a, b, p, out)
        || crate::aarch64::quant::qadd(tier, a, b, p, out)
    {
        return;
    }
    qadd_reference(a, b, p, out);
}
