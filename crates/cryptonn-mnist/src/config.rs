//! The main job's configuration: which runs, which model and protocol, and
//! every default in one place ([`TrainingConfig`], [`TrainingConfig::preset`]),
//! with the errors a run can stop on.
#![allow(deprecated)] // Device::ndarray: NdArray stays selectable beside Flex.

use std::path::PathBuf;

use burn::config::Config;
use burn::lr_scheduler::constant::ConstantLr;
use burn::lr_scheduler::cosine::CosineAnnealingLrSchedulerConfig;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::optim::{AdamConfig, ModuleOptimizer, SgdConfig};
use burn::tensor::Device;
use cryptonn_burn::QuantizationConfig;
use cryptonn_fe::GroupId;
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::{Deserialize, Serialize};

use cryptonn_client::Dataset;
use cryptonn_client::idx::DataError;

use super::mlp::{Mlp, MlpConfig};

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
    /// Burn's NdArray backend (deprecated by Burn; measured slower here,
    /// docs/PERFORMANCE.md).
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
    /// The Burn CPU backend. Default Flex: Burn's recommended CPU backend,
    /// measured 4.6× faster than NdArray on LeNet-5's plain layers and 1.1×
    /// on the MLP's, with the same accuracies.
    #[config(default = "CpuBackend::Flex")]
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
    /// alike (see [`Mlp`](super::mlp::Mlp)). Default true: without it, Adam kills most ReLUs
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

impl TrainingConfig {
    /// The defaults of `model`: the MLP's finish in under 10 minutes on 2
    /// cores; LeNet-5's encrypt every training image whole, twice (row and
    /// batch ciphertexts), and cost the server 3,456 decryptions per image
    /// and pass, so one epoch of 4096 images in batches of 32 (twice the
    /// optimizer steps of 64 at the same cost), 12-bit keys (8 bits move the
    /// kernel up to 8.9e-2 from Burn's after 3 Adam steps, 12 bits under
    /// 1e-4), a cosine rate from 0.007 (at 0.01 a 0.1% change of the rate
    /// moves its plain accuracy by up to 2 points on some seeds). Its
    /// policy is not preset: LeNet-5 needs the paper's issue-all policy,
    /// which protects nothing, and a run must ask for it by name.
    pub fn preset(model: ModelKind) -> Self {
        let config = Self::new().with_model_kind(model);
        match model {
            ModelKind::Mlp => config,
            ModelKind::Lenet => config
                .with_epochs(1)
                .with_train_size(4096)
                .with_batch_size(32)
                .with_lr(7e-3)
                .with_lr_schedule(LrSchedule::Cosine)
                .with_quantization(
                    QuantizationConfig::new()
                        .with_weight_bits(12)
                        .with_delta_bits(12),
                ),
        }
    }

    /// The main job's MLP, secure or plain, with its inputs centred on the
    /// mean of the `public` images if `center_inputs`. The same seed gives
    /// the same weights either way.
    pub fn init_mlp(&self, public: &Dataset, device: &Device, secure: bool) -> Mlp {
        let model = self.model.init(device, secure);
        if self.center_inputs && public.features == self.model.d_input && !public.is_empty() {
            model.centred(&public.mean_image())
        } else {
            model
        }
    }

    /// The autodiff device every run trains on (`backend`), seeded.
    pub fn device(&self) -> Device {
        let device = self.backend.device().autodiff();
        device.seed(self.seed);
        device
    }

    /// The optimizer, with Burn's defaults.
    pub fn optimizer(&self) -> ModuleOptimizer {
        match self.optimizer {
            OptimizerKind::Adam => AdamConfig::new().init(),
            OptimizerKind::Sgd => SgdConfig::new().init(),
        }
    }

    /// The learning-rate scheduler for a run of `steps` optimizer steps.
    ///
    /// # Errors
    /// [`TrainError::Config`] for a learning rate Burn's scheduler refuses
    /// (outside (0, 1]) or a run without steps.
    pub fn lr_scheduler(&self, steps: usize) -> Result<ModuleLrScheduler, TrainError> {
        match self.lr_schedule {
            LrSchedule::Constant => Ok(ConstantLr::new(self.lr).into()),
            LrSchedule::Cosine => CosineAnnealingLrSchedulerConfig::new(self.lr, steps)
                .init()
                .map_err(|e| TrainError::Config(format!("cosine learning rate: {e}"))),
        }
    }

    /// The order of `count` batches in epoch `epoch` (0-based).
    pub fn epoch_order(&self, epoch: usize, count: usize) -> Vec<usize> {
        let mut order: Vec<usize> = (0..count).collect();
        order.shuffle(&mut StdRng::seed_from_u64(
            self.seed.wrapping_add(1 + epoch as u64),
        ));
        order
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The rate of each of `steps` steps, as the Learner takes them.
    fn learning_rates(config: &TrainingConfig, steps: usize) -> Result<Vec<f64>, TrainError> {
        let mut scheduler = config.lr_scheduler(steps)?;
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
