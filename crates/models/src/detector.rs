//! The [`Detector`]: a network graph with weights, its priors, pre/post-processing
//! configuration and class names; how it is loaded from and saved to a file.

use std::collections::BTreeMap;
use std::path::Path;

use slimdet_core::Graph;

use crate::arch::{Arch, SsdConfig};
use crate::error::{ModelError, Result};
use crate::file::Head;
use crate::weights;

/// A detector ready to compile: graph with weights, priors, configuration and class
/// names. Nothing in it names an architecture except the `name` label.
#[derive(Clone, Debug)]
pub struct Detector {
    /// Family label (`mb2-ssd-lite`, or a file's own), shown in reports; never decides
    /// behaviour.
    pub name: String,
    /// The network; outputs `logits` `[N, P, classes]` and `locations` `[N, P, 4]`.
    pub graph: Graph,
    /// Priors, centre form, `[P]`.
    pub priors: Vec<[f32; 4]>,
    /// Pre/post-processing constants.
    pub config: SsdConfig,
    /// Class names, index 0 = BACKGROUND.
    pub class_names: Vec<String>,
    /// Runs the network instead of the f32 graph when set (e.g. the int8 engine).
    pub backend: Option<std::sync::Arc<dyn crate::BackendFactory>>,
}

impl Detector {
    /// A detector of `arch` with zero weights (the architecture's graph builder).
    pub fn new(arch: Arch) -> Self {
        Self {
            name: arch.name().to_string(),
            graph: arch.build_graph(),
            priors: arch.priors(),
            config: arch.config(),
            class_names: arch.default_classes(),
            backend: None,
        }
    }

    /// A detector from its head and network.
    pub fn from_parts(head: Head, graph: Graph) -> Self {
        Self {
            name: head.name,
            graph,
            priors: head.priors,
            config: head.config,
            class_names: head.class_names,
            backend: None,
        }
    }

    /// Everything but the network.
    pub fn head(&self) -> Head {
        Head {
            name: self.name.clone(),
            priors: self.priors.clone(),
            config: self.config.clone(),
            class_names: self.class_names.clone(),
        }
    }

    /// A randomly initialised detector (pytorch-ssd's initialisation, see
    /// [`crate::init::random_init`]) with the given class names (index 0 = BACKGROUND).
    pub fn random(arch: Arch, class_names: Vec<String>, seed: u64) -> Self {
        let mut det = Detector::new(arch);
        crate::init::random_init(
            &mut det.graph,
            seed,
            &["extras", "classification_headers", "regression_headers"],
        );
        det.class_names = class_names;
        det
    }

    /// Loads a `.pth` (zip or legacy), `.safetensors` or TF frozen graph (`.pb`, see
    /// [`crate::tf_import`]) file, recognised by content. A slimdet file of version 2
    /// carries its graph (see [`crate::file`]); other files are rebuilt by the graph
    /// builder that `arch_hint`, the file's metadata or the keys name, which must agree.
    pub fn load(path: &Path, arch_hint: Option<&str>) -> Result<Self> {
        let bytes = slimdet_formats::read_file(path)?;
        Self::load_bytes(&bytes, &path.display().to_string(), arch_hint)
    }

    /// [`Detector::load`] on bytes in memory; `name` names them in errors.
    pub fn load_bytes(bytes: &[u8], name: &str, arch_hint: Option<&str>) -> Result<Self> {
        let p = name.to_string();
        let mismatch = |found: &str, what: &str| ModelError::Arch {
            path: p.clone(),
            reason: format!(
                "--arch {} given, but the file is {what} {found}",
                arch_hint.unwrap_or("")
            ),
        };
        if !slimdet_formats::looks_like_safetensors(bytes)
            && slimdet_formats::tf::looks_like_graphdef(bytes)
        {
            let det = crate::tf_import::load(bytes, &p)?;
            if arch_hint.is_some_and(|h| h != det.name) {
                return Err(mismatch(&det.name, "a TensorFlow frozen graph of"));
            }
            return Ok(det);
        }
        let (sd, meta) = slimdet_formats::load_state_dict_bytes(bytes, &p)?;
        // Each parameter value takes at least one bit of the file (a zero in the sparse
        // bitmap layout).
        let max_params = bytes.len().saturating_mul(8);
        if let Some((head, graph)) = crate::file::read_meta(&meta, &p, max_params)? {
            if arch_hint.is_some_and(|h| h != head.name) {
                return Err(mismatch(&head.name, "a model of"));
            }
            let mut det = Detector::from_parts(head, graph);
            weights::load_into(&mut det.graph, &sd, &p, &det.name)?;
            return Ok(det);
        }
        let hint = arch_hint.or(meta.get("slimdet.arch").map(String::as_str));
        let arch = Arch::detect(&sd, hint, &p)?;
        let mut det = Detector::new(arch);
        if meta.contains_key(crate::reshape::PRUNED_META_KEY) {
            let input = det.input_shape();
            crate::reshape::adopt_shapes(&mut det.graph, &sd, &input, &p)?;
        }
        weights::load_into(&mut det.graph, &sd, &p, &det.name)?;
        if let Some(names) = meta.get("slimdet.classes") {
            let names: Vec<String> = names.split(',').map(str::to_string).collect();
            if names.len() == det.class_names.len() {
                det.class_names = names;
            }
        }
        Ok(det)
    }

    /// Saves the weights as safetensors with the graph and head in the metadata (format
    /// version 2, see [`crate::file`]), atomically.
    pub fn save_safetensors(&self, path: &Path) -> Result<()> {
        let meta = self.metadata();
        slimdet_formats::save_safetensors(path, &weights::to_state_dict(&self.graph), &meta)?;
        Ok(())
    }

    /// [`Detector::save_safetensors`] with mostly-zero tensors in the sparse `bitmap-v1`
    /// encoding (see `slimdet_formats::sparse`); [`Detector::load`] reads both.
    pub fn save_safetensors_sparse(
        &self,
        path: &Path,
    ) -> Result<slimdet_formats::SparseSaveReport> {
        let meta = self.metadata();
        let sd = weights::to_state_dict(&self.graph);
        Ok(slimdet_formats::save_safetensors_sparse(path, &sd, &meta)?)
    }

    /// File metadata: graph, head and the version-1 keys ([`crate::file::write_meta`]).
    pub fn metadata(&self) -> BTreeMap<String, String> {
        let mut meta = BTreeMap::new();
        crate::file::write_meta(&self.head(), &self.graph, &mut meta);
        meta
    }

    /// Input shape `[1, H, W, 3]` for one image.
    pub fn input_shape(&self) -> [usize; 4] {
        [1, self.config.input_h, self.config.input_w, 3]
    }
}
