//! `C[m, n] = Aᵀ · B` with `A` stored row-major as `[k, m]` and `B` as `[k, n]`: the
//! weight gradient of a convolution (`dW = dYᵀ · X`) without materialising a transpose.
//!
//! The SIMD tiers hand `gemm` a column-major view of `A` (row stride 1, column stride
//! `m`); `gemm` packs its panels anyway, so the transposed read costs no copy of the
//! whole matrix. The scalar tier is the plain loop [`sgemm_tn_reference`].

use crate::dispatch::Tier;

/// The specification: `c[i, j] = Σ_p a[p, i]·b[p, j]`, summed in `p` order in f32.
///
/// # Panics
/// If a slice does not have exactly its shape's length.
pub fn sgemm_tn_reference(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &mut [f32]) {
    check(m, n, k, a, b, c);
    c.fill(0.0);
    for p in 0..k {
        let ar = &a[p * m..(p + 1) * m];
        let br = &b[p * n..(p + 1) * n];
        for (i, av) in ar.iter().enumerate() {
            for (cv, bv) in c[i * n..(i + 1) * n].iter_mut().zip(br) {
                *cv += av * bv;
            }
        }
    }
}

fn check(m: usize, n: usize, k: usize, a: &[f32], b: &[f32], c: &[f32]) {
    assert_eq!(a.len(), k * m, "sgemm_tn: A must be [k, m]");
    assert_eq!(b.len(), k * n, "sgemm_tn: B must be [k, n]");
    assert_eq!(c.len(), m * n, "sgemm_tn: C must be [m, n]");
}

/// `C = Aᵀ·B` (overwrites `c`). `threads > 1` lets `gemm` split the work on the current
/// rayon pool (the summation order may then differ from one thread's).
///
/// # Panics
/// If a slice does not have exactly its shape's length.
#[allow(clippy::too_many_arguments)]
pub fn sgemm_tn(
    tier: Tier,
    m: usize,
    n: usize,
    k: usize,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    threads: usize,
) {
    check(m, n, k, a, b, c);
    if m == 0 || n == 0 {
        return;
    }
    if k == 0 || tier == Tier::Scalar {
        sgemm_tn_reference(m, n, k, a, b, c);
        return;
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `check` verified that `a` holds k·m values (element (i, p) of the m×k lhs
    // view at p·m + i: row stride 1, column stride m), `b` k·n values (row stride n,
    // column stride 1) and `c` m·n values (row stride n, column stride 1), so every
    // address `gemm` forms lies inside its slice; `c` is uniquely borrowed and does not
    // alias `a` or `b`. `gemm` only reads lhs/rhs and writes dst.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            c.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            m as isize,
            1,
            b.as_ptr(),
            1,
            n as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn data(n: usize, seed: u32) -> Vec<f32> {
        let mut s = seed.wrapping_mul(2654435761).wrapping_add(1);
        (0..n)
            .map(|_| {
                s ^= s << 13;
                s ^= s >> 17;
                s ^= s << 5;
                (s % 2001) as f32 / 1000.0 - 1.0
            })
            .collect()
    }

    #[test]
    fn every_tier_matches_the_definition_on_odd_shapes() {
        for (m, n, k) in [
            (1, 1, 1),
            (3, 5, 7),
            (17, 33, 65),
            (24, 576, 300),
            (96, 16, 1000),
        ] {
            let a = data(k * m, (m * 7 + k) as u32);
            let b = data(k * n, (n * 11 + k) as u32);
            let mut want = vec![0.0f64; m * n];
            for p in 0..k {
                for i in 0..m {
                    for j in 0..n {
                        want[i * n + j] += a[p * m + i] as f64 * b[p * n + j] as f64;
                    }
                }
            }
            for t in [Tier::Scalar, Tier::Avx2, Tier::Avx512] {
                for threads in [1, 2] {
                    let mut c = vec![f32::NAN; m * n];
                    sgemm_tn(t, m, n, k, &a, &b, &mut c, threads);
                    for (i, (g, w)) in c.iter().zip(&want).enumerate() {
                        assert!(
                            (*g as f64 - w).abs() <= 1e-4 * (1.0 + w.abs()) * (k as f64).sqrt(),
                            "{m}x{n}x{k} {t:?} [{i}]: {g} vs {w}"
                        );
                    }
                }
            }
        }
    }

    #[test]
    #[should_panic(expected = "A must be")]
    fn wrong_lengths_are_refused() {
        sgemm_tn(Tier::Avx2, 2, 2, 2, &[0.0; 3], &[0.0; 4], &mut [0.0; 4], 1);
    }
}
