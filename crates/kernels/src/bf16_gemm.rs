//! `gemm_bf16f32`: `C[m, n] (+)= A[m, k] · B[k, n]` with bf16 operands and f32
//! accumulation, the product of mixed-precision training (bf16 operands halve the bytes a
//! GEMM reads; every sum stays f32).
//!
//! Layouts: `A` is row-major bf16 bits `[m, kp·2]`, its depth padded with zeros to an even
//! `kp·2` ([`pack_a`]); `B` is packed once by [`PackedBf16B`] into panels of 16 columns,
//! each depth pair of a column stored together (`[⌈n/16⌉][kp][16][2]`, zero-padded): the
//! layout in which AVX512-BF16's `vdpbf16ps` multiplies a broadcast pair of `A` by 16
//! columns at once.
//!
//! The specification is [`gemm_bf16f32_reference`]: every output starts at `C` (or 0) and
//! adds, pair by pair along the depth, `a[2p]·b[2p]` then `a[2p+1]·b[2p+1]`; each product
//! of two bf16 values is exact in f32 and each addition rounds once. The AVX512-BF16
//! kernel computes the same sums in the instruction's order and with its denormal
//! handling, so tiers agree within [`TOLERANCE`] of `Σ|a·b|`, not bit for bit.

use crate::bf16::{bf16_to_f32_exact, f32_to_bf16_rne};
use crate::dispatch::Tier;

/// Columns per packed panel (one zmm of f32 sums).
pub const PANEL: usize = 16;

/// Relative tolerance of any tier against the reference, as a fraction of `Σ_p |a_p·b_p|`
/// per output: different summation orders of `k` f32 additions differ by at most about
/// `k·2⁻²⁴` of that sum; 1e-5 covers depths past 100.
pub const TOLERANCE: f32 = 1e-5;

/// `a` `[m, k]` f32 rounded to bf16 bits (round to nearest even), each row padded with a
/// zero to an even depth: `[m, ⌈k/2⌉·2]`.
pub fn pack_a(a: &[f32], m: usize, k: usize) -> Vec<u16> {
    assert_eq!(a.len(), m * k, "pack_a: length");
    let kp2 = k.div_ceil(2) * 2;
    let mut out = vec![0u16; m * kp2];
    for (row, src) in out
        .chunks_exact_mut(kp2.max(1))
        .zip(a.chunks_exact(k.max(1)))
    {
        for (o, &x) in row.iter_mut().zip(src) {
            *o = f32_to_bf16_rne(x);
        }
    }
    out
}

/// `B` `[k, n]` rounded to bf16 and packed for [`gemm_bf16f32`].
#[derive(Clone, Debug, PartialEq)]
pub struct PackedBf16B {
    k: usize,
    n: usize,
    data: Vec<u16>,
}

impl PackedBf16B {
    /// Packs row-major f32 `b` `[k, n]`.
    pub fn from_f32(b: &[f32], k: usize, n: usize) -> Self {
        assert_eq!(b.len(), k * n, "PackedBf16B: length");
        let kp = k.div_ceil(2);
        let panels = n.div_ceil(PANEL);
        let mut data = vec![0u16; panels * kp * PANEL * 2];
        for d in 0..k {
            for j in 0..n {
                let (panel, col) = (j / PANEL, j % PANEL);
                data[((panel * kp + d / 2) * PANEL + col) * 2 + d % 2] =
                    f32_to_bf16_rne(b[d * n + j]);
            }
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

/// The specification (see the module docs). `accumulate`: add to `c` instead of
/// overwriting it.
pub fn gemm_bf16f32_reference(
    m: usize,
    a: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    check(m, a, b, c);
    let (n, kp) = (b.n, b.pairs());
    for i in 0..m {
        let row = &a[i * kp * 2..(i + 1) * kp * 2];
        for j in 0..n {
            let mut acc = if accumulate { c[i * n + j] } else { 0.0 };
            for p in 0..kp {
                for h in 0..2 {
                    let d = 2 * p + h;
                    acc += bf16_to_f32_exact(row[d]) * bf16_to_f32_exact(b.get(d, j));
                }
            }
            c[i * n + j] = acc;
        }
    }
}

/// `C (+)= A · B` on the best kernel `tier` and the CPU allow: AVX512-BF16 (`vdpbf16ps`,
/// 4 rows × 32 columns per step) where present, else the reference.
pub fn gemm_bf16f32(
    tier: Tier,
    m: usize,
    a: &[u16],
    b: &PackedBf16B,
    c: &mut [f32],
    accumulate: bool,
) {
    check(m, a, b, c);
    if crate::x86_64::gemm_bf16f32(tier, m, a, b.n, b.pairs(), b.as_slice(), c, accumulate) {
        return;
    }
    gemm_bf16f32_reference(m, a, b, c, accumulate);
}

/// Id of the kernel [`gemm_bf16f32`] runs for `tier`.
pub fn kernel_id(tier: Tier) -> &'static str {
    crate::x86_64::gemm_bf16f32_id(tier).unwrap_or("reference/gemm_bf16f32")
}
