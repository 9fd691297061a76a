//! A small reference interpreter for the ONNX operators that are not layers of the engine:
//! shape arithmetic (folded to constants at import time) and element-wise
//! post-processing such as UltraFace's box decoding (run after the engine, the "tail").
//!
//! Operators are stored with their parameters resolved (attributes, and the constant
//! inputs that newer opsets use instead of attributes), so each has only data inputs.
//! Values are in ONNX axis order; the interpreter knows nothing of NHWC.

mod kernels;

pub use kernels::{norm_axis, perm_of, reshape_dims};

use kernels::{binary, broadcast, concat, offsets, pick, slice_plan, softmax, strides};

use crate::value::{Data, Value, numel};

/// Binary element-wise operators (numpy broadcasting).
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum BinOp {
    /// `a + b`.
    Add,
    /// `a − b`.
    Sub,
    /// `a · b`.
    Mul,
    /// `a / b` (integer division truncates; division by zero is an error).
    Div,
}

/// Unary element-wise operators.
#[derive(Clone, Copy, Debug, PartialEq)]
pub enum UnOp {
    /// `eˣ`.
    Exp,
    /// `ln x`.
    Log,
    /// `√x`.
    Sqrt,
    /// `−x`.
    Neg,
    /// `|x|`.
    Abs,
    /// `max(x, 0)`.
    Relu,
    /// `1 / (1 + e⁻ˣ)`.
    Sigmoid,
    /// `tanh x`.
    Tanh,
    /// `x`.
    Identity,
}

/// An interpreter operator with resolved parameters.
#[derive(Clone, Debug, PartialEq)]
pub enum Op {
    /// Two inputs, broadcast.
    Binary(BinOp),
    /// One input.
    Unary(UnOp),
    /// `min(max(x, min), max)`.
    Clip {
        /// Lower bound.
        min: f32,
        /// Upper bound.
        max: f32,
    },
    /// ONNX `Slice` (opset ≥ 10 semantics; older attributes map onto it).
    Slice {
        /// Start per sliced axis.
        starts: Vec<i64>,
        /// End per sliced axis (exclusive, clamped).
        ends: Vec<i64>,
        /// Sliced axes.
        axes: Vec<i64>,
        /// Steps (non-zero).
        steps: Vec<i64>,
    },
    /// Concatenation along `axis`.
    Concat {
        /// Axis (negative counts from the end).
        axis: i64,
    },
    /// Softmax; `legacy` (opset < 13) flattens `[.., axis, ..]` into rows first.
    Softmax {
        /// Axis.
        axis: i64,
        /// Opset < 13 coercion to 2-D.
        legacy: bool,
    },
    /// Reshape to a (resolved at run time) target.
    Reshape {
        /// Target with `0` and `-1` allowed.
        shape: Vec<i64>,
        /// Whether `0` means an empty dimension instead of "copy".
        allowzero: bool,
    },
    /// Flatten to 2-D at `axis`.
    Flatten {
        /// Axis.
        axis: i64,
    },
    /// Axis permutation (reversal when None).
    Transpose {
        /// Output axis `i` is input axis `perm[i]`.
        perm: Option<Vec<i64>>,
    },
    /// Inserts size-1 axes.
    Unsqueeze {
        /// Positions in the output.
        axes: Vec<i64>,
    },
    /// Removes size-1 axes (all of them when None).
    Squeeze {
        /// Axes to remove.
        axes: Option<Vec<i64>>,
    },
    /// `Gather(data, indices)` along `axis`.
    Gather {
        /// Axis.
        axis: i64,
    },
    /// A `QuantizeLinear` → `DequantizeLinear` pair on a float tensor (uint8, rounding
    /// half to even as ONNX specifies): `(clamp(round(x / scale) + zp, 0, 255) − zp) · scale`.
    FakeQuant {
        /// Step between codes.
        scale: f32,
        /// Code of 0.
        zero_point: i32,
    },
    /// Element type conversion: to f32 when `to_float`, else to i64.
    Cast {
        /// Target is floating point.
        to_float: bool,
    },
    /// The input's shape as an i64 vector.
    Shape,
    /// A tensor of the shape given by the (constant) input, filled with `value`.
    ConstantOfShape(Value),
}

fn unary_f32(op: UnOp, x: f32) -> f32 {
    match op {
        UnOp::Exp => x.exp(),
        UnOp::Log => x.ln(),
        UnOp::Sqrt => x.sqrt(),
        UnOp::Neg => -x,
        UnOp::Abs => x.abs(),
        UnOp::Relu => x.max(0.0),
        UnOp::Sigmoid => 1.0 / (1.0 + (-x).exp()),
        UnOp::Tanh => x.tanh(),
        UnOp::Identity => x,
    }
}

fn one<'a, T: ?Sized>(ins: &[&'a T]) -> Result<&'a T, String> {
    match ins {
        [x] => Ok(x),
        _ => Err(format!("expects 1 input, got {}", ins.len())),
    }
}

fn two<'a, T: ?Sized>(ins: &[&'a T]) -> Result<(&'a T, &'a T), String> {
    match ins {
        [a, b] => Ok((a, b)),
        _ => Err(format!("expects 2 inputs, got {}", ins.len())),
    }
}

impl Op {
    /// Output shape for inputs of shapes `ins` (static shapes of the tail).
    pub fn out_shape(&self, ins: &[&[usize]]) -> Result<Vec<usize>, String> {
        let out = match self {
            Op::Binary(_) => {
                let (a, b) = two(ins)?;
                broadcast(a, b)?
            }
            Op::Unary(_) | Op::Clip { .. } | Op::Cast { .. } | Op::FakeQuant { .. } => {
                one(ins)?.to_vec()
            }
            Op::Softmax { axis, .. } => {
                let x = one(ins)?;
                norm_axis(*axis, x.len())?;
                x.to_vec()
            }
            Op::Slice {
                starts,
                ends,
                axes,
                steps,
            } => slice_plan(one(ins)?, starts, ends, axes, steps)?.0,
            Op::Concat { axis } => {
                let first = ins.first().ok_or("concat of nothing")?;
                let a = norm_axis(*axis, first.len())?;
                let mut out = first.to_vec();
                out[a] = 0;
                for s in ins {
                    let same =
                        s.len() == first.len() && (0..s.len()).all(|i| i == a || s[i] == first[i]);
                    if !same {
                        return Err(format!("concat on axis {axis} of shapes {ins:?}"));
                    }
                    out[a] += s[a];
                }
                out
            }
            Op::Reshape { shape, allowzero } => reshape_dims(one(ins)?, shape, *allowzero)?,
            Op::Flatten { axis } => {
                let x = one(ins)?;
                let a = if *axis == x.len() as i64 {
                    x.len()
                } else {
                    norm_axis(*axis, x.len())?
                };
                vec![numel(&x[..a])?, numel(&x[a..])?]
            }
            Op::Transpose { perm } => {
                let x = one(ins)?;
                perm_of(perm.as_deref(), x.len())?
                    .iter()
                    .map(|&p| x[p])
                    .collect()
            }
            Op::Unsqueeze { axes } => {
                let x = one(ins)?;
                let rank = x.len() + axes.len();
                let mut mark = vec![false; rank];
                for &a in axes {
                    let a = norm_axis(a, rank)?;
                    if std::mem::replace(&mut mark[a], true) {
                        return Err(format!("axis {a} repeated in {axes:?}"));
                    }
                }
                let mut it = x.iter();
                mark.iter()
                    .map(|&m| if m { 1 } else { *it.next().unwrap_or(&1) })
                    .collect()
            }
            Op::Squeeze { axes } => {
                let x = one(ins)?;
                let mut drop = vec![false; x.len()];
                match axes {
                    None => x
                        .iter()
                        .zip(drop.iter_mut())
                        .for_each(|(&d, m)| *m = d == 1),
                    Some(axes) => {
                        for &a in axes {
                            let a = norm_axis(a, x.len())?;
                            if x[a] != 1 {
                                return Err(format!("cannot squeeze axis {a} of {x:?}"));
                            }
                            drop[a] = true;
                        }
                    }
                }
                x.iter()
                    .zip(&drop)
                    .filter(|(_, m)| !**m)
                    .map(|(&d, _)| d)
                    .collect()
            }
            Op::Gather { axis } => {
                let (d, i) = two(ins)?;
                let a = norm_axis(*axis, d.len())?;
                [&d[..a], i, &d[a + 1..]].concat()
            }
            Op::Shape => vec![one(ins)?.len()],
            Op::ConstantOfShape(_) => {
                return Err("ConstantOfShape needs a constant shape input".into());
            }
        };
        numel(&out)?;
        Ok(out)
    }

    /// Evaluates the operator.
    pub fn eval(&self, ins: &[&Value]) -> Result<Value, String> {
        if let Op::ConstantOfShape(fill) = self {
            let shape = one(ins)?
                .to_i64s()?
                .iter()
                .map(|&d| usize::try_from(d).map_err(|_| format!("bad dimension {d}")))
                .collect::<Result<Vec<_>, _>>()?;
            let n = numel(&shape)?;
            return Ok(match &fill.data {
                Data::F32(v) => Value::f32(shape, vec![*v.first().unwrap_or(&0.0); n]),
                Data::I64(v) => Value::i64(shape, vec![*v.first().unwrap_or(&0); n]),
            });
        }
        let shapes: Vec<&[usize]> = ins.iter().map(|v| v.shape.as_slice()).collect();
        let out = self.out_shape(&shapes)?;
        let moved = |offs: Vec<usize>| -> Result<Value, String> {
            let x = ins[0];
            let data = match &x.data {
                Data::F32(v) => Data::F32(pick(v, &offs)?),
                Data::I64(v) => Data::I64(pick(v, &offs)?),
            };
            Ok(Value {
                shape: out.clone(),
                data,
            })
        };
        match self {
            Op::Binary(op) => {
                let (a, b) = (ins[0], ins[1]);
                let data = match (&a.data, &b.data) {
                    (Data::F32(x), Data::F32(y)) => {
                        let f: fn(f32, f32) -> f32 = match op {
                            BinOp::Add => |p, q| p + q,
                            BinOp::Sub => |p, q| p - q,
                            BinOp::Mul => |p, q| p * q,
                            BinOp::Div => |p, q| p / q,
                        };
                        Data::F32(binary((x, &a.shape), (y, &b.shape), &out, f)?)
                    }
                    (Data::I64(x), Data::I64(y)) => {
                        if *op == BinOp::Div && y.contains(&0) {
                            return Err("integer division by zero".into());
                        }
                        let f: fn(i64, i64) -> i64 = match op {
                            BinOp::Add => |p, q| p.wrapping_add(q),
                            BinOp::Sub => |p, q| p.wrapping_sub(q),
                            BinOp::Mul => |p, q| p.wrapping_mul(q),
                            BinOp::Div => |p, q| p.wrapping_div(q),
                        };
                        Data::I64(binary((x, &a.shape), (y, &b.shape), &out, f)?)
                    }
                    _ => return Err("inputs have different element types".into()),
                };
                Ok(Value { shape: out, data })
            }
            Op::Unary(op) => {
                let data = match (&ins[0].data, op) {
                    (Data::F32(x), _) => Data::F32(x.iter().map(|&v| unary_f32(*op, v)).collect()),
                    (Data::I64(x), UnOp::Identity) => Data::I64(x.clone()),
                    (Data::I64(x), UnOp::Neg) => {
                        Data::I64(x.iter().map(|v| v.wrapping_neg()).collect())
                    }
                    (Data::I64(x), UnOp::Abs) => {
                        Data::I64(x.iter().map(|v| v.wrapping_abs()).collect())
                    }
                    (Data::I64(x), UnOp::Relu) => {
                        Data::I64(x.iter().map(|v| (*v).max(0)).collect())
                    }
                    (Data::I64(_), _) => return Err(format!("{op:?} needs a float input")),
                };
                Ok(Value { shape: out, data })
            }
            Op::FakeQuant { scale, zero_point } => {
                let x = ins[0]
                    .as_f32()
                    .ok_or("QuantizeLinear needs a float input")?;
                let zp = *zero_point as f32;
                Ok(Value::f32(
                    out,
                    x.iter()
                        .map(|v| {
                            (((v / scale).round_ties_even() + zp).clamp(0.0, 255.0) - zp) * scale
                        })
                        .collect(),
                ))
            }
            Op::Clip { min, max } => {
                let x = ins[0].as_f32().ok_or("Clip needs a float input")?;
                Ok(Value::f32(
                    out,
                    x.iter().map(|v| v.max(*min).min(*max)).collect(),
                ))
            }
            Op::Cast { to_float } => Ok(match (&ins[0].data, to_float) {
                (Data::I64(x), true) => Value::f32(out, x.iter().map(|&v| v as f32).collect()),
                (Data::F32(x), false) => Value::i64(out, x.iter().map(|&v| v as i64).collect()),
                _ => ins[0].clone(),
            }),
            Op::Softmax { axis, legacy } => {
                let x = ins[0].as_f32().ok_or("Softmax needs a float input")?;
                let a = norm_axis(*axis, out.len())?;
                let outer: usize = out[..a].iter().product();
                let (n, inner) = if *legacy {
                    (out[a..].iter().product(), 1)
                } else {
                    (out[a], out[a + 1..].iter().product())
                };
                Ok(Value::f32(out, softmax(x, outer, n, inner)))
            }
            Op::Slice {
                starts,
                ends,
                axes,
                steps,
            } => {
                let (_, base, st) = slice_plan(&ins[0].shape, starts, ends, axes, steps)?;
                moved(offsets(&out, base, &st)?)
            }
            Op::Transpose { perm } => {
                let x = &ins[0].shape;
                let p = perm_of(perm.as_deref(), x.len())?;
                let st = strides(x);
                let steps: Vec<i64> = p.iter().map(|&a| st[a] as i64).collect();
                moved(offsets(&out, 0, &steps)?)
            }
            Op::Gather { axis } => {
                let (d, idx) = (&ins[0].shape, ins[1].to_i64s()?);
                let a = norm_axis(*axis, d.len())?;
                let (dim, inner) = (d[a], d[a + 1..].iter().product::<usize>());
                let outer: usize = d[..a].iter().product();
                let mut offs = Vec::with_capacity(outer * idx.len() * inner);
                for o in 0..outer {
                    for &j in &idx {
                        let j = if j < 0 { j + dim as i64 } else { j };
                        if !(0..dim as i64).contains(&j) {
                            return Err(format!("gather index {j} out of range 0..{dim}"));
                        }
                        let start = (o * dim + j as usize) * inner;
                        offs.extend(start..start + inner);
                    }
                }
                moved(offs)
            }
            Op::Concat { axis } => {
                let a = norm_axis(*axis, out.len())?;
                let total = numel(&out)?;
                let f: Option<Vec<(&[f32], &[usize])>> = ins
                    .iter()
                    .map(|v| v.as_f32().map(|d| (d, v.shape.as_slice())))
                    .collect();
                if let Some(parts) = f {
                    return Ok(Value::f32(out, concat(&parts, a, total)));
                }
                let parts: Option<Vec<(&[i64], &[usize])>> = ins
                    .iter()
                    .map(|v| match &v.data {
                        Data::I64(d) => Some((d.as_slice(), v.shape.as_slice())),
                        Data::F32(_) => None,
                    })
                    .collect();
                let parts = parts.ok_or("inputs have different element types")?;
                Ok(Value::i64(out, concat(&parts, a, total)))
            }
            Op::Reshape { .. } | Op::Flatten { .. } | Op::Unsqueeze { .. } | Op::Squeeze { .. } => {
                Ok(Value {
                    shape: out,
                    data: ins[0].data.clone(),
                })
            }
            Op::Shape => Ok(Value::i64(
                out,
                ins[0].shape.iter().map(|&d| d as i64).collect(),
            )),
            Op::ConstantOfShape(_) => unreachable!("handled above"),
        }
    }
}
