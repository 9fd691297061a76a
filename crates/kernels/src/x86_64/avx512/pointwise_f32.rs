//! `x86_64/avx512/pointwise_f32`: 1x1 convolution `[m, k] · [k, n]` with the epilogue
//! (scale, bias, activation, residual add, second activation) fused before the only store.
//!
//! Register tile: `R` pixels × `NV` zmm of output channels (`NV·16` channels), `R·NV`
//! accumulators. Per input channel `p` the kernel loads `NV` weight vectors (row `p` of a
//! weight panel packed at load time, `[k][PANEL]`, so the loads are sequential) and
//! broadcasts `R` input values,
//! then issues `R·NV` independent FMAs. Tiles: 8×48 (24 accumulators, 11 loads per 24
//! FMAs), 12×32 for the last 17–32 channels, 12×16 for the last 1–16. Panels are
//! zero-padded to [`PANEL`] channels, so weight loads are never masked; the epilogue's
//! loads and the stores of the last vector are, so any `n` works without a scalar tail and
//! nothing outside the slices is touched.
//!
//! Loop nest: blocks of pixels whose input rows fit in half of L1 (see [`row_block`]),
//! then weight panels, then the pixel tiles of the block: a panel is read from L2 once per
//! tile, the block's input rows from L1. Each
//! output accumulates its `k` products in order with one FMA each, from zero.

use core::arch::x86_64::*;

use crate::act::Act;
use crate::pointwise::{PANEL, PwEpilogue};

/// Pixels per block: input rows of about 24 KiB, a multiple of every tile height (8 and
/// 12), between 24 and 480.
fn row_block(k: usize) -> usize {
    (6 * 1024 / k.max(1) / 24 * 24).clamp(24, 480)
}

/// Raw operands of one call; see [`pointwise_f32`] for the invariants.
struct Ctx {
    k: usize,
    n: usize,
    x: *const f32,
    w: *const f32,
    /// Null when unscaled.
    scale: *const f32,
    bias: *const f32,
    /// Null without a residual.
    res: *const f32,
    out: *mut f32,
    clamp: Option<(__m512, __m512)>,
    res_clamp: Option<(__m512, __m512)>,
}

/// The clamp bounds of `act`, or `None` for the identity.
#[inline]
#[target_feature(enable = "avx512f")]
fn bounds(act: Act) -> Option<(__m512, __m512)> {
    (act != Act::None).then(|| {
        let (lo, hi) = act.bounds();
        (_mm512_set1_ps(lo), _mm512_set1_ps(hi))
    })
}

/// Lanes `0..min(16, left)` set (`left` may be 0: no lanes).
#[inline]
fn lane_mask(left: usize) -> __mmask16 {
    if left >= 16 {
        !0
    } else {
        ((1u32 << left) - 1) as __mmask16
    }
}

/// Computes `out = res_act(act(x·w · scale + bias) + residual)`.
///
/// # Safety
/// The CPU supports AVX-512F; `m > 0`, `n > 0`; `x.len() == m·k`,
/// `w.len() == ceil(n / PANEL)·k·PANEL` (panels, see [`crate::pointwise::PwWeights`]),
/// `out.len() == m·n`, `epi.bias` (and `epi.scale`) have `n` elements and `epi.residual`
/// (if any) `m·n`.
#[target_feature(enable = "avx512f")]
pub(in crate::x86_64) unsafe fn pointwise_f32(
    m: usize,
    k: usize,
    n: usize,
    x: &[f32],
    w: &[f32],
    epi: &PwEpilogue,
    out: &mut [f32],
) {
    let c = Ctx {
        k,
        n,
        x: x.as_ptr(),
        w: w.as_ptr(),
        scale: epi.scale.map_or(std::ptr::null(), <[f32]>::as_ptr),
        bias: epi.bias.as_ptr(),
        res: epi.residual.map_or(std::ptr::null(), <[f32]>::as_ptr),
        out: out.as_mut_ptr(),
        clamp: bounds(epi.act),
        res_clamp: bounds(epi.res_act),
    };
    let block = row_block(k);
    for i0 in (0..m).step_by(block) {
        let i1 = (i0 + block).min(m);
        let mut j = 0;
        while j < n {
            let left = n - j;
            let nv = left.div_ceil(16).min(3);
            let mut i = i0;
            while i < i1 {
                let rows = i1 - i;
                // SAFETY: AVX-512F is available (our contract); pixels `i..i + r` with
                // `r ≤ rows` are below `m`; `j` is a multiple of PANEL below `n`, so its
                // panel exists; channels `j..j + 16·nv` are masked to `n` for the epilogue
                // and stores, so every access lies inside the slices behind `c`.
                let step = unsafe {
                    match nv {
                        3 => tile_rows::<3, 8>(&c, rows, i, j, left),
                        2 => tile_rows::<2, 12>(&c, rows, i, j, left),
                        _ => tile_rows::<1, 12>(&c, rows, i, j, left),
                    }
                };
                i += step;
            }
            j += 16 * nv;
        }
    }
}

/// Runs one tile of `min(rows, MAXR)` pixels at pixel `i`, channel `j`, and returns its
/// height.
///
/// # Safety
/// As [`tile`], for `R = min(rows, MAXR)` (`rows ≥ 1`).
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile_rows<const NV: usize, const MAXR: usize>(
    c: &Ctx,
    rows: usize,
    i: usize,
    j: usize,
    left: usize,
) -> usize {
    let r = rows.min(MAXR);
    let mask: [__mmask16; NV] = core::array::from_fn(|v| lane_mask(left.saturating_sub(16 * v)));
    macro_rules! by_rows {
        ($($n:literal)*) => {
            match r {
                // SAFETY: forwarded from our contract with `R = r`.
                $($n => unsafe { tile::<$n, NV>(c, i, j, mask) },)*
                _ => unreachable!("tile height {r} is between 1 and 12"),
            }
        };
    }
    by_rows!(1 2 3 4 5 6 7 8 9 10 11 12);
    r
}

/// One `R × NV·16` register tile at pixel `i`, channel `j`, lanes `mask` of each vector.
///
/// # Safety
/// AVX-512F is available; pixels `i..i + R` are below `m`; `j` is a multiple of
/// [`PANEL`] below `n` and `NV ≤ 3`; for each vector `v`, channels `j + 16·v + l` for the
/// lanes `l` set in `mask[v]` are below `n`; `c` holds the slices described in
/// [`pointwise_f32`].
#[inline]
#[target_feature(enable = "avx512f")]
unsafe fn tile<const R: usize, const NV: usize>(
    c: &Ctx,
    i: usize,
    j: usize,
    mask: [__mmask16; NV],
) {
    let mut acc = [[_mm512_setzero_ps(); NV]; R];
    let xrow = c.x.wrapping_add(i * c.k);
    // Panel `j / PANEL` starts at `(j / PANEL)·k·PANEL = j·k`.
    let mut wp = c.w.wrapping_add(j * c.k);
    for p in 0..c.k {
        let mut b = [_mm512_setzero_ps(); NV];
        for (v, bv) in b.iter_mut().enumerate() {
            // SAFETY: row `p < k` of the panel, lanes `16·v..16·v + 16 ≤ PANEL`.
            *bv = unsafe { _mm512_loadu_ps(wp.wrapping_add(16 * v)) };
        }
        for (r, acc_r) in acc.iter_mut().enumerate() {
            // SAFETY: pixel `i + r < m`, channel `p < k`: inside `x`.
            let a = _mm512_set1_ps(unsafe { *xrow.wrapping_add(r * c.k + p) });
            for (v, a_rv) in acc_r.iter_mut().enumerate() {
                *a_rv = _mm512_fmadd_ps(a, b[v], *a_rv);
            }
        }
        wp = wp.wrapping_add(PANEL);
    }
    // The epilogue walks the accumulators in the order they were produced, by value, with
    // the per-channel vectors loaded first: indexing `acc` by a loop variable that is not
    // unrolled first would make LLVM keep it in memory and store it on every iteration.
    let bias: [__m512; NV] = core::array::from_fn(|v| {
        // SAFETY: masked channels `j + 16·v + l` are below `n` (our contract): inside bias.
        unsafe { _mm512_maskz_loadu_ps(mask[v], c.bias.wrapping_add(j + 16 * v)) }
    });
    let scale: [__m512; NV] = core::array::from_fn(|v| {
        if c.scale.is_null() {
            _mm512_set1_ps(1.0)
        } else {
            // SAFETY: masked channels `j + 16·v + l` are below `n` (our contract): inside
            // scale, which is not null here.
            unsafe { _mm512_maskz_loadu_ps(mask[v], c.scale.wrapping_add(j + 16 * v)) }
        }
    });
    let scaled = !c.scale.is_null();
    for (r, acc_r) in acc.into_iter().enumerate() {
        for (v, a) in acc_r.into_iter().enumerate() {
            let at = (i + r) * c.n + j + 16 * v;
            let mut y = if scaled {
                _mm512_fmadd_ps(a, scale[v], bias[v])
            } else {
                _mm512_add_ps(a, bias[v])
            };
            if let Some((lo, hi)) = c.clamp {
                y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
            }
            if !c.res.is_null() {
                // SAFETY: pixel `i + r < m`, masked channels below `n`: inside `residual`.
                let rv = unsafe { _mm512_maskz_loadu_ps(mask[v], c.res.wrapping_add(at)) };
                y = _mm512_add_ps(y, rv);
                if let Some((lo, hi)) = c.res_clamp {
                    y = _mm512_min_ps(_mm512_max_ps(y, lo), hi);
                }
            }
            // SAFETY: pixel `i + r < m`, masked channels below `n`: inside `out`.
            unsafe { _mm512_mask_storeu_ps(c.out.wrapping_add(at), mask[v], y) };
        }
    }
}
