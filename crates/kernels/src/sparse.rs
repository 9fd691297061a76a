//! Sparse 1x1 convolution (SpMM) over NHWC activations, for unstructured-pruned weights.
//!
//! The approach of XNNPACK's "Fast Sparse ConvNets" (Elsen et al., 2020): the weights are
//! stored in CSR over output channels (for each output channel, the input channels and
//! values of its non-zero weights), and the work is vectorised over pixels, so each
//! non-zero weight costs one broadcast and one vector FMA for a whole tile of pixels, and
//! zero weights cost nothing. XNNPACK runs on CHW activations; ours are NHWC, so the SIMD
//! path transposes each tile of [`TILE`] pixels to channel-major in a scratch buffer
//! (16x16 register transposes), multiplies, and transposes the result back while applying
//! the epilogue `act(acc · scale + bias)`.
//!
//! - [`spmm_reference`] is the specification (plain loops, any shape).
//! - `x86_64/avx512/spmm_f32.rs`: `spmm_f32_64x1` (up to 192 input channels) and
//!   `spmm_f32_32x1`, tiles of four or two zmm of 16 pixels.
//! - `x86_64/avx2/spmm_f32.rs`: `spmm_f32_8x1`, 8 pixels per ymm.
//!
//! The executor picks this kernel for a 1x1 conv only above the measured break-even
//! sparsity (`slimdet_core::sparse`).

use rayon::prelude::*;

use crate::act::Act;
use crate::dispatch::Tier;

/// Weights of a 1x1 convolution `[O, I]` in CSR over output channels.
///
/// Built only by [`SparseWeights::from_dense`], which guarantees the invariants the SIMD
/// kernels rely on: `row_ptr` has `O + 1` non-decreasing entries ending at `nnz`, and
/// every column index is `< I`.
#[derive(Clone, PartialEq)]
pub struct SparseWeights {
    pub(crate) out_c: usize,
    pub(crate) in_c: usize,
    /// `[O + 1]`: non-zeros of output channel `o` are `row_ptr[o]..row_ptr[o + 1]`.
    pub(crate) row_ptr: Vec<u32>,
    /// `[nnz]`: input channel of each non-zero.
    pub(crate) cols: Vec<u32>,
    /// `[nnz]`: value of each non-zero.
    pub(crate) vals: Vec<f32>,
}

impl std::fmt::Debug for SparseWeights {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "SparseWeights {{ {}x{}, nnz {} ({:.1}% sparse) }}",
            self.out_c,
            self.in_c,
            self.nnz(),
            100.0 * self.sparsity()
        )
    }
}

impl SparseWeights {
    /// From a dense 1x1 weight, OIHW `[O, I, 1, 1]` = row-major `[O, I]`. Exact zeros
    /// (either sign) are dropped. Returns `None` when `w.len() != O·I` or a size does not
    /// fit in `u32`.
    pub fn from_dense(w: &[f32], out_c: usize, in_c: usize) -> Option<Self> {
        if w.len() != out_c.checked_mul(in_c)? || w.len() > u32::MAX as usize {
            return None;
        }
        let mut row_ptr = Vec::with_capacity(out_c + 1);
        let mut cols = Vec::new();
        let mut vals = Vec::new();
        row_ptr.push(0);
        for row in w.chunks(in_c.max(1)).take(out_c) {
            for (i, &v) in row.iter().enumerate() {
                if v != 0.0 {
                    cols.push(i as u32);
                    vals.push(v);
                }
            }
            row_ptr.push(cols.len() as u32);
        }
        while row_ptr.len() < out_c + 1 {
            row_ptr.push(cols.len() as u32);
        }
        Some(Self {
            out_c,
            in_c,
            row_ptr,
            cols,
            vals,
        })
    }

    /// Output channels.
    pub fn out_channels(&self) -> usize {
        self.out_c
    }

    /// Input channels.
    pub fn in_channels(&self) -> usize {
        self.in_c
    }

    /// Stored non-zeros.
    pub fn nnz(&self) -> usize {
        self.vals.len()
    }

    /// Fraction of zero weights.
    pub fn sparsity(&self) -> f64 {
        let n = self.out_c * self.in_c;
        if n == 0 {
            0.0
        } else {
            1.0 - self.nnz() as f64 / n as f64
        }
    }

    /// Bytes held (row pointers, indices and values).
    pub fn bytes(&self) -> usize {
        (self.row_ptr.len() + self.cols.len() + self.vals.len()) * 4
    }
}

/// Pixels per SIMD tile of the widest kernel.
pub const TILE: usize = 16;

/// Pixels per parallel work item (a multiple of every kernel's tile).
const CHUNK: usize = 64;

/// The specification: `out[p, o] = act(scale[o] · Σ_i input[p, i]·W[o, i] + bias[o])`.
///
/// - `input`: `[P, I]` (NHWC pixels, channels contiguous)
/// - `scale`: `[O]` or `None` (= 1), `bias`: `[O]`
/// - `out`: `[P, O]`
///
/// # Panics
/// If a slice does not match the shapes (programmer error).
pub fn spmm_reference(
    w: &SparseWeights,
    input: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    out: &mut [f32],
) {
    let (i_c, o_c) = (w.in_c, w.out_c);
    check(w, input, scale, bias, out);
    if o_c == 0 {
        return;
    }
    let (lo, hi) = act.bounds();
    let pixels = input.len().checked_div(i_c).unwrap_or(out.len() / o_c);
    for p in 0..pixels {
        let x = &input[p * i_c..(p + 1) * i_c];
        for o in 0..o_c {
            let (a, b) = (w.row_ptr[o] as usize, w.row_ptr[o + 1] as usize);
            let mut acc = 0.0f32;
            for k in a..b {
                acc += x[w.cols[k] as usize] * w.vals[k];
            }
            let s = scale.map_or(1.0, |s| s[o]);
            out[p * o_c + o] = (acc * s + bias[o]).max(lo).min(hi);
        }
    }
}

fn check(w: &SparseWeights, input: &[f32], scale: Option<&[f32]>, bias: &[f32], out: &[f32]) {
    let pixels = input
        .len()
        .checked_div(w.in_c)
        .unwrap_or(out.len() / w.out_c.max(1));
    assert_eq!(input.len(), pixels * w.in_c, "spmm: input length");
    assert_eq!(out.len(), pixels * w.out_c, "spmm: output length");
    assert_eq!(bias.len(), w.out_c, "spmm: bias length");
    assert!(
        scale.is_none_or(|s| s.len() == w.out_c),
        "spmm: scale length"
    );
}

/// Id of the kernel [`spmm`] runs for `tier` and `in_c` input channels, as used in logs,
/// benches and CSV rows.
pub fn kernel_id(tier: Tier, in_c: usize) -> &'static str {
    crate::x86_64::sparse::spmm_id(tier, in_c).unwrap_or("reference/spmm_f32")
}

/// [`spmm_reference`]'s function on the best kernel `tier` allows, over `threads`
/// (work items of 64 pixels spread by rayon in the current pool).
///
/// # Panics
/// As [`spmm_reference`].
#[allow(clippy::too_many_arguments)]
pub fn spmm(
    tier: Tier,
    w: &SparseWeights,
    input: &[f32],
    scale: Option<&[f32]>,
    bias: &[f32],
    act: Act,
    out: &mut [f32],
    threads: usize,
) {
    check(w, input, scale, bias, out);
    if w.out_c == 0 || w.in_c == 0 || crate::x86_64::sparse::spmm_id(tier, w.in_c).is_none() {
        spmm_reference(w, input, scale, bias, act, out);
        return;
    }
    let (i_c, o_c) = (w.in_c, w.out_c);
    let run = |scratch: &mut (Vec<f32>, Vec<f32>), (ci, o): (usize, &mut [f32])| {
        let rows = o.len() / o_c;
        let x = &input[ci * CHUNK * i_c..(ci * CHUNK + rows) * i_c];
        let done = crate::x86_64::sparse::spmm_rows(
            tier,
            w,
            x,
            scale,
            bias,
            act,
            o,
            &mut scratch.0,
            &mut scratch.1,
        );
        if !done {
            spmm_reference(w, x, scale, bias, act, o);
        }
    };
    if threads > 1 && out.len() > CHUNK * o_c {
        out.par_chunks_mut(CHUNK * o_c)
            .enumerate()
            .for_each_init(|| (Vec::new(), Vec::new()), run);
    } else {
        // One call over every pixel: the kernel walks its own tiles, without a dispatch,
        // slice checks and scratch alignment per 64 pixels.
        let (mut xt, mut ot) = (Vec::new(), Vec::new());
        let done = crate::x86_64::sparse::spmm_rows(
            tier, w, input, scale, bias, act, out, &mut xt, &mut ot,
        );
        if !done {
            spmm_reference(w, input, scale, bias, act, out);
        }
    }
}
