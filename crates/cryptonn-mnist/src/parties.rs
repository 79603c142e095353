//! The three parties of a secure run, and the trainer's session with them.
//!
//! By default ([`Parties::Embedded`]) the main job starts the authority in
//! this process, on a loopback port with a fresh state directory, and talks
//! to it over the same HTTPS API a remote authority serves; the client step
//! writes the ciphertexts to disk and the trainer streams them. With
//! [`Parties::Remote`] the authority is another process (`cryptonn authority
//! serve`) and a client (`cryptonn client encrypt`) already wrote the
//! ciphertexts. Every mode (the paper's MLP, projection mode, LeNet-5) runs
//! the same way; only the layout of the batch files and the authority's
//! policy differ.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};

use cryptonn_authority::{Caps, EmbeddedAuthority, InitOptions, PolicyKind};
use cryptonn_client::{EncryptionJob, EncryptionStats, Layout, encrypt_to_dir};
use cryptonn_fe::feip::FunctionKey;
use cryptonn_fe::{Group, KeyId, febo};
use cryptonn_protocol::container::BatchDir;
use cryptonn_protocol::wire::Role;
use cryptonn_protocol::{FeboKeyRequest, KeyService, RemoteAuthority};

use super::config::{KeyPolicyKind, LabelMode, Privacy, TrainError, TrainingConfig};
use super::data::{Data, Dataset, test_batches};
use super::progress::Meter;

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

/// The authority's setup for the configuration: the rank budget of the
/// paper's mode (`row_cap`, `col_cap`), projection mode's (K equations per
/// image, no gradient key), or the paper's issue-all policy.
pub fn init_options(config: &TrainingConfig) -> InitOptions {
    let caps = match config.privacy {
        Privacy::Cryptonn => Caps {
            rows: config.row_cap,
            cols: config.col_cap,
        },
        Privacy::Projection => Caps {
            rows: config.projection_dim,
            cols: 0,
        },
    };
    let options = InitOptions::new(config.group, caps, config.quantization.min_key_support);
    match config.policy {
        KeyPolicyKind::Budget => options,
        KeyPolicyKind::IssueAll => options.with_policy(PolicyKind::IssueAll),
    }
}

/// Starts the embedded authority of a run under `work_dir`.
///
/// # Errors
/// As [`EmbeddedAuthority::start`].
pub fn start_embedded(
    work_dir: &Path,
    keep: bool,
    config: &TrainingConfig,
) -> Result<EmbeddedAuthority, TrainError> {
    Ok(EmbeddedAuthority::start(
        work_dir,
        keep,
        &init_options(config),
    )?)
}

/// The trainer's view of one secure run: its connection to the authority
/// and the directories of batch files it streams.
pub struct Session<G: Group> {
    /// The server's connection to the authority.
    pub server: Arc<RemoteAuthority<G>>,
    /// The training batches.
    pub train: BatchDir,
    /// The encrypted test images, if any.
    pub test: Option<BatchDir>,
    /// What the client step did, when it ran in this process.
    pub client: Option<EncryptionStats>,
    /// Kept alive for the run when the authority is embedded.
    embedded: Option<EmbeddedAuthority>,
}

impl<G: Group> Session<G> {
    /// Starts the embedded parties (the authority, then the client step
    /// writing `layout` files), or connects to remote ones and checks that
    /// their files have that layout.
    ///
    /// # Errors
    /// The authority cannot start or be reached, the client step fails, or
    /// the files are not what the model reads.
    pub fn open(
        config: &TrainingConfig,
        data: &Data,
        parties: &Parties,
        layout: Layout,
    ) -> Result<Self, TrainError> {
        let session = match parties {
            Parties::Embedded { work_dir, keep } => {
                Self::embedded(config, data, work_dir, *keep, layout)?
            }
            Parties::Remote(remote) => Self::remote(config, remote)?,
        };
        let manifest = session.train.manifest();
        if manifest.kind != layout.kind() || manifest.features != config.model.d_input {
            return Err(TrainError::Config(format!(
                "{} holds {:?} files of {} features; this run reads {:?} files of {}",
                session.train.dir().display(),
                manifest.kind,
                manifest.features,
                layout.kind(),
                config.model.d_input
            )));
        }
        Ok(session)
    }

    fn embedded(
        config: &TrainingConfig,
        data: &Data,
        work_dir: &Path,
        keep: bool,
        layout: Layout,
    ) -> Result<Self, TrainError> {
        let authority = start_embedded(work_dir, keep, config)?;
        let client = authority.connect::<G>(Role::Client)?;
        let labels = (config.labels == LabelMode::Encrypted)
            .then_some((config.model.classes, config.quantization.label_scale));
        let dir = work_dir.join("ciphertexts");
        let job = EncryptionJob {
            data: &data.train,
            batches: &data.batches,
            labels,
            source: format!("training images, seed {}", config.seed),
            layout,
        };
        let (train, stats) = encrypt_with_progress(&client, &job, &dir.join("train"))?;
        let tests = test_batches(config, &data.test);
        let test_job = EncryptionJob {
            data: &data.test,
            batches: &tests,
            labels: None,
            source: "the first test images, in order".into(),
            layout,
        };
        let test = (!tests.is_empty())
            .then(|| encrypt_with_progress(&client, &test_job, &dir.join("test")))
            .transpose()?
            .map(|(d, _)| d);
        Ok(Self {
            server: Arc::new(authority.connect(Role::Server)?),
            train,
            test,
            client: Some(stats),
            embedded: Some(authority),
        })
    }

    fn remote(config: &TrainingConfig, remote: &RemoteParties) -> Result<Self, TrainError> {
        if config.labels == LabelMode::Plain {
            return Err(TrainError::Config(
                "a remote run takes its labels from the client's files: use --labels encrypted"
                    .into(),
            ));
        }
        let server = RemoteAuthority::from_files(&remote.url, &remote.token_file, &remote.ca_cert)?;
        let test_dir = remote.ciphertexts.join("test");
        Ok(Self {
            server: Arc::new(server),
            train: BatchDir::open(remote.ciphertexts.join("train"))?,
            test: test_dir
                .exists()
                .then(|| BatchDir::open(&test_dir))
                .transpose()?,
            client: None,
            embedded: None,
        })
    }

    /// Writes the embedded authority's audit log to `path` (a remote
    /// authority keeps its own).
    ///
    /// # Errors
    /// The operator's requests fail or `path` cannot be written.
    pub fn export_audit(&self, path: &Path) -> Result<(), TrainError> {
        match &self.embedded {
            Some(embedded) => Ok(embedded.export_audit::<G>(path)?),
            None => Ok(()),
        }
    }
}

/// The client step of `job` into `dir`, with a progress meter.
///
/// # Errors
/// As [`encrypt_to_dir`].
pub fn encrypt_with_progress<G: Group>(
    client: &RemoteAuthority<G>,
    job: &EncryptionJob<'_>,
    dir: &Path,
) -> Result<(BatchDir, EncryptionStats), TrainError> {
    let mut meter: Option<Meter> = None;
    let result = encrypt_to_dir(client, job, dir, &mut |done, total| {
        meter
            .get_or_insert_with(|| Meter::new("encrypt", total))
            .set(done);
    });
    if let Some(meter) = meter {
        meter.finish();
    }
    Ok(result?)
}

/// The labels of `count` encrypted test images after the first `from`, in
/// order: the encrypted test batches are the first test images.
///
/// # Errors
/// [`TrainError::Config`] if there are fewer test labels here.
pub fn test_labels(test: &Dataset, from: usize, count: usize) -> Result<Vec<usize>, TrainError> {
    if from + count > test.len() {
        return Err(TrainError::Config(format!(
            "the encrypted test images outnumber the {} test labels here; raise --test-size",
            test.len()
        )));
    }
    Ok(test.labels_of(&(from..from + count).collect::<Vec<_>>()))
}

/// A key service that counts the keys it hands out.
pub struct Counted<G: Group> {
    inner: Arc<RemoteAuthority<G>>,
    keys: AtomicU64,
}

impl<G: Group> Counted<G> {
    /// Counts the keys `inner` issues.
    pub fn new(inner: Arc<RemoteAuthority<G>>) -> Self {
        Self {
            inner,
            keys: AtomicU64::new(0),
        }
    }

    /// Keys issued so far.
    pub fn keys(&self) -> u64 {
        self.keys.load(Ordering::Relaxed)
    }
}

impl<G: Group> KeyService<G> for Counted<G> {
    fn feip_keys(
        &self,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> cryptonn_protocol::Result<Vec<FunctionKey<G>>> {
        let keys = self.inner.feip_keys(instance, ys)?;
        self.keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        Ok(keys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> cryptonn_protocol::Result<Vec<febo::FunctionKey<G>>> {
        let keys = self.inner.febo_keys(instance, requests)?;
        self.keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        Ok(keys)
    }
}
