//! Static shape inference: the shape of every value for a given input shape.

use crate::error::{CoreError, Result};
use crate::graph::{Graph, Node};
use crate::ops::Op;

/// Shapes of all values of `g` when its input is `input` (`[N, H, W, C]`).
pub fn infer(g: &Graph, input: &[usize]) -> Result<Vec<Vec<usize>>> {
    g.validate()?;
    let mut shapes: Vec<Vec<usize>> = vec![Vec::new(); g.num_values];
    shapes[g.input] = input.to_vec();
    for n in &g.nodes {
        let ins: Vec<&[usize]> = n.inputs.iter().map(|&i| shapes[i].as_slice()).collect();
        shapes[n.output] = node_shape(n, &ins)?;
    }
    Ok(shapes)
}

fn err(n: &Node, reason: String) -> CoreError {
    CoreError::Shape {
        node: n.name.clone(),
        reason,
    }
}

fn one<'a>(n: &Node, ins: &[&'a [usize]]) -> Result<&'a [usize]> {
    match ins {
        [x] => Ok(x),
        _ => Err(err(n, format!("expects 1 input, got {}", ins.len()))),
    }
}

/// Output shape of one node from its input shapes.
pub fn node_shape(n: &Node, ins: &[&[usize]]) -> Result<Vec<usize>> {
    match &n.op {
        Op::Conv(c) => {
            let x = one(n, ins)?;
            let &[b, h, w, ch] = x else {
                return Err(err(n, format!("conv input must be NHWC, got {x:?}")));
            };
            let ws = c.weight.shape();
            if ws.len() != 4 || c.groups == 0 || ws[0] % c.groups != 0 {
                return Err(err(
                    n,
                    format!("bad weight shape {ws:?} for groups {}", c.groups),
                ));
            }
            if ch != c.in_channels() {
                return Err(err(
                    n,
                    format!(
                        "input has {ch} channels, weight {ws:?} with groups {} expects {}",
                        c.groups,
                        c.in_channels()
                    ),
                ));
            }
            if let Some(bias) = &c.bias
                && bias.numel() != ws[0]
            {
                return Err(err(
                    n,
                    format!("bias has {} values for {} outputs", bias.numel(), ws[0]),
                ));
            }
            if c.stride.contains(&0) || c.dilation.contains(&0) {
                return Err(err(n, "stride and dilation must be ≥ 1".into()));
            }
            let g = c.geom(&[b, h, w, ws[1] * c.groups]);
            let (oh, ow) = (g.out_h(), g.out_w());
            if oh == 0 || ow == 0 {
                return Err(err(
                    n,
                    format!("kernel {:?} does not fit input {h}x{w}", &ws[2..]),
                ));
            }
            Ok(vec![b, oh, ow, ws[0]])
        }
        Op::BatchNorm(bn) => {
            let x = one(n, ins)?;
            let c = bn.channels();
            let ok = x.last() == Some(&c)
                && [&bn.beta, &bn.mean, &bn.var].iter().all(|t| t.numel() == c);
            if !ok {
                return Err(err(n, format!("batch norm of {c} channels on input {x:?}")));
            }
            Ok(x.to_vec())
        }
        Op::Act(_) | Op::Softmax | Op::HardSwish | Op::HardSigmoid => Ok(one(n, ins)?.to_vec()),
        Op::GlobalAvgPool => match one(n, ins)? {
            [b, h, w, c] if h * w > 0 => Ok(vec![*b, 1, 1, *c]),
            x => Err(err(n, format!("global average pool needs NHWC, got {x:?}"))),
        },
        Op::MaxPool(p) => match one(n, ins)? {
            [b, h, w, c] => match (p.out_size(0, *h), p.out_size(1, *w)) {
                (Some(oh), Some(ow)) => Ok(vec![*b, oh, ow, *c]),
                _ => Err(err(n, format!("max pool {p:?} does not fit input {h}x{w}"))),
            },
            x => Err(err(n, format!("max pool needs NHWC, got {x:?}"))),
        },
        Op::ChannelMul => match ins {
            [x, s] if x.len() == 4 && s[..] == [x[0], 1, 1, x[3]] => Ok(x.to_vec()),
            _ => Err(err(
                n,
                format!("channel multiply needs [N, H, W, C] and [N, 1, 1, C], got {ins:?}"),
            )),
        },
        Op::Add(_) => match ins {
            [a, b] if a == b => Ok(a.to_vec()),
            _ => Err(err(n, format!("add needs two equal shapes, got {ins:?}"))),
        },
        Op::Concat { axis } => {
            let first = ins
                .first()
                .ok_or_else(|| err(n, "concat of nothing".into()))?;
            if *axis >= first.len() {
                return Err(err(n, format!("axis {axis} out of range for {first:?}")));
            }
            let mut out = first.to_vec();
            out[*axis] = 0;
            for s in ins {
                let same_rank = s.len() == first.len();
                if !same_rank
                    || s.iter()
                        .zip(first.iter())
                        .enumerate()
                        .any(|(i, (a, b))| i != *axis && a != b)
                {
                    return Err(err(
                        n,
                        format!("concat on axis {axis} of mismatched shapes {ins:?}"),
                    ));
                }
                out[*axis] += s[*axis];
            }
            Ok(out)
        }
        Op::Reshape(dims) => {
            let x = one(n, ins)?;
            let overflow = || err(n, format!("reshape {dims:?} of {x:?} overflows"));
            let product = |s: &[usize]| s.iter().try_fold(1usize, |a, &d| a.checked_mul(d));
            let total = product(x).ok_or_else(overflow)?;
            let mut out = Vec::with_capacity(dims.len());
            let mut infer_at = None;
            for (i, &d) in dims.iter().enumerate() {
                match d {
                    -1 if infer_at.is_none() => {
                        infer_at = Some(i);
                        out.push(1);
                    }
                    0 if i < x.len() => out.push(x[i]),
                    d if d > 0 => out.push(d as usize),
                    _ => return Err(err(n, format!("bad reshape {dims:?} of {x:?}"))),
                }
            }
            let known = product(&out).ok_or_else(overflow)?;
            if let Some(i) = infer_at {
                if known == 0 || !total.is_multiple_of(known) {
                    return Err(err(n, format!("cannot reshape {x:?} to {dims:?}")));
                }
                out[i] = total / known;
            }
            if product(&out) != Some(total) {
                return Err(err(n, format!("cannot reshape {x:?} to {dims:?}")));
            }
            Ok(out)
        }
        Op::Transpose(perm) => {
            let x = one(n, ins)?;
            let mut seen = vec![false; x.len()];
            if perm.len() != x.len()
                || perm
                    .iter()
                    .any(|&p| p >= x.len() || std::mem::replace(&mut seen[p], true))
            {
                return Err(err(n, format!("bad permutation {perm:?} for {x:?}")));
            }
            Ok(perm.iter().map(|&p| x[p]).collect())
        }
    }
}
