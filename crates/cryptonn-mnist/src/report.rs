//! The JSON report of a run and its human summary.

use cryptonn_protocol::{Budget, RemoteTimings};
use serde::Serialize;

use super::config::{ModelKind, TrainingConfig};
use super::lenet::LeNetConfig;
use super::privacy::PrivacyReport;

pub use cryptonn_burn::train::EpochReport;

/// Wall time per phase, in seconds.
#[derive(Debug, Clone, Default, Serialize)]
pub struct PhaseSeconds {
    /// Clients encrypting the training set (secure runs only).
    pub client_encryption: f64,
    /// The authority deriving function keys, as seen by the server.
    pub key_derivation: f64,
    /// FE decryption including discrete logs.
    pub decryption: f64,
    /// Reading and decoding batch files (every point validated) during training.
    pub batch_reads: f64,
    /// Everything else in the training steps: Burn forward, backward and optimizer.
    pub burn_compute: f64,
}

/// Secure inference on encrypted test images.
#[derive(Debug, Clone, Serialize)]
pub struct SecureInference {
    /// Encrypted test images classified.
    pub images: usize,
    /// Their accuracy, computed from ciphertexts through the secure first layer.
    pub accuracy: f64,
}

/// The rank budget after an epoch: the most spent row-wise and column-wise
/// master keys over all batches (`None` without a budget).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
pub struct BudgetMeter {
    /// Row-wise master keys (dimension: features).
    pub rows: Option<Budget>,
    /// Column-wise master keys (dimension: batch size).
    pub cols: Option<Budget>,
}

/// What talking to the authority over HTTPS cost, against what an
/// in-process key service would have cost in the same run (its own key
/// derivation, which the authority reports in `Server-Timing`).
#[derive(Debug, Clone, Copy, Default, Serialize)]
pub struct KeyServiceReport {
    /// Requests (public keys and function keys).
    pub requests: u64,
    /// Wall time of every request, in seconds.
    pub wall: f64,
    /// Of which the authority spent deriving keys (what an in-process key service also pays).
    pub derive: f64,
    /// Of which the authority spent in its database transactions.
    pub store: f64,
    /// Network, TLS and JSON: `wall − derive − store`.
    pub transport: f64,
    /// `(store + transport) / run`: the share of the secure run the network and the database cost.
    pub overhead_share: f64,
    /// The secure run's wall time, in seconds.
    pub run: f64,
}

impl KeyServiceReport {
    /// Sums `timings` (client and server connections) for a run of `run` seconds.
    pub fn new(timings: &[RemoteTimings], run: f64) -> Self {
        let mut out = Self {
            run,
            ..Self::default()
        };
        for t in timings {
            out.requests += t.requests;
            out.wall += t.wall.as_secs_f64();
            out.derive += t.derive.as_secs_f64();
            out.store += t.store.as_secs_f64();
            out.transport += t.transport().as_secs_f64();
        }
        out.overhead_share = (out.store + out.transport) / run.max(f64::MIN_POSITIVE);
        out
    }
}

/// One run (secure or plain).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RunReport {
    /// Per-epoch loss and test accuracy.
    pub epochs: Vec<EpochReport>,
    /// Test accuracy of the final weights on the whole test set (plaintext evaluation).
    pub test_accuracy: f64,
    /// Time per phase.
    pub seconds: PhaseSeconds,
    /// Training samples processed per second of training (encryption excluded).
    pub train_samples_per_s: f64,
    /// Secure runs: accuracy on encrypted test images.
    pub secure_inference: Option<SecureInference>,
    /// Secure runs: bytes of ciphertext per training image (row-wise, column-wise and labels).
    pub ciphertext_bytes_per_image: Option<usize>,
    /// Secure runs: function keys issued by the authority.
    pub keys_issued: Option<u64>,
    /// Secure runs: the rank budget after each epoch.
    pub budget: Vec<BudgetMeter>,
    /// Why training stopped before the configured epochs, if it did.
    pub stopped: Option<String>,
    /// Where the trained weights were saved.
    pub model_file: Option<String>,
    /// Secure runs over HTTPS: the cost of the network and the database.
    pub key_service: Option<KeyServiceReport>,
    /// The process's peak resident memory so far, in MiB (Linux only).
    pub peak_memory_mib: Option<f64>,
}

/// What a run's training measured, for its report: the one place a run's
/// times and rate are assembled.
#[derive(Debug, Clone, Default)]
pub struct Measured {
    /// Each epoch's losses and test accuracy.
    pub epochs: Vec<EpochReport>,
    /// Why training stopped early, if it did.
    pub stopped: Option<String>,
    /// Wall time of training, in seconds (decryption included, the client
    /// step excluded).
    pub seconds: f64,
    /// Training samples processed (optimizer steps × batch size, or images
    /// decrypted for projection mode's head).
    pub samples: usize,
    /// The server's key derivation and decryption, as its clocks saw them.
    pub key_derivation: f64,
    /// See `key_derivation`.
    pub decryption: f64,
    /// Reading and decoding batch files.
    pub batch_reads: f64,
}

impl RunReport {
    /// A run's report from what its training measured; secure runs add
    /// their parties' numbers after.
    pub fn measured(m: Measured) -> Self {
        let secure = m.key_derivation + m.decryption + m.batch_reads;
        Self {
            test_accuracy: m.epochs.last().map_or(0.0, |e| e.test_accuracy),
            epochs: m.epochs,
            seconds: PhaseSeconds {
                key_derivation: m.key_derivation,
                decryption: m.decryption,
                batch_reads: m.batch_reads,
                burn_compute: (m.seconds - secure).max(0.0),
                ..PhaseSeconds::default()
            },
            train_samples_per_s: m.samples as f64 / m.seconds.max(f64::MIN_POSITIVE),
            stopped: m.stopped,
            ..Self::default()
        }
    }
}

/// The peak resident set size of this process (`VmHWM`), in MiB.
pub fn peak_memory_mib() -> Option<f64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with("VmHWM:"))?;
    let kib: f64 = line.split_whitespace().nth(1)?.parse().ok()?;
    Some(kib / 1024.0)
}

/// Everything a run of the main job reports.
#[derive(Debug, Clone, Serialize)]
pub struct Report {
    /// The configuration.
    pub config: TrainingConfig,
    /// The group of the secure run.
    pub group: String,
    /// Its classical security level in bits.
    pub security_bits: u32,
    /// The secure run, if any.
    pub secure: Option<RunReport>,
    /// The plaintext baseline, if any.
    pub plain: Option<RunReport>,
    /// What the secure run let the server learn, if there was one.
    pub privacy: Option<PrivacyReport>,
}

impl Report {
    /// The report of `config`'s runs; the group and its security level come from `config`.
    pub fn new(
        config: &TrainingConfig,
        secure: Option<RunReport>,
        plain: Option<RunReport>,
        privacy: Option<PrivacyReport>,
    ) -> Self {
        Self {
            config: config.clone(),
            group: config.group.to_string(),
            security_bits: config.group.security_bits(),
            secure,
            plain,
            privacy,
        }
    }

    /// A short human-readable summary.
    pub fn summary(&self) -> String {
        let lenet = (self.config.model_kind == ModelKind::Lenet)
            .then(|| LeNetConfig::new().with_side(self.config.model.d_input.isqrt()));
        let model = match &lenet {
            Some(_) => "LeNet-5".to_string(),
            None => format!("hidden {:?}", self.config.model.hidden),
        };
        let mut out = format!(
            "cryptonn mnist: {} train images, {} epochs, batch {}, {model}, group {} ({}-bit)\n",
            self.config.train_size,
            self.config.epochs,
            self.config.batch_size,
            self.group,
            self.security_bits
        );
        for (name, run) in [("secure", &self.secure), ("plain", &self.plain)] {
            if let Some(run) = run {
                out += &run_lines(name, run);
            }
        }
        if let (Some(s), Some(p)) = (&self.secure, &self.plain) {
            out += &format!(
                "  secure − plain accuracy: {:+.2} percentage points\n",
                100.0 * (s.test_accuracy - p.test_accuracy)
            );
        }
        if let Some(privacy) = &self.privacy {
            out += &format!("  {}\n", privacy.line());
        }
        if let Some(lenet) = lenet.filter(|_| self.secure.is_some()) {
            out += &format!(
                "  LeNet-5: the paper's policy, every key issued: the first convolution reveals {} \
                 equations per image on {} pixels — the images are recoverable by linear algebra \
                 (leakage_audit --convolution-only: least squares gives 32 of 32 images exactly from \
                 one forward pass)\n",
                lenet.equations_per_image(),
                self.config.model.d_input
            );
        }
        out
    }
}

/// A run's lines of the summary: accuracy, loss, rate and times, then what
/// it has of secure inference, the key service, memory, ciphertext size,
/// budget, stop and saved weights.
fn run_lines(name: &str, run: &RunReport) -> String {
    let mut out = String::new();
    let s = &run.seconds;
    out += &format!(
        "  {name:<6} test accuracy {:.2}% | final loss {:.4} | {:.1} samples/s | encrypt {:.1}s, keys {:.1}s, decrypt {:.1}s, read {:.1}s, burn {:.1}s\n",
        100.0 * run.test_accuracy,
        run.epochs.last().map_or(f64::NAN, |e| e.loss),
        run.train_samples_per_s,
        s.client_encryption,
        s.key_derivation,
        s.decryption,
        s.batch_reads,
        s.burn_compute,
    );
    if let Some(inf) = &run.secure_inference {
        out += &format!(
            "         secure inference on {} encrypted test images: {:.2}%\n",
            inf.images,
            100.0 * inf.accuracy
        );
    }
    if let Some(k) = &run.key_service {
        out += &format!(
            "         key service over HTTPS: {} requests, {:.1}s (derive {:.1}s, database {:.1}s, network {:.1}s): network + database {:.1}% of the run\n",
            k.requests,
            k.wall,
            k.derive,
            k.store,
            k.transport,
            100.0 * k.overhead_share
        );
    }
    if let Some(mib) = run.peak_memory_mib {
        out += &format!("         peak memory {mib:.0} MiB\n");
    }
    if let Some(bytes) = run.ciphertext_bytes_per_image {
        out += &format!("         ciphertext {bytes} bytes per training image\n");
    }
    if let Some(meter) = run.budget.last() {
        let show =
            |u: Option<Budget>| u.map_or("unlimited".into(), |u| format!("{}/{}", u.rank, u.limit));
        out += &format!(
            "         rank budget spent (most used batch): row-wise {}, column-wise {}\n",
            show(meter.rows),
            show(meter.cols)
        );
    }
    if let Some(why) = &run.stopped {
        out += &format!(
            "         stopped after {} epochs: {why}\n",
            run.epochs.len()
        );
    }
    if let Some(file) = &run.model_file {
        out += &format!("         weights saved to {file}\n");
    }
    out
}
