//! `u8 × i8 → i32` matrix products with a fused output stage: the pointwise convolution
//! (and, after im2col, the dense k×k convolution) of the int8 engine.
//!
//! `C[m, n] = stage(Σ_k A[m, k] · B[k, n])` where `A` is `u8` activations `[M, K]` (row
//! stride `lda`), `B` is `i8` weights packed by [`PackedB`], and the stage either
//! requantizes to `u8` ([`Requant`]: bias, fixed-point multiplier, zero point, activation
//! clamp) or dequantizes to `f32` ([`Dequant`], for dynamic quantization and for graph
//! outputs). The activation zero point is not subtracted inside the loop: its term
//! `−a_zp · Σ_k B[k, n]` is constant per column and is folded into the stage's `i32` bias
//! ([`PackedB::zero_point_bias`]), so the kernels are plain integer dot products and
//! every tier is bit-exact against [`qgemm_reference`].
//!
//! Kernel ids: `<arch>/<isa>/qgemm_u8i8_i32_requant_<rows>x<cols>` (crate docs, "Kernel names").

use super::qadd::QAddParams;
use super::requant::Requant;
use crate::aarch64::quant::Stage;
use crate::dispatch::Tier;

/// Columns per packed block (one zmm of `i32` accumulators).
pub const NR: usize = 16;
/// Depth per packed group (one `vpdpbusd` lane: four `u8 × i8` products).
pub const KR: usize = 4;

/// `i8` weights `[K, N]` in the blocked layout of the int8 GEMM kernels:
/// `[N / 16][K / 4][16][4]` (both rounded up, zero padded), so that one 64-byte load
/// gives four consecutive depths of sixteen columns.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct PackedB {
    k: usize,
    n: usize,
    data: Vec<i8>,
    /// `Σ_p B[p, j]` per column `[N]` (the zero-point and sign-shift corrections).
    col_sums: Vec<i32>,
}

impl PackedB {
    /// Packs row-major `w[k · n + j]`.
    ///
    /// # Panics
    /// If `w.len() != k · n` (a programmer error).
    pub fn pack(w: &[i8], k: usize, n: usize) -> PackedB {
        assert_eq!(w.len(), k * n, "PackedB::pack: weight length");
        let kb = k.div_ceil(KR);
        let nb = n.div_ceil(NR);
        let mut data = vec![0i8; nb * kb * NR * KR];
        for p in 0..k {
            for j in 0..n {
                let (jb, jj) = (j / NR, j % NR);
                data[((jb * kb + p / KR) * NR + jj) * KR + p % KR] = w[p * n + j];
            }
        }
        let col_sums = (0..n)
            .map(|j| (0..k).map(|p| w[p * n + j] as i32).sum())
            .collect();
        PackedB {
            k,
            n,
            data,
            col_sums,
        }
    }

    /// Packs a PyTorch weight `[out_c, in_c, kh, kw]` as the GEMM right-hand side
    /// `[kh·kw·in_c, out_c]` (the row order of [`super::im2col_u8`]).
    pub fn from_oihw(w: &[i8], out_c: usize, in_c: usize, kh: usize, kw: usize) -> PackedB {
        let k = kh * kw * in_c;
        let mut kn = vec![0i8; k * out_c];
        for oc in 0..out_c {
            for ci in 0..in_c {
                for ky in 0..kh {
                    for kx in 0..kw {
                        let row = (ky * kw + kx) * in_c + ci;
                        kn[row * out_c + oc] = w[((oc * in_c + ci) * kh + ky) * kw + kx];
                    }
                }
            }
        }
        PackedB::pack(&kn, k, out_c)
    }

    /// [`PackedB::from_oihw`] with the depth padded by zero rows to a multiple of 4, for
    /// im2col matrices whose rows are padded the same way (see
    /// [`super::im2col_u8_rows`]): the kernels then never take the depth-tail path.
    pub fn from_oihw_padded(w: &[i8], out_c: usize, in_c: usize, kh: usize, kw: usize) -> PackedB {
        let mut b = PackedB::from_oihw(w, out_c, in_c, kh, kw);
        // The packed layout already holds zeros up to the next multiple of 4.
        b.k = b.k.next_multiple_of(KR);
        b
    }

    /// Depth `K`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `N`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Weight `B[p, j]`.
    pub fn get(&self, p: usize, j: usize) -> i8 {
        let kb = self.k.div_ceil(KR);
        self.data[(((j / NR) * kb + p / KR) * NR + j % NR) * KR + p % KR]
    }

    /// The packed bytes (for size accounting).
    pub fn as_slice(&self) -> &[i8] {
        &self.data
    }

    /// `bias[j] − a_zp · Σ_p B[p, j]`: the stage bias that makes the kernels compute
    /// `Σ (A − a_zp) · B + bias`. `bias` is `[N]`.
    pub fn zero_point_bias(&self, bias: &[i32], a_zp: i32) -> Vec<i32> {
        (0..self.n)
            .map(|j| bias[j].wrapping_sub(a_zp.wrapping_mul(self.col_sums[j])))
            .collect()
    }

    /// `Σ_p B[p, j]` for each column `j` (`[N]`), computed once when packing.
    pub fn col_sums(&self) -> &[i32] {
        &self.col_sums
    }
}

/// Dequantizing output stage: `out[n] = clamp((acc + bias_i32[n]) as f32 · scale[n] +
/// bias[n], lo, hi)`, computed as a multiply then an add (no FMA) on every tier.
#[derive(Clone, Debug, PartialEq)]
pub struct Dequant {
    /// `[N]` integer constant (usually the zero-point term).
    pub bias_i32: Vec<i32>,
    /// `[N]` `a_scale · w_scale[n]`.
    pub scale: Vec<f32>,
    /// `[N]` float bias.
    pub bias: Vec<f32>,
    /// Activation clamp.
    pub lo: f32,
    /// Activation clamp.
    pub hi: f32,
}

impl Dequant {
    /// Output channels.
    pub fn channels(&self) -> usize {
        self.bias.len()
    }

    /// Whether the per-channel vectors have one length.
    pub fn is_valid(&self) -> bool {
        self.bias_i32.len() == self.bias.len() && self.scale.len() == self.bias.len()
    }

    /// Dequantizes one accumulator of channel `n`.
    #[inline]
    pub fn apply(&self, acc: i32, n: usize) -> f32 {
        let x = acc.wrapping_add(self.bias_i32[n]) as f32 * self.scale[n] + self.bias[n];
        x.max(self.lo).min(self.hi)
    }
}

/// Shape of one int8 product: `A` is `[m, b.k()]` with row stride `lda`, `C` is
/// `[m, b.n()]` with row stride `ldc`.
#[derive(Clone, Copy, Debug)]
pub struct QGemmShape {
    /// Rows of A and C.
    pub m: usize,
    /// Row stride of A (≥ K).
    pub lda: usize,
    /// Row stride of C (≥ N).
    pub ldc: usize,
}

/// Elements a matrix of `rows` rows of `cols` at stride `ld` spans.
fn span(rows: usize, ld: usize, cols: usize) -> usize {
    if rows == 0 { 0 } else { (rows - 1) * ld + cols }
}

fn check(s: QGemmShape, b: &PackedB, a_len: usize, c_len: usize) {
    assert!(
        s.lda >= b.k
            && s.ldc >= b.n
            && a_len >= span(s.m, s.lda, b.k)
            && c_len >= span(s.m, s.ldc, b.n),
        "qgemm: slices too short for {s:?}, K {} N {}",
        b.k,
        b.n
    );
}

/// The specification: `C[i, j] = rq(Σ_p A[i, p] · B[p, j], j)` with the sum in `i32`
/// (wrapping, as the SIMD lanes add).
pub fn qgemm_reference(s: QGemmShape, a: &[u8], b: &PackedB, rq: &Requant, c: &mut [u8]) {
    check(s, b, a.len(), c.len());
    for i in 0..s.m {
        for j in 0..b.n {
            let mut acc = 0i32;
            for p in 0..b.k {
                acc = acc.wrapping_add(a[i * s.lda + p] as i32 * b.get(p, j) as i32);
            }
            c[i * s.ldc + j] = rq.apply(acc, j);
        }
    }
}

/// The specification of the product with the residual add fused:
/// `C[i, j] = add(rq(Σ_p A[i, p] · B[p, j], j), R[i, j])`, where `R` is laid out like `C`
/// and `add` takes the requantized code as its `a` input: exactly the unfused GEMM
/// followed by [`super::qadd_u8_requant`].
#[allow(clippy::too_many_arguments)]
pub fn qgemm_add_reference(
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    rq: &Requant,
    r: &[u8],
    add: &QAddParams,
    c: &mut [u8],
) {
    check(s, b, a.len(), c.len());
    check_residual(s, b, r.len());
    for i in 0..s.m {
        for j in 0..b.n {
            let mut acc = 0i32;
            for p in 0..b.k {
                acc = acc.wrapping_add(a[i * s.lda + p] as i32 * b.get(p, j) as i32);
            }
            c[i * s.ldc + j] = add.apply(rq.apply(acc, j), r[i * s.ldc + j]);
        }
    }
}

fn check_residual(s: QGemmShape, b: &PackedB, r_len: usize) {
    assert!(
        r_len >= span(s.m, s.ldc, b.n),
        "qgemm: residual too short for {s:?}"
    );
}

/// The specification of the dequantizing product.
pub fn qgemm_dequant_reference(s: QGemmShape, a: &[u8], b: &PackedB, dq: &Dequant, c: &mut [f32]) {
    check(s, b, a.len(), c.len());
    for i in 0..s.m {
        for j in 0..b.n {
            let mut acc = 0i32;
            for p in 0..b.k {
                acc = acc.wrapping_add(a[i * s.lda + p] as i32 * b.get(p, j) as i32);
            }
            c[i * s.ldc + j] = dq.apply(acc, j);
        }
    }
}

/// `C = requant(A · B)` on the widest int8 path `tier` allows (AVX-512 VNNI, AVX2, or
/// the reference).
///
/// # Panics
/// If a slice is too short for the shape or the stage is not valid for `N` columns
/// (programmer errors, checked before any unsafe access).
pub fn qgemm_u8i8_i32_requant(
    tier: Tier,
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    rq: &Requant,
    c: &mut [u8],
) {
    check(s, b, a.len(), c.len());
    assert!(
        rq.is_valid() && rq.channels() == b.n,
        "qgemm: invalid requant stage"
    );
    if s.m == 0 || b.n == 0 {
        return;
    }
    if crate::x86_64::quant::qgemm_requant(tier, s, a, b, rq, None, c) {
        return;
    }
    let stage = Stage::U8 { rq, res: None, c };
    if crate::aarch64::quant::qgemm(tier, s, a, b, stage) {
        return;
    }
    qgemm_reference(s, a, b, rq, c);
}

/// `C = add(requant(A · B), R)` on the widest int8 path `tier` allows: the pointwise
/// projection of an inverted-residual block with its skip connection, in one pass
/// (see [`qgemm_add_reference`]). `R` has the layout of `C` (row stride `ldc`).
///
/// # Panics
/// As [`qgemm_u8i8_i32_requant`], and if `r` is too short or `add` is invalid.
#[allow(clippy::too_many_arguments)]
pub fn qgemm_u8i8_requant_add(
    tier: Tier,
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    rq: &Requant,
    r: &[u8],
    add: &QAddParams,
    c: &mut [u8],
) {
    check(s, b, a.len(), c.len());
    check_residual(s, b, r.len());
    assert!(
        rq.is_valid() && rq.channels() == b.n && add.is_valid(),
        "qgemm: invalid requant or add stage"
    );
    if s.m == 0 || b.n == 0 {
        return;
    }
    if crate::x86_64::quant::qgemm_requant(tier, s, a, b, rq, Some((r, add)), c) {
        return;
    }
    let stage = Stage::U8 {
        rq,
        res: Some((r, add)),
        c,
    };
    if crate::aarch64::quant::qgemm(tier, s, a, b, stage) {
        return;
    }
    qgemm_add_reference(s, a, b, rq, r, add, c);
}

/// `C = dequant(A · B)` in `f32`, on the widest int8 path `tier` allows.
///
/// # Panics
/// As [`qgemm_u8i8_i32_requant`].
pub fn qgemm_u8i8_f32_dequant(
    tier: Tier,
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    dq: &Dequant,
    c: &mut [f32],
) {
    check(s, b, a.len(), c.len());
    assert!(
        dq.is_valid() && dq.channels() == b.n,
        "qgemm: invalid dequant stage"
    );
    if s.m == 0 || b.n == 0 {
        return;
    }
    if crate::x86_64::quant::qgemm_dequant(tier, s, a, b, dq, c) {
        return;
    }
    if crate::aarch64::quant::qgemm(tier, s, a, b, Stage::F32 { dq, c }) {
        return;
    }
    qgemm_dequant_reference(s, a, b, dq, c);
}

/// The kernel a call on `tier` runs, for logs, benches and CSV rows.
pub fn qgemm_kernel_id(tier: Tier) -> &'static str {
    crate::x86_64::quant::qgemm_id(tier)
        .or_else(|| crate::aarch64::quant::qgemm_id(tier))
        .unwrap_or("reference/qgemm_u8i8_i32_requant")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn packing_round_trips_and_pads() {
        let (k, n) = (7, 19);
        let w: Vec<i8> = (0..k * n).map(|i| (i as i32 % 251 - 125) as i8).collect();
        let b = PackedB::pack(&w, k, n);
        assert_eq!(b.as_slice().len(), 2 * 2 * NR * KR);
        for p in 0..k {
            for j in 0..n {
                assert_eq!(b.get(p, j), w[p * n + j]);
            }
        }
        let zb = b.zero_point_bias(&vec![5; n], 3);
        let s0: i32 = (0..k).map(|p| w[p * n] as i32).sum();
        assert_eq!(zb[0], 5 - 3 * s0);
        for j in 0..n {
            let s: i32 = (0..k).map(|p| w[p * n + j] as i32).sum();
            assert_eq!(b.col_sums()[j], s);
        }
    }
}
