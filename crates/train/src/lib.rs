//! Training for slimdet: backward passes over the layer graph, pytorch-ssd's
//! MultiboxLoss, SGD with momentum, LR schedules, the training augmentation, the training
//! loop with checkpoints, and validation mAP.
//!
//! Why a crate of its own: training needs a second execution mode of the graph (batch
//! statistics, a tape of activations, gradients) that inference never pays for, plus data
//! pipelines and state files the other crates have no use for.
//!
//! - [`autograd`]: [`TrainGraph`] runs a [`slimdet_core::Graph`] forward in training or
//!   eval mode and back, with gradients keyed like state_dict keys.

pub mod autograd;
pub mod error;
pub mod rng;

pub use autograd::{BackwardOptions, Gradients, Mode, OpTime, Tape, TrainGraph};
pub use error::{Result, TrainError};
pub mod augment;
pub mod checkpoint;
pub mod config;
pub mod data;
pub mod init;
pub mod init_tf;
pub mod loss;
pub mod masks;
pub mod optim;
pub mod schedule;
pub mod trainer;
pub mod validate;

pub use config::{Progress, StepInfo, TrainConfig, TrainReport};
pub use masks::WeightMasks;
pub use trainer::{TrainStart, train, train_from};
