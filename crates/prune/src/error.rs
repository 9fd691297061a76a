//! The crate's single error type.

use thiserror::Error;

/// What can go wrong while pruning.
#[derive(Debug, Error)]
pub enum PruneError {
    /// The requested amount is not a fraction in `[0, 1)`.
    #[error(
        "pruning amount {amount} is outside [0, 1): give the fraction of weights (or channels) to remove, e.g. 0.5"
    )]
    Amount {
        /// The amount given.
        amount: f64,
    },
    /// No layer is left to prune once the exclusions are applied.
    #[error("nothing to prune: every candidate layer is excluded ({excluded} excluded)")]
    NothingToPrune {
        /// Layers excluded by pattern.
        excluded: usize,
    },
    /// An exclusion pattern is malformed.
    #[error("invalid exclusion pattern `{pattern}`: {reason}")]
    Pattern {
        /// The pattern.
        pattern: String,
        /// Why it is refused.
        reason: String,
    },
    /// The graph cannot be pruned structurally as it is (malformed coupling).
    #[error("structured pruning: {0}")]
    Structure(String),
    /// The caller's scoring closure failed during a sensitivity analysis.
    #[error("scoring a pruned model: {0}")]
    Score(String),
    /// A MAC budget is malformed or cannot be reached.
    #[error("{0}")]
    Budget(String),
    /// The engine refused the rewritten graph.
    #[error(transparent)]
    Core(#[from] slimdet_core::CoreError),
}

/// Result type of this crate.
pub type Result<T> = std::result::Result<T, PruneError>;
