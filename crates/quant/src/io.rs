//! The quantized file: safetensors with the quantization in its tensors and metadata.
//!
//! See the crate documentation for the layout. Files are written atomically (a temp
//! file, then a rename) and carry an FNV-1a checksum of every tensor, so a truncated or
//! altered file is refused with a message naming what is wrong instead of producing a
//! model with silently different numbers.

use std::collections::{BTreeMap, BTreeSet, HashMap};
use std::path::Path;

use safetensors::tensor::{Dtype, SafeTensors, TensorView};
use slimdet_core::{Op, Tensor};
use slimdet_models::{Arch, Detector};

use crate::error::{QuantError, Result};
use crate::model::{QBias, QLayer, QParams, QuantizedDetector};
use crate::options::Mode;
use crate::prepare::prepare;

/// Version of the layout written in `slimdet.quant.version`: 2 carries the graph and
/// head as a float model file does (`slimdet_models::file`); 1 named an architecture.
pub const FORMAT_VERSION: &str = "2";

struct Owned {
    dtype: Dtype,
    shape: Vec<usize>,
    bytes: Vec<u8>,
}

fn f32s(v: &[f32], shape: Vec<usize>) -> Owned {
    Owned {
        dtype: Dtype::F32,
        shape,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

fn i32s(v: &[i32], shape: Vec<usize>) -> Owned {
    Owned {
        dtype: Dtype::I32,
        shape,
        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
    }
}

/// FNV-1a over every tensor's name, dtype, shape and bytes, in name order.
fn checksum<'a>(tensors: impl Iterator<Item = (&'a str, Dtype, &'a [usize], &'a [u8])>) -> String {
    let mut sorted: Vec<_> = tensors.collect();
    sorted.sort_by(|a, b| a.0.cmp(b.0));
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    let mut eat = |bytes: &[u8]| {
        for &b in bytes {
            h ^= b as u64;
            h = h.wrapping_mul(0x0000_0100_0000_01b3);
        }
    };
    for (name, dtype, shape, bytes) in sorted {
        eat(name.as_bytes());
        eat(format!("{dtype:?}{shape:?}").as_bytes());
        eat(bytes);
    }
    format!("{h:016x}")
}

/// The name under which value `v`'s quantization is stored.
fn value_name(q: &QuantizedDetector, v: usize) -> String {
    if v == q.graph.input {
        return "input".into();
    }
    q.graph
        .nodes
        .iter()
        .find(|n| n.output == v)
        .map_or_else(|| format!("value{v}"), |n| n.name.clone())
}

impl QuantizedDetector {
    /// Saves the model atomically (see the crate docs for the layout).
    pub fn save(&self, path: &Path) -> Result<()> {
        let mut tensors: BTreeMap<String, Owned> = BTreeMap::new();
        let mut meta = BTreeMap::new();
        slimdet_models::file::write_meta(&self.head, &self.graph, &mut meta);
        meta.insert("slimdet.format".into(), "slimdet-quant".into());
        meta.insert("slimdet.quant.version".into(), FORMAT_VERSION.into());
        meta.insert("slimdet.quant.mode".into(), self.mode.to_string());
        if self.mode == Mode::Fp16 {
            for t in slimdet_models::weights::to_state_dict(&self.graph).tensors {
                let o = match &t.data {
                    slimdet_formats::TensorData::F32(v) => Owned {
                        dtype: Dtype::F16,
                        shape: t.shape.clone(),
                        bytes: v
                            .iter()
                            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
                            .collect(),
                    },
                    slimdet_formats::TensorData::I64(v) => Owned {
                        dtype: Dtype::I64,
                        shape: t.shape.clone(),
                        bytes: v.iter().flat_map(|x| x.to_le_bytes()).collect(),
                    },
                };
                tensors.insert(t.name, o);
            }
        } else {
            meta.insert(
                "slimdet.quant.activations".into(),
                self.activations.to_string(),
            );
            meta.insert(
                "slimdet.quant.granularity".into(),
                self.granularity.to_string(),
            );
            meta.insert("slimdet.quant.observer".into(), self.observer.to_string());
            meta.insert(
                "slimdet.quant.keep_float".into(),
                self.keep_float
                    .iter()
                    .cloned()
                    .collect::<Vec<_>>()
                    .join(","),
            );
            for n in &self.graph.nodes {
                let Op::Conv(c) = &n.op else { continue };
                match self.layers.get(&n.name) {
                    Some(l) => {
                        let o = l.shape[0];
                        tensors.insert(
                            format!("{}.weight", n.name),
                            Owned {
                                dtype: Dtype::I8,
                                shape: l.shape.to_vec(),
                                bytes: l.weight.iter().map(|&w| w as u8).collect(),
                            },
                        );
                        tensors.insert(
                            format!("{}.weight_scale", n.name),
                            f32s(&l.weight_scale, vec![o]),
                        );
                        let b = match &l.bias {
                            QBias::I32(b) => i32s(b, vec![o]),
                            QBias::F32(b) => f32s(b, vec![o]),
                        };
                        tensors.insert(format!("{}.bias", n.name), b);
                    }
                    None => {
                        tensors.insert(
                            format!("{}.weight", n.name),
                            f32s(c.weight.data(), c.weight.shape().to_vec()),
                        );
                        if let Some(b) = &c.bias {
                            tensors.insert(
                                format!("{}.bias", n.name),
                                f32s(b.data(), b.shape().to_vec()),
                            );
                        }
                    }
                }
            }
            for (v, q) in self.act.iter().enumerate() {
                if let Some(q) = q {
                    let name = value_name(self, v);
                    let key = format!("act.{name}.scale");
                    if tensors.contains_key(&key) {
                        return Err(QuantError::Format {
                            path: path.into(),
                            reason: format!("two values are named `{name}`"),
                        });
                    }
                    tensors.insert(key, f32s(&[q.scale], vec![1]));
                    tensors.insert(
                        format!("act.{name}.zero_point"),
                        i32s(&[q.zero_point], vec![1]),
                    );
                }
            }
        }
        let sum = checksum(
            tensors
                .iter()
                .map(|(k, t)| (k.as_str(), t.dtype, t.shape.as_slice(), t.bytes.as_slice())),
        );
        meta.insert("slimdet.quant.checksum".into(), sum);
        // Name order and the formats crate's fixed header order: saving the same model
        // twice gives the same bytes.
        let raws: Vec<slimdet_formats::RawTensor> = tensors
            .into_iter()
            .map(|(name, t)| slimdet_formats::RawTensor {
                name,
                dtype: dtype_name(t.dtype),
                shape: t.shape,
                bytes: t.bytes,
            })
            .collect();
        slimdet_formats::save_raw_safetensors(path, &raws, &meta).map_err(|e| QuantError::Format {
            path: path.into(),
            reason: e.to_string(),
        })
    }

    /// Loads a file written by [`QuantizedDetector::save`], checking its checksum, its
    /// architecture and every tensor's dtype and shape.
    pub fn load(path: &Path) -> Result<QuantizedDetector> {
        let bytes = std::fs::read(path).map_err(|source| QuantError::Io {
            path: path.into(),
            source,
        })?;
        Self::load_bytes(&bytes, path)
    }

    /// [`QuantizedDetector::load`] on bytes in memory; `path` names them in errors.
    pub fn load_bytes(bytes: &[u8], path: &Path) -> Result<QuantizedDetector> {
        let bad = |reason: String| QuantError::Format {
            path: path.into(),
            reason,
        };
        let st = SafeTensors::deserialize(bytes)
            .map_err(|e| bad(format!("not a readable safetensors file: {e}")))?;
        let (_, header) = SafeTensors::read_metadata(bytes)
            .map_err(|e| bad(format!("unreadable header: {e}")))?;
        let meta: BTreeMap<String, String> = header
            .metadata()
            .clone()
            .unwrap_or_default()
            .into_iter()
            .collect();
        let get = |k: &str| meta.get(k).map(String::as_str);
        let mode: Mode = get("slimdet.quant.mode")
            .ok_or_else(|| {
                bad("not a quantized slimdet model (no slimdet.quant.mode metadata)".into())
            })?
            .parse()?;
        let version = get("slimdet.quant.version");
        if !matches!(version, Some("1" | FORMAT_VERSION)) {
            return Err(bad(format!(
                "unsupported quantized format version {version:?} (this slimdet reads 1 and {FORMAT_VERSION})"
            )));
        }
        let views: Vec<(String, TensorView)> = st.tensors();
        let want = checksum(
            views
                .iter()
                .map(|(k, v)| (k.as_str(), v.dtype(), v.shape(), v.data())),
        );
        if get("slimdet.quant.checksum") != Some(want.as_str()) {
            return Err(bad(
                "checksum mismatch: the file is corrupted or was modified".into(),
            ));
        }
        let name = path.display().to_string();
        if mode == Mode::Fp16 {
            let d = Detector::load_bytes(bytes, &name, None)?;
            return Ok(QuantizedDetector {
                head: d.head(),
                mode,
                activations: crate::options::Activations::U8,
                granularity: crate::options::Granularity::Channel,
                observer: crate::options::Observer::MinMax,
                graph: d.graph,
                act: Vec::new(),
                layers: BTreeMap::new(),
                keep_float: BTreeSet::new(),
            });
        }
        // Version 2 stores the prepared graph; version 1 is rebuilt from its architecture.
        let (head, graph) = match slimdet_models::file::read_meta(&meta, &name, bytes.len())? {
            Some(found) => found,
            None => {
                let arch = Arch::from_metadata(
                    get("slimdet.arch"),
                    get("slimdet.width_mult"),
                    get("slimdet.num_classes"),
                )
                .map_err(bad)?;
                let mut det = Detector::new(arch);
                if let Some(names) = get("slimdet.classes") {
                    let names: Vec<String> = names.split(',').map(str::to_string).collect();
                    if names.len() == det.class_names.len() {
                        det.class_names = names;
                    }
                }
                (det.head(), prepare(&det.graph)?)
            }
        };
        let opt = |k: &str| get(k).ok_or_else(|| bad(format!("missing metadata {k}")));
        let mut q = QuantizedDetector {
            head,
            mode,
            activations: opt("slimdet.quant.activations")?.parse()?,
            granularity: opt("slimdet.quant.granularity")?.parse()?,
            observer: opt("slimdet.quant.observer")?.parse()?,
            graph,
            act: Vec::new(),
            layers: BTreeMap::new(),
            keep_float: opt("slimdet.quant.keep_float")?
                .split(',')
                .filter(|s| !s.is_empty())
                .map(str::to_string)
                .collect(),
        };
        let by_name: HashMap<&str, &TensorView> =
            views.iter().map(|(k, v)| (k.as_str(), v)).collect();
        let mut used = BTreeSet::new();
        let mut take = |k: String, dtype: Dtype, shape: &[usize]| -> Result<Vec<u8>> {
            let v = by_name
                .get(k.as_str())
                .ok_or_else(|| bad(format!("missing tensor `{k}`")))?;
            if v.dtype() != dtype || v.shape() != shape {
                return Err(bad(format!(
                    "tensor `{k}`: {:?} {:?}, expected {dtype:?} {shape:?}",
                    v.dtype(),
                    v.shape()
                )));
            }
            used.insert(k);
            Ok(v.data().to_vec())
        };
        // Activation parameters first: the int8 layers' f32 view needs the input scales.
        q.act = vec![None; q.graph.num_values];
        for v in 0..q.graph.num_values {
            let name = value_name(&q, v);
            let key = format!("act.{name}.scale");
            if by_name.contains_key(key.as_str()) {
                let s = le_f32(&take(key, Dtype::F32, &[1])?)[0];
                let z = le_i32(&take(format!("act.{name}.zero_point"), Dtype::I32, &[1])?)[0];
                if !(s.is_finite() && s > 0.0 && (0..=255).contains(&z)) {
                    return Err(bad(format!(
                        "activation `{name}`: invalid scale {s} or zero point {z}"
                    )));
                }
                q.act[v] = Some(QParams {
                    scale: s,
                    zero_point: z,
                });
            }
        }
        let act = q.act.clone();
        for n in &mut q.graph.nodes {
            let Op::Conv(c) = &mut n.op else { continue };
            let shape = c.weight.shape().to_vec();
            let o = shape[0];
            let wkey = format!("{}.weight", n.name);
            let is_int8 = by_name
                .get(wkey.as_str())
                .is_some_and(|v| v.dtype() == Dtype::I8);
            if is_int8 {
                let weight: Vec<i8> = take(wkey, Dtype::I8, &shape)?
                    .into_iter()
                    .map(|b| b as i8)
                    .collect();
                let weight_scale =
                    le_f32(&take(format!("{}.weight_scale", n.name), Dtype::F32, &[o])?);
                if weight_scale.iter().any(|s| !(s.is_finite() && *s > 0.0)) {
                    return Err(bad(format!("layer `{}`: invalid weight scale", n.name)));
                }
                let bias = if mode == Mode::Static {
                    QBias::I32(le_i32(&take(format!("{}.bias", n.name), Dtype::I32, &[o])?))
                } else {
                    QBias::F32(le_f32(&take(format!("{}.bias", n.name), Dtype::F32, &[o])?))
                };
                let l = QLayer {
                    weight,
                    shape: [shape[0], shape[1], shape[2], shape[3]],
                    weight_scale,
                    bias,
                };
                let in_scale = act[n.inputs[0]].map(|p| p.scale);
                l.write_view(c, in_scale);
                q.layers.insert(n.name.clone(), l);
            } else {
                let w = le_f32(&take(wkey, Dtype::F32, &shape)?);
                c.weight = Tensor::new(shape, w)?;
                let bkey = format!("{}.bias", n.name);
                c.bias = if by_name.contains_key(bkey.as_str()) {
                    Some(Tensor::new(
                        vec![o],
                        le_f32(&take(bkey, Dtype::F32, &[o])?),
                    )?)
                } else {
                    None
                };
            }
        }
        if let Some((k, _)) = views.iter().find(|(k, _)| !used.contains(k)) {
            return Err(bad(format!(
                "unexpected tensor `{k}` (not part of {})",
                q.head.name
            )));
        }
        Ok(q)
    }
}

fn le_f32(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

fn le_i32(b: &[u8]) -> Vec<i32> {
    b.chunks_exact(4)
        .map(|c| i32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// The safetensors name of the dtypes this format writes.
fn dtype_name(d: Dtype) -> &'static str {
    match d {
        Dtype::F32 => "F32",
        Dtype::F16 => "F16",
        Dtype::I64 => "I64",
        Dtype::I32 => "I32",
        Dtype::I8 => "I8",
        Dtype::U8 => "U8",
        _ => unreachable!("the quantized format writes no {d:?} tensors"),
    }
}

/// Whether `path` is a quantized slimdet file (reads only the header).
pub fn is_quantized_file(path: &Path) -> bool {
    let Ok(mut f) = std::fs::File::open(path) else {
        return false;
    };
    let mut n = [0u8; 8];
    if std::io::Read::read_exact(&mut f, &mut n).is_err() {
        return false;
    }
    let len = u64::from_le_bytes(n);
    if len == 0 || len > 100 << 20 {
        return false;
    }
    let mut header = vec![0u8; len as usize];
    if std::io::Read::read_exact(&mut f, &mut header).is_err() {
        return false;
    }
    String::from_utf8_lossy(&header).contains("\"slimdet.quant.mode\"")
}
