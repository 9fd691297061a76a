//! `spmm_f32_32x1` and `spmm_f32_64x1`: sparse 1x1 convolution, 32 or 64 pixels (two or
//! four zmm) per tile, one output channel at a time (see `crate::sparse` for the method).
//!
//! Per tile of `T` pixels: the input `[T, I]` is transposed to `xt[I, T]` with 16x16
//! register transposes; each output channel `o` accumulates `vals[k] · xt[cols[k]]` over
//! its non-zeros into `2·T/16` independent accumulators (one per 16 pixels, for even and
//! odd non-zeros, to hide FMA latency), stored to `ot[O, T]`; `ot` is transposed back to
//! `[T, O]` with the epilogue
//! `clamp(acc · scale + bias)` applied on whole vectors of output channels.

use std::arch::x86_64::*;

use crate::x86_64::sparse::SpmmArgs;

/// Lanes per zmm.
const H: usize = 16;

/// In-register transpose of a 16x16 f32 block: `r[i][j]` becomes `r[j][i]`.
#[inline]
#[target_feature(enable = "avx512f")]
fn transpose16(r: &mut [__m512; 16]) {
    let mut t = [_mm512_setzero_ps(); 16];
    for g in 0..8 {
        t[2 * g] = _mm512_unpacklo_ps(r[2 * g], r[2 * g + 1]);
        t[2 * g + 1] = _mm512_unpackhi_ps(r[2 * g], r[2 * g + 1]);
    }
    // u[4q + j], lane L: rows 4q..4q+4 of element 4L + j.
    let mut u = [_mm512_setzero_ps(); 16];
    for q in 0..4 {
        let (a, b, c, d) = (
            _mm512_castps_pd(t[4 * q]),
            _mm512_castps_pd(t[4 * q + 1]),
            _mm512_castps_pd(t[4 * q + 2]),
            _mm512_castps_pd(t[4 * q + 3]),
        );
        u[4 * q] = _mm512_castpd_ps(_mm512_unpacklo_pd(a, c));
        u[4 * q + 1] = _mm512_castpd_ps(_mm512_unpackhi_pd(a, c));
        u[4 * q + 2] = _mm512_castpd_ps(_mm512_unpacklo_pd(b, d));
        u[4 * q + 3] = _mm512_castpd_ps(_mm512_unpackhi_pd(b, d));
    }
    for j in 0..4 {
        let v = _mm512_shuffle_f32x4::<0x88>(u[j], u[4 + j]);
        let w = _mm512_shuffle_f32x4::<0xDD>(u[j], u[4 + j]);
        let v2 = _mm512_shuffle_f32x4::<0x88>(u[8 + j], u[12 + j]);
        let w2 = _mm512_shuffle_f32x4::<0xDD>(u[8 + j], u[12 + j]);
        r[j] = _mm512_shuffle_f32x4::<0x88>(v, v2);
        r[8 + j] = _mm512_shuffle_f32x4::<0xDD>(v, v2);
        r[4 + j] = _mm512_shuffle_f32x4::<0x88>(w, w2);
        r[12 + j] = _mm512_shuffle_f32x4::<0xDD>(w, w2);
    }
}

/// Mask of the first `n ≤ 16` lanes.
#[inline]
fn lanes(n: usize) -> __mmask16 {
    if n >= 16 { 0xffff } else { (1u16 << n) - 1 }
}

/// The 64-pixel tile: each non-zero's index and broadcast value serve four vector FMAs
/// (loads per FMA 1.5 instead of 2), at the price of an `xt` of `I·256` bytes, so the
/// dispatcher uses it while that fits in L1 (see `crate::x86_64::sparse`).
///
/// # Safety
/// As [`spmm_f32_32x1`], with `xt` holding `I·64` and `ot` `O·64` floats.
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) unsafe fn spmm_f32_64x1(
    a: &SpmmArgs,
    out: &mut [f32],
    xt: &mut [f32],
    ot: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { spmm_tiles::<4>(a, out, xt, ot) }
}

/// The 32-pixel tile.
///
/// # Safety
/// The CPU must support AVX-512F. `a` must be validated as in
/// `crate::x86_64::sparse::spmm_rows`: `input` is `[P, I]`, `out` `[P, O]`, `bias` (and
/// `scale`) `[O]`, `row_ptr` `[O + 1]` non-decreasing with `row_ptr[O] ≤ cols.len() =
/// vals.len()`, every column `< I`; `xt` holds at least `I·32` and `ot` `O·32` floats.
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) unsafe fn spmm_f32_32x1(
    a: &SpmmArgs,
    out: &mut [f32],
    xt: &mut [f32],
    ot: &mut [f32],
) {
    // SAFETY: forwarded contract.
    unsafe { spmm_tiles::<2>(a, out, xt, ot) }
}

/// Runs the SpMM over all `a.pixels` pixels in tiles of `T = 16·NV` pixels.
///
/// # Safety
/// As [`spmm_f32_32x1`] with `xt` holding `I·T` and `ot` `O·T` floats.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn spmm_tiles<const NV: usize>(
    a: &SpmmArgs,
    out: &mut [f32],
    xt: &mut [f32],
    ot: &mut [f32],
) {
    let t = H * NV;
    let (i_c, o_c) = (a.in_c, a.out_c);
    let xin = a.input.as_ptr();
    let xtp = xt.as_mut_ptr();
    let otp = ot.as_mut_ptr();
    let outp = out.as_mut_ptr();
    let mut p0 = 0;
    while p0 < a.pixels {
        let np = (a.pixels - p0).min(t);
        // 1. xt[i, p] = input[p0 + p, i], in 16x16 blocks (NV per tile and channel block).
        for v in 0..NV {
            let ph = v * H;
            if ph >= np {
                break;
            }
            let nph = (np - ph).min(H);
            let mut c0 = 0;
            while c0 < i_c {
                let nc = (i_c - c0).min(H);
                let m = lanes(nc);
                let mut r = [_mm512_setzero_ps(); 16];
                for (p, rp) in r.iter_mut().enumerate().take(nph) {
                    // SAFETY: pixel p0 + ph + p < P and channels c0..c0 + nc < I: inside
                    // `input` (masked lanes are not accessed).
                    *rp = unsafe { _mm512_maskz_loadu_ps(m, xin.add((p0 + ph + p) * i_c + c0)) };
                }
                transpose16(&mut r);
                for (c, rc) in r.iter().enumerate().take(nc) {
                    // SAFETY: row c0 + c < I of xt, floats ph..ph + 16 of its T: inside
                    // `xt` (I·T floats).
                    unsafe { _mm512_storeu_ps(xtp.add((c0 + c) * t + ph), *rc) };
                }
                c0 += H;
            }
        }
        // 2. ot[o, :] = Σ_k vals[k] · xt[cols[k], :]: NV independent 16-pixel chains per
        // non-zero, two non-zeros per step.
        for o in 0..o_c {
            // SAFETY: o + 1 ≤ O < row_ptr.len().
            let (kb, ke) = unsafe {
                (
                    *a.row_ptr.get_unchecked(o) as usize,
                    *a.row_ptr.get_unchecked(o + 1) as usize,
                )
            };
            let mut acc = [_mm512_setzero_ps(); NV];
            let mut bcc = [_mm512_setzero_ps(); NV];
            let mut k = kb;
            while k + 2 <= ke {
                // SAFETY: k + 1 < row_ptr[O] ≤ cols.len() = vals.len(); each column is
                // < I, so its xt row (T floats) is inside `xt`.
                unsafe {
                    let x0 = xtp.add(*a.cols.get_unchecked(k) as usize * t);
                    let x1 = xtp.add(*a.cols.get_unchecked(k + 1) as usize * t);
                    let w0 = _mm512_set1_ps(*a.vals.get_unchecked(k));
                    let w1 = _mm512_set1_ps(*a.vals.get_unchecked(k + 1));
                    for v in 0..NV {
                        acc[v] = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0.add(v * H)), acc[v]);
                        bcc[v] = _mm512_fmadd_ps(w1, _mm512_loadu_ps(x1.add(v * H)), bcc[v]);
                    }
                }
                k += 2;
            }
            if k < ke {
                // SAFETY: as above.
                unsafe {
                    let x0 = xtp.add(*a.cols.get_unchecked(k) as usize * t);
                    let w0 = _mm512_set1_ps(*a.vals.get_unchecked(k));
                    for (v, av) in acc.iter_mut().enumerate() {
                        *av = _mm512_fmadd_ps(w0, _mm512_loadu_ps(x0.add(v * H)), *av);
                    }
                }
            }
            for v in 0..NV {
                // SAFETY: row o < O of ot, floats v·16..v·16 + 16 of its T: inside `ot`.
                unsafe { _mm512_storeu_ps(otp.add(o * t + v * H), _mm512_add_ps(acc[v], bcc[v])) };
            }
        }
        // 3. out[p0 + p, o] = clamp(ot[o, p] · scale[o] + bias[o]).
        let (lo, hi) = (_mm512_set1_ps(a.lo), _mm512_set1_ps(a.hi));
        let mut o0 = 0;
        while o0 < o_c {
            let no = (o_c - o0).min(H);
            let m = lanes(no);
            // SAFETY: channels o0..o0 + no < O of `bias` and `scale`, masked.
            let b = unsafe { _mm512_maskz_loadu_ps(m, a.bias.as_ptr().add(o0)) };
            let sc = a
                .scale
                // SAFETY: as above.
                .map(|s| unsafe { _mm512_maskz_loadu_ps(m, s.as_ptr().add(o0)) });
            for v in 0..NV {
                let ph = v * H;
                if ph >= np {
                    break;
                }
                let nph = (np - ph).min(H);
                let mut r = [_mm512_setzero_ps(); 16];
                for (j, rj) in r.iter_mut().enumerate().take(no) {
                    // SAFETY: row o0 + j < O of ot, floats ph..ph + 16.
                    *rj = unsafe { _mm512_loadu_ps(otp.add((o0 + j) * t + ph)) };
                }
                transpose16(&mut r);
                for (p, rp) in r.iter().enumerate().take(nph) {
                    let v = match sc {
                        Some(sc) => _mm512_fmadd_ps(*rp, sc, b),
                        None => _mm512_add_ps(*rp, b),
                    };
                    let v = _mm512_min_ps(_mm512_max_ps(v, lo), hi);
                    // SAFETY: pixel p0 + ph + p < P, channels o0..o0 + no < O: inside
                    // `out`, masked.
                    unsafe { _mm512_mask_storeu_ps(outp.add((p0 + ph + p) * o_c + o0), m, v) };
                }
            }
            o0 += H;
        }
        p0 += t;
    }
}
