//! The engine: NHWC f32 tensors, a layer graph that passes can rewrite, and an executor.
//!
//! A model is data: a [`Graph`] of [`Node`]s in execution order. Passes (BN folding,
//! activation fusion, and later pruning and quantization) rewrite the graph; the
//! [`Plan`] compiles a graph into packed weights plus one activation arena and runs it.

pub mod desc;
pub mod error;
pub mod exec;
mod fused;
pub mod graph;
pub mod ops;
pub mod passes;
pub mod shape;
pub mod sparse;
pub mod stats;
pub mod tensor;

pub use desc::{GraphDesc, NodeDesc, OpDesc};
pub use error::{CoreError, Result};
pub use exec::{Plan, PlanOptions};
pub use graph::{Graph, Node, ValueId};
pub use ops::{BatchNorm, Conv2d, Op, Pool2d};
pub use slimdet_kernels::Act;
pub use tensor::Tensor;
