//! Gradient checks: every op's backward against central finite differences.
//!
//! The loss is `L = Σ_outputs ⟨R, out⟩` with a fixed random `R`, so `dL/dout = R` is the
//! seed. Each parameter and input element checked (up to 48 per tensor, sampled) is
//! perturbed by ±`EPS` and `(L⁺ − L⁻) / 2·EPS` is compared with the analytic gradient.
//! Forward passes are f32, the loss is summed in f64. Tolerance: `|a − n| ≤ TOL ·
//! max(1, |a|, |n|)` with `TOL = 1e-2` (f32 rounding of a loss of size ~10 divided by
//! 2·EPS = 2e-2 gives noise ~1e-4; the rest is headroom for the O(EPS²) curvature of
//! batch norm). Values are kept at least 0.05 away from activation kinks.

use slimdet_core::{Act, BatchNorm, Conv2d, Graph, Op, Plan, PlanOptions, Tensor, ValueId};
use slimdet_train::rng::Rng;
use slimdet_train::{BackwardOptions, Mode, TrainGraph};

const EPS: f32 = 1e-2;
const TOL: f64 = 1e-2;

fn rand_tensor(rng: &mut Rng, shape: Vec<usize>, lo: f64, hi: f64) -> Tensor {
    let n = shape.iter().product();
    Tensor::new(shape, (0..n).map(|_| rng.uniform(lo, hi) as f32).collect()).unwrap()
}

#[allow(clippy::too_many_arguments)]
fn conv(
    rng: &mut Rng,
    cin: usize,
    cout: usize,
    k: usize,
    s: usize,
    p: usize,
    d: usize,
    groups: usize,
    bias: bool,
) -> Conv2d {
    let w = rand_tensor(rng, vec![cout, cin / groups, k, k], -0.5, 0.5);
    let mut c = Conv2d::new(w, s, p, d, groups);
    if bias {
        c.bias = Some(rand_tensor(rng, vec![cout], -0.5, 0.5));
    }
    c
}

fn bn(rng: &mut Rng, c: usize) -> BatchNorm {
    BatchNorm {
        gamma: rand_tensor(rng, vec![c], 0.5, 1.5),
        beta: rand_tensor(rng, vec![c], -0.5, 0.5),
        mean: rand_tensor(rng, vec![c], -0.2, 0.2),
        var: rand_tensor(rng, vec![c], 0.5, 2.0),
        eps: 1e-5,
        num_batches_tracked: Some(3),
    }
}

fn loss(tg: &TrainGraph, g: &Graph, x: &Tensor, mode: Mode, rs: &[Vec<f32>]) -> f64 {
    let tape = tg.forward(g, x, mode).unwrap();
    g.outputs
        .iter()
        .zip(rs)
        .map(|((name, _), r)| {
            let (_, _, y) = tape.output(name).unwrap();
            y.iter()
                .zip(r)
                .map(|(a, b)| *a as f64 * *b as f64)
                .sum::<f64>()
        })
        .sum()
}

fn sample(len: usize, rng: &mut Rng) -> Vec<usize> {
    if len <= 48 {
        (0..len).collect()
    } else {
        (0..48).map(|_| rng.below(len)).collect()
    }
}

fn near(a: f64, b: f64) -> bool {
    (a - b).abs() <= TOL * 1f64.max(a.abs()).max(b.abs())
}

/// Compares the analytic gradient `a` with central differences at `EPS` and `EPS / 4`
/// (`numeric(eps)`). When the two numeric estimates disagree, the perturbation crossed an
/// activation kink and the element is skipped (counted in `skipped`).
fn close(a: f64, numeric: impl Fn(f32) -> f64, what: &str, skipped: &mut usize) {
    let n1 = numeric(EPS);
    if near(a, n1) {
        return;
    }
    let n2 = numeric(EPS / 4.0);
    if !near(n1, n2) {
        *skipped += 1;
        return;
    }
    panic!("{what}: analytic {a} vs numeric {n1} (and {n2} at EPS/4)");
}

/// Checks every trainable parameter and the input of `g` at `x`; at most 10% of the
/// elements may be skipped at kinks.
fn check(g: &Graph, x: &Tensor, mode: Mode) {
    check_with(g, x, mode, 10);
}

/// [`check`] allowing `max_skip_pct` percent of the elements to be skipped at kinks.
fn check_with(g: &Graph, x: &Tensor, mode: Mode, max_skip_pct: usize) {
    let tg = TrainGraph::new(2).unwrap();
    let mut rng = Rng::new(99);
    let tape = tg.forward(g, x, mode).unwrap();
    let rs: Vec<Vec<f32>> = g
        .outputs
        .iter()
        .map(|(_, v)| {
            (0..tape.value(*v).len())
                .map(|_| rng.uniform(-1.0, 1.0) as f32)
                .collect()
        })
        .collect();
    let seeds: Vec<(ValueId, &[f32])> = g
        .outputs
        .iter()
        .zip(&rs)
        .map(|((_, v), r)| (*v, r.as_slice()))
        .collect();
    let opts = BackwardOptions {
        input_grad: true,
        ..Default::default()
    };
    let grads = tg.backward(g, &tape, &seeds, &opts).unwrap();
    // Trainable parameters: everything but running statistics.
    let keys: Vec<String> = g
        .params()
        .into_iter()
        .map(|(k, _)| k)
        .filter(|k| !k.ends_with("running_mean") && !k.ends_with("running_var"))
        .collect();
    assert_eq!(
        grads.params.len(),
        keys.len(),
        "one gradient per trainable parameter"
    );
    let (mut checked, mut skipped) = (0usize, 0usize);
    for key in &keys {
        let ga = grads
            .get(key)
            .unwrap_or_else(|| panic!("no gradient for {key}"));
        for i in sample(ga.numel(), &mut rng) {
            let perturbed = |delta: f32| {
                let mut gp = g.clone();
                for (k, t) in gp.params_mut() {
                    if &k == key {
                        t.data_mut()[i] += delta;
                    }
                }
                loss(&tg, &gp, x, mode, &rs)
            };
            let numeric = |e: f32| (perturbed(e) - perturbed(-e)) / (2.0 * e as f64);
            close(
                ga.data()[i] as f64,
                numeric,
                &format!("{key}[{i}]"),
                &mut skipped,
            );
            checked += 1;
        }
    }
    let gx = grads.input.expect("input gradient");
    for i in sample(x.numel(), &mut rng) {
        let perturbed = |delta: f32| {
            let mut xp = x.clone();
            xp.data_mut()[i] += delta;
            loss(&tg, g, &xp, mode, &rs)
        };
        let numeric = |e: f32| (perturbed(e) - perturbed(-e)) / (2.0 * e as f64);
        close(gx[i] as f64, numeric, &format!("input[{i}]"), &mut skipped);
        checked += 1;
    }
    assert!(
        skipped * 100 <= checked * max_skip_pct,
        "{skipped} of {checked} checks hit a kink"
    );
    eprintln!("{checked} elements checked, {skipped} skipped at kinks");
}

fn single(op: Op) -> Graph {
    let mut g = Graph::new();
    let y = g.push("layer", op, &[0]);
    g.output("y", y);
    g
}

fn input(shape: [usize; 4], seed: u64) -> Tensor {
    rand_tensor(&mut Rng::new(seed), shape.to_vec(), -1.0, 1.0)
}

#[test]
fn conv_dense_3x3_stride1_pad1() {
    let mut r = Rng::new(1);
    check(
        &single(Op::Conv(conv(&mut r, 3, 4, 3, 1, 1, 1, 1, true))),
        &input([2, 5, 6, 3], 2),
        Mode::Train,
    );
}

#[test]
fn conv_dense_3x3_stride2_pad1_both_dw_layouts() {
    let mut r = Rng::new(3);
    // K = 27 > O = 4 and K = 18 ≤ O = 24 take the two dW product orders.
    check(
        &single(Op::Conv(conv(&mut r, 3, 4, 3, 2, 1, 1, 1, false))),
        &input([2, 7, 6, 3], 4),
        Mode::Train,
    );
    check(
        &single(Op::Conv(conv(&mut r, 2, 24, 3, 2, 1, 1, 1, true))),
        &input([1, 5, 5, 2], 5),
        Mode::Train,
    );
}

#[test]
fn conv_dense_dilated() {
    let mut r = Rng::new(6);
    check(
        &single(Op::Conv(conv(&mut r, 3, 5, 3, 1, 2, 2, 1, true))),
        &input([2, 7, 7, 3], 7),
        Mode::Train,
    );
}

#[test]
fn conv_pointwise_both_dw_layouts_and_strided_1x1() {
    let mut r = Rng::new(8);
    check(
        &single(Op::Conv(conv(&mut r, 6, 3, 1, 1, 0, 1, 1, true))),
        &input([2, 4, 3, 6], 9),
        Mode::Train,
    );
    check(
        &single(Op::Conv(conv(&mut r, 3, 7, 1, 1, 0, 1, 1, false))),
        &input([2, 4, 3, 3], 10),
        Mode::Train,
    );
    // 1x1 with stride 2 and padding 1 goes through im2col.
    check(
        &single(Op::Conv(conv(&mut r, 3, 4, 1, 2, 1, 1, 1, true))),
        &input([2, 5, 4, 3], 11),
        Mode::Train,
    );
}

#[test]
fn conv_depthwise_stride1_and_stride2() {
    let mut r = Rng::new(12);
    for (c, s) in [(5, 1), (5, 2), (17, 1), (16, 2)] {
        check(
            &single(Op::Conv(conv(&mut r, c, c, 3, s, 1, 1, c, true))),
            &input([2, 6, 5, c], 13 + c as u64),
            Mode::Train,
        );
    }
}

#[test]
fn conv_with_fused_relu6() {
    let mut r = Rng::new(20);
    let mut c = conv(&mut r, 3, 4, 3, 1, 1, 1, 1, true);
    c.act = Act::Relu6;
    // Scale the weights so that outputs straddle 0 and 6.
    for w in c.weight.data_mut() {
        *w *= 3.0;
    }
    let g = single(Op::Conv(c));
    let tg = TrainGraph::new(1).unwrap();
    let x = rand_tensor(&mut Rng::new(21), vec![1, 4, 4, 3], -3.0, 3.0);
    let tape = tg.forward(&g, &x, Mode::Train).unwrap();
    let y = tape.output("y").unwrap().2;
    assert!(y.contains(&0.0) && y.contains(&6.0), "kinks exercised");
    // Every weight touches 16 outputs, some near a clamp: allow more skipped elements.
    check_with(&g, &x, Mode::Train, 25);
}

#[test]
fn batchnorm_train_and_eval() {
    let mut r = Rng::new(30);
    let g = single(Op::BatchNorm(bn(&mut r, 3)));
    check(&g, &input([2, 3, 2, 3], 31), Mode::Train);
    check(&g, &input([2, 3, 2, 3], 32), Mode::Eval);
}

#[test]
fn batchnorm_fused_with_relu6_train_and_eval() {
    // BN then ReLU6 runs as one fused op; γ ≈ 3 and β ≈ 3 put outputs on both clamps.
    let mut r = Rng::new(35);
    let mut b = bn(&mut r, 5);
    b.gamma = rand_tensor(&mut r, vec![5], 2.5, 3.5);
    b.beta = rand_tensor(&mut r, vec![5], 2.5, 3.5);
    let mut g = Graph::new();
    let y = g.bn("bn", 0, b);
    let y = g.act("act", y, Act::Relu6);
    g.output("y", y);
    let x = input([2, 4, 3, 5], 36);
    check_with(&g, &x, Mode::Train, 20);
    check_with(&g, &x, Mode::Eval, 20);
    // The pre-activation is not kept, and both clamps were hit.
    let tape = TrainGraph::new(1)
        .unwrap()
        .forward(&g, &x, Mode::Train)
        .unwrap();
    assert!(tape.value(g.nodes[0].output).is_empty());
    let out = tape.output("y").unwrap().2;
    assert!(out.contains(&0.0) && out.contains(&6.0));
}

#[test]
fn batchnorm_running_stats_match_hand_computation() {
    let mut r = Rng::new(33);
    let b = bn(&mut r, 2);
    let mut g = single(Op::BatchNorm(b.clone()));
    let x = input([3, 2, 1, 2], 34);
    let tg = TrainGraph::new(1).unwrap();
    let tape = tg.forward(&g, &x, Mode::Train).unwrap();
    tape.update_bn_running_stats(&mut g, 0.1);
    let Op::BatchNorm(nb) = &g.nodes[0].op else {
        unreachable!()
    };
    let y = tape.output("y").unwrap().2;
    for c in 0..2 {
        let v: Vec<f64> = x
            .data()
            .iter()
            .skip(c)
            .step_by(2)
            .map(|v| *v as f64)
            .collect();
        let m = v.iter().sum::<f64>() / 6.0;
        let biased = v.iter().map(|a| (a - m) * (a - m)).sum::<f64>() / 6.0;
        let unbiased = biased * 6.0 / 5.0;
        let rm = 0.9 * b.mean.data()[c] as f64 + 0.1 * m;
        let rv = 0.9 * b.var.data()[c] as f64 + 0.1 * unbiased;
        assert!((nb.mean.data()[c] as f64 - rm).abs() < 1e-6);
        assert!((nb.var.data()[c] as f64 - rv).abs() < 1e-6);
        for (k, xv) in v.iter().enumerate() {
            let want = (xv - m) / (biased + 1e-5).sqrt() * b.gamma.data()[c] as f64
                + b.beta.data()[c] as f64;
            assert!((y[k * 2 + c] as f64 - want).abs() < 1e-5);
        }
    }
    assert_eq!(nb.num_batches_tracked, Some(4));
}

/// An input whose values avoid 0 and 6 by at least 0.05.
fn kink_free_input(shape: [usize; 4], seed: u64) -> Tensor {
    let mut t = rand_tensor(&mut Rng::new(seed), shape.to_vec(), -2.0, 8.0);
    for v in t.data_mut() {
        for k in [0.0f32, 6.0] {
            if (*v - k).abs() < 0.05 {
                *v = k + 0.1;
            }
        }
    }
    t
}

#[test]
fn relu_and_relu6() {
    for a in [Act::Relu, Act::Relu6] {
        check(
            &single(Op::Act(a)),
            &kink_free_input([2, 3, 3, 4], 40),
            Mode::Train,
        );
    }
}

#[test]
fn relu6_gradient_is_zero_at_the_clamps() {
    let g = single(Op::Act(Act::Relu6));
    let x = Tensor::new(vec![1, 1, 1, 5], vec![-1.0, 0.0, 3.0, 6.0, 7.0]).unwrap();
    let tg = TrainGraph::new(1).unwrap();
    let tape = tg.forward(&g, &x, Mode::Train).unwrap();
    let opts = BackwardOptions {
        input_grad: true,
        ..Default::default()
    };
    let grads = tg
        .backward(&g, &tape, &[(g.outputs[0].1, &[1.0; 5])], &opts)
        .unwrap();
    assert_eq!(grads.input.unwrap(), vec![0.0, 0.0, 1.0, 0.0, 0.0]);
}

#[test]
fn add_concat_reshape_transpose_softmax() {
    let mut r = Rng::new(50);
    // y = relu6(conv(x) + x) exercises Add with a fused activation and a shared input.
    let mut g = Graph::new();
    let c = g.conv("c", 0, conv(&mut r, 3, 3, 1, 1, 0, 1, 1, true));
    let a = g.push("add", Op::Add(Act::Relu6), &[c, 0]);
    let d = g.conv("d", 0, conv(&mut r, 3, 2, 1, 1, 0, 1, 1, false));
    let cat = g.push("cat", Op::Concat { axis: 3 }, &[a, d, 0]);
    let rs = g.push("rs", Op::Reshape(vec![0, -1, 4]), &[cat]);
    let cat1 = g.push("cat1", Op::Concat { axis: 1 }, &[rs, rs]);
    let tr = g.push("tr", Op::Transpose(vec![0, 2, 1]), &[cat1]);
    let sm = g.push("sm", Op::Softmax, &[tr]);
    g.output("cat1", cat1);
    g.output("sm", sm);
    check(&g, &input([2, 2, 3, 3], 51), Mode::Train);
}

/// A small MobileNetV2-like graph: stem conv-BN-ReLU6, an inverted residual block with a
/// residual add, a strided depthwise stage, and two SSD-style heads concatenated.
fn composite(r: &mut Rng) -> Graph {
    let mut g = Graph::new();
    let x = g.conv("stem.0", 0, conv(r, 3, 4, 3, 2, 1, 1, 1, false));
    let x = g.bn("stem.1", x, bn(r, 4));
    let x = g.act("stem.2", x, Act::Relu6);
    let e = g.conv("ir.0", x, conv(r, 4, 8, 1, 1, 0, 1, 1, false));
    let e = g.bn("ir.1", e, bn(r, 8));
    let e = g.act("ir.2", e, Act::Relu6);
    let d = g.conv("ir.3", e, conv(r, 8, 8, 3, 1, 1, 1, 8, false));
    let d = g.bn("ir.4", d, bn(r, 8));
    let d = g.act("ir.5", d, Act::Relu6);
    let p = g.conv("ir.6", d, conv(r, 8, 4, 1, 1, 0, 1, 1, false));
    let p = g.bn("ir.7", p, bn(r, 4));
    let y = g.push("ir.add", Op::Add(Act::None), &[x, p]);
    let s = g.conv("down", y, conv(r, 4, 4, 3, 2, 1, 1, 4, true));
    let h0 = g.conv("head.0", y, conv(r, 4, 6, 1, 1, 0, 1, 1, true));
    let h1 = g.conv("head.1", s, conv(r, 4, 6, 3, 1, 1, 1, 1, true));
    let r0 = g.push("r0", Op::Reshape(vec![0, -1, 3]), &[h0]);
    let r1 = g.push("r1", Op::Reshape(vec![0, -1, 3]), &[h1]);
    let out = g.push("out", Op::Concat { axis: 1 }, &[r0, r1]);
    g.output("out", out);
    g
}

#[test]
fn composite_graph_train_mode() {
    let mut r = Rng::new(60);
    check(&composite(&mut r), &input([2, 8, 8, 3], 61), Mode::Train);
}

#[test]
fn eval_forward_matches_inference_plan_and_frozen_prefix_skips() {
    let mut r = Rng::new(70);
    let g = composite(&mut r);
    let x = input([2, 8, 8, 3], 71);
    let tg = TrainGraph::new(2).unwrap();
    let tape = tg.forward(&g, &x, Mode::Eval).unwrap();
    let mut plan = Plan::new(&g, x.shape(), &PlanOptions::default()).unwrap();
    let want = plan.run(x.data()).unwrap()[0].to_vec();
    let got = tape.output("out").unwrap().2;
    for (a, b) in got.iter().zip(&want) {
        assert!((a - b).abs() <= 1e-5 * (1.0 + b.abs()), "{a} vs {b}");
    }
    let seed = vec![1.0; got.len()];
    let opts = BackwardOptions {
        frozen_prefixes: vec!["stem.".into(), "ir.".into()],
        input_grad: false,
    };
    let grads = tg
        .backward(&g, &tape, &[(g.outputs[0].1, &seed)], &opts)
        .unwrap();
    let keys: Vec<&String> = grads.params.keys().collect();
    assert_eq!(
        keys,
        [
            "down.bias",
            "down.weight",
            "head.0.bias",
            "head.0.weight",
            "head.1.bias",
            "head.1.weight"
        ]
    );
}

/// An input whose values avoid h-swish's and h-sigmoid's kinks at ±3 by at least 0.05.
fn hard_kink_free_input(shape: [usize; 4], seed: u64) -> Tensor {
    let mut t = rand_tensor(&mut Rng::new(seed), shape.to_vec(), -5.0, 5.0);
    for v in t.data_mut() {
        for k in [-3.0f32, 3.0] {
            if (*v - k).abs() < 0.05 {
                *v = k + 0.1;
            }
        }
    }
    t
}

#[test]
fn hard_swish_and_hard_sigmoid() {
    for op in [Op::HardSwish, Op::HardSigmoid] {
        check(
            &single(op),
            &hard_kink_free_input([2, 3, 3, 4], 80),
            Mode::Train,
        );
    }
}

#[test]
fn hard_swish_gradient_at_the_kinks_is_pytorchs() {
    // PyTorch's autograd through `x * relu6(x + 3) / 6`: relu6 passes nothing at its
    // bounds, so at -3 the gradient is 0 and at 3 it is relu6(6)/6 = 1.
    let x = Tensor::new(vec![1, 1, 1, 5], vec![-4.0, -3.0, 0.0, 3.0, 4.0]).unwrap();
    let tg = TrainGraph::new(1).unwrap();
    let opts = BackwardOptions {
        input_grad: true,
        ..Default::default()
    };
    for (op, want) in [
        (Op::HardSwish, [0.0, 0.0, 0.5, 1.0, 1.0]),
        (Op::HardSigmoid, [0.0, 0.0, 1.0 / 6.0, 0.0, 0.0]),
    ] {
        let g = single(op);
        let tape = tg.forward(&g, &x, Mode::Train).unwrap();
        let grads = tg
            .backward(&g, &tape, &[(g.outputs[0].1, &[1.0; 5])], &opts)
            .unwrap();
        assert_eq!(grads.input.unwrap(), want.to_vec());
    }
}

/// MobileNetV3's block tail: a 1x1 projection with BN, squeeze-and-excite (global average
/// pool, 1x1 conv, BN, ReLU, 1x1 conv, BN, h-sigmoid, channel multiply), the residual,
/// and an h-swish; gradients reach every parameter through both paths of the gate.
#[test]
fn squeeze_excite_block_train_and_eval() {
    let mut r = Rng::new(90);
    let mut g = Graph::new();
    let p = g.conv("p", 0, conv(&mut r, 4, 8, 1, 1, 0, 1, 1, false));
    let p = g.bn("p.bn", p, bn(&mut r, 8));
    let pooled = g.push("se.pool", Op::GlobalAvgPool, &[p]);
    let s = g.conv("se.1", pooled, conv(&mut r, 8, 2, 1, 1, 0, 1, 1, false));
    let s = g.bn("se.2", s, bn(&mut r, 2));
    let s = g.act("se.3", s, Act::Relu);
    let s = g.conv("se.4", s, conv(&mut r, 2, 8, 1, 1, 0, 1, 1, false));
    let s = g.bn("se.5", s, bn(&mut r, 8));
    let gate = g.push("se.6", Op::HardSigmoid, &[s]);
    let y = g.push("se.mul", Op::ChannelMul, &[p, gate]);
    let q = g.conv("q", 0, conv(&mut r, 4, 8, 1, 1, 0, 1, 1, true));
    let y = g.push("add", Op::Add(Act::None), &[y, q]);
    let y = g.push("hs", Op::HardSwish, &[y]);
    g.output("y", y);
    let x = input([3, 4, 5, 4], 91);
    check(&g, &x, Mode::Train);
    check(&g, &x, Mode::Eval);
}
