//! The graph builders: which architecture a state_dict holds (recognised from its keys
//! and shapes), and for each its graph, priors, SSD configuration and default class
//! names. The rest of the toolkit works on the [`crate::Detector`] they build.

use slimdet_core::Graph;
use slimdet_formats::StateDict;

use crate::error::{ModelError, Result};
use crate::priors::{
    MB2_SSD_LITE_SPECS, SQ_SSD_LITE_SPECS, VGG_SSD_SPECS, ssd_priors, ultraface_priors,
};
use crate::{mobilenet_v1, mobilenet_v2, mobilenet_v3, squeezenet, tf_ssdlite, ultraface, vgg};
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

/// pytorch-ssd's networks, by its `--net` names: each has a graph builder here.
pub const PYTORCH_SSD_NETS: [&str; 7] = [
    "vgg16-ssd",
    "mb1-ssd",
    "mb1-ssd-lite",
    "sq-ssd-lite",
    "mb2-ssd-lite",
    "mb3-large-ssd-lite",
    "mb3-small-ssd-lite",
];

/// Every architecture name [`Arch::named`] and `--arch` accept.
pub const ARCH_NAMES: [&str; 10] = [
    "vgg16-ssd",
    "mb1-ssd",
    "mb1-ssd-lite",
    "sq-ssd-lite",
    "mb2-ssd-lite",
    "mb3-large-ssd-lite",
    "mb3-small-ssd-lite",
    "ultraface-slim",
    "ultraface-rfb",
    "tf-ssdlite-mobilenet-v2",
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
    /// MobileNetV1-SSD (pytorch-ssd's `mb1-ssd`), 300x300.
    Mb1Ssd {
        /// Classes including background.
        num_classes: usize,
    },
    /// MobileNetV1-SSD-Lite (pytorch-ssd's `mb1-ssd-lite`), 300x300.
    Mb1SsdLite {
        /// Classes including background.
        num_classes: usize,
    },
    /// MobileNetV3-SSD-Lite (pytorch-ssd's `mb3-large-ssd-lite` and `mb3-small-ssd-lite`),
    /// 300x300.
    Mb3SsdLite {
        /// MobileNetV3-Large (else Small).
        large: bool,
        /// Classes including background.
        num_classes: usize,
    },
    /// SqueezeNet-SSD-Lite (pytorch-ssd's `sq-ssd-lite`), 300x300.
    SqSsdLite {
        /// Classes including background.
        num_classes: usize,
    },
    /// VGG16-SSD (pytorch-ssd's `vgg16-ssd`), 300x300.
    Vgg16Ssd {
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
            Arch::Mb1Ssd { .. } => "mb1-ssd",
            Arch::Mb1SsdLite { .. } => "mb1-ssd-lite",
            Arch::Mb3SsdLite { large: true, .. } => "mb3-large-ssd-lite",
            Arch::Mb3SsdLite { large: false, .. } => "mb3-small-ssd-lite",
            Arch::SqSsdLite { .. } => "sq-ssd-lite",
            Arch::Vgg16Ssd { .. } => "vgg16-ssd",
            Arch::UltrafaceSlim => "ultraface-slim",
            Arch::UltrafaceRfb => "ultraface-rfb",
            Arch::TfSsdLiteMobileNetV2 { .. } => "tf-ssdlite-mobilenet-v2",
        }
    }

    /// Recognises the architecture from a state_dict's keys and shapes. `hint` is an
    /// architecture name (from `--arch` or file metadata) that must agree with the keys.
    pub fn detect(sd: &StateDict, hint: Option<&str>, path: &str) -> Result<Arch> {
        let has = |k: &str| sd.get(k).is_some();
        // The classes of a pytorch-ssd head `key` with `anchors` priors per location (its
        // weight must be OIHW with a multiple of `anchors` outputs, two classes at least),
        // and the weight's shape.
        let classes = |family: &str, key: &str, anchors: usize| {
            let s = sd.get(key).map(|t| t.shape.clone()).unwrap_or_default();
            if s.len() != 4 || !s[0].is_multiple_of(anchors) || s[0] < 2 * anchors {
                return Err(ModelError::Arch {
                    path: path.into(),
                    reason: format!("{family} keys found but {key} has shape {s:?}"),
                });
            }
            Ok((s[0] / anchors, s))
        };
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
        } else if has("base_net.13.3.weight") && has("extras.0.0.weight") {
            let (num_classes, cls) = classes(
                "MobileNetV1-SSD(-Lite)",
                "classification_headers.5.weight",
                6,
            )?;
            // SSD-Lite's last heads are 1x1, SSD's 3x3.
            if cls[2] == 1 {
                Arch::Mb1SsdLite { num_classes }
            } else {
                Arch::Mb1Ssd { num_classes }
            }
        } else if has("base_net.3.conv1.weight") && has("extras.0.conv1.weight") {
            let (num_classes, _) =
                classes("MobileNetV3-SSD-Lite", "classification_headers.5.weight", 6)?;
            // Large has 15 bottleneck blocks (base_net.3 ..= base_net.17), Small 11.
            Arch::Mb3SsdLite {
                large: has("base_net.17.conv1.weight"),
                num_classes,
            }
        } else if has("base_net.3.squeeze.weight") && has("extras.0.2.2.weight") {
            Arch::SqSsdLite {
                num_classes: classes("SqueezeNet-SSD-Lite", "classification_headers.5.weight", 6)?
                    .0,
            }
        } else if has("source_layer_add_ons.0.weight") && has("base_net.31.weight") {
            Arch::Vgg16Ssd {
                num_classes: classes("VGG16-SSD", "classification_headers.0.weight", 4)?.0,
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
                reason: "cannot recognise the architecture from the state_dict keys (expected mb2-ssd-lite, mb1-ssd, mb1-ssd-lite, mb3-large-ssd-lite, mb3-small-ssd-lite, sq-ssd-lite, vgg16-ssd, ultraface-slim, ultraface-rfb or tf-ssdlite-mobilenet-v2)".into(),
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

    /// The graph builder named `name` (the CLI's `--arch`) for `num_classes` classes
    /// with background; `width_mult` applies to MobileNetV2-SSD-Lite only.
    pub fn named(name: &str, width_mult: f64, num_classes: usize) -> Result<Arch> {
        let bad = |reason: String| ModelError::Arch {
            path: "<--arch>".into(),
            reason,
        };
        let arch = match name {
            "mb2-ssd-lite" => Arch::Mb2SsdLite {
                width_mult,
                num_classes,
            },
            "mb1-ssd" => Arch::Mb1Ssd { num_classes },
            "mb1-ssd-lite" => Arch::Mb1SsdLite { num_classes },
            "mb3-large-ssd-lite" | "mb3-small-ssd-lite" => Arch::Mb3SsdLite {
                large: name == "mb3-large-ssd-lite",
                num_classes,
            },
            "sq-ssd-lite" => Arch::SqSsdLite { num_classes },
            "vgg16-ssd" => Arch::Vgg16Ssd { num_classes },
            "tf-ssdlite-mobilenet-v2" => Arch::TfSsdLiteMobileNetV2 { num_classes },
            "ultraface-slim" => Arch::UltrafaceSlim,
            "ultraface-rfb" => Arch::UltrafaceRfb,
            other => return Err(bad(format!("unknown architecture `{other}`"))),
        };
        if arch.default_classes().len() != num_classes {
            return Err(bad(format!(
                "{name} has {} classes (with background), not {num_classes}",
                arch.default_classes().len()
            )));
        }
        Ok(arch)
    }

    /// The builders whose outputs are `[1, priors, classes]` logits (for importers that
    /// map a foreign graph onto a builder's); `stem_channels` (the first convolution's
    /// outputs) gives MobileNetV2-SSD-Lite's width.
    pub fn matching_outputs(priors: usize, classes: usize, stem_channels: usize) -> Vec<Arch> {
        match (priors, classes) {
            (3000, k) if k >= 2 => vec![
                Arch::Mb2SsdLite {
                    width_mult: stem_channels as f64 / 32.0,
                    num_classes: k,
                },
                Arch::Mb1Ssd { num_classes: k },
                Arch::Mb1SsdLite { num_classes: k },
                Arch::Mb3SsdLite {
                    large: true,
                    num_classes: k,
                },
                Arch::Mb3SsdLite {
                    large: false,
                    num_classes: k,
                },
            ],
            (2568, k) if k >= 2 => vec![Arch::SqSsdLite { num_classes: k }],
            (8732, k) if k >= 2 => vec![Arch::Vgg16Ssd { num_classes: k }],
            (4420, 2) => vec![Arch::UltrafaceSlim, Arch::UltrafaceRfb],
            _ => Vec::new(),
        }
    }

    /// The architecture a version-1 quantized file names in its metadata
    /// (`slimdet.arch`, with `slimdet.width_mult` and `slimdet.num_classes` where the
    /// architecture has them); `Err` says what is missing or implausible.
    pub fn from_metadata(
        name: Option<&str>,
        width_mult: Option<&str>,
        num_classes: Option<&str>,
    ) -> std::result::Result<Arch, String> {
        let classes = || {
            num_classes
                .and_then(|s| s.parse::<usize>().ok())
                .filter(|n| (2..=1000).contains(n))
                .ok_or("missing or invalid slimdet.num_classes")
        };
        match name {
            Some("mb2-ssd-lite") => {
                let width_mult = width_mult
                    .and_then(|s| s.parse::<f64>().ok())
                    .filter(|w| *w > 0.0 && *w <= 4.0)
                    .ok_or("missing or invalid slimdet.width_mult")?;
                Ok(Arch::Mb2SsdLite {
                    width_mult,
                    num_classes: classes()?,
                })
            }
            Some("mb1-ssd") => Ok(Arch::Mb1Ssd {
                num_classes: classes()?,
            }),
            Some("mb1-ssd-lite") => Ok(Arch::Mb1SsdLite {
                num_classes: classes()?,
            }),
            Some(n @ ("mb3-large-ssd-lite" | "mb3-small-ssd-lite")) => Ok(Arch::Mb3SsdLite {
                large: n == "mb3-large-ssd-lite",
                num_classes: classes()?,
            }),
            Some("sq-ssd-lite") => Ok(Arch::SqSsdLite {
                num_classes: classes()?,
            }),
            Some("vgg16-ssd") => Ok(Arch::Vgg16Ssd {
                num_classes: classes()?,
            }),
            Some("tf-ssdlite-mobilenet-v2") => Ok(Arch::TfSsdLiteMobileNetV2 {
                num_classes: classes()?,
            }),
            Some("ultraface-slim") => Ok(Arch::UltrafaceSlim),
            Some("ultraface-rfb") => Ok(Arch::UltrafaceRfb),
            other => Err(format!("unknown or missing architecture {other:?}")),
        }
    }

    /// The SSD configuration of this architecture.
    pub fn config(&self) -> SsdConfig {
        match self {
            Arch::Mb2SsdLite { .. }
            | Arch::Mb1Ssd { .. }
            | Arch::Mb1SsdLite { .. }
            | Arch::Mb3SsdLite { .. }
            | Arch::SqSsdLite { .. } => SsdConfig {
                input_w: 300,
                input_h: 300,
                mean: [127.0; 3],
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
            // `vgg_ssd_config`: RGB minus (123, 117, 104), std 1.
            Arch::Vgg16Ssd { .. } => SsdConfig {
                mean: [123.0, 117.0, 104.0],
                std: 1.0,
                ..Arch::Mb1Ssd { num_classes: 2 }.config()
            },
            Arch::UltrafaceSlim | Arch::UltrafaceRfb => SsdConfig {
                input_w: 320,
                input_h: 240,
                mean: [127.0; 3],
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
                mean: [127.5; 3],
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
            Arch::Mb1Ssd { num_classes } => mobilenet_v1::build(*num_classes, false),
            Arch::Mb1SsdLite { num_classes } => mobilenet_v1::build(*num_classes, true),
            Arch::Mb3SsdLite { large, num_classes } => mobilenet_v3::build(*num_classes, *large),
            Arch::SqSsdLite { num_classes } => squeezenet::build(*num_classes),
            Arch::Vgg16Ssd { num_classes } => vgg::build(*num_classes),
            Arch::UltrafaceSlim => ultraface::build(false),
            Arch::UltrafaceRfb => ultraface::build(true),
            Arch::TfSsdLiteMobileNetV2 { num_classes } => tf_ssdlite::build(*num_classes),
        }
    }

    /// Prior boxes `[cx, cy, w, h]`, in output order.
    pub fn priors(&self) -> Vec<[f32; 4]> {
        match self {
            Arch::Mb2SsdLite { .. }
            | Arch::Mb1Ssd { .. }
            | Arch::Mb1SsdLite { .. }
            | Arch::Mb3SsdLite { .. } => ssd_priors(&MB2_SSD_LITE_SPECS, 300.0),
            Arch::SqSsdLite { .. } => ssd_priors(&SQ_SSD_LITE_SPECS, 300.0),
            Arch::Vgg16Ssd { .. } => ssd_priors(&VGG_SSD_SPECS, 300.0),
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

    /// Classes including background.
    pub fn num_classes(&self) -> usize {
        match self {
            Arch::Mb2SsdLite { num_classes, .. }
            | Arch::Mb1Ssd { num_classes }
            | Arch::Mb1SsdLite { num_classes }
            | Arch::Mb3SsdLite { num_classes, .. }
            | Arch::SqSsdLite { num_classes }
            | Arch::Vgg16Ssd { num_classes }
            | Arch::TfSsdLiteMobileNetV2 { num_classes } => *num_classes,
            Arch::UltrafaceSlim | Arch::UltrafaceRfb => 2,
        }
    }

    /// Default class names (index 0 = BACKGROUND): pytorch-ssd's networks with 21 classes
    /// get VOC's names, other counts `class1`, `class2`, ...
    pub fn default_classes(&self) -> Vec<String> {
        match self {
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
            _ if self.num_classes() == 21 => VOC_CLASSES.iter().map(|x| x.to_string()).collect(),
            _ => std::iter::once("BACKGROUND".to_string())
                .chain((1..self.num_classes()).map(|i| format!("class{i}")))
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
    /// Subtracted from every 0..255 pixel value, per channel (RGB).
    pub mean: [f32; 3],
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

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_name_builds_and_names_itself() {
        for name in ARCH_NAMES {
            let classes = match name {
                "ultraface-slim" | "ultraface-rfb" => 2,
                _ => 21,
            };
            let arch = Arch::named(name, 1.0, classes).unwrap();
            assert_eq!(arch.name(), name);
            assert_eq!(arch.num_classes(), classes);
            assert_eq!(arch.default_classes().len(), classes);
            let g = arch.build_graph();
            let input = [1, arch.config().input_h, arch.config().input_w, 3];
            let shapes = slimdet_core::shape::infer(&g, &input).unwrap();
            let logits = g.outputs.iter().find(|(n, _)| n == "logits").unwrap().1;
            assert_eq!(shapes[logits], [1, arch.priors().len(), classes], "{name}");
        }
        for name in PYTORCH_SSD_NETS {
            assert!(ARCH_NAMES.contains(&name));
        }
    }
}
