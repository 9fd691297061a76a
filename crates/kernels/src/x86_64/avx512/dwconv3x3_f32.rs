//! `x86_64/avx512/dwconv3x3_f32[_relu|_relu6]_c16`: 3x3 depthwise convolution over NHWC
//! with fused bias and activation, 16 channels per zmm.
//!
//! Loop nest: channel groups (see `Plan::channel_groups`), then output rows, taken two at
//! a time where both read three in-image input rows; then channel blocks of 16, whose
//! weight vectors (9, or 6 or 3 on rows that overlap the padding) and bias stay in
//! registers while the kernel walks the output columns. Interior columns (all three tap
//! columns inside the image) are computed [`PX`] at a time with no bounds checks. Each
//! input vector is loaded once per block and feeds every accumulator that needs it (the
//! neighbouring columns, and both rows of a pair), and the `PX` (or `2·PX`) independent FMA
//! chains hide the FMA latency. The border columns (at most one at each end) skip their
//! padding taps, which are known at compile time.
//!
//! Every output element accumulates bias, then taps in row-major order, with one FMA each,
//! whichever path computes it, so results do not depend on how rows are split or paired.
//!
//! The last channel block uses AVX-512F masked loads and stores. Masked-off lanes are never
//! read or written (the hardware suppresses their faults), so there is no scalar tail and
//! no access outside the slices.

use core::arch::x86_64::*;
use std::ops::Range;

use crate::act::Act;
use crate::x86_64::Plan;

/// f32 lanes per zmm register.
const LANES: usize = 16;

/// Interior output columns per block: 2·4 accumulators (a row pair), 9 weights, bias,
/// clamp bounds and the streamed input vector use 21 of the 32 zmm registers.
const PX: usize = 4;

/// The fused activation as a clamp, applied before each store.
#[derive(Clone, Copy)]
struct Epilogue {
    /// Accumulate from zero and finish with `acc · scale + bias` (a BN after the conv),
    /// instead of accumulating from the bias.
    scaled: bool,
    clamp: bool,
    lo: __m512,
    hi: __m512,
}

impl Epilogue {
    /// `max` then `min` with the value first, so a NaN becomes the bound, as `f32::max`
    /// and `f32::min` do in the portable path. `Act::None` skips the clamp and keeps NaN.
    #[inline]
    #[target_feature(enable = "avx512f")]
    fn apply(self, v: __m512) -> __m512 {
        if self.clamp {
            _mm512_min_ps(_mm512_max_ps(v, self.lo), self.hi)
        } else {
            v
        }
    }
}

/// One channel block of one output row, as raw pointers at channel `c0`.
///
/// Invariants (established by [`dwconv3x3_f32_c16`]): `src` points at input row `iy0` of
/// the row's [`RowTaps`](crate::x86_64::RowTaps); `w` at weight row `ky0·3`; `b` into the
/// bias; `dst` at output column 0 of the row (the first row of a pair). Lanes `mask` of each, offset by any in-image
/// pixel or tap, lie inside their slices.
struct Block {
    src: *const f32,
    w: *const f32,
    b: *const f32,
    /// Scale lanes (the bias lanes when unscaled: loaded, never used).
    s: *const f32,
    dst: *mut f32,
    mask: __mmask16,
}

/// Loads lanes `m` at `p` (all 16 when `!M`); the other lanes are zero.
///
/// # Safety
/// AVX-512F is available and the selected lanes of `p` are readable `f32`s.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn ld<const M: bool>(p: *const f32, m: __mmask16) -> __m512 {
    if M {
        // SAFETY: the caller guarantees the lanes selected by `m` are readable; masked-off
        // lanes are not accessed.
        unsafe { _mm512_maskz_loadu_ps(m, p) }
    } else {
        // SAFETY: the caller guarantees all 16 lanes are readable; no alignment needed.
        unsafe { _mm512_loadu_ps(p) }
    }
}

/// Stores lanes `m` of `v` at `p` (all 16 when `!M`).
///
/// # Safety
/// AVX-512F is available and the selected lanes of `p` are writable `f32`s.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn st<const M: bool>(p: *mut f32, m: __mmask16, v: __m512) {
    if M {
        // SAFETY: the caller guarantees the lanes selected by `m` are writable; masked-off
        // lanes are not accessed.
        unsafe { _mm512_mask_storeu_ps(p, m, v) }
    } else {
        // SAFETY: the caller guarantees all 16 lanes are writable; no alignment needed.
        unsafe { _mm512_storeu_ps(p, v) }
    }
}

/// Computes output rows `rows` of a 3x3 depthwise convolution into `out`.
///
/// # Safety
/// The CPU supports AVX-512F, and the slices match `plan`: `input.len() == in_h·in_w·c`,
/// `weight.len() == 9·c` (tap-major `[9, c]`), `bias.len() == c`,
/// `out.len() == rows.len()·out_w·c` and `rows.end ≤ out_h`.
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) unsafe fn dwconv3x3_f32_c16(
    plan: &Plan,
    input: &[f32],
    weight: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    rows: Range<usize>,
    out: &mut [f32],
) {
    let c = plan.c;
    let (lo, hi) = plan.act.bounds();
    let epi = Epilogue {
        scaled: scale.is_some(),
        clamp: plan.act != Act::None,
        lo: _mm512_set1_ps(lo),
        hi: _mm512_set1_ps(hi),
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
            for c0 in group.clone().step_by(LANES) {
                let left = c - c0;
                let mask = if left >= LANES {
                    !0
                } else {
                    ((1u32 << left) - 1) as __mmask16
                };
                let blk = Block {
                    src: src.wrapping_add(c0),
                    w: w.wrapping_add(c0),
                    b: bias.as_ptr().wrapping_add(c0),
                    s: scale.unwrap_or(bias).as_ptr().wrapping_add(c0),
                    dst: dst.wrapping_add(c0),
                    mask,
                };
                // SAFETY: AVX-512F is available (our contract). `blk` satisfies the `Block`
                // invariants: input rows `iy0..iy0 + n` and tap rows `ky0..ky0 + n` are
                // inside the image and the weight (`Plan::taps`), and so are rows
                // `iy0 + sh..iy0 + sh + 3` when `pair`; output rows `r` (and `r + 1` when
                // `pair`) are below `rows.len()`, so inside `out`; `mask` selects exactly
                // the channels `c0..min(c0 + 16, c)`.
                unsafe {
                    match (t.n, pair, plan.sh, left < LANES) {
                        (3, true, 1, false) => row::<3, 2, 1, false>(plan, &blk, epi),
                        (3, true, 1, true) => row::<3, 2, 1, true>(plan, &blk, epi),
                        (3, true, _, false) => row::<3, 2, 2, false>(plan, &blk, epi),
                        (3, true, _, true) => row::<3, 2, 2, true>(plan, &blk, epi),
                        (3, false, _, false) => row::<3, 1, 1, false>(plan, &blk, epi),
                        (3, false, _, true) => row::<3, 1, 1, true>(plan, &blk, epi),
                        (2, _, _, false) => row::<2, 1, 1, false>(plan, &blk, epi),
                        (2, _, _, true) => row::<2, 1, 1, true>(plan, &blk, epi),
                        (1, _, _, false) => row::<1, 1, 1, false>(plan, &blk, epi),
                        (1, _, _, true) => row::<1, 1, 1, true>(plan, &blk, epi),
                        _ => unreachable!("a 3x3 output row reads 1 to 3 input rows"),
                    }
                }
            }
            r += if pair { 2 } else { 1 };
        }
    }
}

/// One channel block of `O` output rows (1, or a pair whose input rows are `SV` apart),
/// each reading `R` input rows; masked when `M`.
///
/// # Safety
/// AVX-512F is available and `blk` satisfies the [`Block`] invariants for `R` tap rows,
/// extended to `O` output rows and input rows `0..R + (O − 1)·SV`.
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn row<const R: usize, const O: usize, const SV: usize, const M: bool>(
    p: &Plan,
    blk: &Block,
    epi: Epilogue,
) {
    let c = p.c;
    let mut w = [[_mm512_setzero_ps(); 3]; R];
    for (r, wr) in w.iter_mut().enumerate() {
        for (kx, wv) in wr.iter_mut().enumerate() {
            // SAFETY: tap (ky0 + r, kx) with r < R is inside the weight (`Block`).
            *wv = unsafe { ld::<M>(blk.w.wrapping_add((r * 3 + kx) * c), blk.mask) };
        }
    }
    // SAFETY: the bias lanes of this block are inside `bias` (`Block`).
    let b = unsafe { ld::<M>(blk.b, blk.mask) };
    // SAFETY: the scale lanes are inside `scale` (or `bias`), as the bias lanes (`Block`).
    let s = unsafe { ld::<M>(blk.s, blk.mask) };
    let src = core::array::from_fn(|r| blk.src.wrapping_add(r * p.in_w * c));
    let k = Taps {
        src,
        w,
        b,
        s,
        mask: blk.mask,
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
            unsafe { pixels::<R, O, SV, M, 1, PX, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += PX;
        }
        if ox + 2 <= p.ox_hi {
            // SAFETY: columns `ox..ox + 2` are interior (see above).
            unsafe { pixels::<R, O, SV, M, 1, 2, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += 2;
        }
    } else {
        while ox + PX <= p.ox_hi {
            // SAFETY: columns `ox..ox + PX` are interior (see above).
            unsafe { pixels::<R, O, SV, M, 2, PX, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += PX;
        }
        if ox + 2 <= p.ox_hi {
            // SAFETY: columns `ox..ox + 2` are interior (see above).
            unsafe { pixels::<R, O, SV, M, 2, 2, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
            ox += 2;
        }
    }
    if ox < p.ox_hi {
        // SAFETY: column `ox` is interior (see above).
        unsafe { pixels::<R, O, SV, M, 1, 1, 0, 3>(&k, p.ix0(ox) as isize, dst(ox)) };
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
                (true, false) => pixels::<R, O, SV, M, 1, 1, 1, 3>(&k, ix0, dst(ox)),
                (false, true) => pixels::<R, O, SV, M, 1, 1, 0, 2>(&k, ix0, dst(ox)),
                (true, true) => pixels::<R, O, SV, M, 1, 1, 1, 2>(&k, ix0, dst(ox)),
                (false, false) => pixels::<R, O, SV, M, 1, 1, 0, 3>(&k, ix0, dst(ox)),
            }
        }
    }
}

/// Register-resident state of one channel block: input row pointers, weights, bias.
struct Taps<const R: usize> {
    /// Input rows `iy0..iy0 + 5` at channel `c0`; a call reads only `R + (O − 1)·SV` of them.
    src: [*const f32; 5],
    w: [[__m512; 3]; R],
    b: __m512,
    /// Per-channel scale, used when `epi.scaled`.
    s: __m512,
    mask: __mmask16,
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
/// AVX-512F is available; for every output row `o < O`, tap row `r < R`, pixel `p < PX`
/// and tap `kx` in `K0..K1`, column `ix0 + p·S + kx` of input row `k.src[o·SV + r]` is
/// inside the input, and output columns `0..PX` of rows `0..O` at `dst` are inside `out`
/// (for the lanes of `k.mask`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn pixels<
    const R: usize,
    const O: usize,
    const SV: usize,
    const M: bool,
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
        _mm512_setzero_ps()
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
            let x = unsafe { ld::<M>(base.wrapping_add(j * k.c), k.mask) };
            for (o, acc_o) in acc.iter_mut().enumerate() {
                // Tap row of input row `ir` for output row `o`, if any.
                let r = ir.wrapping_sub(o * SV);
                if r >= R {
                    continue;
                }
                for (p, a) in acc_o.iter_mut().enumerate() {
                    if used(j, p) {
                        *a = _mm512_fmadd_ps(x, k.w[r][j - p * S], *a);
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
                st::<M>(
                    d,
                    k.mask,
                    k.epi.apply(if k.epi.scaled {
                        _mm512_fmadd_ps(a, k.s, k.b)
                    } else {
                        a
                    }),
                )
            };
        }
    }
}
