//! `x86_64/avx2/qgemm_u8i8_i32_requant_2x16`: the int8 GEMM on AVX2 without VNNI.
//!
//! `vpmaddubsw` saturates its 16-bit pair sums, so it is not exact; instead bytes are
//! widened to `i16` and `vpmaddwd` forms exact `i32` pair sums. Accumulators hold the
//! pairs of four columns per ymm; a horizontal add and a lane permute give eight column
//! sums at the end. Micro-tile: 2 rows × 16 columns (8 accumulators).

use core::arch::x86_64::*;

use super::qadd_u8::{add_codes, addv, load8};
use super::requant_u8::{clamp_q, load_i32, mulv, outq, store_u8};
use crate::quant::qgemm::{KR, NR};

use crate::x86_64::quant::Out;

/// `C = stage(A · B)`.
///
/// # Safety
/// The CPU has AVX2; the layout contract of the AVX-512 twin
/// (`avx512::qgemm_u8i8_vnni`) holds.
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn qgemm_u8i8_avx2(
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
    for jb in 0..nblocks {
        let mut i = 0;
        while i < m {
            let rows = (m - i).min(2);
            // SAFETY: forwarded contract; rows i..i + rows ≤ m and block jb < nblocks.
            unsafe {
                if rows == 2 {
                    tile::<2>(i, jb, n, k, a, lda, b, out, ldc);
                } else {
                    tile::<1>(i, jb, n, k, a, lda, b, out, ldc);
                }
            }
            i += rows;
        }
    }
}

/// Four activation bytes widened to `i16` and repeated over the register.
#[inline]
#[target_feature(enable = "avx2")]
fn quad16(a: &[u8], base: usize, p: usize, k: usize) -> __m256i {
    let s = KR * p;
    let mut q = [0i64; 4];
    for t in 0..KR.min(k - s) {
        q[t] = a[base + s + t] as i64;
    }
    _mm256_set1_epi64x(q[0] | q[1] << 16 | q[2] << 32 | q[3] << 48)
}

#[inline]
#[target_feature(enable = "avx2")]
#[allow(clippy::too_many_arguments)]
unsafe fn tile<const R: usize>(
    i: usize,
    jb: usize,
    n: usize,
    k: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    out: &mut Out,
    ldc: usize,
) {
    let kb = k.div_ceil(KR);
    // acc[r][h]: pair sums of columns 4h..4h + 4 of the block.
    let mut acc = [[_mm256_setzero_si256(); 4]; R];
    for p in 0..kb {
        let off = (jb * kb + p) * NR * KR;
        // SAFETY: block jb and group p are inside the packed matrix (64 bytes).
        let (lo, hi) = unsafe {
            (
                _mm256_loadu_si256(b.as_ptr().add(off).cast()),
                _mm256_loadu_si256(b.as_ptr().add(off + 32).cast()),
            )
        };
        let bw = [
            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(lo)),
            _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(lo)),
            _mm256_cvtepi8_epi16(_mm256_castsi256_si128(hi)),
            _mm256_cvtepi8_epi16(_mm256_extracti128_si256::<1>(hi)),
        ];
        for (r, accr) in acc.iter_mut().enumerate() {
            let av = quad16(a, (i + r) * lda, p, k);
            for h in 0..4 {
                accr[h] = _mm256_add_epi32(accr[h], _mm256_madd_epi16(av, bw[h]));
            }
        }
    }
    let col0 = jb * NR;
    for (r, accr) in acc.iter().enumerate() {
        // [c0 c1 c4 c5 | c2 c3 c6 c7] -> [c0 .. c7].
        let sums = [
            _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(accr[0], accr[1])),
            _mm256_permute4x64_epi64::<0b11_01_10_00>(_mm256_hadd_epi32(accr[2], accr[3])),
        ];
        for (half, s) in sums.into_iter().enumerate() {
            let col = col0 + 8 * half;
            if col >= n {
                break;
            }
            let valid = (n - col).min(8);
            let row = (i + r) * ldc + col;
            match out {
                Out::U8 {
                    c,
                    bias,
                    mul,
                    shift,
                    zp,
                    qmin,
                    qmax,
                    res,
                    ..
                } => {
                    let m = mulv(
                        load_i32(&mul[col..col + valid]),
                        load_i32(&shift[col..col + valid]),
                    );
                    let x = _mm256_add_epi32(s, load_i32(&bias[col..col + valid]));
                    let mut v = clamp_q(x, m, outq(*zp, *qmin, *qmax));
                    if let Some((r, p)) = res {
                        v = add_codes(v, load8(&r[row..row + valid]), addv(p));
                    }
                    store_u8(v, &mut c[row..row + valid]);
                }
                Out::F32 {
                    c,
                    bias_i32,
                    scale,
                    bias,
                    lo,
                    hi,
                } => {
                    let x = _mm256_add_epi32(s, load_i32(&bias_i32[col..col + valid]));
                    let mut t = [0f32; 8];
                    let mut sc = [0f32; 8];
                    let mut bi = [0f32; 8];
                    sc[..valid].copy_from_slice(&scale[col..col + valid]);
                    bi[..valid].copy_from_slice(&bias[col..col + valid]);
                    // SAFETY: the arrays hold 8 f32 each.
                    unsafe {
                        let y = _mm256_add_ps(
                            _mm256_mul_ps(_mm256_cvtepi32_ps(x), _mm256_loadu_ps(sc.as_ptr())),
                            _mm256_loadu_ps(bi.as_ptr()),
                        );
                        let y = _mm256_min_ps(
                            _mm256_max_ps(y, _mm256_set1_ps(*lo)),
                            _mm256_set1_ps(*hi),
                        );
                        _mm256_storeu_ps(t.as_mut_ptr(), y);
                    }
                    c[row..row + valid].copy_from_slice(&t[..valid]);
                }
            }
        }
    }
}
