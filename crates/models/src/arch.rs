//! Which detector a weight file holds, its SSD configuration, and the [`Detector`]
//! (graph + priors + configuration + class names) that the rest of the toolkit uses.

use std::collections::BTreeMap;
use std::path::Path;

use slimdet_core::Graph;
use slimdet_formats::StateDict;

use crate::error::{ModelError, Result};
use crate::priors::{MB2_SSD_LITE_SPECS, ssd_priors, ultraface_priors};
use crate::{mobilenet_v2, tf_ssdlite, ultraface, weights};
use slimdet_data::Resize;

/// The VOC class names, index 0 = BACKGROUND (spec §12): the data crate's table.
pub use slimdet_data::voc::VOC_CLASSES;

/// COCO's label map by id (1-based; "" for the ids COCO leaves unused), which the TF
/// Object Detection API's COCO-trained models follow.
const COCO_LABEL_MAP: [&str; 90] = [
    "person",
    "bicycle",
    "car",
    "motorcycle",
    "airplane",
    "bus",
    "train",
    "truck",
    "boat",
    "traffic light",
    "fire hydrant",
    "",
    "stop sign",
    "parking meter",
    "bench",
    "bird",
    "cat",
    "dog",
    "horse",
    "sheep",
    "cow",
    "elephant",
    "bear",
    "zebra",
    "giraffe",
    "",
    "backpack",
    "umbrella",
    "",
    "",
    "handbag",
    "tie",
    "suitcase",
    "frisbee",
    "skis",
    "snowboard",
    "sports ball",
    "kite",
    "baseball bat",
    "baseball glove",
    "skateboard",
    "surfboard",
    "tennis racket",
    "bottle",
    "",
    "wine glass",
    "cup",
    "fork",
    "knife",
    "spoon",
    "bowl",
    "banana",
    "apple",
    "sandwich",
    "orange",
    "broccoli",
    "carrot",
    "hot dog",
    "pizza",
    "donut",
    "cake",
    "chair",
    "couch",
    "potted plant",
    "bed",
    "",
    "dining table",
    "",
    "",
    "toilet",
    "",
    "tv",
    "laptop",
    "mouse",
    "remote",
    "keyboard",
    "cell phone",
    "microwave",
    "oven",
    "toaster",
    "sink",
    "refrigerator",
    "",
    "book",
    "clock",
    "vase",
    "scissors",
    "teddy bear",
    "hair drier",
    "toothbrush",
];

/// A supported architecture.
#[derive(Clone, Debug, PartialEq)]
pub enum Arch {
    /// MobileNetV2-SSD-Lite, 300x300.
    Mb2SsdLite {
        /// Width multiplier (1.0 for the VOC model).
        width_mult: f64,
        /// Classes including background.
        num_classes: usize,
    },
    /// UltraFace slim, 320x240, 2 classes.
    UltrafaceSlim,
    /// UltraFace RFB, 320x240, 2 classes.
    UltrafaceRfb,
    /// SSDLite-MobileNetV2 of the TensorFlow Object Detection API, 300x300 (see
    /// [`crate::tf_ssdlite`]).
    TfSsdLiteMobileNetV2 {
        /// Classes including background.
        num_classes: usize,
    },
}

impl Arch {
    /// The CLI name: `mb2-ssd-lite`, `ultraface-slim`, `ultraface-rfb`.
    pub fn name(&self) -> &'static str {
        match self {
            Arch::Mb2SsdLite { .. } => "mb2-ssd-lite",
            Arch::UltrafaceSlim => "ultraface-slim",
            Arch::UltrafaceRfb => "ultraface-rfb",
            Arch::TfSsdLiteMobileNetV2 { .. } => "tf-ssdlite-mobilenet-v2",
        }
    }

    /// Recognises the architecture from a state_dict's keys and shapes. `hint` is an
    /// architecture name (from `--arch` or file metadata) that must agree with the keys.
    pub fn detect(sd: &StateDict, hint: Option<&str>, path: &str) -> Result<Arch> {
        let has = |k: &str| sd.get(k).is_some();
        let found = if has("base_net.14.conv.0.weight") {
            let stem = sd
                .get("base_net.0.0.weight")
                .map(|t| t.shape.clone())
                .unwrap_or_default();
            let cls = sd
                .get("classification_headers.5.weight")
                .map(|t| t.shape.clone())
                .unwrap_or_default();
            if stem.len() != 4 || cls.len() != 4 || !cls[0].is_multiple_of(6) || cls[0] < 12 {
                return Err(ModelError::Arch { path: path.into(), reason: "MobileNetV2-SSD-Lite keys found but base_net.0.0.weight or classification_headers.5.weight has an unexpected shape".into() });
            }
            Arch::Mb2SsdLite {
                width_mult: stem[0] as f64 / 32.0,
                num_classes: cls[0] / 6,
            }
        } else if let Some(cls) = sd.get("BoxPredictor_0/ClassPredictor.weight") {
            let a = crate::tf_ssdlite::ANCHORS[0];
            if cls.shape.len() != 4 || !cls.shape[0].is_multiple_of(a) || cls.shape[0] < 2 * a {
                return Err(ModelError::Arch {
                    path: path.into(),
                    reason: format!(
                        "BoxPredictor_0/ClassPredictor.weight has shape {:?}",
                        cls.shape
                    ),
                });
            }
            Arch::TfSsdLiteMobileNetV2 {
                num_classes: cls.shape[0] / a,
            }
        } else if has("base_net.7.branch0.0.conv.weight") {
            Arch::UltrafaceRfb
        } else if has("base_net.12.3.weight") && has("extras.0.2.2.weight") {
            Arch::UltrafaceSlim
        } else {
            return Err(ModelError::Arch {
                path: path.into(),
                reason: "cannot recognise the architecture from the state_dict keys (expected mb2-ssd-lite, ultraface-slim, ultraface-rfb or tf-ssdlite-mobilenet-v2)".into(),
            });
        };
        if let Some(h) = hint
            && h != found.name()
        {
            return Err(ModelError::Arch {
                path: path.into(),
                reason: format!(
                    "--arch {h} given, but the keys are those of {}",
                    found.name()
                ),
            });
        }
        Ok(found)
    }

    /// The SSD configuration of this architecture.
    pub fn config(&self) -> SsdConfig {
        match self {
            Arch::Mb2SsdLite { .. } => SsdConfig {
                input_w: 300,
                input_h: 300,
                mean: 127.0,
                std: 128.0,
                center_variance: 0.1,
                size_variance: 0.2,
                nms_iou: 0.45,
                candidate_size: 200,
                default_threshold: 0.01,
                scores: ScoreFn::Softmax,
                resize: Resize::OpenCv,
                max_per_class: 0,
                max_detections: 0,
                clip_boxes: false,
            },
            Arch::UltrafaceSlim | Arch::UltrafaceRfb => SsdConfig {
                input_w: 320,
                input_h: 240,
                mean: 127.0,
                std: 128.0,
                center_variance: 0.1,
                size_variance: 0.2,
                nms_iou: 0.3,
                candidate_size: 200,
                default_threshold: 0.7,
                scores: ScoreFn::Softmax,
                resize: Resize::OpenCv,
                max_per_class: 0,
                max_detections: 0,
                clip_boxes: false,
            },
            // The TF OD API's ssdlite_mobilenet_v2 pipeline: `x·2/255 − 1`, scale factors
            // 10, 10, 5, 5, sigmoid scores, per-class NMS at IoU 0.6 over scores above
            // 1e-8 keeping 100 per class and 100 in all, boxes clipped to the image first.
            Arch::TfSsdLiteMobileNetV2 { .. } => SsdConfig {
                input_w: crate::tf_ssdlite::INPUT,
                input_h: crate::tf_ssdlite::INPUT,
                mean: 127.5,
                std: 127.5,
                center_variance: 0.1,
                size_variance: 0.2,
                nms_iou: 0.6,
                candidate_size: usize::MAX,
                default_threshold: 1e-8,
                scores: ScoreFn::Sigmoid,
                resize: Resize::TfLegacy,
                max_per_class: 100,
                max_detections: 100,
                clip_boxes: true,
            },
        }
    }

    /// The graph with zero weights.
    pub fn build_graph(&self) -> Graph {
        match self {
            Arch::Mb2SsdLite {
                width_mult,
                num_classes,
            } => mobilenet_v2::build(*width_mult, *num_classes),
            Arch::UltrafaceSlim => ultraface::build(false),
            Arch::UltrafaceRfb => ultraface::build(true),
            Arch::TfSsdLiteMobileNetV2 { num_classes } => tf_ssdlite::build(*num_classes),
        }
    }

    /// Prior boxes `[cx, cy, w, h]`, in output order.
    pub fn priors(&self) -> Vec<[f32; 4]> {
        match self {
            Arch::Mb2SsdLite { .. } => ssd_priors(&MB2_SSD_LITE_SPECS, 300.0),
            Arch::UltrafaceSlim | Arch::UltrafaceRfb => ultraface_priors(
                &[[40, 30], [20, 15], [10, 8], [5, 4]],
                &[
                    &[10.0, 16.0, 24.0],
                    &[32.0, 48.0],
                    &[64.0, 96.0],
                    &[128.0, 192.0, 256.0],
                ],
                320.0,
                240.0,
            ),
            Arch::TfSsdLiteMobileNetV2 { .. } => tf_ssdlite::anchors(),
        }
    }

    /// Default class names (index 0 = BACKGROUND).
    pub fn default_classes(&self) -> Vec<String> {
        match self {
            Arch::Mb2SsdLite {
                num_classes: 21, ..
            } => VOC_CLASSES.iter().map(|s| s.to_string()).collect(),
            Arch::Mb2SsdLite { num_classes, .. } => std::iter::once("BACKGROUND".to_string())
                .chain((1..*num_classes).map(|i| format!("class{i}")))
                .collect(),
            Arch::UltrafaceSlim | Arch::UltrafaceRfb => vec!["BACKGROUND".into(), "face".into()],
            // TF OD API models number their classes as COCO's label map does (1 = person).
            Arch::TfSsdLiteMobileNetV2 { num_classes } => std::iter::once("BACKGROUND".into())
                .chain((1..*num_classes).map(|id| {
                    COCO_LABEL_MAP
                        .get(id - 1)
                        .filter(|n| !n.is_empty())
                        .map_or_else(|| format!("class{id}"), |n| n.to_string())
                }))
                .collect(),
        }
    }
}

/// Pre- and post-processing constants of an SSD (pytorch-ssd's config module).
#[derive(Clone, Debug, PartialEq)]
pub struct SsdConfig {
    /// Network input width.
    pub input_w: usize,
    /// Network input height.
    pub input_h: usize,
    /// Subtracted from every 0..255 pixel value.
    pub mean: f32,
    /// Divides the centred value.
    pub std: f32,
    /// Variance of the centre offsets (0.1).
    pub center_variance: f32,
    /// Variance of the log sizes (0.2).
    pub size_variance: f32,
    /// NMS IoU threshold (boxes with IoU above it are suppressed).
    pub nms_iou: f32,
    /// Boxes kept per class before NMS.
    pub candidate_size: usize,
    /// Probability threshold used when none is given.
    pub default_threshold: f32,
    /// How class scores come from the logits.
    pub scores: ScoreFn,
    /// How an image is resized to the input.
    pub resize: Resize,
    /// Detections kept per class after NMS when the caller sets no cap (0 = no cap).
    pub max_per_class: usize,
    /// Detections kept in all, the best scores first (0 = no cap).
    pub max_detections: usize,
    /// Clip decoded boxes to the image (`[0, 1]`) before NMS, as the TF OD API does.
    pub clip_boxes: bool,
}

/// How class scores come from the logits of one prior.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum ScoreFn {
    /// Softmax over the classes, background included (pytorch-ssd).
    Softmax,
    /// An independent sigmoid per class (the TF Object Detection API's SSDs).
    Sigmoid,
}

/// A detector ready to compile: architecture, graph with weights, priors, configuration
/// and class names.
#[derive(Clone, Debug)]
pub struct Detector {
    /// The architecture.
    pub arch: Arch,
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
    /// A detector of `arch` with zero weights.
    pub fn new(arch: Arch) -> Self {
        Self {
            graph: arch.build_graph(),
            priors: arch.priors(),
            config: arch.config(),
            class_names: arch.default_classes(),
            arch,
            backend: None,
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
    /// [`crate::tf_import`]) file, recognised by content. The architecture comes from
    /// `arch_hint`, the file's metadata, or the keys, which must all agree.
    pub fn load(path: &Path, arch_hint: Option<&str>) -> Result<Self> {
        let bytes = slimdet_formats::read_file(path)?;
        Self::load_bytes(&bytes, &path.display().to_string(), arch_hint)
    }

    /// [`Detector::load`] on bytes in memory; `name` names them in errors.
    pub fn load_bytes(bytes: &[u8], name: &str, arch_hint: Option<&str>) -> Result<Self> {
        let p = name.to_string();
        if !slimdet_formats::looks_like_safetensors(bytes)
            && slimdet_formats::tf::looks_like_graphdef(bytes)
        {
            let det = crate::tf_import::load(bytes, &p)?;
            if let Some(h) = arch_hint.filter(|h| *h != det.arch.name()) {
                return Err(ModelError::Arch {
                    path: p,
                    reason: format!(
                        "--arch {h} given, but the file is a TensorFlow frozen graph of {}",
                        det.arch.name()
                    ),
                });
            }
            return Ok(det);
        }
        let (sd, meta) = slimdet_formats::load_state_dict_bytes(bytes, &p)?;
        let hint = arch_hint.or(meta.get("slimdet.arch").map(String::as_str));
        let arch = Arch::detect(&sd, hint, &p)?;
        let mut det = Detector::new(arch);
        if meta.contains_key(crate::reshape::PRUNED_META_KEY) {
            let input = det.input_shape();
            crate::reshape::adopt_shapes(&mut det.graph, &sd, &input, &p)?;
        }
        weights::load_into(&mut det.graph, &sd, &p, det.arch.name())?;
        if let Some(names) = meta.get("slimdet.classes") {
            let names: Vec<String> = names.split(',').map(str::to_string).collect();
            if names.len() == det.class_names.len() {
                det.class_names = names;
            }
        }
        Ok(det)
    }

    /// Saves the weights as safetensors with the architecture and class names in the
    /// metadata, atomically.
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

    /// File metadata: architecture, class names, and the structured-pruning marker when
    /// the channel counts differ from the architecture's.
    fn metadata(&self) -> BTreeMap<String, String> {
        let mut meta = BTreeMap::new();
        meta.insert("slimdet.arch".to_string(), self.arch.name().to_string());
        meta.insert("slimdet.classes".to_string(), self.class_names.join(","));
        if crate::reshape::shapes_differ(&self.graph, &self.arch.build_graph()) {
            meta.insert(
                crate::reshape::PRUNED_META_KEY.to_string(),
                "structured".to_string(),
            );
        }
        meta
    }

    /// Input shape `[1, H, W, 3]` for one image.
    pub fn input_shape(&self) -> [usize; 4] {
        [1, self.config.input_h, self.config.input_w, 3]
    }
}
