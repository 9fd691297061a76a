//! Box coding (spec §6): centre/corner conversion, SSD location decoding and encoding,
//! and IoU without the "+1 pixel" convention.

/// Decodes one location `[l0..l3]` against a centre-form prior into a corner-form box
/// `[x1, y1, x2, y2]`: `cx = l0·cv·pw + pcx`, `w = exp(l2·sv)·pw`, ...; not clamped.
#[inline]
pub fn decode(loc: &[f32], prior: &[f32; 4], center_variance: f32, size_variance: f32) -> [f32; 4] {
    let cx = loc[0] * center_variance * prior[2] + prior[0];
    let cy = loc[1] * center_variance * prior[3] + prior[1];
    let w = (loc[2] * size_variance).exp() * prior[2];
    let h = (loc[3] * size_variance).exp() * prior[3];
    [cx - w / 2.0, cy - h / 2.0, cx + w / 2.0, cy + h / 2.0]
}

/// Encodes a corner-form box against a centre-form prior (inverse of [`decode`]).
pub fn encode(
    b: &[f32; 4],
    prior: &[f32; 4],
    center_variance: f32,
    size_variance: f32,
) -> [f32; 4] {
    let (cx, cy) = ((b[0] + b[2]) / 2.0, (b[1] + b[3]) / 2.0);
    let (w, h) = (b[2] - b[0], b[3] - b[1]);
    [
        (cx - prior[0]) / prior[2] / center_variance,
        (cy - prior[1]) / prior[3] / center_variance,
        (w / prior[2]).ln() / size_variance,
        (h / prior[3]).ln() / size_variance,
    ]
}

/// Area of a corner-form box, 0 when degenerate.
#[inline]
pub fn area(b: &[f32; 4]) -> f32 {
    (b[2] - b[0]).max(0.0) * (b[3] - b[1]).max(0.0)
}

/// `iou_of` with eps 1e-5 in the denominator, as pytorch-ssd.
#[inline]
pub fn iou(a: &[f32; 4], b: &[f32; 4]) -> f32 {
    let o = [
        a[0].max(b[0]),
        a[1].max(b[1]),
        a[2].min(b[2]),
        a[3].min(b[3]),
    ];
    let overlap = area(&o);
    overlap / (area(a) + area(b) - overlap + 1e-5)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn encode_inverts_decode() {
        let prior = [0.4, 0.6, 0.2, 0.3];
        let b = [0.3, 0.5, 0.55, 0.8];
        let d = decode(&encode(&b, &prior, 0.1, 0.2), &prior, 0.1, 0.2);
        for k in 0..4 {
            assert!((d[k] - b[k]).abs() < 1e-6, "{d:?} vs {b:?}");
        }
    }

    #[test]
    fn iou_cases() {
        let a = [0.0, 0.0, 2.0, 2.0];
        assert!((iou(&a, &a) - 1.0).abs() < 1e-5);
        assert_eq!(iou(&a, &[3.0, 3.0, 4.0, 4.0]), 0.0);
        let half = iou(&a, &[1.0, 0.0, 3.0, 2.0]);
        assert!((half - 2.0 / 6.0).abs() < 1e-5, "{half}");
    }
}
