//! `spmm_f32_8x1`: sparse 1x1 convolution, 8 pixels per ymm, one output channel at a time.
//! The AVX2 + FMA twin of `avx512/spmm_f32.rs` (same three steps, 8x8 transposes, masked
//! loads and stores through lane masks for the channel tails).

use std::arch::x86_64::*;

use crate::x86_64::sparse::SpmmArgs;

const T: usize = 8;

/// In-register transpose of an 8x8 f32 block.
#[inline]
#[target_feature(enable = "avx2,fma")]
fn transpose8(r: &mut [__m256; 8]) {
    let t0 = _mm256_unpacklo_ps(r[0], r[1]);
    let t1 = _mm256_unpackhi_ps(r[0], r[1]);
    let t2 = _mm256_unpacklo_ps(r[2], r[3]);
    let t3 = _mm256_unpackhi_ps(r[2], r[3]);
    let t4 = _mm256_unpacklo_ps(r[4], r[5]);
    let t5 = _mm256_unpackhi_ps(r[4], r[5]);
    let t6 = _mm256_unpacklo_ps(r[6], r[7]);
    let t7 = _mm256_unpackhi_ps(r[6], r[7]);
    let u0 = _mm256_shuffle_ps::<0x44>(t0, t2);
    let u1 = _mm256_shuffle_ps::<0xEE>(t0, t2);
    let u2 = _mm256_shuffle_ps::<0x44>(t1, t3);
    let u3 = _mm256_shuffle_ps::<0xEE>(t1, t3);
    let u4 = _mm256_shuffle_ps::<0x44>(t4, t6);
    let u5 = _mm256_shuffle_ps::<0xEE>(t4, t6);
    let u6 = _mm256_shuffle_ps::<0x44>(t5, t7);
    let u7 = _mm256_shuffle_ps::<0xEE>(t5, t7);
    r[0] = _mm256_permute2f128_ps::<0x20>(u0, u4);
    r[1] = _mm256_permute2f128_ps::<0x20>(u1, u5);
    r[2] = _mm256_permute2f128_ps::<0x20>(u2, u6);
    r[3] = _mm256_permute2f128_ps::<0x20>(u3, u7);
    r[4] = _mm256_permute2f128_ps::<0x31>(u0, u4);
    r[5] = _mm256_permute2f128_ps::<0x31>(u1, u5);
    r[6] = _mm256_permute2f128_ps::<0x31>(u2, u6);
    r[7] = _mm256_permute2f128_ps::<0x31>(u3, u7);
}

/// Lane mask selecting the first `n ≤ 8` lanes (sign bit set).
#[inline]
#[target_feature(enable = "avx2,fma")]
fn lanes(n: usize) -> __m256i {
    let idx = _mm256_setr_epi32(0, 1, 2, 3, 4, 5, 6, 7);
    _mm256_cmpgt_epi32(_mm256_set1_epi32(n as i32), idx)
}

/// Runs the SpMM over all `a.pixels` pixels.
///
/// # Safety
/// The CPU must support AVX2 and FMA. `a` must be validated as in
/// `crate::x86_64::sparse::spmm_rows`: `input` is `[P, I]`, `out` `[P, O]`, `bias` (and
/// `scale`) `[O]`, `row_ptr` `[O + 1]` non-decreasing with `row_ptr[O] ≤ cols.len() =
/// vals.len()`, every column `< I`; `xt` holds at least `I·8` and `ot` `O·8` floats.
#[target_feature(enable = "avx2,fma")]
pub(in crate::x86_64) unsafe fn spmm_f32_8x1(
    a: &SpmmArgs,
    out: &mut [f32],
    xt: &mut [f32],
    ot: &mut [f32],
) {
    let (i_c, o_c) = (a.in_c, a.out_c);
    let xin = a.input.as_ptr();
    let xtp = xt.as_mut_ptr();
    let otp = ot.as_mut_ptr();
    let outp = out.as_mut_ptr();
    let mut p0 = 0;
    while p0 < a.pixels {
        let np = (a.pixels - p0).min(T);
        let mut c0 = 0;
        while c0 < i_c {
            let nc = (i_c - c0).min(T);
            let m = lanes(nc);
            let mut r = [_mm256_setzero_ps(); 8];
            for (p, rp) in r.iter_mut().enumerate().take(np) {
                // SAFETY: pixel p0 + p < P and channels c0..c0 + nc < I: inside `input`
                // (masked-off lanes are not accessed).
                *rp = unsafe { _mm256_maskload_ps(xin.add((p0 + p) * i_c + c0), m) };
            }
            transpose8(&mut r);
            for (c, rc) in r.iter().enumerate().take(nc) {
                // SAFETY: row c0 + c < I of xt, 8 floats: inside `xt` (I·8 floats).
                unsafe { _mm256_storeu_ps(xtp.add((c0 + c) * T), *rc) };
            }
            c0 += T;
        }
        for o in 0..o_c {
            // SAFETY: o + 1 ≤ O < row_ptr.len().
            let (kb, ke) = unsafe {
                (
                    *a.row_ptr.get_unchecked(o) as usize,
                    *a.row_ptr.get_unchecked(o + 1) as usize,
                )
            };
            let mut acc = [_mm256_setzero_ps(); 4];
            let mut k = kb;
            while k + 4 <= ke {
                for (j, accj) in acc.iter_mut().enumerate() {
                    // SAFETY: k + j < row_ptr[O] ≤ cols.len() = vals.len(); the column is
                    // < I, so its xt row (8 floats) is inside `xt`.
                    unsafe {
                        let col = *a.cols.get_unchecked(k + j) as usize;
                        let w = _mm256_set1_ps(*a.vals.get_unchecked(k + j));
                        let x = _mm256_loadu_ps(xtp.add(col * T));
                        *accj = _mm256_fmadd_ps(w, x, *accj);
                    }
                }
                k += 4;
            }
            while k < ke {
                // SAFETY: as above.
                unsafe {
                    let col = *a.cols.get_unchecked(k) as usize;
                    let w = _mm256_set1_ps(*a.vals.get_unchecked(k));
                    let x = _mm256_loadu_ps(xtp.add(col * T));
                    acc[0] = _mm256_fmadd_ps(w, x, acc[0]);
                }
                k += 1;
            }
            let s = _mm256_add_ps(_mm256_add_ps(acc[0], acc[1]), _mm256_add_ps(acc[2], acc[3]));
            // SAFETY: row o < O of ot, 8 floats: inside `ot` (O·8 floats).
            unsafe { _mm256_storeu_ps(otp.add(o * T), s) };
        }
        let (lo, hi) = (_mm256_set1_ps(a.lo), _mm256_set1_ps(a.hi));
        let mut o0 = 0;
        while o0 < o_c {
            let no = (o_c - o0).min(T);
            let m = lanes(no);
            let mut r = [_mm256_setzero_ps(); 8];
            for (j, rj) in r.iter_mut().enumerate().take(no) {
                // SAFETY: row o0 + j < O of ot.
                *rj = unsafe { _mm256_loadu_ps(otp.add((o0 + j) * T)) };
            }
            transpose8(&mut r);
            // SAFETY: channels o0..o0 + no < O of `bias` and `scale`, masked.
            let b = unsafe { _mm256_maskload_ps(a.bias.as_ptr().add(o0), m) };
            let sc = a
                .scale
                // SAFETY: as above.
                .map(|s| unsafe { _mm256_maskload_ps(s.as_ptr().add(o0), m) });
            for (p, rp) in r.iter().enumerate().take(np) {
                let v = match sc {
                    Some(sc) => _mm256_fmadd_ps(*rp, sc, b),
                    None => _mm256_add_ps(*rp, b),
                };
                let v = _mm256_min_ps(_mm256_max_ps(v, lo), hi);
                // SAFETY: pixel p0 + p < P, channels o0..o0 + no < O: inside `out`, masked.
                unsafe { _mm256_maskstore_ps(outp.add((p0 + p) * o_c + o0), m, v) };
            }
            o0 += T;
        }
        p0 += T;
    }
}
