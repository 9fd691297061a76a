//! `x86_64/avx2/dwconv3x3_f32[_relu|_relu6]_c8`: 3x3 depthwise convolution over NHWC with
//! fused bias and activation, 8 channels per ymm, FMA.
//!
//! Same loop nest as the AVX-512 kernel (see `avx512/dwconv3x3_f32.rs`): per output row,
//! channel blocks of 8 outermost with the block's weights and bias in registers, interior
//! columns [`PX`] at a time without bounds checks, border columns tap by tap. AVX2 has
//! only 16 ymm registers, so the interior block is narrower. The last `c % 8` channels
//! are computed by a scalar loop.

use core::arch::x86_64::*;
use std::ops::Range;

use crate::act::Act;
use crate::x86_64::Plan;

/// f32 lanes per ymm register.
const LANES: usize = 8;

/// Interior output columns per block: 9 weights + 2 accumulators + the streamed input
/// + bias and the clamp bounds fill the 16 ymm registers.
const PX: usize = 2;

/// The fused activation as a clamp, applied before each store.
#[derive(Clone, Copy)]
struct Epilogue {
    clamp: bool,
    lo: __m256,
    hi: __m256,
}

impl Epilogue {
    /// `max` then `min` with the value first, so a NaN becomes the bound, as `f32::max`
    /// and `f32::min` do in the portable path. `Act::None` skips the clamp and keeps NaN.
    #[inline]
    #[target_feature(enable = "avx2,fma")]
    fn apply(self, v: __m256) -> __m256 {
        if self.clamp {
            _mm256_min_ps(_mm256_max_ps(v, self.lo), self.hi)
        } else {
            v
        }
    }
}

/// Loads 8 lanes at `p`.
///
/// # Safety
/// AVX is available and `p..p + 8` are readable `f32`s.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn ld(p: *const f32) -> __m256 {
    // SAFETY: the caller guarantees 8 readable lanes; no alignment needed.
    unsafe { _mm256_loadu_ps(p) }
}

/// Stores 8 lanes at `p`.
///
/// # Safety
/// AVX is available and `p..p + 8` are writable `f32`s.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn st(p: *mut f32, v: __m256) {
    // SAFETY: the caller guarantees 8 writable lanes; no alignment needed.
    unsafe { _mm256_storeu_ps(p, v) }
}

/// Computes output rows `rows` of a 3x3 depthwise convolution into `out`.
///
/// # Safety
/// The CPU supports AVX2 and FMA, and the slices match `plan`: `input.len() == in_h·in_w·c`,
/// `weight.len() == 9·c` (tap-major `[9, c]`), `bias.len() == c`,
/// `out.len() == rows.len()·out_w·c` and `rows.end ≤ out_h`.
#[target_feature(enable = "avx2,fma")]
pub(in crate::x86_64) unsafe fn dwconv3x3_f32_c8(
    plan: &Plan,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let c = plan.c;
    let vec_c = c - c % LANES;
    let (lo, hi) = plan.act.bounds();
    let epi = Epilogue {
        clamp: plan.act != Act::None,
        lo: _mm256_set1_ps(lo),
        hi: _mm256_set1_ps(hi),
    };
    let row_len = plan.out_w * c;
    for (r, oy) in rows.enumerate() {
        let t = plan.taps(oy);
        let src = input.as_ptr().wrapping_add(t.iy0 * plan.in_w * c);
        let w = weight.as_ptr().wrapping_add(t.ky0 * 3 * c);
        let dst = out.as_mut_ptr().wrapping_add(r * row_len);
        for c0 in (0..vec_c).step_by(LANES) {
            let blk = Block {
                src: src.wrapping_add(c0),
                w: w.wrapping_add(c0),
                b: bias.as_ptr().wrapping_add(c0),
                dst: dst.wrapping_add(c0),
            };
            // SAFETY: AVX2 and FMA are available (our contract). `blk` satisfies the
            // `Block` invariants: input rows `iy0..iy0 + n` and tap rows `ky0..ky0 + n` are
            // inside the image and the weight (`Plan::taps`), output row `r < rows.len()` is
            // inside `out`, and channels `c0..c0 + 8 ≤ vec_c ≤ c`.
            unsafe {
                match t.n {
                    3 => row::<3>(plan, &blk, epi),
                    2 => row::<2>(plan, &blk, epi),
                    1 => row::<1>(plan, &blk, epi),
                    _ => unreachable!("a 3x3 output row reads 1 to 3 input rows"),
                }
            }
        }
        if vec_c < c {
            scalar_tail(
                plan,
                input,
                weight,
                bias,
                oy,
                vec_c,
                &mut out[r * row_len..][..row_len],
            );
        }
    }
}

/// One 8-channel block of one output row, as raw pointers at channel `c0`.
///
/// Invariants (established by [`dwconv3x3_f32_c8`]): `src` points at input row `iy0` of
/// the row's `RowTaps`; `w` at weight row `ky0·3`; `b` into the bias; `dst` at output
/// column 0 of the row. The 8 lanes at each, offset by any in-image pixel or tap, lie
/// inside their slices.
struct Block {
    src: *const f32,
    w: *const f32,
    b: *const f32,
    dst: *mut f32,
}

/// Register-resident state of one channel block: input row pointers, weights, bias.
struct Taps<const R: usize> {
    src: [*const f32; R],
    w: [[__m256; 3]; R],
    b: __m256,
    c: usize,
    epi: Epilogue,
}

/// One channel block of one output row that reads `R` input rows.
///
/// # Safety
/// AVX2 and FMA are available and `blk` satisfies the [`Block`] invariants for `R` rows.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row<const R: usize>(p: &Plan, blk: &Block, epi: Epilogue) {
    let c = p.c;
    let mut w = [[_mm256_setzero_ps(); 3]; R];
    for (r, wr) in w.iter_mut().enumerate() {
        for (kx, wv) in wr.iter_mut().enumerate() {
            // SAFETY: tap (ky0 + r, kx) with r < R is inside the weight (`Block`).
            *wv = unsafe { ld(blk.w.wrapping_add((r * 3 + kx) * c)) };
        }
    }
    // SAFETY: the bias lanes of this block are inside `bias` (`Block`).
    let b = unsafe { ld(blk.b) };
    let src: [*const f32; R] = core::array::from_fn(|r| blk.src.wrapping_add(r * p.in_w * c));
    let k = Taps { src, w, b, c, epi };

    for ox in 0..p.ox_lo {
        // SAFETY: `ox < out_w`, and `border` reads only in-image tap columns.
        unsafe { border::<R>(p, &k, ox, blk.dst.wrapping_add(ox * c)) };
    }
    // Interior columns `ox..ox + n` (`ox_lo ≤ ox`, `ox + n ≤ ox_hi ≤ out_w`) have every tap
    // column `ix0(ox)..=ix0(ox + n − 1) + 2` inside the image.
    let mut ox = p.ox_lo;
    if p.sw == 1 {
        while ox + PX <= p.ox_hi {
            // SAFETY: columns `ox..ox + PX` are interior (see above).
            unsafe { interior::<R, 1, PX>(&k, p.ix0(ox), blk.dst.wrapping_add(ox * c)) };
            ox += PX;
        }
    } else {
        while ox + PX <= p.ox_hi {
            // SAFETY: columns `ox..ox + PX` are interior (see above).
            unsafe { interior::<R, 2, PX>(&k, p.ix0(ox), blk.dst.wrapping_add(ox * c)) };
            ox += PX;
        }
    }
    while ox < p.ox_hi {
        // SAFETY: column `ox` is interior (see above).
        unsafe { interior::<R, 1, 1>(&k, p.ix0(ox), blk.dst.wrapping_add(ox * c)) };
        ox += 1;
    }
    for ox in p.ox_hi..p.out_w {
        // SAFETY: `ox < out_w`, and `border` reads only in-image tap columns.
        unsafe { border::<R>(p, &k, ox, blk.dst.wrapping_add(ox * c)) };
    }
}

/// `PX` interior output columns whose first tap column is `ix0`, stride `S`.
///
/// # Safety
/// AVX2 and FMA are available; tap columns `ix0..=ix0 + (PX − 1)·S + 2` of every `k.src`
/// row and output columns `0..PX` at `dst` are inside their slices (8 lanes each).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn interior<const R: usize, const S: usize, const PX: usize>(
    k: &Taps<R>,
    ix0: usize,
    dst: *mut f32,
) {
    let mut acc = [k.b; PX];
    for r in 0..R {
        let base = k.src[r].wrapping_add(ix0 * k.c);
        for j in 0..(PX - 1) * S + 3 {
            // SAFETY: column `ix0 + j` is a tap column of this block (our contract).
            let x = unsafe { ld(base.wrapping_add(j * k.c)) };
            for (p, a) in acc.iter_mut().enumerate() {
                let kx = j.wrapping_sub(p * S);
                if kx < 3 {
                    *a = _mm256_fmadd_ps(x, k.w[r][kx], *a);
                }
            }
        }
    }
    for (p, a) in acc.into_iter().enumerate() {
        // SAFETY: output column `p < PX` is inside `out` (our contract).
        unsafe { st(dst.wrapping_add(p * k.c), k.epi.apply(a)) };
    }
}

/// One output column `ox` whose taps may fall in the padding; each tap is checked.
///
/// # Safety
/// AVX2 and FMA are available and `ox < out_w`, with `dst` at output column `ox`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn border<const R: usize>(p: &Plan, k: &Taps<R>, ox: usize, dst: *mut f32) {
    let mut acc = k.b;
    for r in 0..R {
        for kx in 0..3 {
            if let Some(ix) = p.tap_col(ox, kx) {
                // SAFETY: `tap_col` returned an in-image column of an in-image row.
                let x = unsafe { ld(k.src[r].wrapping_add(ix * k.c)) };
                acc = _mm256_fmadd_ps(x, k.w[r][kx], acc);
            }
        }
    }
    // SAFETY: `dst` is output column `ox < out_w` of this row (our contract).
    unsafe { st(dst, k.epi.apply(acc)) };
}

/// Channels `c_lo..c` of output row `oy`, in plain bounds-checked code. `out_row` is the
/// whole row, `[out_w, c]`.
fn scalar_tail(
    p: &Plan,
    input: &[f32],
    weight: &[f32],
    bias: &[f32],
    oy: usize,
    c_lo: usize,
    out_row: &mut [f32],
) {
    let c = p.c;
    let t = p.taps(oy);
    for ox in 0..p.out_w {
        let o = &mut out_row[ox * c + c_lo..(ox + 1) * c];
        o.copy_from_slice(&bias[c_lo..]);
        for r in 0..t.n {
            for kx in 0..3 {
                let Some(ix) = p.tap_col(ox, kx) else {
                    continue;
                };
                let base = ((t.iy0 + r) * p.in_w + ix) * c;
                let wbase = ((t.ky0 + r) * 3 + kx) * c;
                let x = &input[base + c_lo..base + c];
                let w = &weight[wbase + c_lo..wbase + c];
                for ((ov, xv), wv) in o.iter_mut().zip(x).zip(w) {
                    *ov += xv * wv;
                }
            }
        }
        if p.act != Act::None {
            let (lo, hi) = p.act.bounds();
            for v in o.iter_mut() {
                *v = v.max(lo).min(hi);
            }
        }
    }
}
