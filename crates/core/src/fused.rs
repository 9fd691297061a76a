//! Fused inverted-residual blocks: `[expand 1x1 →] depthwise → project 1x1 [+ residual]`,
//! computed in bands of output rows.
//!
//! Unfused, MobileNetV2's expand convolution writes its whole output (150x150x96 = 8.6 MB
//! for the first strided block) and the depthwise convolution reads it back, then writes its
//! own output for the projection to read: every one of those tensors is larger than L2, so
//! those layers run at memory speed. Fused, each worker walks a run of output rows in bands
//! of a few rows: it expands just the input rows the band's depthwise taps read into a
//! window buffer (keeping the rows the previous band already expanded: a sliding window, no
//! recomputation), runs the depthwise kernel on the window into a band buffer, and projects
//! the band straight into the output, adding the residual. Window and band buffers take
//! about [`BAND_BYTES`], so they stay in L2; only the block's input, residual and output
//! touch memory.
//!
//! Every output element is computed by the same kernels, in the same order, as unfused, so
//! fusing changes no value.

use rayon::prelude::*;
use slimdet_kernels::pointwise::{PwEpilogue, PwWeights, pointwise};
use slimdet_kernels::reference::ConvGeom;
use slimdet_kernels::{Act, Tier, dwconv};

/// Target bytes of one worker's window and band buffers together.
const BAND_BYTES: usize = 384 * 1024;

/// A pointwise convolution of a block: weights and epilogue `act(acc · scale + bias)`.
#[derive(Debug)]
pub(crate) struct PwPart {
    pub w: PwWeights,
    pub scale: Option<Vec<f32>>,
    pub bias: Vec<f32>,
    pub act: Act,
}

impl PwPart {
    fn epi<'a>(&'a self, residual: Option<(&'a [f32], Act)>) -> PwEpilogue<'a> {
        PwEpilogue {
            scale: self.scale.as_deref(),
            bias: &self.bias,
            act: self.act,
            residual: residual.map(|r| r.0),
            res_act: residual.map_or(Act::None, |r| r.1),
        }
    }
}

/// The depthwise convolution of a block: geometry, packed `[kh·kw, C]` weights, epilogue.
#[derive(Debug)]
pub(crate) struct DwPart {
    pub geom: ConvGeom,
    pub w: Vec<f32>,
    pub scale: Option<Vec<f32>>,
    pub bias: Vec<f32>,
    pub act: Act,
}

/// One fused block. Input `[N, H, W, Cin]`, output `[N, OH, OW, Cout]`; with `residual`,
/// the step's second input `[N, OH, OW, Cout]` is added after the projection's epilogue and
/// the given activation applied.
#[derive(Debug)]
pub(crate) struct Block {
    pub expand: Option<PwPart>,
    pub dw: DwPart,
    pub project: PwPart,
    pub residual: Option<Act>,
    /// Output rows per band.
    band: usize,
}

impl Block {
    /// Builds a block and chooses its band height.
    pub fn new(expand: Option<PwPart>, dw: DwPart, project: PwPart, residual: Option<Act>) -> Self {
        let g = &dw.geom;
        let row_bytes = (g.in_w * g.in_c * 4).max(1) as f64;
        let s = g.stride_h.max(1) as f64;
        // Window rows ≈ band·s + extent − s (none without expand), band rows ≈ band/s.
        let ext = ((g.kh - 1) * g.dil_h + 1) as f64;
        let per_row =
            if expand.is_some() { s } else { 0.0 } + g.out_w() as f64 / g.in_w.max(1) as f64;
        let fixed = if expand.is_some() { ext - s } else { 0.0 };
        let band = ((BAND_BYTES as f64 / row_bytes - fixed) / per_row).floor();
        let band = (band.max(1.0) as usize).min(g.out_h().max(1));
        Self {
            expand,
            dw,
            project,
            residual,
            band,
        }
    }

    /// Input rows of the window for output rows `a..b` (clipped to the image).
    fn window(&self, a: usize, b: usize) -> (usize, usize) {
        let g = &self.dw.geom;
        let lo = (a * g.stride_h).saturating_sub(g.pad_h).min(g.in_h);
        let hi = ((b - 1) * g.stride_h + (g.kh - 1) * g.dil_h + 1)
            .saturating_sub(g.pad_h)
            .min(g.in_h)
            .max(lo);
        (lo, hi)
    }

    /// Floats of window buffer per worker.
    fn window_floats(&self) -> usize {
        let g = &self.dw.geom;
        if self.expand.is_none() {
            return 0;
        }
        let rows = (self.band - 1) * g.stride_h + (g.kh - 1) * g.dil_h + 1;
        rows.min(g.in_h) * g.in_w * g.in_c
    }

    /// Scratch floats for `threads` workers.
    pub fn scratch(&self, threads: usize) -> usize {
        let g = &self.dw.geom;
        threads * (self.window_floats() + self.band * g.out_w() * g.in_c)
    }

    /// Short description for profiles: `Block 3x3 s2 16->96->24 @150x150`.
    pub fn describe(&self) -> String {
        let g = &self.dw.geom;
        let cin = self.expand.as_ref().map_or(g.in_c, |e| e.w.k());
        format!(
            "Block{} {}x{} s{} {}->{}->{} @{}x{}",
            if self.residual.is_some() { "+Add" } else { "" },
            g.kh,
            g.kw,
            g.stride_h,
            cin,
            g.in_c,
            self.project.w.n(),
            g.in_h,
            g.in_w
        )
    }

    /// Runs the block over a batch of `batch` images.
    #[allow(clippy::too_many_arguments)]
    pub fn run(
        &self,
        input: &[f32],
        residual: Option<&[f32]>,
        batch: usize,
        out: &mut [f32],
        scratch: &mut [f32],
        tier: Tier,
        threads: usize,
    ) {
        let g = &self.dw.geom;
        let (oh, ow, c) = (g.out_h(), g.out_w(), g.in_c);
        let cout = self.project.w.n();
        let cin = self.expand.as_ref().map_or(c, |e| e.w.k());
        let (in_img, out_img) = (g.in_h * g.in_w * cin, oh * ow * cout);
        if out_img == 0 {
            return;
        }
        let per_worker = self.window_floats() + self.band * ow * c;
        let per = oh.div_ceil(threads.max(1)).max(1);
        for b in 0..batch {
            let x = &input[b * in_img..(b + 1) * in_img];
            let res = residual.map(|r| &r[b * out_img..(b + 1) * out_img]);
            let o = &mut out[b * out_img..(b + 1) * out_img];
            o.par_chunks_mut(per * ow * cout)
                .zip(scratch.par_chunks_mut(per_worker))
                .enumerate()
                .for_each(|(ci, (o, buf))| {
                    let rows = ci * per..((ci + 1) * per).min(oh);
                    self.run_rows(x, res, rows, o, buf, tier);
                });
        }
    }

    /// Output rows `rows` of one image into `o` (exactly those rows), with one worker's
    /// buffers `buf`.
    fn run_rows(
        &self,
        x: &[f32],
        res: Option<&[f32]>,
        rows: std::ops::Range<usize>,
        o: &mut [f32],
        buf: &mut [f32],
        tier: Tier,
    ) {
        let g = &self.dw.geom;
        let (ow, c) = (g.out_w(), g.in_c);
        let cout = self.project.w.n();
        let row_len = g.in_w * c;
        let (win, band_buf) = buf.split_at_mut(self.window_floats());
        // Image rows held in `win`.
        let (mut have_lo, mut have_hi) = (0, 0);
        for a in rows.clone().step_by(self.band) {
            let b = (a + self.band).min(rows.end);
            let d = &mut band_buf[..(b - a) * ow * c];
            match &self.expand {
                Some(e) => {
                    let (lo, hi) = self.window(a, b);
                    let keep = if have_lo <= lo && lo < have_hi {
                        win.copy_within((lo - have_lo) * row_len..(have_hi - have_lo) * row_len, 0);
                        have_hi - lo
                    } else {
                        0
                    };
                    let new = lo + keep..hi;
                    let cin = e.w.k();
                    pointwise(
                        tier,
                        new.len() * g.in_w,
                        &x[new.start * g.in_w * cin..new.end * g.in_w * cin],
                        &e.w,
                        &e.epi(None),
                        &mut win[keep * row_len..(hi - lo) * row_len],
                    );
                    (have_lo, have_hi) = (lo, hi);
                    dwconv::dwconv_window_rows(
                        tier,
                        g,
                        &win[..(hi - lo) * row_len],
                        lo,
                        &self.dw.w,
                        self.dw.scale.as_deref(),
                        &self.dw.bias,
                        self.dw.act,
                        a..b,
                        d,
                    );
                }
                None => dwconv::dwconv_window_rows(
                    tier,
                    g,
                    x,
                    0,
                    &self.dw.w,
                    self.dw.scale.as_deref(),
                    &self.dw.bias,
                    self.dw.act,
                    a..b,
                    d,
                ),
            }
            let px = (b - a) * ow;
            let r = res
                .zip(self.residual)
                .map(|(r, act)| (&r[a * ow * cout..b * ow * cout], act));
            let at = (a - rows.start) * ow * cout;
            pointwise(
                tier,
                px,
                d,
                &self.project.w,
                &self.project.epi(r),
                &mut o[at..at + px * cout],
            );
        }
    }
}
