//! Shared test helpers: a deterministic RNG and named float tolerances.

/// A tiny xorshift64* generator: deterministic fixtures without a dependency.
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        // A zero state would stay zero forever.
        Rng(seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1)
    }

    pub fn next_u64(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_F491_4F6C_DD1D)
    }

    /// Uniform in `lo..=hi`.
    pub fn range(&mut self, lo: usize, hi: usize) -> usize {
        lo + (self.next_u64() % (hi - lo + 1) as u64) as usize
    }

    /// Uniform in `[-1, 1)`.
    pub fn f32(&mut self) -> f32 {
        ((self.next_u64() >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
    }

    pub fn vec(&mut self, n: usize) -> Vec<f32> {
        (0..n).map(|_| self.f32()).collect()
    }

    pub fn pick<T: Copy>(&mut self, xs: &[T]) -> T {
        xs[self.range(0, xs.len() - 1)]
    }
}

/// How far a fast float kernel may drift from the reference: `|got − want| ≤ abs + rel·|want|`.
#[derive(Clone, Copy, Debug)]
pub struct Tolerance {
    pub abs: f32,
    pub rel: f32,
}

/// Depthwise 3x3: at most 9 products plus a bias per output, inputs and weights in
/// [-1, 1]. The SIMD kernels fuse each multiply-add (one rounding instead of two), which
/// moves each partial sum by at most half an ulp of values below 10, i.e. ~5e-7 each;
/// 10 of them stay well under 1e-5.
pub const DWCONV: Tolerance = Tolerance {
    abs: 1e-5,
    rel: 1e-5,
};

/// GEMM and im2col + GEMM: up to ~600 products per output (k = 65, or 3·3·64 for im2col).
/// `gemm` blocks and reorders the k sum and uses FMA, so each output may differ from the
/// in-order reference by a few ulps of the partial sums, which grow to ~sqrt(k) ≈ 25.
pub const GEMM: Tolerance = Tolerance {
    abs: 1e-4,
    rel: 1e-5,
};

/// Asserts that `got` matches `want` element-wise within `tol`; `what` names the case.
pub fn assert_close(got: &[f32], want: &[f32], tol: Tolerance, what: &dyn std::fmt::Display) {
    assert_eq!(got.len(), want.len(), "{what}: length");
    for (i, (&g, &w)) in got.iter().zip(want).enumerate() {
        let ok = (g - w).abs() <= tol.abs + tol.rel * w.abs();
        assert!(
            ok,
            "{what}: element {i}: got {g}, want {w} (tolerance {tol:?})"
        );
    }
}

/// A copy of `xs` that starts one element into its allocation, so that a kernel sees a
/// slice that is not 8-, 16-, 32- or 64-byte aligned.
pub struct Unaligned(Vec<f32>);

impl Unaligned {
    pub fn new(xs: &[f32]) -> Self {
        let mut v = Vec::with_capacity(xs.len() + 1);
        v.push(f32::NAN);
        v.extend_from_slice(xs);
        Unaligned(v)
    }

    pub fn zeros(n: usize) -> Self {
        Unaligned::new(&vec![0.0; n])
    }

    pub fn get(&self) -> &[f32] {
        &self.0[1..]
    }

    pub fn get_mut(&mut self) -> &mut [f32] {
        &mut self.0[1..]
    }
}
