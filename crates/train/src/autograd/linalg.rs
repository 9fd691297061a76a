//! Dense helpers for the backward passes: matrix products through the kernels crate's
//! `sgemm`, blocked transposes, and per-channel reductions whose result does not depend on
//! the number of threads (fixed chunking, partial sums added in chunk order).

use rayon::prelude::*;
use slimdet_kernels::Tier;
use slimdet_kernels::sgemm::{GemmShape, sgemm};

/// Kernel tier and thread count shared by every op of a pass.
#[derive(Clone, Copy, Debug)]
pub(crate) struct Ctx {
    pub tier: Tier,
    pub threads: usize,
}

impl Ctx {
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

/// Rows per chunk of the deterministic reductions.
const CHUNK_ROWS: usize = 2048;

/// Transposes `src` `[rows, cols]` into `[cols, rows]`, in 32x32 tiles, in parallel over
/// bands of output rows.
pub(crate) fn transpose(src: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    debug_assert_eq!(src.len(), rows * cols);
    const T: usize = 32;
    let mut out = vec![0.0f32; rows * cols];
    if rows == 0 || cols == 0 {
        return out;
    }
    out.par_chunks_mut(T * rows)
        .enumerate()
        .for_each(|(band, dst)| {
            let j0 = band * T;
            let jn = dst.len() / rows;
            for i0 in (0..rows).step_by(T) {
                let i1 = (i0 + T).min(rows);
                for i in i0..i1 {
                    let s = &src[i * cols + j0..i * cols + j0 + jn];
                    for (dj, v) in s.iter().enumerate() {
                        dst[dj * rows + i] = *v;
                    }
                }
            }
        });
    out
}

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
    fn transpose_round_trips_odd_shapes() {
        for (r, c) in [(1, 1), (3, 70), (65, 33), (100, 1)] {
            let x: Vec<f32> = (0..r * c).map(|v| v as f32).collect();
            let t = transpose(&x, r, c);
            for i in 0..r {
                for j in 0..c {
                    assert_eq!(t[j * r + i], x[i * c + j]);
                }
            }
            assert_eq!(transpose(&t, c, r), x);
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
