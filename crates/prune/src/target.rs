//! What can be pruned in place: a bare [`Graph`] or a whole [`Detector`].

use slimdet_core::Graph;
use slimdet_models::Detector;

/// A model that exposes its graph for in-place pruning.
pub trait PruneTarget {
    /// The graph to rewrite.
    fn graph_mut(&mut self) -> &mut Graph;
}

impl PruneTarget for Graph {
    fn graph_mut(&mut self) -> &mut Graph {
        self
    }
}

impl PruneTarget for Detector {
    fn graph_mut(&mut self) -> &mut Graph {
        &mut self.graph
    }
}
