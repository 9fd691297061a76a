//! The geometry of one 3x3 depthwise call as the SIMD kernels (x86-64 and aarch64) walk it:
//! which tap rows and columns of each output pixel are inside the image, and how channels
//! are grouped to keep the rows a pass re-reads in L1.

use std::ops::Range;

use crate::act::Act;
use crate::reference::ConvGeom;

/// Bytes of input rows a depthwise pass aims to keep in L1 (half of a 48 KiB L1D, leaving
/// room for the weights and the output lines).
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) const L1_WINDOW: usize = 24 * 1024;

/// Shape of one 3x3 depthwise call, precomputed for the ISA kernels.
///
/// Only geometries the kernels support are representable: 3x3, dilation 1, stride 1 or 2
/// and padding 0 or 1 on each axis. With padding ≤ 1 the centre tap row and column of
/// every output pixel are always inside the image, so only the first or last tap row
/// (column) can fall in the padding.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Plan {
    pub(crate) in_h: usize,
    pub(crate) in_w: usize,
    /// Channels, the innermost (contiguous) axis of input, weight, bias and output.
    pub(crate) c: usize,
    pub(crate) out_h: usize,
    pub(crate) out_w: usize,
    pub(crate) sh: usize,
    pub(crate) sw: usize,
    pub(crate) ph: usize,
    pub(crate) pw: usize,
    /// Output columns `ox_lo..ox_hi` have all three tap columns inside the image.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) ox_lo: usize,
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) ox_hi: usize,
    pub(crate) act: Act,
    /// First image row held by the input slice (a window of rows; 0 for the whole image).
    pub(crate) row0: usize,
}

/// The input rows one output row reads: taps `ky0..ky0 + n` on input rows `iy0..iy0 + n`.
#[derive(Clone, Copy, Debug)]
pub(crate) struct RowTaps {
    pub(crate) iy0: usize,
    pub(crate) ky0: usize,
    pub(crate) n: usize,
}

impl Plan {
    /// The plan of one call of a SIMD kernel, `None` when the geometry is not one the 3x3
    /// kernels handle. `input` holds image rows `row0..` (whole rows) covering every row
    /// that output rows `rows` read; `out_len` is the output slice's length. Every length
    /// is checked here, so a kernel given this plan and these slices stays in bounds.
    ///
    /// # Panics
    /// If a slice does not match the geometry (a programmer error).
    #[allow(clippy::too_many_arguments)]
    pub(crate) fn for_call(
        g: &ConvGeom,
        act: Act,
        input: &[f32],
        row0: usize,
        weight: &[f32],
        scale: Option<&[f32]>,
        bias: &[f32],
        rows: &Range<usize>,
        out_len: usize,
    ) -> Option<Plan> {
        let mut plan = Plan::new(g, act)?;
        plan.row0 = row0;
        let c = plan.c;
        assert!(rows.end <= plan.out_h, "dwconv3x3: rows out of range");
        let row_len = plan.in_w * c;
        assert!(
            input.len().is_multiple_of(row_len.max(1)),
            "dwconv3x3: input is not whole rows"
        );
        if row_len > 0 && !rows.is_empty() {
            let (first, last) = (plan.taps(rows.start), plan.taps(rows.end - 1));
            assert!(
                row0 <= first.iy0 && last.iy0 + last.n <= row0 + input.len() / row_len,
                "dwconv3x3: input rows do not cover the output rows"
            );
        }
        assert_eq!(weight.len(), 9 * c, "dwconv3x3: weight length");
        assert_eq!(bias.len(), c, "dwconv3x3: bias length");
        assert!(
            scale.is_none_or(|s| s.len() == c),
            "dwconv3x3: scale length"
        );
        assert_eq!(
            out_len,
            rows.len() * plan.out_w * c,
            "dwconv3x3: output length"
        );
        Some(plan)
    }

    /// Returns `None` when the geometry is not one the 3x3 kernels handle.
    pub(crate) fn new(g: &ConvGeom, act: Act) -> Option<Plan> {
        let c = g.in_c;
        let supported = g.kh == 3
            && g.kw == 3
            && g.dil_h == 1
            && g.dil_w == 1
            && matches!(g.stride_h, 1 | 2)
            && matches!(g.stride_w, 1 | 2)
            && g.pad_h <= 1
            && g.pad_w <= 1
            && g.pad_h_end <= 1
            && g.pad_w_end <= 1
            && c > 0
            && g.groups == c
            && g.out_c == c;
        if !supported {
            return None;
        }
        let (out_h, out_w) = (g.out_h(), g.out_w());
        let ox_lo = g.pad_w.div_ceil(g.stride_w).min(out_w);
        // Last interior column: ox·sw − pw + 2 ≤ in_w − 1.
        let ox_hi = if g.in_w + g.pad_w >= 3 {
            ((g.in_w + g.pad_w - 3) / g.stride_w + 1).min(out_w)
        } else {
            0
        };
        Some(Plan {
            in_h: g.in_h,
            in_w: g.in_w,
            c,
            out_h,
            out_w,
            sh: g.stride_h,
            sw: g.stride_w,
            ph: g.pad_h,
            pw: g.pad_w,
            ox_lo,
            ox_hi: ox_hi.max(ox_lo),
            act,
            row0: 0,
        })
    }

    /// Splits the channels into groups walked one after the other, each over all rows.
    ///
    /// A 3x3 output row reads three input rows, and the next output row reads two of them
    /// again. When the three rows of all channels overflow L1 but those of a group of at
    /// least 32 channels (two 64-byte lines per pixel, which the adjacent-line prefetcher
    /// fetches together) fit in [`L1_WINDOW`], walking the rows once per group serves the
    /// re-reads from L1 instead of L2. Otherwise there is a single group: rows outermost,
    /// which keeps the reads sequential for large images.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn channel_groups(
        &self,
        lanes: usize,
    ) -> impl Iterator<Item = Range<usize>> + use<> {
        let per_channel = 3 * self.in_w * size_of::<f32>();
        let fit = (L1_WINDOW / per_channel) / lanes * lanes;
        let step = if fit >= 32 && fit < self.c {
            fit
        } else {
            self.c
        };
        let c = self.c;
        (0..c).step_by(step).map(move |c0| c0..(c0 + step).min(c))
    }

    /// The valid tap rows of output row `oy` (`oy < out_h`).
    pub(crate) fn taps(&self, oy: usize) -> RowTaps {
        let top = oy * self.sh; // first tap row in padded coordinates
        let (iy0, ky0) = if top < self.ph {
            (0, self.ph - top)
        } else {
            (top - self.ph, 0)
        };
        let n = (3 - ky0).min(self.in_h - iy0);
        RowTaps { iy0, ky0, n }
    }

    /// First input column of output column `ox`, which must be interior (`ox ≥ ox_lo`).
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn ix0(&self, ox: usize) -> usize {
        ox * self.sw - self.pw
    }

    /// Input column of tap `kx` of output column `ox`, if it is inside the image.
    pub(crate) fn tap_col(&self, ox: usize, kx: usize) -> Option<usize> {
        (ox * self.sw + kx)
            .checked_sub(self.pw)
            .filter(|&ix| ix < self.in_w)
    }
}
