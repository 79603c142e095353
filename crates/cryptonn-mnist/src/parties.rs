//! Where the secure run's three parties live.
//!
//! By default ([`Parties::Embedded`]) the main job starts the authority in
//! this process, on a loopback port with a fresh state directory, and talks
//! to it over the same HTTPS API a remote authority serves; the client step
//! writes the ciphertexts to disk and the trainer streams them. With
//! [`Parties::Remote`] the authority is another process (`cryptonn authority
//! serve`) and a client (`cryptonn client encrypt`) already wrote the
//! ciphertexts.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};

use cryptonn_authority::{Caps, EmbeddedAuthority, InitOptions};
use cryptonn_fe::Group;
use cryptonn_protocol::RemoteAuthority;

use super::training::{TrainError, TrainingConfig};

/// How the secure run reaches its authority and its ciphertexts.
#[derive(Debug, Clone)]
pub enum Parties {
    /// An authority started in this process on a loopback port, with its
    /// state, the client's ciphertexts and the trainer's reads all under
    /// `work_dir` (emptied first).
    Embedded {
        /// Where the run writes.
        work_dir: PathBuf,
        /// Whether `work_dir` stays after the run (for a look at the
        /// authority's state and the batch files).
        keep: bool,
    },
    /// An authority already serving, and ciphertexts a client already wrote.
    Remote(RemoteParties),
}

/// An authority serving elsewhere and the ciphertexts written for it.
#[derive(Debug, Clone)]
pub struct RemoteParties {
    /// The authority's base URL, e.g. `https://127.0.0.1:8443`.
    pub url: String,
    /// A file holding the server's bearer token.
    pub token_file: PathBuf,
    /// The authority's certificate (its `cert.pem`), the only one trusted.
    pub ca_cert: PathBuf,
    /// The directory `cryptonn client encrypt --out` wrote (`train/`, and
    /// `test/` for secure inference).
    pub ciphertexts: PathBuf,
}

impl Default for Parties {
    /// A fresh directory under the system's temporary directory.
    fn default() -> Self {
        static RUNS: AtomicU64 = AtomicU64::new(0);
        let run = RUNS.fetch_add(1, Ordering::Relaxed);
        let name = format!("cryptonn-run-{}-{run}", std::process::id());
        Parties::Embedded {
            work_dir: std::env::temp_dir().join(name),
            keep: false,
        }
    }
}

/// Starts the embedded authority of a run under `work_dir` with the
/// configuration's group, caps and minimum key support.
///
/// # Errors
/// As [`EmbeddedAuthority::start`].
pub fn start_embedded(
    work_dir: &Path,
    keep: bool,
    config: &TrainingConfig,
) -> Result<EmbeddedAuthority, TrainError> {
    let caps = Caps {
        rows: config.row_cap,
        cols: config.col_cap,
    };
    let options = InitOptions::new(config.group, caps, config.quantization.min_key_support);
    Ok(EmbeddedAuthority::start(work_dir, keep, &options)?)
}

impl RemoteParties {
    /// The server's connection to the authority.
    pub(super) fn connect<G: Group>(&self) -> Result<RemoteAuthority<G>, TrainError> {
        Ok(RemoteAuthority::from_files(
            &self.url,
            &self.token_file,
            &self.ca_cert,
        )?)
    }
}
