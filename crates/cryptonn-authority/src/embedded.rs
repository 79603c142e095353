//! An authority for one run, in the caller's process: a fresh state
//! directory served on a free loopback port over the same HTTPS API a
//! remote authority serves, so the run's client and server talk to it as
//! they would to `cryptonn authority serve`.

use std::path::{Path, PathBuf};

use cryptonn_fe::Group;
use cryptonn_protocol::wire::Role;
use cryptonn_protocol::{Error, RemoteAuthority};

use crate::service::{self, InitOptions, RunningService};
use crate::{StateError, StateResult};

/// A running embedded authority: stops when dropped, and removes its work
/// directory unless asked to keep it.
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
    /// Empties `work_dir`, initializes a state under `work_dir/authority`
    /// with `options` and serves it on a free loopback port. The run's other
    /// files (e.g. the client's batch files) may go beside it; all of
    /// `work_dir` goes when this is dropped unless `keep`.
    ///
    /// # Errors
    /// The work directory or the state cannot be created, or the service
    /// cannot listen.
    pub fn start(work_dir: &Path, keep: bool, options: &InitOptions) -> StateResult<Self> {
        let io = |e: std::io::Error| StateError::Io {
            path: work_dir.to_path_buf(),
            reason: e.to_string(),
        };
        if work_dir.exists() {
            std::fs::remove_dir_all(work_dir).map_err(io)?;
        }
        std::fs::create_dir_all(work_dir).map_err(io)?;
        let state = work_dir.join("authority");
        service::init(&state, options)?;
        let service = service::spawn(&state, ([127, 0, 0, 1], 0).into())?;
        Ok(Self {
            service,
            state,
            work_dir: (!keep).then(|| work_dir.to_path_buf()),
        })
    }

    /// Its base URL.
    pub fn url(&self) -> &str {
        self.service.url()
    }

    /// A connection to it with the token of `role`, trusting its certificate only.
    ///
    /// # Errors
    /// The token or certificate files cannot be read.
    pub fn connect<G: Group>(&self, role: Role) -> Result<RemoteAuthority<G>, Error> {
        RemoteAuthority::from_files(
            self.service.url(),
            &service::token_path(&self.state, role),
            &service::cert_path(&self.state),
        )
    }

    /// Writes its audit log to `path` as JSON lines (read as the operator).
    ///
    /// # Errors
    /// The operator's requests fail, or `path` cannot be written.
    pub fn export_audit<G: Group>(&self, path: &Path) -> Result<(), Error> {
        let operator = self.connect::<G>(Role::Operator)?;
        let mut text = String::new();
        let mut after = 0;
        loop {
            let page = operator.audit(after, 10_000)?;
            for entry in &page.records {
                text += &serde_json::to_string(&entry.record).unwrap_or_default();
                text.push('\n');
            }
            match page.next {
                Some(next) => after = next,
                None => break,
            }
        }
        std::fs::write(path, text).map_err(|e| Error::File {
            path: path.to_path_buf(),
            reason: e.to_string(),
        })
    }
}
