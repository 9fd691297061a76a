//! Per-layer signal-to-quantization-noise ratio: the f32 model against the simulated
//! (fake-quant) model and against the real integer engine, on the same inputs.
//!
//! `SQNR = 10·log10(Σ x² / Σ (x − y)²)` in dB, summed over all inputs, where `x` is the
//! f32 value and `y` its quantized counterpart (dequantized). Outputs are compared the
//! same way, plus the softmax scores the detector actually thresholds.

use slimdet_core::{Op, ValueId, exec::softmax_row};
use slimdet_models::Detector;

use crate::error::Result;
use crate::float_exec::{FakeQuant, FloatRunner};
use crate::int8_exec::Int8Engine;
use crate::model::QuantizedDetector;
use crate::options::Mode;
use crate::prepare::prepare;

/// SQNR of one layer's output.
#[derive(Clone, Debug, PartialEq)]
pub struct LayerSqnr {
    /// Node name.
    pub name: String,
    /// Operator kind (`Conv`, `DwConv`, `Add`).
    pub kind: &'static str,
    /// Whether the layer runs in int8 (false: kept in f32).
    pub int8: bool,
    /// f32 vs simulated, dB.
    pub sim_db: f64,
    /// f32 vs integer engine, dB.
    pub int8_db: f64,
}

/// The whole report.
#[derive(Clone, Debug, PartialEq)]
pub struct SqnrReport {
    /// Conv and add layers in execution order.
    pub layers: Vec<LayerSqnr>,
    /// `(name, sim dB, int8 dB)` for `logits`, `locations` and `scores`.
    pub outputs: Vec<(String, f64, f64)>,
}

impl SqnrReport {
    /// `(sim, int8)` SQNR of output `name`.
    pub fn output(&self, name: &str) -> Option<(f64, f64)> {
        self.outputs
            .iter()
            .find(|o| o.0 == name)
            .map(|o| (o.1, o.2))
    }
}

#[derive(Clone, Copy, Default)]
struct Acc {
    signal: f64,
    sim: f64,
    int8: f64,
}

impl Acc {
    fn add(&mut self, x: &[f32], s: &[f32], q: &[f32]) {
        for ((&a, &b), &c) in x.iter().zip(s).zip(q) {
            self.signal += (a as f64).powi(2);
            self.sim += (a as f64 - b as f64).powi(2);
            self.int8 += (a as f64 - c as f64).powi(2);
        }
    }

    fn db(signal: f64, noise: f64) -> f64 {
        if noise == 0.0 {
            f64::INFINITY
        } else {
            10.0 * (signal / noise).log10()
        }
    }

    fn result(&self) -> (f64, f64) {
        (
            Self::db(self.signal, self.sim),
            Self::db(self.signal, self.int8),
        )
    }
}

/// Fake quantization of every value the integer engine holds as `u8` codes.
pub fn fake_quant_plan(q: &QuantizedDetector) -> Vec<Option<FakeQuant>> {
    let g = &q.graph;
    let mut fake = vec![None; g.num_values];
    if q.mode != Mode::Static {
        return fake;
    }
    let base = q.base_min();
    let fq = |v: ValueId, act| {
        q.act.get(v).copied().flatten().map(|p| {
            let (lo, hi) = p.clamp_codes(act, base);
            FakeQuant {
                scale: p.scale,
                zero_point: p.zero_point,
                qmin: lo as i32,
                qmax: hi as i32,
            }
        })
    };
    for n in &g.nodes {
        match &n.op {
            Op::Conv(c) if q.layers.contains_key(&n.name) => {
                fake[n.output] = fq(n.output, c.act);
                fake[n.inputs[0]] = fake[n.inputs[0]].or(fq(n.inputs[0], slimdet_core::Act::None));
            }
            Op::Add(a)
                if !q.keep_float.contains(&n.name)
                    && n.inputs.iter().all(|&v| q.act[v].is_some()) =>
            {
                fake[n.output] = fq(n.output, *a);
            }
            _ => {}
        }
    }
    fake
}

/// Compares `fp32` (the original detector), the simulated model and the integer engine of
/// `q` on `inputs` (NHWC `[1, H, W, 3]` each).
pub fn sqnr_report(
    fp32: &Detector,
    q: &QuantizedDetector,
    inputs: &[Vec<f32>],
) -> Result<SqnrReport> {
    let shape = fp32.input_shape();
    let gf = prepare(&fp32.graph)?;
    let ref_run = FloatRunner::new(&gf, &shape)?;
    let sim_run = FloatRunner::new(&q.graph, &shape)?;
    let fake = fake_quant_plan(q);
    let mut engine = Int8Engine::new_keep_all(q, 1)?;
    let nv = q.graph.num_values;
    let mut acc = vec![Acc::default(); nv];
    let mut out_acc = [Acc::default(); 3];
    let k = fp32.class_names.len();
    for x in inputs {
        let mut refv: Vec<Option<Vec<f32>>> = vec![None; nv];
        let mut simv: Vec<Option<Vec<f32>>> = vec![None; nv];
        let ro = ref_run.run(x, None, &mut |v, d| refv[v] = Some(d.to_vec()))?;
        let so = sim_run.run(x, Some(&fake), &mut |v, d| simv[v] = Some(d.to_vec()))?;
        let io: Vec<Vec<f32>> = engine.run(x)?.into_iter().map(<[f32]>::to_vec).collect();
        let intv = engine.values_f32();
        for v in 0..nv {
            if let (Some(a), Some(b), Some(c)) = (&refv[v], &simv[v], &intv[v]) {
                acc[v].add(a, b, c);
            }
        }
        for i in 0..2 {
            out_acc[i].add(&ro[i], &so[i], &io[i]);
        }
        let softmax = |l: &[f32]| {
            let mut s = vec![0f32; l.len()];
            for (o, r) in s.chunks_mut(k).zip(l.chunks(k)) {
                softmax_row(r, o);
            }
            s
        };
        out_acc[2].add(&softmax(&ro[0]), &softmax(&so[0]), &softmax(&io[0]));
    }
    let layers = q
        .graph
        .nodes
        .iter()
        .filter(|n| matches!(n.op, Op::Conv(_) | Op::Add(_)))
        .map(|n| {
            let (sim_db, int8_db) = acc[n.output].result();
            LayerSqnr {
                name: n.name.clone(),
                kind: n.op.kind(),
                int8: match n.op {
                    Op::Conv(_) => q.layers.contains_key(&n.name),
                    _ => q.mode == Mode::Static && !q.keep_float.contains(&n.name),
                },
                sim_db,
                int8_db,
            }
        })
        .collect();
    let names = ["logits", "locations", "scores"];
    let outputs = names
        .iter()
        .zip(out_acc)
        .map(|(n, a)| {
            let (s, i) = a.result();
            (n.to_string(), s, i)
        })
        .collect();
    Ok(SqnrReport { layers, outputs })
}
