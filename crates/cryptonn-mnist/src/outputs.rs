//! What a run writes besides its report.

use std::path::{Path, PathBuf};

use burn::module::Module;

use super::config::TrainError;
use super::parties::Parties;

/// Files a run writes besides its report, and where its parties live.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The secure run's final weights (Burn's burnpack format), also written
    /// when the rank budget stops training early.
    pub model: Option<PathBuf>,
    /// The authority's audit log of issued keys (JSON lines).
    pub audit_log: Option<PathBuf>,
    /// Where the parties live: by default an authority in this process
    /// behind its HTTPS API, and batch files in a fresh temporary directory.
    pub parties: Parties,
    /// Where burn-train writes each run's metric logs and checkpoints
    /// (`DIR/plain`, `DIR/secure`); `None` keeps them in memory.
    pub learner_dir: Option<PathBuf>,
}

/// Writes `model`'s weights to `path` (Burn's burnpack format).
///
/// # Errors
/// [`TrainError::Save`] if the file or its directory cannot be written.
pub fn save_model<M: Module>(model: &M, path: &Path) -> Result<(), TrainError> {
    let failed = |e: String| TrainError::Save {
        path: path.to_path_buf(),
        reason: e,
    };
    if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
        std::fs::create_dir_all(dir).map_err(|e| failed(e.to_string()))?;
    }
    model
        .clone()
        .save_file(path)
        .map_err(|e| failed(e.to_string()))
}
