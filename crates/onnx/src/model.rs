//! A runnable imported model: the engine plan plus the tail, producing the outputs
//! exactly as named and shaped in the ONNX file.

use std::path::Path;

use slimdet_core::{Plan, PlanOptions};

use crate::error::{OnnxError, Result};
use crate::import::{Imported, OutputKind, import};
use crate::value::{Data, Value};

/// One output: `(name, ONNX shape, row-major values)`.
pub type NamedOutput = (String, Vec<usize>, Vec<f32>);

/// An ONNX model compiled for the engine.
pub struct OnnxModel {
    imported: Imported,
    /// None when no output needs the engine (all constant).
    plan: Option<Plan>,
    nhwc: Vec<f32>,
}

impl OnnxModel {
    /// Imports and compiles `path` to run on `threads` threads.
    pub fn load(path: &Path, threads: usize) -> Result<Self> {
        let opts = PlanOptions {
            threads,
            ..PlanOptions::default()
        };
        Self::new(import(path)?, &opts)
    }

    /// Compiles an imported model. A quantized (QDQ or QOperator) model is refused: this runs the
    /// float graph only, which is not that model; load it with
    /// [`crate::detector_from_onnx`] to run it on the integer kernels.
    pub fn new(imported: Imported, opts: &PlanOptions) -> Result<Self> {
        if imported.is_quantized() {
            return Err(OnnxError::Unsupported {
                file: imported.file.clone(),
                node: "(graph)".into(),
                op: "quantized model".into(),
                reason: "a quantized (QDQ or QOperator) model does not run in float here; load it as a detector (any slimdet --model), which runs it on the int8 kernels".into(),
            });
        }
        let [n, c, h, w] = imported.input_shape_nchw;
        let plan = if imported.graph.outputs.is_empty() {
            None
        } else {
            Some(Plan::new(&imported.graph, &[n, h, w, c], opts)?)
        };
        Ok(Self {
            nhwc: vec![0.0; n * c * h * w],
            imported,
            plan,
        })
    }

    /// The imported graph, tail and metadata.
    pub fn imported(&self) -> &Imported {
        &self.imported
    }

    /// Runs on an ONNX-layout input `[N, C, H, W]`.
    pub fn run_nchw(&mut self, input: &[f32]) -> Result<Vec<NamedOutput>> {
        let [n, c, h, w] = self.imported.input_shape_nchw;
        self.check_len(input)?;
        let mut nhwc = std::mem::take(&mut self.nhwc);
        for b in 0..n {
            for ch in 0..c {
                for y in 0..h {
                    for x in 0..w {
                        nhwc[((b * h + y) * w + x) * c + ch] =
                            input[((b * c + ch) * h + y) * w + x];
                    }
                }
            }
        }
        let out = self.run_nhwc(&nhwc);
        self.nhwc = nhwc;
        out
    }

    fn check_len(&self, input: &[f32]) -> Result<()> {
        let shape = self.imported.input_shape_nchw;
        if input.len() != shape.iter().product::<usize>() {
            return Err(OnnxError::InputLength {
                expected: shape.to_vec(),
                got: input.len(),
            });
        }
        Ok(())
    }

    /// Runs on the engine's layout `[N, H, W, C]` (same values as the NCHW input, reordered).
    pub fn run_nhwc(&mut self, input: &[f32]) -> Result<Vec<NamedOutput>> {
        self.check_len(input)?;
        let imp = &self.imported;
        let engine: Vec<Vec<f32>> = match &mut self.plan {
            Some(p) => p.run(input)?.into_iter().map(<[f32]>::to_vec).collect(),
            None => Vec::new(),
        };
        let mut slots = vec![None; imp.tail.num_slots];
        for &(e, slot) in &imp.tail.feeds {
            slots[slot] = Some(Value::f32(
                imp.engine_output_shapes[e].clone(),
                engine[e].clone(),
            ));
        }
        let slots = if imp.tail.steps.is_empty() {
            slots
        } else {
            imp.tail
                .run(slots)
                .map_err(|(node, reason)| OnnxError::Node {
                    file: imp.file.clone(),
                    node,
                    op: "tail".into(),
                    reason,
                })?
        };
        imp.outputs
            .iter()
            .zip(&imp.output_shapes)
            .map(|((name, kind), shape)| {
                let data = match kind {
                    OutputKind::Engine(e) => engine[*e].clone(),
                    OutputKind::Tail(s) => to_f32(slots[*s].as_ref()),
                    OutputKind::Constant(v) => to_f32(Some(v)),
                };
                Ok((name.clone(), shape.clone(), data))
            })
            .collect()
    }
}

fn to_f32(v: Option<&Value>) -> Vec<f32> {
    match v.map(|v| &v.data) {
        Some(Data::F32(d)) => d.clone(),
        Some(Data::I64(d)) => d.iter().map(|&x| x as f32).collect(),
        None => Vec::new(),
    }
}
