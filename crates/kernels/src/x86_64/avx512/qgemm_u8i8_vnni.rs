//! `x86_64/avx512vnni/qgemm_u8i8_i32_requant_6x64`: the int8 GEMM on AVX-512 VNNI.
//!
//! Micro-tile: 6 rows × 4 column blocks of 16 = 24 zmm accumulators. Each depth group
//! of 4 loads four 64-byte weight vectors and broadcasts 4 activation bytes per row;
//! `vpdpbusd` multiplies `u8 × i8` and adds the four products into each `i32` lane
//! without saturation, so the result equals the scalar `i32` sum exactly.

use core::arch::x86_64::*;

use super::qadd_u8::{add_codes, addv};
use super::requant_u8::{mulv, out_bytes, outq, to_codes, to_u8, to_u8_x4};
use crate::quant::qgemm::{KR, NR};
use crate::x86_64::quant::Out;

/// Rows per micro-tile.
pub(in crate::x86_64) const MR: usize = 6;
/// Column blocks per micro-tile.
const NB: usize = 4;

/// `C = stage(A · B)`.
///
/// # Safety
/// The CPU has AVX-512 F/BW/VL/VNNI; `a` holds `m` rows of `k` bytes at stride `lda`;
/// `b` is packed `[n.div_ceil(16)][k.div_ceil(4)][16][4]`; `out` holds `m` rows of `n`
/// values at stride `ldc` and its stage vectors have at least `n` entries.
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn qgemm_u8i8_vnni(
    m: usize,
    n: usize,
    k: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    out: &mut Out,
    ldc: usize,
) {
    // SAFETY: forwarded contract.
    unsafe { qgemm_u8i8_vnni_rows(0, m, n, k, a, lda, b, out, ldc) }
}

/// [`qgemm_u8i8_vnni`] for rows `i0..m` only.
///
/// # Safety
/// As [`qgemm_u8i8_vnni`].
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn qgemm_u8i8_vnni_rows(
    i0: usize,
    m: usize,
    n: usize,
    k: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    out: &mut Out,
    ldc: usize,
) {
    let nblocks = n.div_ceil(NR);
    let mut jb = 0;
    while jb < nblocks {
        let nb = (nblocks - jb).min(NB);
        let mut i = i0;
        while i < m {
            let mr = (m - i).min(MR);
            let t = Tile {
                i,
                jb,
                m: mr,
                n,
                k,
                lda,
                ldc,
            };
            // SAFETY: forwarded from this function's contract; the tile lies inside the
            // matrices (rows i..i+mr ≤ m, blocks jb..jb+nb ≤ nblocks).
            unsafe {
                match (mr, nb) {
                    (6, 4) => tile::<6, 4>(t, a, b, out),
                    (6, 3) => tile::<6, 3>(t, a, b, out),
                    (6, 2) => tile::<6, 2>(t, a, b, out),
                    (6, _) => tile::<6, 1>(t, a, b, out),
                    (5, 4) => tile::<5, 4>(t, a, b, out),
                    (4, 4) => tile::<4, 4>(t, a, b, out),
                    (3, 4) => tile::<3, 4>(t, a, b, out),
                    (2, 4) => tile::<2, 4>(t, a, b, out),
                    (1, 4) => tile::<1, 4>(t, a, b, out),
                    (r, q) => {
                        // Rare edge tiles (narrow and short): row by row, block by block.
                        for rr in 0..r {
                            for qq in 0..q {
                                let t1 = Tile {
                                    i: i + rr,
                                    jb: jb + qq,
                                    m: 1,
                                    ..t
                                };
                                tile::<1, 1>(t1, a, b, out);
                            }
                        }
                    }
                }
            }
            i += mr;
        }
        jb += nb;
    }
}

/// Lane mask of the first `min(valid, 16)` columns.
#[inline(always)]
pub(in crate::x86_64) fn col_mask(valid: usize) -> __mmask16 {
    if valid >= NR {
        0xFFFF
    } else {
        (1u16 << valid) - 1
    }
}

/// A micro-tile: rows `i..i + m`, column blocks from `jb`, of a product with `n`
/// columns and depth `k` (row strides `lda` of A, `ldc` of C).
#[derive(Clone, Copy)]
pub(in crate::x86_64) struct Tile {
    pub i: usize,
    pub jb: usize,
    pub m: usize,
    pub n: usize,
    pub k: usize,
    pub lda: usize,
    pub ldc: usize,
}

/// Four activation bytes `a[row, 4p..4p + 4]` as one lane (zero beyond `k`).
#[inline(always)]
fn quad(a: &[u8], base: usize, p: usize, k: usize) -> i32 {
    let s = KR * p;
    if s + KR <= k {
        i32::from_le_bytes([
            a[base + s],
            a[base + s + 1],
            a[base + s + 2],
            a[base + s + 3],
        ])
    } else {
        let mut q = [0u8; 4];
        for (t, v) in q.iter_mut().enumerate().take(k - s) {
            *v = a[base + s + t];
        }
        i32::from_le_bytes(q)
    }
}

/// One `R × (16·Q)` micro-tile over the whole depth, then its output stage.
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
unsafe fn tile<const R: usize, const Q: usize>(t: Tile, a: &[u8], b: &[i8], out: &mut Out) {
    debug_assert!(t.m == R);
    let kb = t.k.div_ceil(KR);
    let full = t.k / KR;
    // The accumulators start at the stage's `i32` bias (the same wrapping sum as adding
    // it at the end).
    let mut acc = [[_mm512_setzero_si512(); Q]; R];
    for q in 0..Q {
        let col = (t.jb + q) * NR;
        let mask = col_mask(t.n - col);
        let bias = out.bias_i32();
        // SAFETY: the masked load reads only lanes col..col + valid < n of the bias.
        let bv = unsafe { _mm512_maskz_loadu_epi32(mask, bias.as_ptr().add(col)) };
        for accr in acc.iter_mut() {
            accr[q] = bv;
        }
    }
    let bp = b.as_ptr();
    let mut arow = [a.as_ptr(); R];
    for (r, p) in arow.iter_mut().enumerate() {
        // SAFETY: row i + r < m starts inside `a` (rows hold k bytes at stride lda).
        *p = unsafe { a.as_ptr().add((t.i + r) * t.lda) };
    }
    let mut bv = [_mm512_setzero_si512(); Q];
    for p in 0..full {
        for (q, v) in bv.iter_mut().enumerate() {
            // SAFETY: block jb + q < nblocks and depth group p < kb: the 64 bytes at
            // ((jb + q)·kb + p)·64 are inside the packed matrix.
            *v = unsafe { _mm512_loadu_si512(bp.add(((t.jb + q) * kb + p) * NR * KR).cast()) };
        }
        for r in 0..R {
            // SAFETY: 4p + 4 ≤ k, so the 4 bytes are inside row i + r.
            let lane = unsafe { (arow[r].add(KR * p) as *const i32).read_unaligned() };
            let av = _mm512_set1_epi32(lane);
            for q in 0..Q {
                acc[r][q] = _mm512_dpbusd_epi32(acc[r][q], av, bv[q]);
            }
        }
    }
    if full < kb {
        for (q, v) in bv.iter_mut().enumerate() {
            // SAFETY: as in the main loop, for the last depth group.
            *v = unsafe { _mm512_loadu_si512(bp.add(((t.jb + q) * kb + full) * NR * KR).cast()) };
        }
        for (r, accr) in acc.iter_mut().enumerate() {
            let av = _mm512_set1_epi32(quad(a, (t.i + r) * t.lda, full, t.k));
            for q in 0..Q {
                accr[q] = _mm512_dpbusd_epi32(accr[q], av, bv[q]);
            }
        }
    }
    // SAFETY: forwarded contract; the tile lies inside the matrices.
    unsafe { finish::<R, Q>(t, &acc, out) };
}

/// The output stage of an `R × (16·Q)` tile whose `i32` sums (bias included) are `acc`:
/// requantized (optionally with the residual add) or dequantized, and stored.
///
/// # Safety
/// As [`qgemm_u8i8_vnni`], for the tile `t` (rows `t.i..t.i + R`, column blocks
/// `t.jb..t.jb + Q`, inside the matrices).
#[inline]
#[target_feature(enable = "avx512f,avx512bw,avx512vl")]
pub(in crate::x86_64) unsafe fn finish<const R: usize, const Q: usize>(
    t: Tile,
    acc: &[[__m512i; Q]; R],
    out: &mut Out,
) {
    // Four full column blocks in the total-shift-32 layout without a residual: sixty-four
    // outputs per row through the packing epilogue and one 64-byte store.
    if let Out::U8 {
        c,
        mul,
        shift,
        zp,
        qmin,
        qmax,
        q32: true,
        res: None,
        ..
    } = out
        && Q == 4
        && (t.jb + 4) * NR <= t.n
    {
        let col0 = t.jb * NR;
        // SAFETY: the four blocks' columns col0..col0 + 64 ≤ n are inside the stage vectors.
        let m: [_; 4] = std::array::from_fn(|q| unsafe {
            mulv(
                _mm512_loadu_si512(mul.as_ptr().add(col0 + q * NR).cast()),
                _mm512_loadu_si512(shift.as_ptr().add(col0 + q * NR).cast()),
                true,
            )
        });
        let o = out_bytes(*zp, *qmin, *qmax);
        for (r, accr) in acc.iter().enumerate() {
            // SAFETY: every lane has total shift 32 (`q32`); the 64 bytes of row i + r at
            // columns col0..col0 + 64 ≤ n are inside `c`.
            unsafe {
                let bytes = to_u8_x4(std::array::from_fn(|q| accr[q]), &m, &o);
                _mm512_storeu_si512(c.as_mut_ptr().add((t.i + r) * t.ldc + col0).cast(), bytes);
            }
        }
        return;
    }
    for q in 0..Q {
        let col = (t.jb + q) * NR;
        let mask = col_mask(t.n - col);
        match out {
            Out::U8 {
                c,
                mul,
                shift,
                zp,
                qmin,
                qmax,
                q32,
                res,
                ..
            } => {
                // SAFETY: masked loads read only lanes col..col + valid < n.
                let (mv, sv) = unsafe {
                    (
                        _mm512_maskz_loadu_epi32(mask, mul.as_ptr().add(col)),
                        _mm512_maskz_loadu_epi32(mask, shift.as_ptr().add(col)),
                    )
                };
                let m = mulv(mv, sv, *q32);
                let o = outq(*zp, *qmin, *qmax);
                let add = res.map(|(r, p)| (r, addv(p)));
                for (r, accr) in acc.iter().enumerate() {
                    let at = (t.i + r) * t.ldc + col;
                    let bytes = match add {
                        None => to_u8(accr[q], m, o),
                        Some((res, k)) => {
                            // SAFETY: the residual has the layout of `c`: the masked load
                            // reads row i + r, columns col..col + valid ≤ n.
                            let rv =
                                unsafe { _mm_maskz_loadu_epi8(mask, res.as_ptr().add(at).cast()) };
                            add_codes(to_codes(accr[q], m, o), _mm512_cvtepu8_epi32(rv), k)
                        }
                    };
                    // SAFETY: row i + r < m and columns col..col + valid ≤ n: inside `c`.
                    unsafe { _mm_mask_storeu_epi8(c.as_mut_ptr().add(at).cast(), mask, bytes) };
                }
            }
            Out::F32 {
                c,
                scale,
                bias,
                lo,
                hi,
                ..
            } => {
                // SAFETY: masked loads read only lanes col..col + valid < n.
                let (sv, bv) = unsafe {
                    (
                        _mm512_maskz_loadu_ps(mask, scale.as_ptr().add(col)),
                        _mm512_maskz_loadu_ps(mask, bias.as_ptr().add(col)),
                    )
                };
                let (lov, hiv) = (_mm512_set1_ps(*lo), _mm512_set1_ps(*hi));
                for (r, accr) in acc.iter().enumerate() {
                    let x = _mm512_cvtepi32_ps(accr[q]);
                    let y = _mm512_add_ps(_mm512_mul_ps(x, sv), bv);
                    let y = _mm512_min_ps(_mm512_max_ps(y, lov), hiv);
                    // SAFETY: row i + r < m and columns col..col + valid ≤ n: inside `c`.
                    unsafe {
                        _mm512_mask_storeu_ps(c.as_mut_ptr().add((t.i + r) * t.ldc + col), mask, y)
                    };
                }
            }
        }
    }
}
