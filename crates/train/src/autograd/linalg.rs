//! Dense helpers for the backward passes: matrix products through the kernels crate's
//! `sgemm` (and its transposed-A form), and per-channel reductions whose result does not depend on
//! the number of threads (fixed chunking, partial sums added in chunk order).

use rayon::prelude::*;
use slimdet_kernels::Tier;
use slimdet_kernels::sgemm::{GemmShape, sgemm};
use slimdet_kernels::sgemm_t::sgemm_tn;

use super::pool::Pool;

/// Kernel tier, thread count and buffer pool shared by every op of a pass.
#[derive(Clone, Copy)]
pub(crate) struct Ctx<'a> {
    pub tier: Tier,
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
