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

use cryptonn_authority::Caps;
use cryptonn_authority::service::{self, InitOptions, RunningService};
use cryptonn_fe::Group;
use cryptonn_protocol::RemoteAuthority;
use cryptonn_protocol::wire::Role;

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

/// The authority of an embedded run: stops when dropped, and removes the
/// run's directory unless asked to keep it.
pub struct EmbeddedAuthority {
    service: RunningService,
    state: PathBuf,
    work_dir: Option<PathBuf>,
}

impl Drop for EmbeddedAuthority {
    fn drop(&mut self) {
        // Stop serving before the state goes; a failure to stop cleanly
        // leaves nothing to recover in a throwaway run.
        let _ = self.service.shutdown();
        if let Some(dir) = &self.work_dir {
            // Best effort: a leftover temporary directory is harmless.
            let _ = std::fs::remove_dir_all(dir);
        }
    }
}

impl EmbeddedAuthority {
    /// Initializes a fresh state under `work_dir/authority` with the run's
    /// policy and serves it on a free loopback port.
    ///
    /// # Errors
    /// The work directory or the authority's state cannot be created, or
    /// the service cannot listen.
    pub fn start(work_dir: &Path, keep: bool, config: &TrainingConfig) -> Result<Self, TrainError> {
        let io = |e: std::io::Error| TrainError::Config(format!("{}: {e}", work_dir.display()));
        if work_dir.exists() {
            std::fs::remove_dir_all(work_dir).map_err(io)?;
        }
        std::fs::create_dir_all(work_dir).map_err(io)?;
        let state = work_dir.join("authority");
        let caps = Caps {
            rows: config.row_cap,
            cols: config.col_cap,
        };
        let options = InitOptions::new(config.group, caps, config.quantization.min_key_support);
        service::init(&state, &options)?;
        let service = service::spawn(&state, ([127, 0, 0, 1], 0).into())?;
        Ok(Self {
            service,
            state,
            work_dir: (!keep).then(|| work_dir.to_path_buf()),
        })
    }

    /// A connection to it with the token of `role`.
    ///
    /// # Errors
    /// The token or certificate files cannot be read.
    pub fn connect<G: Group>(&self, role: Role) -> Result<RemoteAuthority<G>, TrainError> {
        Ok(RemoteAuthority::from_files(
            self.service.url(),
            &service::token_path(&self.state, role),
            &service::cert_path(&self.state),
        )?)
    }
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
