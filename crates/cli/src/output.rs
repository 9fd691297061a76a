//! Writing result files atomically: a temporary file in the target directory, then a
//! rename, so a reader never sees a partial file.

use std::path::Path;

use anyhow::{Context, Result};

/// Writes `bytes` to `path` atomically ([`slimdet_atomic::write`]).
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    slimdet_atomic::write(path, bytes).with_context(|| format!("writing {}", path.display()))
}
