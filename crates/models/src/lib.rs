//! Detectors of the pytorch-ssd family as graphs, and everything around the network:
//! priors, box coding, NMS and the predictor.
//!
//! - Graph builders of pytorch-ssd's seven networks, each exactly as pytorch-ssd builds it
//!   (same state_dict keys): [`vgg`] (`vgg16-ssd`), [`mobilenet_v1`] (`mb1-ssd`,
//!   `mb1-ssd-lite`), [`squeezenet`] (`sq-ssd-lite`), [`mobilenet_v2`] (`mb2-ssd-lite`),
//!   [`mobilenet_v3`] (`mb3-large-ssd-lite`, `mb3-small-ssd-lite`); [`arch`] recognises
//!   them from a state_dict's keys and gives their priors and configuration.
//! - [`ultraface`]: the UltraFace slim and RFB face detectors (320x240).
//! - [`tf_ssdlite`], [`tf_import`]: the TF Object Detection API's SSDLite-MobileNetV2 and
//!   its import from a frozen graph (`.pb`).
//! - [`detector`], [`file`]: the [`Detector`] and the model file that carries its graph.
//! - [`weights`]: filling a graph from a state_dict, with a full mismatch report.
//! - [`predictor`]: image in, detections out, as pytorch-ssd's `Predictor`.

pub mod arch;
pub mod backend;
pub mod blocks;
pub mod box_coding;
pub mod detector;
pub mod error;
pub mod file;
pub mod init;
pub mod mobilenet_v1;
pub mod mobilenet_v2;
pub mod mobilenet_v3;
pub mod nms;
pub mod predictor;
pub mod priors;
pub mod reshape;
pub mod squeezenet;
pub mod tf_import;
pub mod tf_ssdlite;
pub mod ultraface;
pub mod vgg;
pub mod weights;

pub use arch::{Arch, ScoreFn, SsdConfig};
pub use backend::{Backend, BackendFactory};
pub use detector::Detector;
pub use error::{ModelError, Result};
pub use file::Head;
pub use predictor::{Detection, Predictor};
