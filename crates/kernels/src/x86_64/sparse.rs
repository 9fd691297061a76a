//! Safe entry to the sparse 1x1 (SpMM) ISA kernels.
//!
//! The wrapper checks the tier and the CPU, and every slice length against the
//! [`SparseWeights`] shape, before entering an ISA function; the CSR invariants (row
//! pointers non-decreasing up to `nnz`, column indices `< I`) hold by construction of
//! [`SparseWeights`], whose fields only this crate can set.

use super::Isa;
use crate::act::Act;
use crate::dispatch::Tier;
use crate::sparse::SparseWeights;

/// Shapes and operands of one SpMM call, validated by [`spmm_rows`].
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(in crate::x86_64) struct SpmmArgs<'a> {
    /// Pixels `P`.
    pub pixels: usize,
    /// Input channels `I`.
    pub in_c: usize,
    /// Output channels `O`.
    pub out_c: usize,
    /// CSR row pointers `[O + 1]`.
    pub row_ptr: &'a [u32],
    /// CSR column indices `[nnz]`, each `< I`.
    pub cols: &'a [u32],
    /// CSR values `[nnz]`.
    pub vals: &'a [f32],
    /// `[P, I]`.
    pub input: &'a [f32],
    /// `[O]` or none (= 1).
    pub scale: Option<&'a [f32]>,
    /// `[O]`.
    pub bias: &'a [f32],
    /// Activation clamp.
    pub lo: f32,
    /// Activation clamp.
    pub hi: f32,
}

/// Floats to skip from `p` to reach a 64-byte boundary (`p` is 4-byte aligned).
fn align64(p: *const f32) -> usize {
    ((64 - (p as usize) % 64) % 64) / 4
}

/// Largest input-channel count for the 64-pixel AVX-512 tile: its `xt` (`I·256` bytes)
/// must stay in a 48 KiB L1D (192 channels).
const WIDE_TILE_MAX_IN: usize = 192;

/// Id of the SIMD SpMM kernel `tier` selects on this CPU for `in_c` input channels, if any.
pub(crate) fn spmm_id(tier: Tier, in_c: usize) -> Option<&'static str> {
    match super::isa_for(tier)? {
        Isa::Avx512 if in_c <= WIDE_TILE_MAX_IN => Some("x86_64/avx512/spmm_f32_64x1"),
        Isa::Avx512 => Some("x86_64/avx512/spmm_f32_32x1"),
        Isa::Avx2 => Some("x86_64/avx2/spmm_f32_8x1"),
    }
}

/// Runs `out[P, O] = act(input[P, I] · Wᵀ · scale + bias)` on the SIMD kernel for `tier`.
/// Returns false (writing nothing) when no SIMD kernel applies. `xt` and `ot` are scratch
/// buffers, grown as needed.
#[allow(clippy::too_many_arguments)]
pub(crate) fn spmm_rows(
    tier: Tier,
    w: &SparseWeights,
    input: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    out: &mut [f32],
    xt: &mut Vec<f32>,
    ot: &mut Vec<f32>,
) -> bool {
    let Some(isa) = super::isa_for(tier) else {
        return false;
    };
    let (i_c, o_c) = (w.in_c, w.out_c);
    if i_c == 0 || o_c == 0 {
        return false;
    }
    let pixels = input.len() / i_c;
    let ok = input.len() == pixels * i_c
        && out.len() == pixels * o_c
        && bias.len() == o_c
        && scale.is_none_or(|s| s.len() == o_c)
        && w.row_ptr.len() == o_c + 1
        && w.cols.len() == w.vals.len();
    if !ok {
        return false;
    }
    let wide = i_c <= WIDE_TILE_MAX_IN;
    let tile = match isa {
        Isa::Avx512 if wide => 64,
        Isa::Avx512 => 32,
        Isa::Avx2 => 8,
    };
    // Rows of xt and ot are read and written as whole vectors: start them on a 64-byte
    // line so no vector access splits across two cache lines.
    xt.resize(i_c * tile + 16, 0.0);
    ot.resize(o_c * tile + 16, 0.0);
    let (xa, oa) = (align64(xt.as_ptr()), align64(ot.as_ptr()));
    let (xt, ot) = (&mut xt[xa..], &mut ot[oa..]);
    let (lo, hi) = act.bounds();
    let args = SpmmArgs {
        pixels,
        in_c: i_c,
        out_c: o_c,
        row_ptr: &w.row_ptr,
        cols: &w.cols,
        vals: &w.vals,
        input,
        scale,
        bias,
        lo,
        hi,
    };
    #[cfg(not(target_arch = "x86_64"))]
    {
        let _ = (args, out, xt, ot, isa, wide);
        false
    }
    #[cfg(target_arch = "x86_64")]
    {
        match isa {
            // SAFETY: `isa_for` returned Avx512 only after detecting AVX-512F on this CPU. All
            // slice lengths were checked above against (pixels, I, O); `xt` holds I·64 and `ot`
            // O·64 floats (the tile chosen above); the CSR invariants (row_ptr non-decreasing and ≤ nnz = cols.len() =
            // vals.len(), every column < I) hold by construction of `SparseWeights`.
            Isa::Avx512 if wide => unsafe { super::avx512::spmm_f32_64x1(&args, out, xt, ot) },
            // SAFETY: as above, `xt` holding I·32 and `ot` O·32 floats.
            Isa::Avx512 => unsafe { super::avx512::spmm_f32_32x1(&args, out, xt, ot) },
            // SAFETY: as above with AVX2+FMA detected by `isa_for`, `xt` holding I·8 and `ot`
            // O·8 floats.
            Isa::Avx2 => unsafe { super::avx2::spmm_f32_8x1(&args, out, xt, ot) },
        }
        true
    }
}
