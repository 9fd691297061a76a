//! `qgemm_u8i8_neon_*`: integer accumulators of the int8 GEMM for a tile of rows × one
//! 16-column block of a [`crate::quant::PackedB`] (`[K/4][16][4]` bytes per block).
//!
//! Both kernels take the rows of `A` already shifted to signed (`a ^ 0x80`, i.e. `a − 128`)
//! and zero-padded to `4·kb` bytes; the caller adds `128 · Σ_p B[p, j]` back, so the sums
//! equal the reference's `Σ a·b` in wrapping `i32` arithmetic exactly.
//!
//! - `qgemm_tile_dot` (`neon-dotprod`, 4 rows): per depth group, one `sdot` per four
//!   columns multiplies the row's four broadcast bytes by the four packed depths of each
//!   column and adds them into that column's lane.
//! - `qgemm_tile_mull` (`neon`, 2 rows): `smull` of the broadcast bytes with two columns'
//!   eight bytes gives eight `i16` products; `sadalp` adds adjacent pairs into four `i32`
//!   lanes (column 0 depths 0+1, 2+3, column 1 depths 0+1, 2+3); the pairs are added at
//!   the end (`addp`). Products are at most 128·128, so no `i16` overflows.

use core::arch::aarch64::*;

/// `sdot acc.4s, a.16b, b.16b`: stable Rust has no intrinsic for it yet.
///
/// # Safety
/// The CPU has the dot-product extension.
#[inline]
#[target_feature(enable = "neon,dotprod")]
unsafe fn sdot(mut acc: int32x4_t, a: int8x16_t, b: int8x16_t) -> int32x4_t {
    // SAFETY: a register-only instruction, available by the contract.
    unsafe {
        core::arch::asm!(
            "sdot {0:v}.4s, {1:v}.16b, {2:v}.16b",
            inout(vreg) acc,
            in(vreg) a,
            in(vreg) b,
            options(pure, nomem, nostack, preserves_flags)
        );
    }
    acc
}

/// Sums of rows `0..R` of `a` (`R` rows of `4·kb` signed bytes) with the 16 columns of
/// `b` (`kb·64` bytes), into `acc` (overwritten).
///
/// # Safety
/// NEON and the dot-product extension are available.
///
/// # Panics
/// If `a.len() < R·4·kb` or `b.len() < kb·64`.
#[target_feature(enable = "neon,dotprod")]
pub(in crate::aarch64) unsafe fn qgemm_tile_dot<const R: usize>(
    a: &[i8],
    kb: usize,
    b: &[i8],
    acc: &mut [[i32; 16]; R],
) {
    assert!(
        a.len() >= R * 4 * kb && b.len() >= kb * 64,
        "qgemm_tile_dot: lengths"
    );
    let mut sums = [[vdupq_n_s32(0); 4]; R];
    for g in 0..kb {
        // SAFETY: group g < kb of the block is 64 bytes at g·64 < b.len() (asserted).
        let bv = unsafe {
            let p = b.as_ptr().add(g * 64);
            [
                vld1q_s8(p),
                vld1q_s8(p.add(16)),
                vld1q_s8(p.add(32)),
                vld1q_s8(p.add(48)),
            ]
        };
        for (r, row) in sums.iter_mut().enumerate() {
            // SAFETY: bytes 4g..4g + 4 of row r lie inside `a` (asserted length).
            let word =
                unsafe { (a.as_ptr().add(r * 4 * kb + 4 * g) as *const i32).read_unaligned() };
            let av = vreinterpretq_s8_s32(vdupq_n_s32(word));
            for (s, bq) in row.iter_mut().zip(bv) {
                // SAFETY: dotprod is available (contract).
                *s = unsafe { sdot(*s, av, bq) };
            }
        }
    }
    for (out, row) in acc.iter_mut().zip(&sums) {
        for (q, s) in row.iter().enumerate() {
            // SAFETY: 4 lanes stored into 4 of the 16 entries of `out`.
            unsafe { vst1q_s32(out.as_mut_ptr().add(4 * q), *s) };
        }
    }
}

/// As [`qgemm_tile_dot`] without the dot-product extension.
///
/// # Safety
/// NEON is available.
///
/// # Panics
/// As [`qgemm_tile_dot`].
#[target_feature(enable = "neon")]
pub(in crate::aarch64) unsafe fn qgemm_tile_mull<const R: usize>(
    a: &[i8],
    kb: usize,
    b: &[i8],
    acc: &mut [[i32; 16]; R],
) {
    assert!(
        a.len() >= R * 4 * kb && b.len() >= kb * 64,
        "qgemm_tile_mull: lengths"
    );
    // sums[r][q]: columns 2q, 2q + 1 of the block, two lanes each.
    let mut sums = [[vdupq_n_s32(0); 8]; R];
    for g in 0..kb {
        // SAFETY: group g < kb of the block is 64 bytes at g·64 < b.len() (asserted).
        let bv: [int8x8_t; 8] = unsafe {
            let p = b.as_ptr().add(g * 64);
            core::array::from_fn(|q| vld1_s8(p.add(8 * q)))
        };
        for (r, row) in sums.iter_mut().enumerate() {
            // SAFETY: bytes 4g..4g + 4 of row r lie inside `a` (asserted length).
            let word =
                unsafe { (a.as_ptr().add(r * 4 * kb + 4 * g) as *const i32).read_unaligned() };
            let av = vreinterpret_s8_s32(vdup_n_s32(word));
            for (s, bq) in row.iter_mut().zip(bv) {
                *s = vpadalq_s16(*s, vmull_s8(av, bq));
            }
        }
    }
    for (out, row) in acc.iter_mut().zip(&sums) {
        for q in 0..4 {
            // Lanes (2q: d01, d23, 2q+1: d01, d23) pairwise: columns 4q .. 4q + 4.
            let cols = vpaddq_s32(row[2 * q], row[2 * q + 1]);
            // SAFETY: 4 lanes stored into 4 of the 16 entries of `out`.
            unsafe { vst1q_s32(out.as_mut_ptr().add(4 * q), cols) };
        }
    }
}
