//! Index arithmetic shared by the interpreter's operators: axis normalisation,
//! broadcasting, and the "offset map" that turns slicing, transposition, broadcasting and
//! gathering into one generic element copy.
//!
//! Every function checks its arguments and returns an error instead of panicking: the
//! parameters come from files.

use crate::value::numel;

/// Row-major strides of `shape`.
pub fn strides(shape: &[usize]) -> Vec<usize> {
    let mut s = vec![1; shape.len()];
    for a in (0..shape.len().saturating_sub(1)).rev() {
        s[a] = s[a + 1] * shape[a + 1];
    }
    s
}

/// `axis` in `-rank..rank` as an index.
pub fn norm_axis(axis: i64, rank: usize) -> Result<usize, String> {
    let r = rank as i64;
    let a = if axis < 0 { axis + r } else { axis };
    if (0..r).contains(&a) {
        Ok(a as usize)
    } else {
        Err(format!("axis {axis} out of range for rank {rank}"))
    }
}

/// Numpy broadcasting of two shapes.
pub fn broadcast(a: &[usize], b: &[usize]) -> Result<Vec<usize>, String> {
    let r = a.len().max(b.len());
    let dim = |s: &[usize], i: usize| {
        if i + s.len() < r {
            1
        } else {
            s[i + s.len() - r]
        }
    };
    (0..r)
        .map(|i| match (dim(a, i), dim(b, i)) {
            (x, y) if x == y => Ok(x),
            (1, y) => Ok(y),
            (x, 1) => Ok(x),
            _ => Err(format!("shapes {a:?} and {b:?} do not broadcast")),
        })
        .collect()
}

/// Source offsets for every element of an output of shape `out`, where output axis `i`
/// advances the source by `steps[i]` (may be 0 or negative) from `base`.
pub fn offsets(out: &[usize], base: i64, steps: &[i64]) -> Result<Vec<usize>, String> {
    let n = numel(out)?;
    let mut res = Vec::with_capacity(n);
    let mut idx = vec![0usize; out.len()];
    let mut off = base;
    for _ in 0..n {
        res.push(usize::try_from(off).map_err(|_| "negative source offset".to_string())?);
        for a in (0..out.len()).rev() {
            idx[a] += 1;
            off += steps[a];
            if idx[a] < out[a] {
                break;
            }
            off -= steps[a] * out[a] as i64;
            idx[a] = 0;
        }
    }
    Ok(res)
}

/// Offsets reading a tensor of shape `src` broadcast to `out`.
pub fn broadcast_offsets(src: &[usize], out: &[usize]) -> Result<Vec<usize>, String> {
    let st = strides(src);
    let lead = out.len() - src.len();
    let steps: Vec<i64> = (0..out.len())
        .map(|i| {
            if i < lead || src[i - lead] == 1 {
                0
            } else {
                st[i - lead] as i64
            }
        })
        .collect();
    offsets(out, 0, &steps)
}

/// Copies `src[offsets[i]]` into a new vector, checking bounds.
pub fn pick<T: Copy>(src: &[T], offsets: &[usize]) -> Result<Vec<T>, String> {
    offsets
        .iter()
        .map(|&o| {
            src.get(o)
                .copied()
                .ok_or_else(|| "source offset out of range".to_string())
        })
        .collect()
}

/// Element-wise `f(a, b)` with broadcasting to `out`.
pub fn binary<T: Copy>(
    a: (&[T], &[usize]),
    b: (&[T], &[usize]),
    out: &[usize],
    f: impl Fn(T, T) -> T,
) -> Result<Vec<T>, String> {
    if a.1 == out && b.1 == out {
        return Ok(a.0.iter().zip(b.0).map(|(&x, &y)| f(x, y)).collect());
    }
    if a.1 == out && b.0.len() == 1 {
        return Ok(a.0.iter().map(|&x| f(x, b.0[0])).collect());
    }
    let ia = broadcast_offsets(a.1, out)?;
    let ib = broadcast_offsets(b.1, out)?;
    Ok(ia
        .iter()
        .zip(&ib)
        .map(|(&i, &j)| f(a.0[i], b.0[j]))
        .collect())
}

/// Concatenation of `parts` (data, shape) along `axis`; shapes already checked.
pub fn concat<T: Copy>(parts: &[(&[T], &[usize])], axis: usize, total: usize) -> Vec<T> {
    let outer: usize = parts[0].1[..axis].iter().product();
    let mut out = Vec::with_capacity(total);
    for o in 0..outer {
        for (d, s) in parts {
            let chunk: usize = s[axis..].iter().product();
            out.extend_from_slice(&d[o * chunk..(o + 1) * chunk]);
        }
    }
    out
}

/// Output shape, base offset and per-axis steps of an ONNX `Slice` on `shape`.
pub fn slice_plan(
    shape: &[usize],
    starts: &[i64],
    ends: &[i64],
    axes: &[i64],
    steps: &[i64],
) -> Result<(Vec<usize>, i64, Vec<i64>), String> {
    if starts.len() != ends.len() || axes.len() != starts.len() || steps.len() != starts.len() {
        return Err("starts, ends, axes and steps differ in length".into());
    }
    let st = strides(shape);
    let mut out = shape.to_vec();
    let mut step_of: Vec<i64> = st.iter().map(|&s| s as i64).collect();
    let mut base: i64 = 0;
    let mut seen = vec![false; shape.len()];
    for i in 0..starts.len() {
        let a = norm_axis(axes[i], shape.len())?;
        if std::mem::replace(&mut seen[a], true) {
            return Err(format!("axis {} sliced twice", axes[i]));
        }
        let d = shape[a] as i128;
        let (s, e, k) = (starts[i] as i128, ends[i] as i128, steps[i] as i128);
        if k == 0 {
            return Err("slice step 0".into());
        }
        let fix = |v: i128| if v < 0 { v + d } else { v };
        let (s, e) = (fix(s), fix(e));
        let (s, len) = if k > 0 {
            let (s, e) = (s.clamp(0, d), e.clamp(0, d));
            (s, if e > s { (e - s + k - 1) / k } else { 0 })
        } else {
            let (s, e) = (s.clamp(0, (d - 1).max(0)), e.clamp(-1, d - 1));
            (s, if s > e { (s - e + (-k) - 1) / (-k) } else { 0 })
        };
        out[a] = len as usize;
        base += (s as i64) * st[a] as i64;
        // A step beyond the dimension reads one element: clamp it so offsets cannot overflow.
        step_of[a] = (k.clamp(-d.max(1), d.max(1)) as i64) * st[a] as i64;
    }
    Ok((out, base, step_of))
}

/// ONNX `Reshape` target resolution: `0` copies the input dimension (unless
/// `allowzero`), one `-1` is inferred.
pub fn reshape_dims(
    input: &[usize],
    target: &[i64],
    allowzero: bool,
) -> Result<Vec<usize>, String> {
    let total = numel(input)?;
    let mut out = Vec::with_capacity(target.len());
    let mut infer = None;
    for (i, &d) in target.iter().enumerate() {
        match d {
            -1 if infer.is_none() => {
                infer = Some(i);
                out.push(1);
            }
            0 if !allowzero => out.push(
                *input
                    .get(i)
                    .ok_or_else(|| format!("reshape {target:?}: no input dimension {i} to copy"))?,
            ),
            d if d >= 0 => out
                .push(usize::try_from(d).map_err(|_| format!("reshape dimension {d} too large"))?),
            _ => return Err(format!("bad reshape target {target:?}")),
        }
    }
    let known = numel(&out)?;
    if let Some(i) = infer {
        if known == 0 || total % known != 0 {
            return Err(format!("cannot reshape {input:?} to {target:?}"));
        }
        out[i] = total / known;
    }
    if numel(&out)? != total {
        return Err(format!(
            "cannot reshape {input:?} ({total} values) to {target:?}"
        ));
    }
    Ok(out)
}

/// A permutation of `0..rank` (reversed when `perm` is None), validated.
pub fn perm_of(perm: Option<&[i64]>, rank: usize) -> Result<Vec<usize>, String> {
    let p: Vec<usize> = match perm {
        None => (0..rank).rev().collect(),
        Some(p) => p
            .iter()
            .map(|&a| usize::try_from(a).map_err(|_| format!("bad permutation {p:?}")))
            .collect::<Result<_, _>>()?,
    };
    let mut seen = vec![false; rank];
    if p.len() != rank
        || p.iter()
            .any(|&a| a >= rank || std::mem::replace(&mut seen[a], true))
    {
        return Err(format!("bad permutation {p:?} for rank {rank}"));
    }
    Ok(p)
}

/// Softmax over the middle axis of a `[outer, n, inner]` view, max-subtracted.
pub fn softmax(x: &[f32], outer: usize, n: usize, inner: usize) -> Vec<f32> {
    let mut out = vec![0.0; x.len()];
    let mut row = vec![0.0; n];
    for o in 0..outer {
        for i in 0..inner {
            let at = |j: usize| o * n * inner + j * inner + i;
            let m = (0..n).map(|j| x[at(j)]).fold(f32::NEG_INFINITY, f32::max);
            let mut sum = 0.0;
            for (j, r) in row.iter_mut().enumerate() {
                *r = (x[at(j)] - m).exp();
                sum += *r;
            }
            let inv = 1.0 / sum;
            for (j, r) in row.iter().enumerate() {
                out[at(j)] = r * inv;
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn slice_and_broadcast() {
        let (shape, base, steps) = slice_plan(&[1, 5, 4], &[2], &[i64::MAX], &[-1], &[1]).unwrap();
        assert_eq!(shape, vec![1, 5, 2]);
        let src: Vec<i32> = (0..20).collect();
        let got = pick(&src, &offsets(&shape, base, &steps).unwrap()).unwrap();
        assert_eq!(got, vec![2, 3, 6, 7, 10, 11, 14, 15, 18, 19]);
        let (shape, base, steps) = slice_plan(&[5], &[-1], &[i64::MIN], &[0], &[-2]).unwrap();
        let got = pick(&src[..5], &offsets(&shape, base, &steps).unwrap()).unwrap();
        assert_eq!(got, vec![4, 2, 0]);
        assert_eq!(broadcast(&[1, 3, 1], &[2, 1, 4]).unwrap(), vec![2, 3, 4]);
        assert!(broadcast(&[3], &[4]).is_err());
        let b = binary(
            (&[1.0f32, 2.0][..], &[2, 1][..]),
            (&[10.0, 20.0, 30.0][..], &[3][..]),
            &[2, 3],
            |x, y| x + y,
        )
        .unwrap();
        assert_eq!(b, vec![11.0, 21.0, 31.0, 12.0, 22.0, 32.0]);
        assert_eq!(
            reshape_dims(&[1, 6, 2], &[0, -1], false).unwrap(),
            vec![1, 12]
        );
        assert!(reshape_dims(&[1, 6, 2], &[-1, -1], false).is_err());
    }
}
