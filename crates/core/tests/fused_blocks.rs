//! Fused inverted-residual blocks give exactly the values of their layers run one by one:
//! the fused step calls the same kernels in the same order on bands of rows, so the result
//! must be bit-identical, under every kernel tier and with 1 or 2 worker threads.

use slimdet_core::{Act, BatchNorm, Conv2d, Graph, Op, Plan, PlanOptions, Tensor, ValueId};
use slimdet_kernels::dispatch;

/// Deterministic values in [-1, 1).
fn data(n: usize, seed: u64) -> Vec<f32> {
    let mut s = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    (0..n)
        .map(|_| {
            s ^= s << 13;
            s ^= s >> 7;
            s ^= s << 17;
            ((s >> 40) as f32 / (1u64 << 24) as f32) * 2.0 - 1.0
        })
        .collect()
}

fn tensor(shape: &[usize], seed: u64) -> Tensor {
    Tensor::new(shape.to_vec(), data(shape.iter().product(), seed)).unwrap()
}

fn bn(c: usize, seed: u64) -> BatchNorm {
    let pos = |t: Tensor| {
        let d = t.data().iter().map(|v| 0.5 + v.abs()).collect();
        Tensor::new(vec![c], d).unwrap()
    };
    BatchNorm {
        gamma: pos(tensor(&[c], seed)),
        beta: tensor(&[c], seed + 1),
        mean: tensor(&[c], seed + 2),
        var: pos(tensor(&[c], seed + 3)),
        eps: 1e-5,
        num_batches_tracked: None,
    }
}

/// Appends conv → BN → activation (`None`: no activation node).
fn layer(g: &mut Graph, x: ValueId, conv: Conv2d, act: Option<Act>, seed: u64) -> ValueId {
    let c = conv.out_channels();
    let y = g.conv("conv", x, conv);
    let y = g.bn("bn", y, bn(c, seed));
    match act {
        Some(a) => g.act("act", y, a),
        None => y,
    }
}

struct BlockSpec {
    h: usize,
    w: usize,
    cin: usize,
    /// Expanded channels; `None`: no expand layer (the depthwise reads the input).
    expand: Option<usize>,
    stride: usize,
    cout: usize,
}

impl BlockSpec {
    fn mid(&self) -> usize {
        self.expand.unwrap_or(self.cin)
    }
    fn residual(&self) -> bool {
        self.stride == 1 && self.cin == self.cout
    }
    fn expand_conv(&self) -> Conv2d {
        Conv2d::new(tensor(&[self.mid(), self.cin, 1, 1], 10), 1, 0, 1, 1)
    }
    fn dw_conv(&self) -> Conv2d {
        let c = self.mid();
        Conv2d::new(tensor(&[c, 1, 3, 3], 20), self.stride, 1, 1, c)
    }
    fn project_conv(&self) -> Conv2d {
        Conv2d::new(tensor(&[self.cout, self.mid(), 1, 1], 30), 1, 0, 1, 1)
    }

    /// The whole block as one graph.
    fn graph(&self) -> Graph {
        let mut g = Graph::new();
        let x = g.input;
        let mut y = x;
        if self.expand.is_some() {
            y = layer(&mut g, y, self.expand_conv(), Some(Act::Relu6), 1);
        }
        y = layer(&mut g, y, self.dw_conv(), Some(Act::Relu6), 2);
        y = layer(&mut g, y, self.project_conv(), None, 3);
        if self.residual() {
            y = g.push("add", Op::Add(Act::None), &[x, y]);
        }
        g.output("out", y);
        g
    }
}

/// Runs a one-layer graph.
fn run_layer(
    conv: Conv2d,
    act: Option<Act>,
    seed: u64,
    x: &[f32],
    shape: &[usize],
    opts: &PlanOptions,
) -> (Vec<f32>, Vec<usize>) {
    let mut g = Graph::new();
    let input = g.input;
    let y = layer(&mut g, input, conv, act, seed);
    g.output("out", y);
    let mut plan = Plan::new(&g, shape, opts).unwrap();
    let out_shape = plan.output_shapes()[0].1.to_vec();
    (plan.run(x).unwrap()[0].to_vec(), out_shape)
}

fn check(spec: &BlockSpec) {
    let shape = [1, spec.h, spec.w, spec.cin];
    let x = data(shape.iter().product(), 99);
    for tier in dispatch::available() {
        for threads in [1, 2] {
            let opts = PlanOptions {
                threads,
                optimize: true,
                tier: Some(tier),
            };
            let mut plan = Plan::new(&spec.graph(), &shape, &opts).unwrap();
            let fused = plan.run(&x).unwrap()[0].to_vec();
            let steps = plan.profile(&x).unwrap();
            assert!(
                steps.iter().any(|(kind, _, _)| kind.starts_with("Block")),
                "the block was not fused: {steps:?}"
            );

            let (mut y, mut s) = (x.clone(), shape.to_vec());
            if spec.expand.is_some() {
                (y, s) = run_layer(spec.expand_conv(), Some(Act::Relu6), 1, &y, &s, &opts);
            }
            (y, s) = run_layer(spec.dw_conv(), Some(Act::Relu6), 2, &y, &s, &opts);
            (y, _) = run_layer(spec.project_conv(), None, 3, &y, &s, &opts);
            if spec.residual() {
                for (v, r) in y.iter_mut().zip(&x) {
                    *v += r;
                }
            }
            assert_eq!(
                fused.len(),
                y.len(),
                "{} threads {threads} {}x{}",
                tier.name(),
                spec.h,
                spec.w
            );
            let worst = fused
                .iter()
                .zip(&y)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0, f32::max);
            assert!(
                worst == 0.0,
                "{} threads {threads} {}x{} s{}: fused differs from layer by layer by {worst}",
                tier.name(),
                spec.h,
                spec.w,
                spec.stride
            );
        }
    }
}

/// Expanded tensors above the 1 MiB fusion threshold, odd sizes, both strides, with and
/// without a residual.
#[test]
fn fused_blocks_match_layer_by_layer() {
    for spec in [
        BlockSpec {
            h: 61,
            w: 67,
            cin: 24,
            expand: Some(72),
            stride: 1,
            cout: 24,
        },
        BlockSpec {
            h: 61,
            w: 67,
            cin: 24,
            expand: Some(72),
            stride: 2,
            cout: 32,
        },
        BlockSpec {
            h: 47,
            w: 52,
            cin: 16,
            expand: Some(120),
            stride: 1,
            cout: 17,
        },
        BlockSpec {
            h: 75,
            w: 75,
            cin: 64,
            expand: None,
            stride: 1,
            cout: 16,
        },
    ] {
        check(&spec);
    }
}
