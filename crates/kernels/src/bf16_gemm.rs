//! `gemm_bf16f32`: `C[m, n] (+)= A[m, k] · B[k, n]` with bf16 operands and f32
//! accumulation, the product of mixed-precision training (bf16 operands halve the bytes a
//! GEMM reads; every sum stays f32).
//!
//! Layouts: `A` is row-major bf16 bits `[m, kp·2]`, its depth padded with zeros to an even
//! `kp·2` ([`pack_a`]); `B` is packed once by [`PackedBf16B`] into panels of 16 columns,
//! each depth pair of a column stored together (`[⌈n/16⌉][kp][16][2]`, zero-padded): the
//! layout in which AVX512-BF16's `vdpbf16ps` multiplies a broadcast pair of `A` by 16
//! columns at once. For weight gradients (`Aᵀ · B`, both stored depth-major) [`pack_a_t`]
//! packs `A` pair-major (`[kp][m][2]`) and [`gemm_bf16f32_at`] reads it through that stride.
//!
//! The specification is [`gemm_bf16f32_reference`]: every output starts at `C` (or 0) and
//! adds, pair by pair along the depth, `a[2p]·b[2p]` then `a[2p+1]·b[2p+1]`; each product
//! of two bf16 values is exact in f32 and each addition rounds once. The AVX512-BF16
//! kernel computes the same sums in the instruction's order and with its denormal
//! handling, so tiers agree within [`TOLERANCE`] of `Σ|a·b|`, not bit for bit.

use crate::bf16::{bf16_to_f32_exact, f32_to_bf16_rne};
use crate::bn_train::multiversion;
#[cfg(target_arch = "x86_64")]
use crate::bn_train::{Isa, isa};
use crate::dispatch::Tier;

/// Columns per packed panel (one zmm of f32 sums).
pub const PANEL: usize = 16;

/// Relative tolerance of any tier against the reference, as a fraction of `Σ_p |a_p·b_p|`
/// per output: different summation orders of `k` f32 additions differ by at most about
/// `k·2⁻²⁴` of that sum; 1e-5 covers depths past 100.
pub const TOLERANCE: f32 = 1e-5;

/// `a` `[m, k]` f32 rounded to bf16 bits (round to nearest even), each row padded with a
/// zero to an even depth: `[m, ⌈k/2⌉·2]`. Bit-identical on every tier.
pub fn pack_a(tier: Tier, a: &[f32], m: usize, k: usize) -> Vec<u16> {
    assert_eq!(a.len(), m * k, "pack_a: length");
    let kp2 = k.div_ceil(2) * 2;
    let mut out = vec![0u16; m * kp2];
    if k > 0 {
        pack_rows(tier, a, k, &mut out, kp2);
    }
    out
}

#[inline(always)]
fn pack_rows_body(a: &[f32], k: usize, out: &mut [u16], kp2: usize) {
    for (row, src) in out.chunks_exact_mut(kp2).zip(a.chunks_exact(k)) {
        for (o, &x) in row.iter_mut().zip(src) {
            *o = f32_to_bf16_rne(x);
        }
    }
}

multiversion!(
    /// Rows of `k` values of `a` rounded into rows of `kp2` of `out`.
    pack_rows => pack_rows_body(a: &[f32], k: usize, out: &mut [u16], kp2: usize)
);

/// `Aᵀ` for [`gemm_bf16f32_at`] from `a` `[k, m]` (row-major): pair-major bf16 bits
/// `[⌈k/2⌉][m][2]`, i.e. rows `2p` and `2p + 1` of `a` interleaved (the last odd row with
/// zeros). This is how the weight gradient `dW = dYᵀ · X` feeds `dY` `[pixels, O]` to the
/// GEMM: two sequential reads and one sequential write per pair of pixels, no transpose.
/// Bit-identical on every tier.
pub fn pack_a_t(tier: Tier, a: &[f32], k: usize, m: usize) -> Vec<u16> {
    assert_eq!(a.len(), k * m, "pack_a_t: length");
    let kp = k.div_ceil(2);
    let mut out = vec![0u16; kp * m * 2];
    for (p, dst) in out.chunks_exact_mut((m * 2).max(1)).enumerate().take(kp) {
        let r0 = &a[2 * p * m..(2 * p + 1) * m];
        let r1 = a.get((2 * p + 1) * m..(2 * p + 2) * m).unwrap_or(&[]);
        interleave(tier, r0, r1, dst);
    }
    out
}

/// `dst[2j] = bf16(r0[j])`, `dst[2j + 1] = bf16(r1[j])` (0 where `r1` is empty).
#[inline(always)]
fn interleave_body(r0: &[f32], r1: &[f32], dst: &mut [u16]) {
    if r1.is_empty() {
        for (o, &x0) in dst.chunks_exact_mut(2).zip(r0) {
            o[0] = f32_to_bf16_rne(x0);
            o[1] = 0;
        }
    } else {
        for ((o, &x0), &x1) in dst.chunks_exact_mut(2).zip(r0).zip(r1) {
            o[0] = f32_to_bf16_rne(x0);
            o[1] = f32_to_bf16_rne(x1);
        }
    }
}

multiversion!(
    /// Two rows rounded to bf16 and interleaved pair by pair.
    interleave => interleave_body(r0: &[f32], r1: &[f32], dst: &mut [u16])
);

/// [`PackedBf16B`]'s layout: for each depth pair, each panel's columns interleaved.
#[inline(always)]
fn pack_b_body(b: &[f32], k: usize, n: usize, data: &mut [u16]) {
    let kp = k.div_ceil(2);
    for p in 0..kp {
        let r0 = &b[2 * p * n..(2 * p + 1) * n];
        let r1 = b.get((2 * p + 1) * n..(2 * p + 2) * n).unwrap_or(&[]);
        for (panel, c0) in (0..n).step_by(PANEL).enumerate() {
            let c1 = (c0 + PANEL).min(n);
            let at = (panel * kp + p) * PANEL * 2;
            let r1 = if r1.is_empty() { r1 } else { &r1[c0..c1] };
            interleave_body(&r0[c0..c1], r1, &mut data[at..at + (c1 - c0) * 2]);
        }
    }
}

multiversion!(
    /// Packs `b` `[k, n]` into `data` (zeroed, [`PackedBf16B`]'s length).
    pack_b => pack_b_body(b: &[f32], k: usize, n: usize, data: &mut [u16])
);

/// `B` `[k, n]` rounded to bf16 and packed for [`gemm_bf16f32`].
#[derive(Clone, Debug, PartialEq)]
pub struct PackedBf16B {
    k: usize,
    n: usize,
    data: Vec<u16>,
}

impl PackedBf16B {
    /// Packs row-major f32 `b` `[k, n]`. Bit-identical on every tier.
    pub fn from_f32(tier: Tier, b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "PackedBf16B: length");
        let mut data = vec![0u16; n.div_ceil(PANEL) * k.div_ceil(2) * PANEL * 2];
        if n > 0 {
            pack_b(tier, b, k, n, &mut data);
        }
        Self { k, n, data }
    }

    /// Depth `k`.
    pub fn k(&self) -> usize {
        self.k
    }

    /// Columns `n`.
    pub fn n(&self) -> usize {
        self.n
    }

    /// Depth pairs (`⌈k/2⌉`).
    pub fn pairs(&self) -> usize {
        self.k.div_ceil(2)
    }

    /// The packed bits.
    pub fn as_slice(&self) -> &[u16] {
        &self.data
    }

    /// Element `(d, j)` of `B` as stored (bf16 bits).
    fn get(&self, d: usize, j: usize) -> u16 {
        let kp = self.pairs();
        self.data[(((j / PANEL) * kp + d / 2) * PANEL + j % PANEL) * 2 + d % 2]
    }
}

fn check(m: usize, a: &[u16], b: &PackedBf16B, c: &[f32]) {
    assert_eq!(a.len(), m * b.pairs() * 2, "gemm_bf16f32: A length");
    assert_eq!(c.len(), m * b.n, "gemm_bf16f32: C length");
}

/// The specification (see the module docs) for `A` as [`pack_a`] packs it.
/// `accumulate`: add to `c` instead of overwriting it.
pub fn gemm_bf16f32_reference(
    m: usize,
    a: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    reference(m, a, false, b, c, accumulate);
}

/// The specification for `Aᵀ` as [`pack_a_t`] packs it.
pub fn gemm_bf16f32_at_reference(
    m: usize,
    at: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    reference(m, at, true, b, c, accumulate);
}

fn reference(
    m: usize,
    a: &[u16],
    pair_major: bool,
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    check(m, a, b, c);
    let (n, kp) = (b.n, b.pairs());
    for i in 0..m {
        for j in 0..n {
            let mut acc = if accumulate { c[i * n + j] } else { 0.0 };
            for p in 0..kp {
                let at = if pair_major { p * m + i } else { i * kp + p } * 2;
                for h in 0..2 {
                    let d = 2 * p + h;
                    acc += bf16_to_f32_exact(a[at + h]) * bf16_to_f32_exact(b.get(d, j));
                }
            }
            c[i * n + j] = acc;
        }
    }
}

/// `C (+)= A · B` on the best kernel `tier` and the CPU allow: AVX512-BF16 (`vdpbf16ps`,
/// 4 rows × 32 columns per step) where present, else the reference. `a` as [`pack_a`]
/// packs it.
pub fn gemm_bf16f32(
    tier: Tier,
    m: usize,
    a: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    check(m, a, b, c);
    if !crate::x86_64::gemm_bf16f32(
        tier,
        m,
        a,
        false,
        b.n,
        b.pairs(),
        b.as_slice(),
        c,
        accumulate,
    ) {
        gemm_bf16f32_reference(m, a, b, c, accumulate);
    }
}

/// `C (+)= Aᵀ · B`, `at` as [`pack_a_t`] packs `A` `[k, m]`: the same kernels as
/// [`gemm_bf16f32`] reading `A` through its other stride.
pub fn gemm_bf16f32_at(
    tier: Tier,
    m: usize,
    at: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    check(m, at, b, c);
    if !crate::x86_64::gemm_bf16f32(
        tier,
        m,
        at,
        true,
        b.n,
        b.pairs(),
        b.as_slice(),
        c,
        accumulate,
    ) {
        gemm_bf16f32_at_reference(m, at, b, c, accumulate);
    }
}

/// Whether `tier` runs [`gemm_bf16f32`] on bf16 hardware (AVX512-BF16) rather than the
/// scalar reference, which is exact to the specification but far slower than f32 `gemm`.
pub fn hardware(tier: Tier) -> bool {
    crate::x86_64::gemm_bf16f32_id(tier).is_some()
}

/// Id of the kernel [`gemm_bf16f32`] runs for `tier`.
pub fn kernel_id(tier: Tier) -> &'static str {
    crate::x86_64::gemm_bf16f32_id(tier).unwrap_or("reference/gemm_bf16f32")
}
