//! Safe entry points to the int8 SIMD kernels.
//!
//! Each wrapper picks the widest int8 ISA that both the requested [`Tier`] and the CPU
//! allow (AVX-512 VNNI for `Tier::Avx512`, else AVX2), after the public functions in
//! [`crate::quant`] have validated every length and stage. They return `false` when no
//! ISA applies, and the caller runs the scalar reference.

use std::ops::Range;

use crate::dispatch::Tier;
use crate::quant::qgemm::{Dequant, PackedB, QGemmShape};
use crate::quant::{QAddParams, Requant};
use crate::reference::ConvGeom;

/// Where a GEMM micro-tile writes, with the output stage's per-column vectors `[N]`.
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
pub(crate) enum Out<'a> {
    /// Requantized `u8`.
    U8 {
        c: &'a mut [u8],
        bias: &'a [i32],
        mul: &'a [i32],
        shift: &'a [i32],
        zp: i32,
        qmin: i32,
        qmax: i32,
        /// Every channel has total shift 32 ([`Requant::is_q32`]).
        q32: bool,
        /// A tensor laid out like `c` (row stride ldc) added to the requantized codes
        /// with these parameters (the codes are the add's `a`).
        res: Option<(&'a [u8], &'a QAddParams)>,
    },
    /// Dequantized `f32`.
    F32 {
        c: &'a mut [f32],
        bias_i32: &'a [i32],
        scale: &'a [f32],
        bias: &'a [f32],
        lo: f32,
        hi: f32,
    },
}

impl<'a> Out<'a> {
    /// The stage's `[N]` `i32` constant, added to every accumulator of its column.
    #[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
    pub(crate) fn bias_i32(&self) -> &'a [i32] {
        match self {
            Out::U8 { bias, .. } => bias,
            Out::F32 { bias_i32, .. } => bias_i32,
        }
    }
}

/// An int8 instruction set.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
#[cfg_attr(not(target_arch = "x86_64"), allow(dead_code))]
enum QIsa {
    /// AVX-512 F/BW/VL + VNNI.
    Vnni,
    /// AVX-512 F/BW/VL without VNNI (depthwise and add only; GEMM uses AVX2).
    Avx512,
    /// AVX2.
    Avx2,
}

#[cfg(target_arch = "x86_64")]
#[derive(Clone, Copy)]
struct QFeatures {
    avx512: bool,
    vnni: bool,
    /// AVX-512 VBMI (`vpermb`), used with VNNI by the depthwise kernel.
    vbmi: bool,
    avx2: bool,
}

#[cfg(target_arch = "x86_64")]
fn qfeatures() -> QFeatures {
    static F: std::sync::OnceLock<QFeatures> = std::sync::OnceLock::new();
    *F.get_or_init(|| {
        let avx512 = std::arch::is_x86_feature_detected!("avx512f")
            && std::arch::is_x86_feature_detected!("avx512bw")
            && std::arch::is_x86_feature_detected!("avx512vl");
        QFeatures {
            avx512,
            vnni: avx512 && std::arch::is_x86_feature_detected!("avx512vnni"),
            vbmi: avx512 && std::arch::is_x86_feature_detected!("avx512vbmi"),
            avx2: std::arch::is_x86_feature_detected!("avx2"),
        }
    })
}

fn qisa(tier: Tier) -> Option<QIsa> {
    #[cfg(target_arch = "x86_64")]
    {
        let f = qfeatures();
        if tier >= Tier::Avx512 && f.vnni {
            return Some(QIsa::Vnni);
        }
        if tier >= Tier::Avx512 && f.avx512 {
            return Some(QIsa::Avx512);
        }
        if tier >= Tier::Avx2 && f.avx2 {
            return Some(QIsa::Avx2);
        }
    }
    let _ = tier;
    None
}

/// Kernel id of the int8 GEMM on `tier`.
pub(crate) fn qgemm_id(tier: Tier) -> Option<&'static str> {
    qisa(tier).map(|i| match i {
        QIsa::Vnni if amx_ready() => "x86_64/amx/qgemm_u8i8_i32_requant_16x64",
        QIsa::Vnni => "x86_64/avx512vnni/qgemm_u8i8_i32_requant_6x64",
        QIsa::Avx512 | QIsa::Avx2 => "x86_64/avx2/qgemm_u8i8_i32_requant_2x16",
    })
}

/// Whether the CPU has AVX-512 VBMI.
fn has_vbmi() -> bool {
    #[cfg(target_arch = "x86_64")]
    {
        qfeatures().vbmi
    }
    #[cfg(not(target_arch = "x86_64"))]
    {
        false
    }
}

/// Kernel id of the int8 depthwise convolution on `tier`.
pub(crate) fn qdwconv_id(tier: Tier) -> Option<&'static str> {
    qisa(tier).map(|i| match i {
        QIsa::Vnni if has_vbmi() => "x86_64/avx512vnni/qdwconv_u8i8_requant_c16",
        QIsa::Vnni | QIsa::Avx512 => "x86_64/avx512/qdwconv_u8i8_requant_c16",
        QIsa::Avx2 => "x86_64/avx2/qdwconv_u8i8_requant_c8",
    })
}

/// Whether the AMX int8 GEMM can run: the CPU has AMX-TILE and AMX-INT8 (with VNNI for
/// the rows it leaves), Linux grants this process the tile data
/// (`arch_prctl(ARCH_REQ_XCOMP_PERM, XFEATURE_XTILEDATA)`), and `SLIMDET_AMX` is not `0`
/// (to measure or triage the VNNI kernel). Decided once per process.
pub(crate) fn amx_ready() -> bool {
    #[cfg(all(target_arch = "x86_64", target_os = "linux"))]
    {
        static READY: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
        *READY.get_or_init(|| {
            if std::env::var("SLIMDET_AMX").is_ok_and(|v| v.trim() == "0") || !qfeatures().vnni {
                return false;
            }
            let leaf7 = core::arch::x86_64::__cpuid_count(7, 0);
            let (tile, int8) = (leaf7.edx & (1 << 24) != 0, leaf7.edx & (1 << 25) != 0);
            if !(tile && int8) {
                return false;
            }
            let ret: i64;
            // SAFETY: `arch_prctl(ARCH_REQ_XCOMP_PERM = 0x1023, XFEATURE_XTILEDATA = 18)`
            // (syscall 158) only extends this process's permitted XSAVE state; it reads
            // no memory, and the `syscall` instruction clobbers rcx and r11.
            unsafe {
                core::arch::asm!(
                    "syscall",
                    inlateout("rax") 158i64 => ret,
                    in("rdi") 0x1023i64,
                    in("rsi") 18i64,
                    lateout("rcx") _,
                    lateout("r11") _,
                    options(nostack),
                );
            }
            ret == 0
        })
    }
    #[cfg(not(all(target_arch = "x86_64", target_os = "linux")))]
    {
        false
    }
}

#[cfg(target_arch = "x86_64")]
fn gemm(isa: QIsa, s: QGemmShape, a: &[u8], b: &PackedB, out: &mut Out) {
    match isa {
        // SAFETY: `amx_ready` confirmed AMX-TILE/INT8 with the tile data granted, and
        // `qisa` AVX-512 F/BW/VL/VNNI; K is a multiple of 4; the layout guarantees are
        // those of the VNNI kernel below.
        QIsa::Vnni if s.m >= 16 && b.k().is_multiple_of(4) && amx_ready() => unsafe {
            super::avx512::qgemm_u8i8_amx(s.m, b.n(), b.k(), a, s.lda, b.as_slice(), out, s.ldc)
        },
        // SAFETY: `qisa` confirmed AVX-512 F/BW/VL/VNNI; the public caller checked that
        // `a` holds m rows of K bytes at stride lda, `out` holds m rows of N at stride ldc,
        // and the stage vectors have N entries; `b` is a `PackedB` of that K and N.
        QIsa::Vnni => unsafe {
            super::avx512::qgemm_u8i8_vnni(s.m, b.n(), b.k(), a, s.lda, b.as_slice(), out, s.ldc)
        },
        // SAFETY: `qisa` confirmed AVX2; same layout guarantees as above.
        QIsa::Avx512 | QIsa::Avx2 => unsafe {
            super::avx2::qgemm_u8i8_avx2(s.m, b.n(), b.k(), a, s.lda, b.as_slice(), out, s.ldc)
        },
    }
}

/// Requantizing GEMM, with the residual add fused when `res` is given; `false` when no
/// SIMD path applies.
pub(crate) fn qgemm_requant(
    tier: Tier,
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    rq: &Requant,
    res: Option<(&[u8], &QAddParams)>,
    c: &mut [u8],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = qisa(tier) {
        let mut out = Out::U8 {
            c,
            bias: &rq.bias,
            mul: &rq.multiplier,
            shift: &rq.shift,
            zp: rq.zero_point,
            qmin: rq.qmin as i32,
            qmax: rq.qmax as i32,
            q32: rq.is_q32(),
            res,
        };
        gemm(isa, s, a, b, &mut out);
        return true;
    }
    let _ = (tier, s, a, b, rq, res, c);
    false
}

/// Dequantizing GEMM; `false` when no SIMD path applies.
pub(crate) fn qgemm_dequant(
    tier: Tier,
    s: QGemmShape,
    a: &[u8],
    b: &PackedB,
    dq: &Dequant,
    c: &mut [f32],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    if let Some(isa) = qisa(tier) {
        let mut out = Out::F32 {
            c,
            bias_i32: &dq.bias_i32,
            scale: &dq.scale,
            bias: &dq.bias,
            lo: dq.lo,
            hi: dq.hi,
        };
        gemm(isa, s, a, b, &mut out);
        return true;
    }
    let _ = (tier, s, a, b, dq, c);
    false
}

/// Depthwise convolution; `false` when no SIMD path applies.
#[allow(clippy::too_many_arguments)]
pub(crate) fn qdwconv(
    tier: Tier,
    g: &ConvGeom,
    x: &[u8],
    x_zp: i32,
    w: &[i8],
    rq: &Requant,
    rows: Range<usize>,
    out: &mut [u8],
) -> bool {
    #[cfg(target_arch = "x86_64")]
    match qisa(tier) {
        // SAFETY: AVX-512 F/BW/VL confirmed, and VBMI + VNNI when the flag is set;
        // `qdwconv::check` validated every length.
        Some(isa @ (QIsa::Vnni | QIsa::Avx512)) => unsafe {
            let vbmi_vnni = isa == QIsa::Vnni && has_vbmi();
            super::avx512::qdwconv_u8i8_c16(vbmi_vnni, g, x, x_zp, w, rq, rows, out);
            return true;
        },
        // SAFETY: AVX2 confirmed; `qdwconv::check` validated every length.
        Some(QIsa::Avx2) => unsafe {
            super::avx2::qdwconv_u8i8_c8(g, x, x_zp, w, rq, rows, out);
            return true;
        },
        None => {}
    }
    let _ = (tier, g, x, x_zp, w, rq, rows, out);
    false
}

/// Residual add; `false` when no SIMD path applies.
pub(crate) fn qadd(tier: Tier, a: &[u8], b: &[u8], p: &QAddParams, out: &mut [u8]) -> bool {
    #[cfg(target_arch = "x86_64")]
    match qisa(tier) {
        // SAFETY: AVX-512 F/BW/VL confirmed; the caller checked equal lengths and `p`.
        Some(QIsa::Vnni | QIsa::Avx512) => unsafe {
            super::avx512::qadd_u8(a, b, p, out);
            return true;
        },
        // SAFETY: AVX2 confirmed; the caller checked equal lengths and `p`.
        Some(QIsa::Avx2) => unsafe {
            super::avx2::qadd_u8(a, b, p, out);
            return true;
        },
        None => {}
    }
    let _ = (tier, a, b, p, out);
    false
}
