//! `x86_64/avx2/dwconv3x3_f32[_relu|_relu6]_c8`: 3x3 depthwise convolution over NHWC with
//! fused bias and activation, 8 channels per ymm, FMA.
//!
//! Same loop nest as `avx512/dwconv3x3_f32.rs` (channel groups, row pairs, channel blocks
//! with weights in registers, interior columns [`PX`] at a time without bounds checks,
//! border columns with their padding taps skipped at compile time), sized for the 16 ymm
//! registers of AVX2. The last `c % 8` channels are computed by a scalar loop.
//!
//! Every output element accumulates bias, then taps in row-major order, with one FMA each,
//! whichever path computes it, so results do not depend on how rows are split or paired.

use core::arch::x86_64::*;
use std::ops::Range;

use crate::act::Act;
use crate::x86_64::Plan;

/// f32 lanes per ymm register.
const LANES: usize = 8;

/// Interior output columns per block: 2·2 accumulators (a row pair), 9 weights and the
/// streamed input vector use 14 of the 16 ymm registers; bias and clamp bounds are
/// memory operands.
const PX: usize = 2;

/// The fused activation as a clamp, applied before each store.
#[derive(Clone, Copy)]
struct Epilogue {
    /// Accumulate from zero and finish with `acc · scale + bias` (a BN after the conv),
    /// instead of accumulating from the bias.
    scaled: bool,
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

/// One 8-channel block of one output row, as raw pointers at channel `c0`.
///
/// Invariants (established by [`dwconv3x3_f32_c8`]): `src` points at input row `iy0` of
/// the row's [`RowTaps`](crate::x86_64::RowTaps); `w` at weight row `ky0·3`; `b` into the
/// bias; `dst` at output column 0 of the row (the first row of a pair). The 8 lanes at each, offset by any in-image
/// pixel or tap, lie inside their slices.
struct Block {
    src: *const f32,
    w: *const f32,
    b: *const f32,
    /// Scale lanes (the bias lanes when unscaled: loaded, never used).
    s: *const f32,
    dst: *mut f32,
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
    scale: Option<&[f32]>,
    bias: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let c = plan.c;
    let vec_c = c - c % LANES;
    let (lo, hi) = plan.act.bounds();
    let epi = Epilogue {
        scaled: scale.is_some(),
        clamp: plan.act != Act::None,
        lo: _mm256_set1_ps(lo),
        hi: _mm256_set1_ps(hi),
    };
    let row_len = plan.out_w * c;
    for group in plan.channel_groups(LANES) {
        let mut r = 0;
        while r < rows.len() {
            let oy = rows.start + r;
            let t = plan.taps(oy);
            // Pair this row with the next when both read three in-image rows.
            let pair = t.n == 3 && r + 1 < rows.len() && plan.taps(oy + 1).n == 3;
            let src = input
                .as_ptr()
                .wrapping_add((t.iy0 - plan.row0) * plan.in_w * c);
            let w = weight.as_ptr().wrapping_add(t.ky0 * 3 * c);
            let dst = out.as_mut_ptr().wrapping_add(r * row_len);
            for c0 in (group.start..group.end.min(vec_c)).step_by(LANES) {
                let blk = Block {
                    src: src.wrapping_add(c0),
                    w: w.wrapping_add(c0),
                    b: bias.as_ptr().wrapping_add(c0),
                    s: scale.unwrap_or(bias).as_ptr().wrapping_add(c0),
                    dst: dst.wrapping_add(c0),
                };
                // SAFETY: AVX2 and FMA are available (our contract). `blk` satisfies the
                // `Block` invariants: input rows `iy0..iy0 + n` and tap rows `ky0..ky0 + n`
                // are inside the image and the weight (`Plan::taps`), and so are rows
                // `iy0 + sh..iy0 + sh + 3` when `pair`; output rows `r` (and `r + 1` when
                // `pair`) are below `rows.len()`, so inside `out`; channels
                // `c0..c0 + 8 ≤ vec_c ≤ c`.
                unsafe {
                    match (t.n, pair, plan.sh) {
                        (3, true, 1) => row::<3, 2, 1>(plan, &blk, epi),
                        (3, true, _) => row::<3, 2, 2>(plan, &blk, epi),
                        (3, false, _) => row::<3, 1, 1>(plan, &blk, epi),
                        (2, _, _) => row::<2, 1, 1>(plan, &blk, epi),
                        (1, _, _) => row::<1, 1, 1>(plan, &blk, epi),
                        _ => unreachable!("a 3x3 output row reads 1 to 3 input rows"),
                    }
                }
            }
            let done = if pair { 2 } else { 1 };
            if group.end == c && vec_c < c {
                for rr in r..r + done {
                    let out_row = &mut out[rr * row_len..][..row_len];
                    scalar_tail(
                        plan,
                        input,
                        weight,
                        scale,
                        bias,
                        rows.start + rr,
                        vec_c,
                        out_row,
                    );
                }
            }
            r += done;
        }
    }
}

/// One channel block of `O` output rows (1, or a pair whose input rows are `SV` apart),
/// each reading `R` input rows.
///
/// # Safety
/// AVX2 and FMA are available and `blk` satisfies the [`Block`] invariants for `R` tap rows,
/// extended to `O` output rows and input rows `0..R + (O − 1)·SV`.
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn row<const R: usize, const O: usize, const SV: usize>(
    p: &Plan,
    blk: &Block,
    epi: Epilogue,
) {
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
    // SAFETY: the scale lanes are inside `scale` (or `bias`), as the bias lanes (`Block`).
    let s = unsafe { ld(blk.s) };
    let src = core::array::from_fn(|r| blk.src.wrapping_add(r * p.in_w * c));
    let k = Taps {
        src,
        w,
        b,
        s,
        c,
        out_row: p.out_w * c,
        epi,
    };

    // Interior columns `ox..ox + n` (`ox_lo ≤ ox`, `ox + n ≤ ox_hi ≤ out_w`) have every tap
    // column `ix0(ox)..=ix0(ox + n − 1) + 2` inside the image.
    let dst = |ox: usize| blk.dst.wrapping_add(ox * c);
    let mut ox = p.ox_lo;
    if p.sw == 1 {
        while ox + PX <= p.ox_hi {
            // SAFETY: columns `ox..ox + PX` are interior (see above).
            unsafe { pixels::<R, O, SV, 1, PX, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += PX;
        }
        if ox + 2 <= p.ox_hi {
            // SAFETY: columns `ox..ox + 2` are interior (see above).
            unsafe { pixels::<R, O, SV, 1, 2, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += 2;
        }
    } else {
        while ox + PX <= p.ox_hi {
            // SAFETY: columns `ox..ox + PX` are interior (see above).
            unsafe { pixels::<R, O, SV, 2, PX, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += PX;
        }
        if ox + 2 <= p.ox_hi {
            // SAFETY: columns `ox..ox + 2` are interior (see above).
            unsafe { pixels::<R, O, SV, 2, 2, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += 2;
        }
    }
    if ox < p.ox_hi {
        // SAFETY: column `ox` is interior (see above).
        unsafe { pixels::<R, O, SV, 1, 1, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
    }
    // Border columns: with padding ≤ 1 only the first tap column (kx = 0) of column 0 and
    // the last one (kx = 2) of the last column can fall outside, so there is at most one
    // border column at each end (both are column 0 when the image is 1 wide).
    for ox in (0..p.ox_lo).chain(p.ox_hi..p.out_w) {
        let ix0 = (ox * p.sw) as isize - p.pw as isize;
        let (left, right) = (ix0 < 0, ix0 + 2 >= p.in_w as isize);
        // SAFETY: `ox < out_w`; tap columns `ix0 + kx` for `kx` in `K0..K1` (0 excluded
        // when `left`, 2 excluded when `right`) are inside the image.
        unsafe {
            match (left, right) {
                (true, false) => pixels::<R, O, SV, 1, 1, 1, 3>(&k, ix0, dst(ox)),
                (false, true) => pixels::<R, O, SV, 1, 1, 0, 2>(&k, ix0, dst(ox)),
                (true, true) => pixels::<R, O, SV, 1, 1, 1, 2>(&k, ix0, dst(ox)),
                (false, false) => pixels::<R, O, SV, 1, 1, 0, 3>(&k, ix0, dst(ox)),
            }
        }
    }
}

/// Register-resident state of one channel block: input row pointers, weights, bias.
struct Taps<const R: usize> {
    /// Input rows `iy0..iy0 + 5` at channel `c0`; a call reads only `R + (O − 1)·SV` of them.
    src: [*const f32; 5],
    w: [[__m256; 3]; R],
    b: __m256,
    /// Per-channel scale, used when `epi.scaled`.
    s: __m256,
    c: usize,
    /// Distance between output rows, in elements.
    out_row: usize,
    epi: Epilogue,
}

/// `PX` output columns at stride `S` of `O` output rows whose input rows are `SV` apart;
/// the first tap column is `ix0`, and only taps `K0 ≤ kx < K1` are used (the others fall
/// in the padding).
///
/// # Safety
/// AVX2 and FMA are available; for every output row `o < O`, tap row `r < R`, pixel `p < PX`
/// and tap `kx` in `K0..K1`, column `ix0 + p·S + kx` of input row `k.src[o·SV + r]` is
/// inside the input, and output columns `0..PX` of rows `0..O` at `dst` are inside `out`
/// (8 lanes each).
#[inline]
#[target_feature(enable = "avx2,fma")]
unsafe fn pixels<
    const R: usize,
    const O: usize,
    const SV: usize,
    const S: usize,
    const PX: usize,
    const K0: usize,
    const K1: usize,
>(
    k: &Taps<R>,
    ix0: isize,
    dst: *mut f32,
) {
    let used = |j: usize, p: usize| j >= p * S + K0 && j < p * S + K1;
    let init = if k.epi.scaled {
        _mm256_setzero_ps()
    } else {
        k.b
    };
    let mut acc = [[init; PX]; O];
    for ir in 0..R + (O - 1) * SV {
        let base = k.src[ir].wrapping_offset(ix0 * k.c as isize);
        for j in 0..(PX - 1) * S + 3 {
            if !(0..PX).any(|p| used(j, p)) {
                continue;
            }
            // SAFETY: column `ix0 + j` of row `ir` is a used tap (our contract).
            let x = unsafe { ld(base.wrapping_add(j * k.c)) };
            for (o, acc_o) in acc.iter_mut().enumerate() {
                // Tap row of input row `ir` for output row `o`, if any.
                let r = ir.wrapping_sub(o * SV);
                if r >= R {
                    continue;
                }
                for (p, a) in acc_o.iter_mut().enumerate() {
                    if used(j, p) {
                        *a = _mm256_fmadd_ps(x, k.w[r][j - p * S], *a);
                    }
                }
            }
        }
    }
    for (o, acc_o) in acc.into_iter().enumerate() {
        for (p, a) in acc_o.into_iter().enumerate() {
            let d = dst.wrapping_add(o * k.out_row + p * k.c);
            // SAFETY: output column `p < PX` of row `o < O` is inside `out` (our contract).
            unsafe {
                st(
                    d,
                    k.epi.apply(if k.epi.scaled {
                        _mm256_fmadd_ps(a, k.s, k.b)
                    } else {
                        a
                    }),
                )
            };
        }
    }
}

/// Channels `c_lo..c` of output row `oy`, in plain bounds-checked code. `out_row` is the
/// whole row, `[out_w, c]`.
#[allow(clippy::too_many_arguments)]
fn scalar_tail(
    p: &Plan,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    oy: usize,
    c_lo: usize,
    out_row: &mut [f32],
) {
    let c = p.c;
    let t = p.taps(oy);
    for ox in 0..p.out_w {
        let o = &mut out_row[ox * c + c_lo..(ox + 1) * c];
        match scale {
            Some(_) => o.fill(0.0),
            None => o.copy_from_slice(&bias[c_lo..]),
        }
        for r in 0..t.n {
            for kx in 0..3 {
                let Some(ix) = p.tap_col(ox, kx) else {
                    continue;
                };
                let base = ((t.iy0 + r - p.row0) * p.in_w + ix) * c;
                let wbase = ((t.ky0 + r) * 3 + kx) * c;
                let x = &input[base + c_lo..base + c];
                let w = &weight[wbase + c_lo..wbase + c];
                for ((ov, xv), wv) in o.iter_mut().zip(x).zip(w) {
                    *ov += xv * wv;
                }
            }
        }
        if let Some(s) = scale {
            for ((v, s), b) in o.iter_mut().zip(&s[c_lo..]).zip(&bias[c_lo..]) {
                *v = *v * s + b;
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
