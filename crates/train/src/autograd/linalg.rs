//! Dense helpers for the backward passes: matrix products through the kernels crate's
//! `sgemm` (and its transposed-A form) or, in bf16 mode, its bf16-operand GEMM; and
//! per-channel reductions whose result does not depend on the number of threads (fixed
//! chunking, partial sums added in chunk order).

use rayon::prelude::*;
use slimdet_kernels::Tier;
use slimdet_kernels::bf16_gemm::{PackedBf16B, gemm_bf16f32, gemm_bf16f32_at, pack_a, pack_a_t};
use slimdet_kernels::sgemm::{GemmShape, sgemm};
use slimdet_kernels::sgemm_t::sgemm_tn;

use super::pool::Pool;

/// Depth below which a product stays f32 in bf16 mode: at depth 16 and 27 (the 16-channel
/// expand and the stem's 3x3x3 patches) packing to bf16 costs more than the products save
/// (`benches/gemm_bf16.rs` in the kernels crate).
pub(crate) const BF16_MIN_DEPTH: usize = 32;

/// Rows of `A` per parallel task of a bf16 product (each packs its own rows).
const BF16_ROWS: usize = 1024;

/// Depth per partial sum of a bf16 transposed-A product (the weight gradient, whose depth
/// is every pixel of the batch): fixed, so the result does not depend on the thread count.
const BF16_DEPTH_CHUNK: usize = 8192;

/// Kernel tier, precision, thread count and buffer pool shared by every op of a pass.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub tier: Tier,
    /// Dense-convolution products in bf16 (operands rounded to nearest even, f32 sums).
    pub bf16: bool,
    pub threads: usize,
    pub pool: &'a Pool,
}

impl Ctx<'_> {
    /// `C[m, n] (+)= A[m, k] · B[k, n]`, all row-major and tight.
    pub fn matmul(&self, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        sgemm(
            self.tier,
            GemmShape::dense(m, n, k),
            a,
            b,
            c,
            false,
            self.threads,
        );
    }
}

impl Ctx<'_> {
    /// `C[m, n] = Aᵀ · B` with `A` stored `[k, m]` and `B` `[k, n]` (no transpose copy).
    pub fn matmul_tn(&self, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        sgemm_tn(self.tier, m, n, k, a, b, c, self.threads);
    }
}

impl Ctx<'_> {
    /// A convolution product `C[m, n] = A[m, k] · B[k, n]`: [`Ctx::matmul`] in f32, or with
    /// bf16 operands and f32 sums in bf16 mode when `k ≥ BF16_MIN_DEPTH`.
    pub fn conv_matmul(&self, m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
        if !self.bf16 || k < BF16_MIN_DEPTH || m == 0 || n == 0 {
            return self.matmul(m, n, k, a, b, c);
        }
        let pb = PackedBf16B::from_f32(self.tier, b, k, n);
        c.par_chunks_mut(BF16_ROWS * n)
            .zip(a.par_chunks(BF16_ROWS * k))
            .for_each(|(cc, aa)| {
                let rows = aa.len() / k;
                gemm_bf16f32(
                    self.tier,
                    rows,
                    &pack_a(self.tier, aa, rows, k),
                    &pb,
                    cc,
                    false,
                );
            });
    }

    /// A weight-gradient product `C[m, n] = Aᵀ · B` (`A` `[k, m]`, `B` `[k, n]`):
    /// [`Ctx::matmul_tn`] in f32, or in bf16 mode bf16 operands with f32 sums. The depth
    /// (every pixel of the batch) is split into fixed chunks of `BF16_DEPTH_CHUNK` run in
    /// parallel and added in order; each chunk packs and multiplies slices of
    /// [`bf16_slice_depth`] rows at a time so that the packed operands stay in cache.
    pub fn conv_matmul_tn(
        &self,
        m: usize,
        n: usize,
        k: usize,
        a: &[f32],
        b: &[f32],
        c: &mut [f32],
    ) {
        if !self.bf16 || m == 0 || n == 0 || k == 0 {
            return self.matmul_tn(m, n, k, a, b, c);
        }
        let slice = bf16_slice_depth(n);
        let parts: Vec<Vec<f32>> = (0..k.div_ceil(BF16_DEPTH_CHUNK))
            .into_par_iter()
            .map(|t| {
                let mut part = vec![0.0f32; m * n];
                let end = ((t + 1) * BF16_DEPTH_CHUNK).min(k);
                let mut d0 = t * BF16_DEPTH_CHUNK;
                while d0 < end {
                    let d1 = (d0 + slice).min(end);
                    let at = pack_a_t(self.tier, &a[d0 * m..d1 * m], d1 - d0, m);
                    let pb = PackedBf16B::from_f32(self.tier, &b[d0 * n..d1 * n], d1 - d0, n);
                    gemm_bf16f32_at(self.tier, m, &at, &pb, &mut part, true);
                    d0 = d1;
                }
                part
            })
            .collect();
        c.fill(0.0);
        for p in parts {
            for (cv, pv) in c.iter_mut().zip(p) {
                *cv += pv;
            }
        }
    }
}

/// Depth of one packed slice of a bf16 weight-gradient product with `n` columns: about
/// 128 KiB of packed `B` (it is streamed once per 4 rows of `A`), even, 64 to 2048.
fn bf16_slice_depth(n: usize) -> usize {
    ((128 * 1024 / 2 / n.max(1)).clamp(64, 2048)) & !1
}

/// Rows per chunk of the deterministic reductions.
const CHUNK_ROWS: usize = 2048;

/// Per-channel sums over the rows of `x` `[rows, c]` of `f(row, acc)`, where `f` adds one
/// row's contribution into `acc` `[c]` (f64). Deterministic for any thread count.
pub(crate) fn channel_reduce<F>(rows: usize, c: usize, f: F) -> Vec<f64>
where
    F: Fn(usize, &mut [f64]) + Sync,
{
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let partials: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|k| {
            let mut acc = vec![0.0f64; c];
            for r in k * CHUNK_ROWS..((k + 1) * CHUNK_ROWS).min(rows) {
                f(r, &mut acc);
            }
            acc
        })
        .collect();
    let mut total = vec![0.0f64; c];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Rows summed in f32 before their partial sums are added in f64 by [`block_reduce`].
const BLOCK_ROWS: usize = 32;

/// Sums over `rows` rows of `width` accumulators: `f(range, acc)` adds the contribution
/// of the rows in `range` (at most 32) into the f32 `acc` `[width]`, which is then added
/// into f64 totals. Fixed chunking, partials added in order: deterministic for any thread
/// count, and as fast as an f32 loop that the compiler vectorises.
pub(crate) fn block_reduce<F>(rows: usize, width: usize, f: F) -> Vec<f64>
where
    F: Fn(std::ops::Range<usize>, &mut [f32]) + Sync,
{
    let chunks = rows.div_ceil(CHUNK_ROWS);
    let partials: Vec<Vec<f64>> = (0..chunks)
        .into_par_iter()
        .map(|k| {
            let mut acc = vec![0.0f64; width];
            let mut tmp = vec![0.0f32; width];
            let end = ((k + 1) * CHUNK_ROWS).min(rows);
            let mut r = k * CHUNK_ROWS;
            while r < end {
                let e = (r + BLOCK_ROWS).min(end);
                tmp.fill(0.0);
                f(r..e, &mut tmp);
                for (a, t) in acc.iter_mut().zip(&tmp) {
                    *a += *t as f64;
                }
                r = e;
            }
            acc
        })
        .collect();
    let mut total = vec![0.0f64; width];
    for p in partials {
        for (t, v) in total.iter_mut().zip(p) {
            *t += v;
        }
    }
    total
}

/// Column sums of `x` `[rows, c]`.
pub(crate) fn col_sums(x: &[f32], c: usize) -> Vec<f64> {
    channel_reduce(x.len() / c.max(1), c, |r, acc| {
        for (a, v) in acc.iter_mut().zip(&x[r * c..(r + 1) * c]) {
            *a += *v as f64;
        }
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn block_reduce_matches_f64_sums_for_any_row_count() {
        for rows in [1, 31, 32, 33, 2047, 2049, 5000] {
            let x: Vec<f32> = (0..rows * 3).map(|v| ((v * 7) % 13) as f32 * 0.1).collect();
            let s = block_reduce(rows, 3, |r, acc| {
                for row in r {
                    for j in 0..3 {
                        acc[j] += x[row * 3 + j];
                    }
                }
            });
            for (ch, got) in s.iter().enumerate() {
                let naive: f64 = x.iter().skip(ch).step_by(3).map(|v| *v as f64).sum();
                assert!(
                    (got - naive).abs() <= 1e-5 * naive.abs().max(1.0),
                    "{got} {naive}"
                );
            }
        }
    }

    #[test]
    fn col_sums_match_naive() {
        let x: Vec<f32> = (0..5000 * 3).map(|v| (v % 7) as f32).collect();
        let s = col_sums(&x, 3);
        for (ch, got) in s.iter().enumerate() {
            let naive: f64 = x.iter().skip(ch).step_by(3).map(|v| *v as f64).sum();
            assert_eq!(*got, naive);
        }
    }
}
