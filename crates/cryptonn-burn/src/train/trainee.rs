//! The model as the Learner drives it, and the data loaders' batchers that
//! feed it step items and test chunks.

use std::sync::{Arc, Mutex};

use burn::data::dataloader::batcher::Batcher;
use burn::module::Module;
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use burn::train::metric::{Adaptor, LossInput};
use burn::train::{
    ClassificationOutput, InferenceStep, Interrupter, ItemLazy, TrainOutput, TrainStep,
};

use super::journal::{Journal, lock};
use super::{LogitsFn, OrderFn, StepError, StepFn, TestSet, Trainable, correct};

/// The run's step with its error already handled: the loss and gradients of
/// batch `b` in epoch `e` (1-based), or `None` after a failure was recorded
/// and the Learner interrupted.
type RunStep<M> = dyn Fn(&M, usize, usize) -> Option<(f64, Gradients)> + Send + Sync;

/// The model as the Learner drives it: [`TrainStep`] runs the run's step,
/// [`InferenceStep`] its plaintext logits on test items.
#[derive(Module, Debug)]
pub struct Trainee<M: Trainable> {
    /// The model trained.
    pub model: M,
}

impl<M: Trainable> Trainee<M> {
    pub(super) fn new(model: M) -> Self {
        Self { model }
    }
}

/// One training step's input: which batch of which epoch, and the step.
pub struct StepItem<M> {
    batch: usize,
    epoch: usize,
    step: Arc<RunStep<M>>,
}

impl<M> Clone for StepItem<M> {
    fn clone(&self) -> Self {
        Self {
            batch: self.batch,
            epoch: self.epoch,
            step: self.step.clone(),
        }
    }
}

impl<M> std::fmt::Debug for StepItem<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StepItem")
            .field("batch", &self.batch)
            .field("epoch", &self.epoch)
            .finish_non_exhaustive()
    }
}

/// A training step's output: its loss, for the Learner's loss metric.
pub struct StepLoss {
    loss: Tensor<1>,
}

impl ItemLazy for StepLoss {
    fn sync(self) -> Result<Self, burn::tensor::ExecutionError> {
        Ok(Self {
            loss: self.loss.without_autodiff(),
        })
    }
}

impl Adaptor<LossInput> for StepLoss {
    fn adapt(&self) -> LossInput {
        LossInput::new(self.loss.clone())
    }
}

impl<M: Trainable> TrainStep for Trainee<M> {
    type Input = StepItem<M>;
    type Output = StepLoss;

    fn step(&self, item: StepItem<M>) -> TrainOutput<StepLoss> {
        let device = self.model.devices().first().cloned().unwrap_or_default();
        let loss = |v: f64| StepLoss {
            loss: Tensor::from_data(TensorData::new(vec![v as f32], [1]), &device),
        };
        match (item.step)(&self.model, item.batch, item.epoch) {
            Some((value, grads)) => TrainOutput::new(self, grads, loss(value)),
            // Failed: no gradient is applied, the metric shows NaN.
            None => TrainOutput {
                grads: GradientsParams::new(),
                item: loss(f64::NAN),
            },
        }
    }
}

/// Test items and their labels, with the logits to compute.
pub struct TestChunk<M> {
    inputs: Tensor<2>,
    targets: Tensor<1, Int>,
    labels: Vec<usize>,
    logits: Arc<LogitsFn<M>>,
    record: Arc<dyn Fn(usize, usize) + Send + Sync>,
}

impl<M> Clone for TestChunk<M> {
    fn clone(&self) -> Self {
        Self {
            inputs: self.inputs.clone(),
            targets: self.targets.clone(),
            labels: self.labels.clone(),
            logits: self.logits.clone(),
            record: self.record.clone(),
        }
    }
}

impl<M> std::fmt::Debug for TestChunk<M> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("TestChunk")
            .field("items", &self.labels.len())
            .finish_non_exhaustive()
    }
}

impl<M: Trainable> InferenceStep for Trainee<M> {
    type Input = TestChunk<M>;
    type Output = ClassificationOutput;

    fn step(&self, item: TestChunk<M>) -> ClassificationOutput {
        let logits = (item.logits)(&self.model, item.inputs);
        (item.record)(correct(logits.clone(), &item.labels), item.labels.len());
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), item.targets.clone());
        ClassificationOutput::new(loss, logits, item.targets)
    }
}

/// The training loader's batcher: the k-th item of the run is the
/// (k mod count)-th batch of epoch k / count in the run's order.
pub(super) struct Steps<M> {
    step: Arc<RunStep<M>>,
    order: Arc<OrderFn>,
    count: usize,
    served: Mutex<usize>,
}

impl<M: Trainable> Steps<M> {
    /// Wraps `step` so that a failure goes to `journal` and interrupts the Learner.
    pub(super) fn new<E: StepError>(
        step: Arc<StepFn<M, E>>,
        order: Arc<OrderFn>,
        count: usize,
        journal: &Journal<E>,
        interrupter: &Interrupter,
    ) -> Self {
        let (journal, interrupter) = (journal.clone(), interrupter.clone());
        let run = move |model: &M, batch: usize, epoch: usize| match step(model, batch) {
            Ok((value, grads)) => {
                journal.lock().record_step(epoch, value);
                Some((value, grads))
            }
            Err(e) => {
                let why = journal.lock().fail(e, epoch);
                interrupter.stop(Some(&why));
                None
            }
        };
        Self {
            step: Arc::new(run),
            order,
            count,
            served: Mutex::new(0),
        }
    }
}

impl<M: Trainable> Batcher<usize, StepItem<M>> for Steps<M> {
    fn batch(&self, _positions: Vec<usize>, _device: &Device) -> StepItem<M> {
        let k = {
            let mut served = lock(&self.served);
            *served += 1;
            *served - 1
        };
        let count = self.count.max(1);
        let epoch = k / count;
        let order = (self.order)(epoch);
        StepItem {
            batch: order.get(k % count).copied().unwrap_or(k % count),
            epoch: epoch + 1,
            step: self.step.clone(),
        }
    }
}

/// The validation loader's batcher: test items by index.
pub(super) struct TestChunks<M> {
    test: Arc<dyn TestSet>,
    logits: Arc<LogitsFn<M>>,
    record: Arc<dyn Fn(usize, usize) + Send + Sync>,
}

impl<M> TestChunks<M> {
    pub(super) fn new<E: StepError>(
        test: Arc<dyn TestSet>,
        logits: Arc<LogitsFn<M>>,
        journal: &Journal<E>,
    ) -> Self {
        let journal = journal.clone();
        Self {
            test,
            logits,
            record: Arc::new(move |right, seen| journal.lock().record_validation(right, seen)),
        }
    }
}

impl<M: Trainable> Batcher<usize, TestChunk<M>> for TestChunks<M> {
    fn batch(&self, indices: Vec<usize>, device: &Device) -> TestChunk<M> {
        let labels = self.test.classes(&indices);
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        TestChunk {
            inputs: self.test.items(&indices, device),
            targets: Tensor::from_data(TensorData::new(targets, [labels.len()]), device),
            labels,
            logits: self.logits.clone(),
            record: self.record.clone(),
        }
    }
}
