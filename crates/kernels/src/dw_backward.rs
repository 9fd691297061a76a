//! Backward of a depthwise convolution (`groups == in_c == out_c`) on one NHWC image:
//! the input gradient and the weight and bias gradients.
//!
//! For each output pixel `(oy, ox)` and tap `(ky, kx)` that lands inside the image at
//! `(iy, ix)`: `dX[iy, ix, :] += W[tap, :] ⊙ dY[oy, ox, :]` and
//! `dW[tap, :] += X[iy, ix, :] ⊙ dY[oy, ox, :]`; `dB[:] += dY[oy, ox, :]`. Channels are
//! contiguous, so every update is a vector multiply-add across channels. The loop is the
//! specification on the scalar tier and is compiled for AVX2 and AVX-512 (see
//! [`crate::bn_train`]'s `multiversion!`), where the compiler vectorises it; the order of the
//! additions is the same on every tier, so results are bit-identical.

use crate::bn_train::multiversion;
#[cfg(target_arch = "x86_64")]
use crate::bn_train::{Isa, isa};
use crate::dispatch::Tier;
use crate::reference::ConvGeom;

/// Where the gradients of one image go. Each is accumulated into (`+=`).
pub struct DwGrads<'a> {
    /// `dX` `[in_h, in_w, C]`, if wanted.
    pub dx: Option<&'a mut [f32]>,
    /// `dW` packed `[kh·kw, C]` (tap-major, as [`crate::dwconv::pack_weight`]), if wanted.
    pub dw: Option<&'a mut [f32]>,
    /// `dB` `[C]`, if wanted.
    pub db: Option<&'a mut [f32]>,
}

#[inline(always)]
fn dw_backward_body(g: &ConvGeom, x: &[f32], dy: &[f32], w: &[f32], out: DwGrads<'_>) {
    let c = g.in_c;
    assert!(
        g.groups == c && g.out_c == c && c > 0,
        "dw_backward_image: not a depthwise geometry"
    );
    let (oh, ow) = (g.out_h(), g.out_w());
    let taps = g.kh * g.kw;
    assert_eq!(
        x.len(),
        g.in_h * g.in_w * c,
        "dw_backward_image: input length"
    );
    assert_eq!(dy.len(), oh * ow * c, "dw_backward_image: dy length");
    assert_eq!(w.len(), taps * c, "dw_backward_image: weight length");
    let DwGrads {
        mut dx,
        mut dw,
        mut db,
    } = out;
    assert!(
        dx.as_ref().is_none_or(|d| d.len() == x.len()),
        "dw_backward_image: dx length"
    );
    assert!(
        dw.as_ref().is_none_or(|d| d.len() == taps * c),
        "dw_backward_image: dw length"
    );
    assert!(
        db.as_ref().is_none_or(|d| d.len() == c),
        "dw_backward_image: db length"
    );
    // Valid input column of each (ox, kx), or None when it falls in the padding.
    let cols: Vec<Option<usize>> = (0..ow)
        .flat_map(|ox| (0..g.kw).map(move |kx| (ox, kx)))
        .map(|(ox, kx)| {
            let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
            (ix >= 0 && ix < g.in_w as isize).then_some(ix as usize)
        })
        .collect();
    for oy in 0..oh {
        let dy_row = &dy[oy * ow * c..(oy + 1) * ow * c];
        if let Some(db) = db.as_deref_mut() {
            for gp in dy_row.chunks_exact(c) {
                for (d, v) in db.iter_mut().zip(gp) {
                    *d += v;
                }
            }
        }
        for ky in 0..g.kh {
            let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
            if iy < 0 || iy >= g.in_h as isize {
                continue;
            }
            let row = iy as usize * g.in_w * c;
            for (ox, gp) in dy_row.chunks_exact(c).enumerate() {
                for kx in 0..g.kw {
                    let Some(ix) = cols[ox * g.kw + kx] else {
                        continue;
                    };
                    let base = row + ix * c;
                    let t = (ky * g.kw + kx) * c;
                    if let Some(dw) = dw.as_deref_mut() {
                        let xp = &x[base..base + c];
                        for ((d, xv), gv) in dw[t..t + c].iter_mut().zip(xp).zip(gp) {
                            *d += xv * gv;
                        }
                    }
                    if let Some(dx) = dx.as_deref_mut() {
                        let wt = &w[t..t + c];
                        for ((d, wv), gv) in dx[base..base + c].iter_mut().zip(wt).zip(gp) {
                            *d += wv * gv;
                        }
                    }
                }
            }
        }
    }
}

multiversion!(
    /// Accumulates the gradients of one image.
    ///
    /// - `x`: the forward input `[in_h, in_w, C]` (needed for `dW`)
    /// - `dy`: the output gradient `[out_h, out_w, C]`
    /// - `w`: the weight packed `[kh·kw, C]` (needed for `dX`)
    ///
    /// # Panics
    /// If `g` is not depthwise or a slice does not match its shape (programmer errors).
    dw_backward_image => dw_backward_body(
        g: &ConvGeom,
        x: &[f32],
        dy: &[f32],
        w: &[f32],
        out: DwGrads<'_>,
    )
);

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

    fn geom(h: usize, w: usize, c: usize, k: usize, s: usize, p: usize, d: usize) -> ConvGeom {
        ConvGeom {
            in_h: h,
            in_w: w,
            in_c: c,
            out_c: c,
            kh: k,
            kw: k,
            stride_h: s,
            stride_w: s,
            pad_h: p,
            pad_w: p,
            pad_h_end: p,
            pad_w_end: p,
            dil_h: d,
            dil_w: d,
            groups: c,
        }
    }

    /// The definition, in f64: every (output pixel, tap, channel) term.
    fn reference(g: &ConvGeom, x: &[f32], dy: &[f32], w: &[f32]) -> [Vec<f64>; 3] {
        let c = g.in_c;
        let mut dx = vec![0.0f64; x.len()];
        let mut dw = vec![0.0f64; w.len()];
        let mut db = vec![0.0f64; c];
        for oy in 0..g.out_h() {
            for ox in 0..g.out_w() {
                for ch in 0..c {
                    let gv = dy[(oy * g.out_w() + ox) * c + ch] as f64;
                    db[ch] += gv;
                    for ky in 0..g.kh {
                        for kx in 0..g.kw {
                            let iy = (oy * g.stride_h + ky * g.dil_h) as isize - g.pad_h as isize;
                            let ix = (ox * g.stride_w + kx * g.dil_w) as isize - g.pad_w as isize;
                            if iy < 0 || ix < 0 || iy >= g.in_h as isize || ix >= g.in_w as isize {
                                continue;
                            }
                            let xi = (iy as usize * g.in_w + ix as usize) * c + ch;
                            let t = (ky * g.kw + kx) * c + ch;
                            dx[xi] += w[t] as f64 * gv;
                            dw[t] += x[xi] as f64 * gv;
                        }
                    }
                }
            }
        }
        [dx, dw, db]
    }

    fn assert_close(got: &[f32], want: &[f64], what: &str) {
        for (i, (a, b)) in got.iter().zip(want).enumerate() {
            assert!(
                (*a as f64 - b).abs() <= 1e-4 * (1.0 + b.abs()),
                "{what}[{i}]: {a} vs {b}"
            );
        }
    }

    #[test]
    fn matches_the_definition_on_edge_shapes_and_every_tier() {
        let cases = [
            geom(5, 6, 3, 3, 1, 1, 1),
            geom(5, 6, 17, 3, 2, 1, 1),
            geom(6, 5, 16, 3, 2, 1, 1),
            geom(7, 7, 33, 3, 2, 0, 1),
            geom(1, 1, 8, 3, 2, 1, 1),
            geom(2, 2, 64, 3, 2, 1, 1),
            geom(9, 8, 5, 5, 1, 2, 1),
            geom(9, 9, 20, 3, 1, 2, 2),
            geom(4, 3, 1, 1, 1, 0, 1),
            // TensorFlow's `SAME` at stride 2 on even sizes: 0 before, 1 after.
            ConvGeom {
                pad_h_end: 1,
                pad_w_end: 1,
                ..geom(8, 6, 17, 3, 2, 0, 1)
            },
        ];
        for (n, g) in cases.iter().enumerate() {
            let c = g.in_c;
            let x = data(g.in_h * g.in_w * c, n as u32);
            let dy = data(g.out_h() * g.out_w() * c, 100 + n as u32);
            let w = data(g.kh * g.kw * c, 200 + n as u32);
            let [rdx, rdw, rdb] = reference(g, &x, &dy, &w);
            let mut first: Option<(Vec<f32>, Vec<f32>, Vec<f32>)> = None;
            for t in [Tier::Scalar, Tier::Avx2, Tier::Avx512] {
                let (mut dx, mut dw, mut db) =
                    (vec![0.0; x.len()], vec![0.0; w.len()], vec![0.0; c]);
                let out = DwGrads {
                    dx: Some(&mut dx),
                    dw: Some(&mut dw),
                    db: Some(&mut db),
                };
                dw_backward_image(t, g, &x, &dy, &w, out);
                let what = format!("case {n} {t:?}");
                assert_close(&dx, &rdx, &format!("{what} dx"));
                assert_close(&dw, &rdw, &format!("{what} dw"));
                assert_close(&db, &rdb, &format!("{what} db"));
                match &first {
                    None => first = Some((dx, dw, db)),
                    Some(f) => assert_eq!(f, &(dx, dw, db), "{what}: tiers differ"),
                }
            }
            // Only dX, accumulated onto existing values.
            let mut dx = vec![1.0; x.len()];
            let out = DwGrads {
                dx: Some(&mut dx),
                dw: None,
                db: None,
            };
            dw_backward_image(Tier::Avx512, g, &x, &dy, &w, out);
            let shifted: Vec<f64> = rdx.iter().map(|v| v + 1.0).collect();
            assert_close(&dx, &shifted, &format!("case {n} dx only"));
        }
    }
}
