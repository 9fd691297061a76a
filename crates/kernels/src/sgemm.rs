//! f32 matrix products: `C[m, n] (+)= A[m, k] · B[k, n]`, row-major with leading dimensions.
//!
//! The SIMD tiers go through the `gemm` crate (built with its `x86-v4` feature so that its
//! AVX-512 micro-kernels are compiled in; `gemm` picks its own ISA at run time). The scalar
//! tier uses the plain loop in [`crate::reference::sgemm`].

use crate::dispatch::Tier;

/// Leading dimensions and sizes of one product. All matrices are row-major.
#[derive(Clone, Copy, Debug)]
pub struct GemmShape {
    /// Rows of A and C.
    pub m: usize,
    /// Columns of B and C.
    pub n: usize,
    /// Columns of A, rows of B.
    pub k: usize,
    /// Row stride of A (≥ k).
    pub lda: usize,
    /// Row stride of B (≥ n).
    pub ldb: usize,
    /// Row stride of C (≥ n).
    pub ldc: usize,
}

impl GemmShape {
    /// A dense product with tight leading dimensions.
    pub fn dense(m: usize, n: usize, k: usize) -> Self {
        Self {
            m,
            n,
            k,
            lda: k,
            ldb: n,
            ldc: n,
        }
    }

    fn fits(&self, a: usize, b: usize, c: usize) -> bool {
        let need = |rows: usize, ld: usize, cols: usize| {
            if rows == 0 { 0 } else { (rows - 1) * ld + cols }
        };
        self.lda >= self.k
            && self.ldb >= self.n
            && self.ldc >= self.n
            && a >= need(self.m, self.lda, self.k)
            && b >= need(self.k, self.ldb, self.n)
            && c >= need(self.m, self.ldc, self.n)
    }
}

/// Computes `C = A·B`, or `C += A·B` when `accumulate` is true.
///
/// `threads > 1` lets `gemm` split the work on the current rayon pool.
///
/// # Panics
/// If a slice is too short for its shape (a programmer error, checked before any
/// unsafe access).
pub fn sgemm(
    tier: Tier,
    s: GemmShape,
    a: &[f32],
    b: &[f32],
    c: &mut [f32],
    accumulate: bool,
    threads: usize,
) {
    assert!(
        s.fits(a.len(), b.len(), c.len()),
        "sgemm: slices too short for {s:?}"
    );
    if s.m == 0 || s.n == 0 {
        return;
    }
    if s.k == 0 {
        if !accumulate {
            for row in 0..s.m {
                c[row * s.ldc..row * s.ldc + s.n].fill(0.0);
            }
        }
        return;
    }
    if tier == Tier::Scalar {
        crate::reference::sgemm(s, a, b, c, accumulate);
        return;
    }
    let par = if threads > 1 {
        gemm::Parallelism::Rayon(threads)
    } else {
        gemm::Parallelism::None
    };
    // SAFETY: `fits` checked above that every element addressed through the given sizes and
    // row strides (column stride 1) lies inside `a`, `b` and `c`; `c` is uniquely borrowed
    // and does not alias `a` or `b` (distinct Rust borrows). `gemm` only reads `lhs`/`rhs`
    // and writes `dst` within those bounds.
    unsafe {
        gemm::gemm(
            s.m,
            s.n,
            s.k,
            c.as_mut_ptr(),
            1,
            s.ldc as isize,
            accumulate,
            a.as_ptr(),
            1,
            s.lda as isize,
            b.as_ptr(),
            1,
            s.ldb as isize,
            1.0f32,
            1.0f32,
            false,
            false,
            false,
            par,
        );
    }
}
