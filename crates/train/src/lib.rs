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
//!
//! # Mixed precision (`--precision bf16`, [`Precision::Bf16`])
//!
//! The CPU counterpart of APEX AMP's op lists. bf16 has f32's exponent range, so no loss
//! scaling is needed; values are rounded to nearest even, NaN kept NaN
//! (`slimdet_kernels::bf16`).
//!
//! Runs with bf16 operands and f32 accumulation (`slimdet_kernels::bf16_gemm`, AVX512-BF16
//! `vdpbf16ps`):
//! - dense convolutions (`groups == 1`: the 1x1 expand/project layers, the 1x1 heads, the
//!   extras' 1x1s, any k×k dense conv through im2col): the forward product `X·W` and the
//!   input gradient `dY·W` when their depth (input channels × kernel area, resp. output
//!   channels) is at least 32, and the weight gradient `dYᵀ·X` always (its depth is every
//!   pixel of the batch).
//!
//! Stays f32: the master weights and SGD momentum, products shallower than 32 (packing
//! costs more than bf16 saves there: the stem's 27-deep patches, 16-channel layers),
//! depthwise convolutions (memory-bound, no GEMM), batch norm (statistics, normalisation
//! and its backward), activations, additions, concatenation, the loss (softmax, hard
//! negative mining, smooth L1) and the BN running statistics. The activations kept on the
//! tape are f32.
//!
//! `bf16` needs AVX512-BF16: elsewhere [`train`] refuses it (the scalar reference would be
//! exact but several times slower than f32). Fine-tuning after pruning (`prune
//! --precision`) and the study's fine-tuned variants (`finetune.precision`) go through the
//! same trainer; quantization-aware training stays f32.

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
pub mod qat;
pub mod schedule;
pub mod trainer;
pub mod validate;

pub use config::{Precision, Progress, StepInfo, TrainConfig, TrainReport};
pub use masks::WeightMasks;
pub use trainer::{TrainStart, train, train_from};
