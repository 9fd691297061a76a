//! `x86_64/amx/qgemm_u8i8_i32_requant_16x64`: the int8 GEMM on Intel AMX (AMX-TILE and
//! AMX-INT8, Sapphire Rapids and later), with the AVX-512 output stage of the VNNI
//! kernel.
//!
//! One `tdpbusd` multiplies a 16×64 `u8` tile of A by a 64×16 `i8` tile of B into a 16×16
//! `i32` tile (16,384 exact multiply-adds, wrapping like `vpdpbusd`). Two column blocks
//! of 16 rows accumulate in `tmm0`, `tmm1` over the depth, in steps of 64 bytes and a
//! last step of `k mod 64` bytes. B tiles are read straight from
//! [`crate::quant::PackedB`]: its `[16 columns][4 depths]` rows of 64 bytes are the
//! layout `tdpbusd` expects. The accumulators start at the bias (a tile load with row
//! stride 0), and the sums are stored as the vectors the VNNI kernel's output stage
//! reads. Rows beyond the last multiple of 16 go to the VNNI kernel.
//!
//! The instructions are written with `asm!`: Rust's AMX intrinsics are not stable.

use core::arch::asm;
use core::arch::x86_64::*;

use super::qgemm_u8i8_vnni::{Tile, finish, qgemm_u8i8_vnni_rows};
use crate::quant::qgemm::{KR, NR};
use crate::x86_64::quant::Out;

/// Rows per block.
const TM: usize = 16;
/// Depth bytes per full step.
const TK: usize = 64;

/// A 64-byte tile configuration (palette 1).
#[repr(C, align(64))]
struct TileConfig([u8; 64]);

impl TileConfig {
    /// `tmm0`, `tmm1`: 16×16 `i32` sums of two column blocks; `tmm2` / `tmm3`: a full
    /// A step and the last `tail` bytes of depth (a multiple of 4; a second full-step
    /// register when 0); `tmm4`, `tmm5` / `tmm6`, `tmm7`: the two blocks' B steps, full /
    /// last (or a second full set).
    fn new(tail: usize) -> TileConfig {
        let tail = if tail == 0 { TK } else { tail };
        let mut c = [0u8; 64];
        c[0] = 1;
        let mut set = |t: usize, rows: usize, bytes: usize| {
            c[16 + 2 * t..18 + 2 * t].copy_from_slice(&(bytes as u16).to_le_bytes());
            c[48 + t] = rows as u8;
        };
        set(0, TM, 64);
        set(1, TM, 64);
        set(2, TM, TK);
        set(3, TM, tail);
        set(4, TK / KR, 64);
        set(5, TK / KR, 64);
        set(6, tail / KR, 64);
        set(7, tail / KR, 64);
        TileConfig(c)
    }
}

/// Sixteen rows of up to 64 `i32` sums.
#[repr(C, align(64))]
struct Sums([i32; 64 * TM]);

/// One column group's `i32` bias.
#[repr(C, align(64))]
struct Bias([i32; 64]);

/// One depth step of two column blocks: A at `$ap` (row stride `$lda`) into `$at`, the
/// blocks' B rows at `$b0` / `$b1` into `$bt0` / `$bt1`, accumulated into `tmm0` /
/// `tmm1`; the second block only when `$two`.
macro_rules! step {
    ($at:literal, $bt0:literal, $bt1:literal, $ap:expr, $lda:expr, $b0:expr, $b1:expr, $two:expr) => {
        asm!(
            concat!("tileloadd tmm", $at, ", [{a} + {lda}*1]"),
            concat!("tileloadd tmm", $bt0, ", [{b0} + {s}*1]"),
            concat!("tdpbusd tmm0, tmm", $at, ", tmm", $bt0),
            a = in(reg) $ap,
            lda = in(reg) $lda,
            b0 = in(reg) $b0,
            s = in(reg) 64usize,
            options(nostack, readonly),
        );
        if $two {
            asm!(
                concat!("tileloadd tmm", $bt1, ", [{b1} + {s}*1]"),
                concat!("tdpbusd tmm1, tmm", $at, ", tmm", $bt1),
                b1 = in(reg) $b1,
                s = in(reg) 64usize,
                options(nostack, readonly),
            );
        }
    };
}

/// `C = stage(A · B)`.
///
/// Column blocks are taken four at a time (64 columns, whose B steps stay in L1 while
/// every 16-row block of A passes), each 16×64 block in two halves of two tiles.
///
/// # Safety
/// The CPU has AMX-TILE and AMX-INT8 with tile data granted to the process
/// (`crate::x86_64::quant::amx_ready`), and AVX-512 F/BW/VL/VNNI; the layout contract of
/// `qgemm_u8i8_vnni` holds; `k` is a multiple of 4 (so that the last depth step reads
/// whole groups of four bytes inside each row).
#[target_feature(enable = "avx512f,avx512bw,avx512vl,avx512vnni")]
#[allow(clippy::too_many_arguments)]
pub(in crate::x86_64) unsafe fn qgemm_u8i8_amx(
    m: usize,
    n: usize,
    k: usize,
    a: &[u8],
    lda: usize,
    b: &[i8],
    out: &mut Out,
    ldc: usize,
) {
    debug_assert!(k.is_multiple_of(KR));
    let full_m = m / TM * TM;
    let (kb, nblocks, tail) = (k / KR, n.div_ceil(NR), k % TK);
    let cfg = TileConfig::new(tail);
    let mut sums = Sums([0; 64 * TM]);
    if full_m > 0 {
        // SAFETY: AMX is usable (contract); the configuration is 64 aligned bytes.
        unsafe { asm!("ldtilecfg [{}]", in(reg) cfg.0.as_ptr(), options(nostack, readonly)) };
    }
    let bstep = |blk: usize, k0: usize| {
        // SAFETY: block blk < nblocks and depth group k0 / 4 < kb: inside the packed B.
        unsafe { b.as_ptr().add((blk * kb + k0 / KR) * NR * KR) }
    };
    let bias = out.bias_i32();
    for jb in (0..nblocks).step_by(4) {
        let nb = (nblocks - jb).min(4);
        // The group's `i32` bias, zero past column n: every accumulator tile starts as
        // 16 copies of its 16 bias values (a tile load with row stride 0).
        let mut bias_rows = Bias([0; 64]);
        let (c0, c1) = (jb * NR, ((jb + nb) * NR).min(n));
        bias_rows.0[..c1 - c0].copy_from_slice(&bias[c0..c1]);
        // Sums are stored as the `[16][16·nb]` vectors `finish` reads.
        let row_bytes = 64 * nb;
        for i in (0..full_m).step_by(TM) {
            // SAFETY: row i starts inside `a` (i + 16 ≤ m).
            let arow = unsafe { a.as_ptr().add(i * lda) };
            for q0 in (0..nb).step_by(2) {
                let two = q0 + 1 < nb;
                let (b0, b1) = (jb + q0, jb + q0 + usize::from(two));
                // SAFETY: tiles configured above; A steps read rows i..i + 16 < m at bytes
                // k0..k0 + 64 (or the tail) ≤ k; B steps read rows of 64 bytes of blocks
                // b0, b1 < nblocks at depth groups < kb; the stores write the 4 KB buffer
                // (rows of 256 bytes, columns 16·q0.. + 32 ≤ 64).
                unsafe {
                    let bp = bias_rows.0.as_ptr().add(16 * q0);
                    asm!(
                        "tileloadd tmm0, [{p} + {z}*1]",
                        "tileloadd tmm1, [{p2} + {z}*1]",
                        p = in(reg) bp,
                        p2 = in(reg) bp.add(16 * usize::from(two)),
                        z = in(reg) 0usize,
                        options(nostack, readonly),
                    );
                    let mut k0 = 0;
                    // Without a depth remainder the second register set is free: full steps
                    // alternate between the two, so one step's loads need not wait for the
                    // previous step's products to release their tiles.
                    while tail == 0 && k0 + 2 * TK <= k {
                        step!(
                            "2",
                            "4",
                            "5",
                            arow.add(k0),
                            lda,
                            bstep(b0, k0),
                            bstep(b1, k0),
                            two
                        );
                        step!(
                            "3",
                            "6",
                            "7",
                            arow.add(k0 + TK),
                            lda,
                            bstep(b0, k0 + TK),
                            bstep(b1, k0 + TK),
                            two
                        );
                        k0 += 2 * TK;
                    }
                    while k0 + TK <= k {
                        step!(
                            "2",
                            "4",
                            "5",
                            arow.add(k0),
                            lda,
                            bstep(b0, k0),
                            bstep(b1, k0),
                            two
                        );
                        k0 += TK;
                    }
                    if tail > 0 {
                        step!(
                            "3",
                            "6",
                            "7",
                            arow.add(k0),
                            lda,
                            bstep(b0, k0),
                            bstep(b1, k0),
                            two
                        );
                    }
                    let sp = sums.0.as_mut_ptr().cast::<u8>().add(64 * q0);
                    asm!(
                        "tilestored [{p} + {s}*1], tmm0",
                        p = in(reg) sp,
                        s = in(reg) row_bytes,
                        options(nostack),
                    );
                    if two {
                        asm!(
                            "tilestored [{p} + {s}*1], tmm1",
                            p = in(reg) sp.add(64),
                            s = in(reg) row_bytes,
                            options(nostack),
                        );
                    }
                }
            }
            let t = Tile {
                i,
                jb,
                m: TM,
                n,
                k,
                lda,
                ldc,
            };
            // SAFETY: the block lies inside the matrices (rows i..i + 16 ≤ m, blocks
            // jb..jb + nb ≤ nblocks); the contract of `finish` is this function's.
            // `sums` holds 16 rows of nb vectors, bias included, contiguous and 64-byte
            // aligned: exactly a `[[__m512i; nb]; 16]`.
            unsafe {
                let v = sums.0.as_ptr();
                match nb {
                    4 => finish::<TM, 4>(t, &*v.cast::<[[__m512i; 4]; TM]>(), out),
                    3 => finish::<TM, 3>(t, &*v.cast::<[[__m512i; 3]; TM]>(), out),
                    2 => finish::<TM, 2>(t, &*v.cast::<[[__m512i; 2]; TM]>(), out),
                    _ => finish::<TM, 1>(t, &*v.cast::<[[__m512i; 1]; TM]>(), out),
                }
            }
        }
    }
    if full_m > 0 {
        // SAFETY: AMX is usable; releases the tile state.
        unsafe { asm!("tilerelease", options(nostack, nomem)) };
    }
    if full_m < m {
        // SAFETY: forwarded contract, for the rows the 16-row blocks left.
        unsafe { qgemm_u8i8_vnni_rows(full_m, m, n, k, a, lda, b, out, ldc) };
    }
}
