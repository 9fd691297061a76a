//! Pruning for slimdet detectors.
//!
//! - [`unstructured`]: zero individual weights, by magnitude ([`Method::L1`]) or at random
//!   ([`Method::Random`]), per layer or globally. The model keeps its shapes; the zeros can
//!   be stored compactly (`slimdet_formats::sparse`) and skipped at run time by the sparse
//!   1x1 kernel (`slimdet_kernels::sparse`).
//! - [`structured`]: whole channels removed per dependency group ([`groups`]), giving a
//!   smaller dense model (filter L1/L2, BN scale or random criteria).
//! - [`masks`]: keep-masks rebuilt from the zeros, for fine-tuning.
//! - [`schedule`]: the AGP sparsity ramp for gradual pruning during fine-tuning.
//! - [`sensitivity`]: each unit (channel group or conv) pruned alone at several levels,
//!   scored by a caller's closure (mAP in `slimdet sensitivity`).
//! - [`budget`]: per-unit ratios from a sensitivity table that meet a MAC budget with the
//!   least predicted loss.
//! - [`drift`]: label-free output drift of each conv pruned alone.
//!
//! Everything is deterministic: random pruning draws from a [`rng::SplitMix64`] stream
//! per layer derived from the seed.

pub mod budget;
pub mod drift;
pub mod error;
pub mod groups;
pub mod masks;
pub mod pattern;
pub mod rng;
pub mod schedule;
pub mod sensitivity;
pub mod structured;
pub mod target;
pub mod unstructured;

pub use budget::{Allocation, parse_budget, solve};
pub use drift::{DriftRow, output_drift};
pub use error::{PruneError, Result};
pub use groups::{Group, dependency_groups};
pub use masks::{apply_masks, masks};
pub use schedule::AgpSchedule;
pub use sensitivity::{SensitivityTable, Step, UnitCurve, UnitMethod, UnitPruner, analyze};
pub use structured::{
    Criterion, GroupReport, StructuredOptions, prune_structured, prune_structured_with_report,
    zero_channels,
};
pub use target::PruneTarget;
pub use unstructured::{
    LayerReport, Method, PruneReport, Scope, UnstructuredOptions, check_amount, prune_unstructured,
};
