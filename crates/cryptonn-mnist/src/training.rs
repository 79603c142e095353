//! The main job: clients encrypt, the authority issues keys, the server trains.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::Instant;

use burn::config::Config;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::{Device, Gradients, Int, Tensor};
use cryptonn_authority::{AuditLog, Authority, Caps};
use cryptonn_burn::QuantizationConfig;
use cryptonn_fe::{Group, GroupId, Modp2048, Modp3072, Ristretto255};
use cryptonn_protocol::{Budget, KeyPolicy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use super::data::DataError;
use super::data::Tensors;
use super::data::{Dataset, Split};
use super::learner::{Epochs, train_epochs};
use super::lenet_training;
use super::model::{Mlp, MlpConfig};
use super::parties::Parties;
use super::privacy::PrivacyReport;
use super::projection;
use super::report::{EpochReport, PhaseSeconds, Report, RunReport, SecureInference};
use super::secure;
use cryptonn_burn::train::correct;

/// Which runs to make.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Mode {
    /// Secure training only.
    Secure,
    /// The plaintext baseline only.
    Plain,
    /// Both, with the same initial weights, seed and data order.
    Both,
}

/// The optimizer of every layer.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerKind {
    /// Adam with Burn's defaults.
    Adam,
    /// Plain stochastic gradient descent.
    Sgd,
}

/// How the learning rate moves over the run's steps.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LrSchedule {
    /// `lr` at every step.
    Constant,
    /// From `lr` down to 0 along a half cosine over all the run's steps
    /// (Burn's `CosineAnnealingLrScheduler`): the last steps move the weights
    /// little, so two runs that differ only by rounding end close together.
    Cosine,
}

/// The Burn CPU backend the runs compute on; decryption runs on the CPU
/// either way. Both have the secure op registered.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum CpuBackend {
    /// Burn's NdArray backend (deprecated by Burn, still the default here
    /// until Flex is measured faster on this job).
    Ndarray,
    /// Burn's Flex backend, what `Device::default()` picks.
    Flex,
}

impl CpuBackend {
    /// A device of this backend, without autodiff.
    pub fn device(self) -> Device {
        match self {
            Self::Ndarray => Device::ndarray(),
            Self::Flex => Device::flex(),
        }
    }
}

/// How the server gets the output error ŷ − y.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum LabelMode {
    /// FEBO-encrypted one-hot labels (the paper's protocol; the server still learns y).
    Encrypted,
    /// Labels sent in the clear.
    Plain,
}

/// What the server may learn: the paper's protocol or projection mode.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum Privacy {
    /// CryptoNN as published: a secure first layer trained with row keys for
    /// W and column keys for δ every step; the equations on each image grow
    /// with training, up to the caps.
    Cryptonn,
    /// A fixed public projection decrypted once per image (K equations for
    /// life, no gradient keys); the layers after it train in the clear.
    Projection,
}

/// The model the main job trains.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "lowercase")]
pub enum ModelKind {
    /// The MLP of [`MlpConfig`] with a secure first layer.
    Mlp,
    /// The paper's LeNet-5 with a secure first convolution
    /// ([`super::lenet`]); needs [`KeyPolicyKind::IssueAll`].
    Lenet,
}

/// What the authority approves.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, clap::ValueEnum)]
#[serde(rename_all = "kebab-case")]
pub enum KeyPolicyKind {
    /// The per-image rank budget of `row_cap` and `col_cap` (or projection
    /// mode's K): the only policy the MLP runs under.
    Budget,
    /// The paper's policy: every key requested is issued. Only LeNet-5 runs
    /// under it, because its first convolution needs more equations per
    /// image than the image has pixels; the server can solve for the images.
    IssueAll,
}

/// Configuration of the main job.
#[derive(Config, Debug)]
pub struct TrainingConfig {
    /// Secure, plain or both. Default both.
    #[config(default = "Mode::Both")]
    pub mode: Mode,
    /// The group of the secure run. Default Ristretto255.
    #[config(default = "GroupId::Ristretto255")]
    pub group: GroupId,
    /// Passes over the training images. Default 2.
    #[config(default = 2)]
    pub epochs: usize,
    /// Training images used (the first ones of the training set). Default 6144.
    #[config(default = 6144)]
    pub train_size: usize,
    /// Test images for the accuracy (the first ones of the test set). Default 10000.
    #[config(default = 10000)]
    pub test_size: usize,
    /// Images per batch; one row-wise and one column-wise master key per batch. Default 256.
    #[config(default = 256)]
    pub batch_size: usize,
    /// The MLP or LeNet-5. Default the MLP.
    #[config(default = "ModelKind::Mlp")]
    pub model_kind: ModelKind,
    /// The authority's policy. Default the rank budget; LeNet-5 needs
    /// `IssueAll`, stated explicitly.
    #[config(default = "KeyPolicyKind::Budget")]
    pub policy: KeyPolicyKind,
    /// Layer sizes of the MLP.
    #[config(default = "MlpConfig::new()")]
    pub model: MlpConfig,
    /// Learning rate. Default 1e-2.
    #[config(default = 1e-2)]
    pub lr: f64,
    /// Optimizer. Default Adam.
    #[config(default = "OptimizerKind::Adam")]
    pub optimizer: OptimizerKind,
    /// Learning-rate schedule. Default constant.
    #[config(default = "LrSchedule::Constant")]
    pub lr_schedule: LrSchedule,
    /// Seed of weights, data order, keys and encryption randomness. Default 42.
    #[config(default = 42)]
    pub seed: u64,
    /// The Burn CPU backend. Default NdArray.
    #[config(default = "CpuBackend::Ndarray")]
    pub backend: CpuBackend,
    /// Encrypted or plain labels. Default encrypted.
    #[config(default = "LabelMode::Encrypted")]
    pub labels: LabelMode,
    /// Encrypted test images classified by secure inference. Default 512.
    #[config(default = 512)]
    pub secure_test_size: usize,
    /// The paper's protocol or projection mode. Default the paper's.
    #[config(default = "Privacy::Cryptonn")]
    pub privacy: Privacy,
    /// Projection mode: K, the outputs of the fixed public projection and
    /// the equations each image reveals for life. Default 64.
    #[config(default = 64)]
    pub projection_dim: usize,
    /// The paper's mode: independent equations the server may hold on each
    /// image (the rank of the row keys per master key). Default 128: two
    /// epochs of a 64-wide secure layer.
    #[config(default = 128)]
    pub row_cap: usize,
    /// The paper's mode: independent weight-gradient equations per pixel
    /// mixing a batch's images (the rank of the column keys per master key).
    /// Default 128.
    #[config(default = 128)]
    pub col_cap: usize,
    /// The paper's mode: decoded batches the trainer keeps between epochs,
    /// in MiB (about 64 MiB per 256 images); the rest are read from disk and
    /// decoded again every epoch. Default 1024: 15 of the default run's 24
    /// batches, and the full set stays under 2 GB.
    #[config(default = 1024)]
    pub batch_cache_mib: usize,
    /// Centre the inputs on the public mean image (the test images, without
    /// their labels): z₁ = W(x − μ) + b, in the plain and the secure run
    /// alike (see [`Mlp`]). Default true: without it, Adam kills most ReLUs
    /// of dense images in the first steps and the secure run cannot revive
    /// them.
    #[config(default = true)]
    pub center_inputs: bool,
    /// Quantization of weights and errors. Default: 8-bit weights and errors,
    /// which train as well as the library's 12 bits here at 1.2× the speed.
    #[config(default = "QuantizationConfig::new().with_weight_bits(8).with_delta_bits(8)")]
    pub quantization: QuantizationConfig,
}

/// Why the main job stopped.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainError {
    /// The data could not be loaded.
    #[error(transparent)]
    Data(#[from] DataError),
    /// The secure protocol failed (a key refusal, a value out of bound, …).
    #[error(transparent)]
    Secure(#[from] cryptonn_burn::Error),
    /// The embedded authority could not start (its state, its TLS listener).
    #[error("authority: {0}")]
    Authority(#[from] cryptonn_authority::StateError),
    /// A configuration that cannot run.
    #[error("invalid configuration: {0}")]
    Config(String),
    /// burn-train's Learner failed (a data loader, a checkpoint, its event
    /// processor).
    #[error("burn-train's Learner stopped: {0}")]
    Learner(String),
    /// The trained weights could not be saved.
    #[error("cannot save the model to {path}: {reason}")]
    Save {
        /// Where.
        path: PathBuf,
        /// Why.
        reason: String,
    },
}

/// Files a run writes besides its report.
#[derive(Debug, Clone, Default)]
pub struct Outputs {
    /// The secure run's final weights (Burn's burnpack format), also written
    /// when the rank budget stops training early.
    pub model: Option<PathBuf>,
    /// The authority's audit log of issued keys (JSON lines).
    pub audit_log: Option<PathBuf>,
    /// Where the parties of the paper's mode live: by default an authority
    /// in this process behind its HTTPS API, and batch files in a fresh
    /// temporary directory.
    pub parties: Parties,
    /// Where burn-train writes each run's metric logs and checkpoints
    /// (`DIR/plain`, `DIR/secure`); `None` keeps them in memory.
    pub learner_dir: Option<PathBuf>,
}

impl From<cryptonn_fe::Error> for TrainError {
    fn from(e: cryptonn_fe::Error) -> Self {
        Self::Secure(e.into())
    }
}

impl From<cryptonn_protocol::Error> for TrainError {
    fn from(e: cryptonn_protocol::Error) -> Self {
        Self::Secure(e.into())
    }
}

/// The main job's MLP, secure or plain, with its inputs centred on the mean
/// of the `public` images if the configuration asks for it. The same seed
/// gives the same weights either way.
pub fn init_model(config: &TrainingConfig, public: &Dataset, device: &Device, secure: bool) -> Mlp {
    let model = config.model.init(device, secure);
    if config.center_inputs && public.features == config.model.d_input && !public.is_empty() {
        model.centred(&public.mean_image())
    } else {
        model
    }
}

/// The optimizer of the configuration, with Burn's defaults.
pub fn optimizer(config: &TrainingConfig) -> ModuleOptimizer {
    match config.optimizer {
        OptimizerKind::Adam => AdamConfig::new().init(),
        OptimizerKind::Sgd => SgdConfig::new().init(),
    }
}

/// The learning-rate scheduler of the configuration, for a run of `steps`
/// optimizer steps.
///
/// # Errors
/// [`TrainError::Config`] for a learning rate Burn's scheduler refuses
/// (outside (0, 1]) or a run without steps.
pub fn lr_scheduler(
    config: &TrainingConfig,
    steps: usize,
) -> Result<ModuleLrScheduler, TrainError> {
    match config.lr_schedule {
        LrSchedule::Constant => Ok(ConstantLr::new(config.lr).into()),
        LrSchedule::Cosine => CosineAnnealingLrSchedulerConfig::new(config.lr, steps)
            .init()
            .map_err(|e| TrainError::Config(format!("cosine learning rate: {e}"))),
    }
}

/// Secure inference's accuracy over encrypted batches, each given as the
/// server's logits and the true labels; `None` without a batch.
///
/// # Errors
/// The first batch's error.
pub(super) fn secure_accuracy(
    batches: impl Iterator<Item = Result<(Tensor<2>, Vec<usize>), TrainError>>,
) -> Result<Option<SecureInference>, TrainError> {
    let (mut right, mut classified) = (0, 0);
    for batch in batches {
        let (logits, labels) = batch?;
        right += correct(logits, &labels);
        classified += labels.len();
    }
    Ok((classified > 0).then(|| SecureInference {
        images: classified,
        accuracy: right as f64 / classified as f64,
    }))
}

/// Fixed batch compositions: the first `train_size` images shuffled once by the seed.
pub fn batches(config: &TrainingConfig, available: usize) -> Vec<Vec<usize>> {
    cryptonn_client::batches::shuffled(config.seed, available, config.batch_size)
}

/// The order of the batches in each epoch.
pub fn epoch_order(config: &TrainingConfig, epoch: usize, count: usize) -> Vec<usize> {
    let mut order: Vec<usize> = (0..count).collect();
    order.shuffle(&mut StdRng::seed_from_u64(
        config.seed.wrapping_add(1 + epoch as u64),
    ));
    order
}

/// Runs the main job on the IDX files in `data_dir`.
///
/// # Errors
/// Missing or corrupt data, an impossible configuration, a failure of the
/// secure protocol, or an output that cannot be written. A spent rank budget
/// is not an error: training stops early and the report says why.
pub fn run(
    config: &TrainingConfig,
    data_dir: &Path,
    outputs: &Outputs,
) -> Result<Report, TrainError> {
    if config.batch_size == 0
        || config.epochs == 0
        || config.model.hidden.is_empty()
        || config.model.hidden.contains(&0)
    {
        return Err(TrainError::Config(
            "batch size, epochs and the hidden widths must be positive".into(),
        ));
    }
    let data = load(config, data_dir)?;
    match (config.model_kind, config.policy) {
        (ModelKind::Lenet, _) => return lenet_training::run(config, &data, outputs),
        (ModelKind::Mlp, KeyPolicyKind::IssueAll) => {
            return Err(TrainError::Config(
                "--policy issue-all is only for --model lenet: the MLP's authority enforces the \
                 rank budget (--row-cap, --col-cap)"
                    .into(),
            ));
        }
        (ModelKind::Mlp, KeyPolicyKind::Budget) => {}
    }
    check_caps(config, data.train.features)?;
    let plain = matches!(config.mode, Mode::Plain | Mode::Both)
        .then(|| match config.privacy {
            Privacy::Cryptonn => train_plain(config, &data, outputs),
            Privacy::Projection => projection::train_plain(config, &data, outputs),
        })
        .transpose()?;
    let secure = match config.mode {
        Mode::Plain => None,
        Mode::Secure | Mode::Both => Some(match config.group {
            GroupId::Ristretto255 => secure_run::<Ristretto255>(config, &data, outputs)?,
            GroupId::Modp2048 => secure_run::<Modp2048>(config, &data, outputs)?,
            GroupId::Modp3072 => secure_run::<Modp3072>(config, &data, outputs)?,
        }),
    };
    let (secure, privacy) = secure.unzip();
    Ok(Report::new(config, secure, plain, privacy))
}

/// The fixed batches of a run: lists of training-image indices.
pub type Batches = Arc<[Vec<usize>]>;

/// What every run trains and tests on, shared with the Learner's steps.
#[derive(Debug, Clone)]
pub struct Data {
    /// The first `train_size` training images.
    pub train: Arc<Dataset>,
    /// The first `test_size` test images.
    pub test: Arc<Dataset>,
    /// The fixed batches of the training images.
    pub batches: Batches,
}

/// The training and test images, and the fixed batches.
fn load(config: &TrainingConfig, data_dir: &Path) -> Result<Data, TrainError> {
    let train =
        Dataset::load(data_dir, Split::Train, config.model.classes)?.truncate(config.train_size);
    let test =
        Dataset::load(data_dir, Split::Test, config.model.classes)?.truncate(config.test_size);
    if train.features != config.model.d_input {
        return Err(TrainError::Config(format!(
            "the data has {} features, the model expects {}",
            train.features, config.model.d_input
        )));
    }
    let batches = batches(config, train.len());
    if batches.is_empty() {
        return Err(TrainError::Config(format!(
            "{} training images make no batch of {}",
            train.len(),
            config.batch_size
        )));
    }
    Ok(Data {
        train: Arc::new(train),
        test: Arc::new(test),
        batches: batches.into(),
    })
}

/// The secure run of the configured mode, and what it let the server learn.
fn secure_run<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<(RunReport, PrivacyReport), TrainError> {
    match config.privacy {
        Privacy::Cryptonn => {
            let run = secure::train_secure::<G>(config, data, &outputs.parties, outputs)?;
            let rank = |b: Option<Budget>| b.map_or(0, |b| b.rank);
            let (rows, cols) = run
                .budget
                .last()
                .map_or((0, 0), |m| (rank(m.rows), rank(m.cols)));
            let caps = Caps {
                rows: config.row_cap,
                cols: config.col_cap,
            };
            Ok((run, PrivacyReport::new(Privacy::Cryptonn, rows, cols, caps)))
        }
        Privacy::Projection => {
            let (run, rows) = projection::train_secure::<G>(config, data, outputs)?;
            let caps = Caps {
                rows: config.projection_dim,
                cols: 0,
            };
            Ok((run, PrivacyReport::new(Privacy::Projection, rows, 0, caps)))
        }
    }
}

/// Caps are absolute: the authority stops a cap at or above its side's
/// dimension one below full rank, which leaves one unknown per image and,
/// under the box constraint, little privacy, so the main job refuses it.
fn check_caps(config: &TrainingConfig, features: usize) -> Result<(), TrainError> {
    let open = |cap: usize, dim: usize, side: &str| {
        (cap >= dim).then(|| {
            format!(
                "a {side} cap of {cap} reaches the dimension {dim}: the server would hold all but \
                 one equation on every image; choose a cap below {dim}"
            )
        })
    };
    let too_wide = match config.privacy {
        Privacy::Cryptonn => open(config.row_cap, features, "row")
            .or_else(|| open(config.col_cap, config.batch_size, "column")),
        Privacy::Projection => open(config.projection_dim, features, "projection"),
    };
    too_wide.map_or(Ok(()), |why| Err(TrainError::Config(why)))
}

/// The autodiff device both runs train on (`config.backend`), seeded.
pub fn device(config: &TrainingConfig) -> Device {
    let device = config.backend.device().autodiff();
    device.seed(config.seed);
    device
}

/// A batch's cross-entropy against `targets`, and its gradients.
pub(super) fn cross_entropy_step(logits: Tensor<2>, targets: Tensor<1, Int>) -> (f64, Gradients) {
    let (value, loss) = cross_entropy(logits, targets);
    (value, loss.backward())
}

/// A batch's cross-entropy against `targets`: its value and the loss to
/// differentiate.
pub(super) fn cross_entropy(logits: Tensor<2>, targets: Tensor<1, Int>) -> (f64, Tensor<1>) {
    let loss = CrossEntropyLossConfig::new()
        .init(&logits.device())
        .forward(logits, targets);
    (f64::from(loss.clone().into_scalar::<f32>()), loss)
}

/// The report of a plaintext run of `batches` steps per epoch that took `elapsed` seconds.
pub(super) fn plain_report(
    config: &TrainingConfig,
    epochs: Vec<EpochReport>,
    batches: usize,
    elapsed: f64,
    stopped: Option<String>,
) -> RunReport {
    RunReport {
        test_accuracy: epochs.last().map_or(0.0, |e| e.test_accuracy),
        epochs,
        seconds: PhaseSeconds {
            burn_compute: elapsed,
            ..PhaseSeconds::default()
        },
        train_samples_per_s: (config.epochs * batches * config.batch_size) as f64 / elapsed,
        stopped,
        ..RunReport::default()
    }
}

fn train_plain(
    config: &TrainingConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let device = device(config);
    let model = init_model(config, &data.test, &device, false);
    let (train, batches) = (data.train.clone(), data.batches.clone());
    let start = Instant::now();
    let (_, epochs, _) = train_epochs(
        config,
        model,
        Epochs {
            name: "plain",
            batches: data.batches.len(),
            step: Arc::new(move |model: &Mlp, b| {
                let indices = &batches[b];
                Ok(cross_entropy_step(
                    model.forward_plain(train.inputs(indices, &device)),
                    train.targets(indices, &device),
                ))
            }),
            test: crate::data::test_set(&data.test),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 1000,
            guard: None,
            dir: outputs.learner_dir.clone(),
        },
    )?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(plain_report(
        config,
        epochs,
        data.batches.len(),
        elapsed,
        None,
    ))
}

/// Writes `model`'s weights to `path` (Burn's burnpack format).
pub(super) fn save_model<M: Module>(model: &M, path: &Path) -> Result<(), TrainError> {
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

/// The authority, with the audit log the outputs ask for.
pub(super) fn authority<G: Group>(
    policy: impl KeyPolicy + 'static,
    outputs: &Outputs,
) -> Result<Arc<Authority<G>>, TrainError> {
    let mut authority = Authority::<G>::new(policy);
    if let Some(path) = &outputs.audit_log {
        authority = authority.with_audit_log(AuditLog::append_to(path)?);
    }
    Ok(Arc::new(authority))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rate of each of `steps` steps, as the Learner takes them.
    fn learning_rates(config: &TrainingConfig, steps: usize) -> Result<Vec<f64>, TrainError> {
        let mut scheduler = lr_scheduler(config, steps)?;
        Ok((0..steps).map(|_| scheduler.step().base()).collect())
    }

    #[test]
    fn learning_rates_follow_the_schedule() {
        let constant = TrainingConfig::new().with_lr(0.01);
        assert_eq!(learning_rates(&constant, 3).ok(), Some(vec![0.01; 3]));
        let cosine = constant.with_lr_schedule(LrSchedule::Cosine);
        let lrs = learning_rates(&cosine, 128).unwrap_or_default();
        assert_eq!(lrs.len(), 128);
        assert!((lrs[0] - 0.01).abs() < 1e-12, "starts at lr: {}", lrs[0]);
        assert!(lrs.windows(2).all(|w| w[1] <= w[0]), "never rises");
        assert!(lrs[127] < 1e-5, "ends near 0: {}", lrs[127]);
        // Burn's scheduler refuses a rate above 1 and a run without steps.
        assert!(learning_rates(&cosine.clone().with_lr(2.0), 4).is_err());
        assert!(learning_rates(&cosine, 0).is_err());
    }
}
