//! `gemm_bf16f32_avx512bf16_4x32`: the bf16 GEMM on AVX512-BF16 (`vdpbf16ps`).
//!
//! Per step of the depth, one 32-bit broadcast of an `A` row holds a pair of bf16 values;
//! `vdpbf16ps` multiplies it by the pair of each of 16 packed `B` columns and adds both
//! products into 16 f32 sums. Four rows × two panels (32 columns) keep 8 accumulators in
//! registers; leftover rows run one at a time, and the last panel's columns past `n` are
//! computed on `B`'s zero padding and not stored (masked stores). `A` is read through two
//! strides (in pairs), so the same kernel serves row-major `A` (`[m][kp]` pairs) and the
//! pair-major `Aᵀ` packing of weight gradients (`[kp][m]` pairs).

use core::arch::x86_64::*;

use crate::bf16_gemm::PANEL;

/// Strides of a packed `A`, in pairs of bf16 values: pair `p` of row `i` starts at
/// `(i·row + p·pair)·2`.
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct AStrides {
    pub row: usize,
    pub pair: usize,
}

/// One block of `R` rows (1..=4) × panels `p0` and `p0 + 1` (when `two`).
///
/// # Safety
/// AVX-512F and AVX512-BF16 are available; `a` holds pairs `0..kp` of rows `i0..i0 + R`
/// at the offsets `sa` gives,
/// `b` panels `p0..p0 + 1 + two` of `kp·32` values, `c` rows `i0..i0 + R` of `n` values,
/// and columns `p0·16 ..` exist up to `n` (masked).
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
unsafe fn block<const R: usize>(
    i0: usize,
    p0: usize,
    two: bool,
    kp: usize,
    n: usize,
    sa: AStrides,
    a: &[u16],
    b: &[u16],
    c: &mut [f32],
    accumulate: bool,
) {
    let cols = |p: usize| (n - p * PANEL).min(PANEL);
    let mask = |p: usize| -> __mmask16 { ((1u32 << cols(p)) - 1) as __mmask16 };
    let (m0, m1) = (mask(p0), if two { mask(p0 + 1) } else { 0 });
    let mut acc = [[_mm512_setzero_ps(); 2]; R];
    if accumulate {
        for (r, row) in acc.iter_mut().enumerate() {
            let at = (i0 + r) * n + p0 * PANEL;
            // SAFETY: row i0 + r < m and its columns p0·16 + lane < n (masked) are inside
            // `c` (contract); masked-off lanes are not read.
            unsafe {
                let cr = c.as_ptr().add(at);
                row[0] = _mm512_maskz_loadu_ps(m0, cr);
                if two {
                    row[1] = _mm512_maskz_loadu_ps(m1, cr.add(PANEL));
                }
            }
        }
    }
    let panel = kp * PANEL * 2;
    for p in 0..kp {
        // SAFETY: pair p < kp of panel p0 (and p0 + 1 when `two`) starts at
        // `(p0·kp + p)·32` and holds 32 values inside `b` (contract).
        let (v0, v1): (__m512bh, __m512bh) = unsafe {
            let b0 = b.as_ptr().add(p0 * panel + p * 32);
            let v0 = _mm512_loadu_si512(b0 as *const __m512i);
            let v1 = if two {
                _mm512_loadu_si512(b0.add(panel) as *const __m512i)
            } else {
                v0
            };
            (
                core::mem::transmute::<__m512i, __m512bh>(v0),
                core::mem::transmute::<__m512i, __m512bh>(v1),
            )
        };
        for (r, row) in acc.iter_mut().enumerate() {
            // SAFETY: pair p < kp of row i0 + r < m is inside `a` (contract).
            let pair = unsafe {
                (a.as_ptr().add(((i0 + r) * sa.row + p * sa.pair) * 2) as *const i32)
                    .read_unaligned()
            };
            // SAFETY: a bit-for-bit reinterpretation of 16 lanes of 32 bits.
            let x = unsafe { core::mem::transmute::<__m512i, __m512bh>(_mm512_set1_epi32(pair)) };
            row[0] = _mm512_dpbf16_ps(row[0], x, v0);
            if two {
                row[1] = _mm512_dpbf16_ps(row[1], x, v1);
            }
        }
    }
    for (r, row) in acc.iter().enumerate() {
        let at = (i0 + r) * n + p0 * PANEL;
        // SAFETY: masked stores write only columns < n of row i0 + r < m (contract).
        unsafe {
            let cr = c.as_mut_ptr().add(at);
            _mm512_mask_storeu_ps(cr, m0, row[0]);
            if two {
                _mm512_mask_storeu_ps(cr.add(PANEL), m1, row[1]);
            }
        }
    }
}

/// `C (+)= A · B` (see [`crate::bf16_gemm`]).
///
/// # Safety
/// AVX-512F and AVX512-BF16 are available; `a.len() == m·kp·2` with `sa` either
/// `{row: kp, pair: 1}` or `{row: 1, pair: m}`, `b.len() == ⌈n/16⌉·kp·32`,
/// `c.len() == m·n`, `n > 0`.
#[target_feature(enable = "avx512f,avx512bf16")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn gemm_bf16f32(
    m: usize,
    a: &[u16],
    sa: AStrides,
    n: usize,
    kp: usize,
    b: &[u16],
    c: &mut [f32],
    accumulate: bool,
) {
    let panels = n.div_ceil(PANEL);
    for p0 in (0..panels).step_by(2) {
        let two = p0 + 1 < panels;
        let mut i = 0;
        while i + 4 <= m {
            // SAFETY: the features are there (contract); rows i..i + 4 ≤ m and panels
            // p0 (+ 1) < ⌈n/16⌉ lie inside the slices whose lengths the caller checked.
            unsafe { block::<4>(i, p0, two, kp, n, sa, a, b, c, accumulate) };
            i += 4;
        }
        while i < m {
            // SAFETY: as above, for the one row i < m.
            unsafe { block::<1>(i, p0, two, kp, n, sa, a, b, c, accumulate) };
            i += 1;
        }
    }
}
