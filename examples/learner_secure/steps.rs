//! burn-train's training and validation steps for the main job's MLP with a
//! secure first layer.
//!
//! A training item is one encrypted batch file, read by [`EncryptedBatches`]
//! (the Learner's data loader) in the main job's batch order; its step
//! decrypts the first layer with function keys, takes the loss from the
//! FEBO-encrypted labels and returns the gradients, which the Learner hands
//! to its optimizer. A validation item is plaintext test images: the
//! trained weights are evaluated in the clear, as the main job does.
//!
//! A step cannot return an error, so a failure (a refused key, an
//! unreadable batch, a value out of the discrete-log bound) is kept in a
//! [`Failure`] slot, the Learner is interrupted, and the step returns no
//! gradient: nothing is silently trained on.

use std::sync::{Arc, Mutex, PoisonError};

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Int, Tensor, TensorData};
use burn::train::metric::{Adaptor, LossInput};
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, ItemLazy, TrainOutput, TrainStep,
};
use cryptonn::fe::Ristretto255;
use cryptonn::mnist::data::Dataset;
use cryptonn::mnist::model::Mlp;
use cryptonn::mnist::training::{TrainingConfig, epoch_order};
use cryptonn::nn::labels::cross_entropy_encrypted;
use cryptonn::nn::{EncryptedBatch, SecureContext};
use cryptonn::protocol::container::BatchDir;

type G = Ristretto255;

/// The main job's MLP, as a model the Learner can drive.
#[derive(Module, Debug)]
pub struct SecureMlp {
    /// The MLP, first layer secure.
    pub mlp: Mlp,
}

/// Where a failed step leaves its reason for the caller of `launch`.
#[derive(Clone, Default)]
pub struct Failure(Arc<Mutex<Option<String>>>);

impl Failure {
    /// The first failure, if any.
    pub fn take(&self) -> Option<String> {
        self.0.lock().unwrap_or_else(PoisonError::into_inner).take()
    }

    fn record(&self, why: String, interrupter: &Interrupter) {
        let mut slot = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if slot.is_none() {
            interrupter.stop(Some(&why));
            *slot = Some(why);
        }
    }
}

/// One training step's input: an encrypted batch (or why it could not be
/// read) and what the server needs to train on it.
#[derive(Clone)]
pub struct SecureItem {
    batch: Result<Arc<EncryptedBatch<G>>, String>,
    ctx: SecureContext<G>,
    failure: Failure,
    interrupter: Interrupter,
}

impl core::fmt::Debug for SecureItem {
    fn fmt(&self, f: &mut core::fmt::Formatter<'_>) -> core::fmt::Result {
        let shape = self.batch.as_ref().map(|b| b.shape());
        f.debug_struct("SecureItem")
            .field("batch", &shape)
            .finish_non_exhaustive()
    }
}

impl SecureItem {
    /// The mean cross-entropy against the encrypted labels and its gradients.
    fn train(&self, mlp: &Mlp) -> Result<(f64, burn::tensor::Gradients), String> {
        let batch = self.batch.clone()?;
        let labels = batch
            .labels()
            .ok_or("the batch files hold no encrypted labels")?;
        let logits = mlp
            .forward_encrypted(&batch, &self.ctx)
            .map_err(|e| e.to_string())?;
        let out = cross_entropy_encrypted(logits, labels, &self.ctx).map_err(|e| e.to_string())?;
        let grads = out.surrogate.backward();
        self.ctx.check_backward().map_err(|e| e.to_string())?;
        Ok((out.loss, grads))
    }
}

/// The training output: the batch's loss, for the Learner's loss metric.
pub struct SecureStepOutput {
    loss: Tensor<1>,
}

impl ItemLazy for SecureStepOutput {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        Ok(Self {
            loss: self.loss.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for SecureStepOutput {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl TrainStep for SecureMlp {
    type Input = SecureItem;
    type Output = SecureStepOutput;

    fn step(&self, item: SecureItem) -> TrainOutput<SecureStepOutput> {
        let device = self.mlp.output.weight.device();
        let scalar = |v: f64| Tensor::<1>::from_data(TensorData::new(vec![v as f32], [1]), &device);
        match item.train(&self.mlp) {
            Ok((loss, grads)) => {
                TrainOutput::new(self, grads, SecureStepOutput { loss: scalar(loss) })
            }
            Err(why) => {
                item.failure.record(why, &item.interrupter);
                TrainOutput {
                    grads: GradientsParams::new(),
                    item: SecureStepOutput {
                        loss: scalar(f64::NAN),
                    },
                }
            }
        }
    }
}

/// Plaintext test images and their labels.
#[derive(Debug, Clone)]
pub struct PlainImages {
    images: Tensor<2>,
    targets: Tensor<1, Int>,
}

impl InferenceStep for SecureMlp {
    type Input = PlainImages;
    type Output = ClassificationOutput;

    fn step(&self, item: PlainImages) -> ClassificationOutput {
        let logits = self.mlp.forward_plain(item.images);
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), item.targets.clone());
        ClassificationOutput::new(loss, logits, item.targets)
    }
}

/// The training data loader's batcher: item k of the run is the
/// (k mod count)-th batch of its epoch in the main job's order
/// (`epoch_order`), read from the client's batch files.
pub struct EncryptedBatches {
    dir: BatchDir,
    config: TrainingConfig,
    ctx: SecureContext<G>,
    failure: Failure,
    interrupter: Interrupter,
    served: Mutex<usize>,
}

impl EncryptedBatches {
    /// Batches from `dir`, trained under `ctx`.
    pub fn new(
        dir: BatchDir,
        config: TrainingConfig,
        ctx: SecureContext<G>,
        failure: Failure,
        interrupter: Interrupter,
    ) -> Self {
        Self {
            dir,
            config,
            ctx,
            failure,
            interrupter,
            served: Mutex::new(0),
        }
    }

    /// The batch files' count: the training dataset's length.
    pub fn count(&self) -> usize {
        self.dir.manifest().batches
    }
}

impl Batcher<usize, SecureItem> for EncryptedBatches {
    fn batch(&self, _positions: Vec<usize>, _device: &Device) -> SecureItem {
        let count = self.count().max(1);
        let k = {
            let mut served = self.served.lock().unwrap_or_else(PoisonError::into_inner);
            *served += 1;
            *served - 1
        };
        let b = epoch_order(&self.config, k / count, count)[k % count];
        SecureItem {
            batch: self
                .dir
                .read_batch::<G>(b)
                .map(Arc::new)
                .map_err(|e| e.to_string()),
            ctx: self.ctx.clone(),
            failure: self.failure.clone(),
            interrupter: self.interrupter.clone(),
        }
    }
}

/// The validation data loader's batcher: plaintext test images by index.
pub struct TestImages(pub Arc<Dataset>);

impl Batcher<usize, PlainImages> for TestImages {
    fn batch(&self, indices: Vec<usize>, device: &Device) -> PlainImages {
        PlainImages {
            images: self.0.inputs(&indices, device),
            targets: self.0.targets(&indices, device),
        }
    }
}
