//! The main job's epochs, run by burn-train's [`Learner`].
//!
//! Every run (plain or secure; the MLP, LeNet-5 or projection mode's head)
//! hands [`train_epochs`] its [`Epochs`]: a step that turns batch `b` into a
//! loss and gradients (for a secure run: decrypt with function keys, then
//! autodiff through the secure layer's node), a test set, and optionally a
//! guard that may stop training between epochs (the rank budget). The
//! Learner runs the epochs in the main job's batch order, the optimizer and
//! learning-rate schedule, the loss and accuracy metrics, and, given a
//! directory, Burn's metric logs and checkpoints. What the report needs (each
//! step's loss, each epoch's test accuracy, why training stopped) is kept in
//! a journal the steps write to.
//!
//! A Learner step cannot return an error, so a failed step (a refused key,
//! an unreadable batch, a value out of the discrete-log bound) is written to
//! the journal, the Learner is interrupted, and the step applies no
//! gradient (its loss metric shows NaN): nothing is silently trained on.

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataloader::batcher::Batcher;
use burn::data::dataset::InMemDataset;
use burn::module::{Module, ModuleDisplay};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::GradientsParams;
use burn::tensor::{Device, Gradients, Int, Tensor, TensorData};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::store::EventStoreClient;
use burn::train::metric::{AccuracyMetric, Adaptor, LossInput, LossMetric};
use burn::train::{
    ClassificationOutput, EarlyStoppingStrategy, InferenceStep, Interrupter, ItemLazy, Learner,
    SupervisedTraining, TrainOutput, TrainStep,
};

use super::data::Dataset;
use super::progress::Bars;
use super::report::EpochReport;
use super::training::{
    TrainError, TrainingConfig, accuracy_by, correct, epoch_order, lr_scheduler, optimizer,
};

/// One optimizer step's work: batch `b`'s mean loss and its gradients.
pub type StepFn<M> = dyn Fn(&M, usize) -> Result<(f64, Gradients), TrainError> + Send + Sync;

/// The model's logits for test inputs given as rows of features.
pub type LogitsFn<M> = dyn Fn(&M, Tensor<2>) -> Tensor<2> + Send + Sync;

/// Called after epoch `e` (1-based) when another follows: `None` to go on,
/// or the reason to stop before epoch `e + 1`.
pub type GuardFn = dyn FnMut(usize) -> Option<String> + Send;

/// A model the Learner can train: every Burn module that can be shared
/// with the data loaders' threads.
pub trait Trainable: Module + ModuleDisplay + Sync + 'static {}

impl<M: Module + ModuleDisplay + Sync + 'static> Trainable for M {}

/// Test data the validation split reads.
pub trait TestSet: Send + Sync {
    /// The number of test items.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Items `indices` as `[indices.len(), features]`.
    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<2>;
    /// Their class indices.
    fn labels_of(&self, indices: &[usize]) -> Vec<usize>;
}

impl TestSet for Dataset {
    fn len(&self) -> usize {
        Dataset::len(self)
    }

    fn inputs(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        Dataset::inputs(self, indices, device)
    }

    fn labels_of(&self, indices: &[usize]) -> Vec<usize> {
        Dataset::labels_of(self, indices)
    }
}

/// What a run hands the Learner.
pub struct Epochs<M> {
    /// The run's name on the progress bars and its subdirectory of `dir`.
    pub name: &'static str,
    /// Optimizer steps per epoch; step `b` is batch `b` of the fixed batches.
    pub batches: usize,
    /// Batch `b`'s loss and gradients.
    pub step: Arc<StepFn<M>>,
    /// The images the accuracy is measured on after each epoch.
    pub test: Arc<dyn TestSet>,
    /// The model's logits for test inputs.
    pub logits: Arc<LogitsFn<M>>,
    /// Test items per validation step.
    pub chunk: usize,
    /// Decides between epochs whether training may go on.
    pub guard: Option<Box<GuardFn>>,
    /// Where burn-train writes its metric logs and checkpoints (`dir/name`);
    /// `None` keeps the metrics in memory and writes nothing.
    pub dir: Option<PathBuf>,
}

/// What the Learner left: the trained model (Burn's validation copy, without
/// autodiff: for inference and saving), each epoch's report, and why
/// training stopped early (a spent budget, a refused key), if it did.
pub type Trained<M> = (M, Vec<EpochReport>, Option<String>);

/// Trains `model` for `config.epochs` epochs of `epochs.batches` steps with
/// burn-train's Learner, configured as the main job configures it.
///
/// # Errors
/// As [`Learning::launch`], and a learning-rate schedule Burn refuses.
pub fn train_epochs<M: Trainable>(
    config: &TrainingConfig,
    model: M,
    epochs: Epochs<M>,
) -> Result<Trained<M>, TrainError> {
    epochs.learning(config, model)?.launch()
}

/// burn-train's two halves for a run, ready to launch: a caller may add
/// metrics, checkpointers or a renderer to `training` first.
pub struct Learning<M: Trainable> {
    /// The data loaders (the run's batches in the main job's order, the
    /// test set), the loss and accuracy metrics, the progress bars, the
    /// metric logger (files under `dir/name` with checkpoints, or memory),
    /// and the guard as an early-stopping strategy.
    pub training: SupervisedTraining<Trainee<M>>,
    /// The model, the configuration's optimizer and learning-rate schedule.
    pub learner: Learner<Trainee<M>>,
    journal: Journal,
    test: Arc<dyn TestSet>,
    logits: Arc<LogitsFn<M>>,
    chunk: usize,
}

impl<M: Trainable> Epochs<M> {
    /// The Learner and its training configuration for these epochs.
    ///
    /// # Errors
    /// A learning-rate schedule Burn refuses, or a `dir` that cannot be
    /// written.
    pub fn learning(self, config: &TrainingConfig, model: M) -> Result<Learning<M>, TrainError> {
        if let Some(dir) = &self.dir {
            writable(&dir.join(self.name))?;
        }
        let journal = Journal::default();
        let interrupter = Interrupter::new();
        let training = training(config, &self, &journal, &interrupter);
        let training = match self.guard {
            Some(guard) => training.early_stopping(Guarded {
                guard: Arc::new(Mutex::new(guard)),
                journal: journal.clone(),
                epochs: config.epochs,
            }),
            None => training,
        };
        let learner = Learner::new(
            Trainee { model },
            optimizer(config),
            lr_scheduler(config, config.epochs * self.batches)?,
        );
        Ok(Learning {
            training,
            learner,
            journal,
            test: self.test,
            logits: self.logits,
            chunk: self.chunk,
        })
    }
}

impl<M: Trainable> Learning<M> {
    /// Runs the Learner to the end of its epochs or to the first stop.
    ///
    /// # Errors
    /// The first failed step's error (a refused key is a clean stop
    /// instead), or the Learner's own failure.
    pub fn launch(self) -> Result<Trained<M>, TrainError> {
        let result = self.training.launch(self.learner);
        let model = result.model.model;
        let mut entries = self.journal.take();
        if let Some(e) = entries.failure.take() {
            return Err(e);
        }
        if let Some(e) = result.error {
            return Err(TrainError::Learner(e.to_string()));
        }
        if entries.unvalidated(self.test.len()) {
            // Stopped mid-epoch: the Learner skips that epoch's validation.
            let device = model.devices().first().cloned().unwrap_or_default();
            let accuracy = accuracy_by(self.test.as_ref(), self.chunk, |chunk| {
                (self.logits)(&model, self.test.inputs(chunk, &device))
            });
            entries.record_accuracy(accuracy);
        }
        let (reports, stopped) = entries.finish();
        Ok((model, reports, stopped))
    }
}

/// Checks that burn-train can write its logs under `dir`: its file logger
/// panics on a directory it cannot create or write.
fn writable(dir: &Path) -> Result<(), TrainError> {
    let probe = dir.join(".cryptonn-probe");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            TrainError::Learner(format!(
                "cannot write burn-train's logs and checkpoints to {}: {e}",
                dir.display()
            ))
        })
}

/// The Learner's configuration: data loaders, metrics, renderer, loggers.
fn training<M: Trainable>(
    config: &TrainingConfig,
    epochs: &Epochs<M>,
    journal: &Journal,
    interrupter: &Interrupter,
) -> SupervisedTraining<Trainee<M>> {
    let steps = Steps {
        step: epochs.step.clone(),
        config: config.clone(),
        count: epochs.batches,
        journal: journal.clone(),
        interrupter: interrupter.clone(),
        served: Mutex::new(0),
    };
    let positions: Vec<usize> = (0..epochs.batches).collect();
    let train = DataLoaderBuilder::new(steps)
        .batch_size(1)
        .build(InMemDataset::new(positions));
    let chunks = TestChunks {
        test: epochs.test.clone(),
        logits: epochs.logits.clone(),
        journal: journal.clone(),
    };
    let indices: Vec<usize> = (0..epochs.test.len()).collect();
    let valid = DataLoaderBuilder::new(chunks)
        .batch_size(epochs.chunk.max(1))
        .build(InMemDataset::new(indices));
    let dir = epochs.dir.as_ref().map(|d| d.join(epochs.name));
    let training =
        SupervisedTraining::new(dir.clone().unwrap_or_else(std::env::temp_dir), train, valid)
            .num_epochs(config.epochs)
            .metric_train_numeric(LossMetric::new())
            .metric_valid_numeric(AccuracyMetric::new())
            .metric_valid_numeric(LossMetric::new())
            .with_interrupter(interrupter.clone())
            .with_application_logger(None)
            .renderer(Box::new(Bars::new(epochs.name)));
    match dir {
        Some(_) => training.with_default_checkpointers(),
        None => training.with_metric_logger(InMemoryMetricLogger::default()),
    }
}

/// The model as the Learner drives it: [`TrainStep`] runs the run's step,
/// [`InferenceStep`] its plaintext logits on test images.
#[derive(Module, Debug)]
pub struct Trainee<M: Trainable> {
    /// The model trained.
    pub model: M,
}

/// One training step's input: which batch, and where its results go.
pub struct StepItem<M> {
    batch: usize,
    epoch: usize,
    step: Arc<StepFn<M>>,
    journal: Journal,
    interrupter: Interrupter,
}

impl<M> Clone for StepItem<M> {
    fn clone(&self) -> Self {
        Self {
            batch: self.batch,
            epoch: self.epoch,
            step: self.step.clone(),
            journal: self.journal.clone(),
            interrupter: self.interrupter.clone(),
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
        match (item.step)(&self.model, item.batch) {
            Ok((value, grads)) => {
                item.journal.lock().record_step(item.epoch, value);
                TrainOutput::new(self, grads, loss(value))
            }
            Err(e) => {
                let why = item.journal.lock().fail(e, item.epoch);
                item.interrupter.stop(Some(&why));
                TrainOutput {
                    grads: GradientsParams::new(),
                    item: loss(f64::NAN),
                }
            }
        }
    }
}

/// Test items and their labels, with the logits to compute.
pub struct TestChunk<M> {
    inputs: Tensor<2>,
    targets: Tensor<1, Int>,
    labels: Vec<usize>,
    logits: Arc<LogitsFn<M>>,
    journal: Journal,
}

impl<M> Clone for TestChunk<M> {
    fn clone(&self) -> Self {
        Self {
            inputs: self.inputs.clone(),
            targets: self.targets.clone(),
            labels: self.labels.clone(),
            logits: self.logits.clone(),
            journal: self.journal.clone(),
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
        let right = correct(logits.clone(), &item.labels);
        item.journal
            .lock()
            .record_validation(right, item.labels.len());
        let loss = CrossEntropyLossConfig::new()
            .init(&logits.device())
            .forward(logits.clone(), item.targets.clone());
        ClassificationOutput::new(loss, logits, item.targets)
    }
}

/// The training loader's batcher: the k-th item of the run is the
/// (k mod count)-th batch of epoch k / count in the main job's order.
struct Steps<M> {
    step: Arc<StepFn<M>>,
    config: TrainingConfig,
    count: usize,
    journal: Journal,
    interrupter: Interrupter,
    served: Mutex<usize>,
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
        StepItem {
            batch: epoch_order(&self.config, epoch, count)[k % count],
            epoch: epoch + 1,
            step: self.step.clone(),
            journal: self.journal.clone(),
            interrupter: self.interrupter.clone(),
        }
    }
}

/// The validation loader's batcher: test items by index.
struct TestChunks<M> {
    test: Arc<dyn TestSet>,
    logits: Arc<LogitsFn<M>>,
    journal: Journal,
}

impl<M: Trainable> Batcher<usize, TestChunk<M>> for TestChunks<M> {
    fn batch(&self, indices: Vec<usize>, device: &Device) -> TestChunk<M> {
        let labels = self.test.labels_of(&indices);
        let targets: Vec<i64> = labels.iter().map(|&l| l as i64).collect();
        TestChunk {
            inputs: self.test.inputs(&indices, device),
            targets: Tensor::from_data(TensorData::new(targets, [labels.len()]), device),
            labels,
            logits: self.logits.clone(),
            journal: self.journal.clone(),
        }
    }
}

/// Stops the Learner between epochs when the run's guard says so.
#[derive(Clone)]
struct Guarded {
    guard: Arc<Mutex<Box<GuardFn>>>,
    journal: Journal,
    epochs: usize,
}

impl EarlyStoppingStrategy for Guarded {
    fn should_stop(&mut self, epoch: usize, _store: &EventStoreClient) -> bool {
        if epoch >= self.epochs {
            return false;
        }
        let why = (lock(&self.guard))(epoch);
        match why {
            Some(why) => {
                self.journal.lock().stopped.get_or_insert(why);
                true
            }
            None => false,
        }
    }
}

/// What the steps and the guard report, read by [`Learning::launch`].
#[derive(Clone, Default)]
struct Journal(Arc<Mutex<Entries>>);

impl Journal {
    fn lock(&self) -> MutexGuard<'_, Entries> {
        lock(&self.0)
    }

    fn take(&self) -> Entries {
        std::mem::take(&mut *self.lock())
    }
}

/// Locks `m`, also after a panic in another holder: the journal and the
/// runs' shared state stay readable, and a step's panic is reported by the
/// Learner, not hidden behind a poisoned lock.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

/// Each epoch's step losses and test accuracy, and why training stopped.
#[derive(Default)]
struct Entries {
    epochs: Vec<EpochReport>,
    /// Test items classified right and seen since the last epoch's steps.
    correct: usize,
    seen: usize,
    stopped: Option<String>,
    failure: Option<TrainError>,
}

impl Entries {
    /// A step's loss in epoch `epoch` (1-based); its first step closes the
    /// previous epoch's validation.
    fn record_step(&mut self, epoch: usize, loss: f64) {
        if self.epochs.last().is_none_or(|e| e.epoch != epoch) {
            self.close_validation();
            self.epochs.push(EpochReport {
                epoch,
                loss: 0.0,
                test_accuracy: 0.0,
                step_losses: Vec::new(),
            });
        }
        if let Some(epoch) = self.epochs.last_mut() {
            epoch.step_losses.push(loss);
        }
    }

    fn record_validation(&mut self, correct: usize, seen: usize) {
        self.correct += correct;
        self.seen += seen;
    }

    fn close_validation(&mut self) {
        if self.seen > 0 {
            let accuracy = self.correct as f64 / self.seen as f64;
            self.record_accuracy(accuracy);
        }
        (self.correct, self.seen) = (0, 0);
    }

    fn record_accuracy(&mut self, accuracy: f64) {
        if let Some(epoch) = self.epochs.last_mut() {
            epoch.test_accuracy = accuracy;
        }
    }

    /// Whether the last epoch trained but was not validated (with test
    /// items to validate on).
    fn unvalidated(&self, test_items: usize) -> bool {
        test_items > 0 && self.seen == 0 && !self.epochs.is_empty()
    }

    /// A failed step in epoch `epoch` (1-based): a refused key stops
    /// training cleanly, anything else is the run's error. Returns the
    /// reason for the Learner.
    fn fail(&mut self, e: TrainError, epoch: usize) -> String {
        match e {
            TrainError::Secure(cryptonn_burn::Error::KeyRefused(why)) => {
                let why = format!("the authority refused a key in epoch {epoch}: {why}");
                self.stopped.get_or_insert(why).clone()
            }
            e => {
                let why = e.to_string();
                self.failure.get_or_insert(e);
                why
            }
        }
    }

    fn finish(mut self) -> (Vec<EpochReport>, Option<String>) {
        self.close_validation();
        for epoch in &mut self.epochs {
            epoch.loss = epoch.step_losses.iter().sum::<f64>() / epoch.step_losses.len() as f64;
        }
        (self.epochs, self.stopped)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::model::{Mlp, MlpConfig};
    use crate::training::{LrSchedule, cross_entropy_step, device};
    use burn::optim::GradientsParams;

    /// 64 images of 16 pixels in 4 classes, from a fixed pattern.
    fn tiny() -> Arc<Dataset> {
        Arc::new(Dataset {
            images: (0..64 * 16)
                .map(|i| ((i * 37 + i / 16 * 11) % 256) as u8)
                .collect(),
            labels: (0..64).map(|i| (i % 4) as u8).collect(),
            features: 16,
        })
    }

    fn tiny_config() -> TrainingConfig {
        TrainingConfig::new()
            .with_epochs(2)
            .with_batch_size(16)
            .with_lr_schedule(LrSchedule::Cosine)
            .with_model(
                MlpConfig::new()
                    .with_d_input(16)
                    .with_hidden(vec![8])
                    .with_classes(4),
            )
    }

    fn weights(model: &Mlp) -> Vec<f32> {
        model
            .output
            .weight
            .val()
            .into_data()
            .try_to_vec::<f32>()
            .unwrap_or_default()
    }

    #[test]
    fn the_learner_takes_the_same_steps_as_a_hand_written_loop() {
        let (config, data) = (tiny_config(), tiny());
        let batches: Vec<Vec<usize>> = (0..4).map(|b| (b * 16..b * 16 + 16).collect()).collect();
        let step = |model: &Mlp, b: usize, device: &Device| {
            cross_entropy_step(
                model.forward_plain(data.inputs(&batches[b], device)),
                data.targets(&batches[b], device),
            )
        };
        // By hand: the main job's batch order, one optimizer step per batch.
        let device = device(&config);
        // One initial model for both: tests share the seeded device's RNG.
        let start = config.model.init(&device, false);
        let mut model = start.clone();
        let mut optim = optimizer(&config);
        let Ok(mut lrs) = lr_scheduler(&config, 8) else {
            panic!("a valid schedule");
        };
        let mut losses = Vec::new();
        for epoch in 0..2 {
            for b in epoch_order(&config, epoch, 4) {
                let (loss, grads) = step(&model, b, &device);
                losses.push(loss);
                let grads = GradientsParams::from_grads(grads, &model);
                model = optim.step(lrs.step().base(), model.clone(), grads);
            }
        }
        // The Learner.
        let (data2, batches2) = (data.clone(), batches.clone());
        let step_device = device.clone();
        let epochs = Epochs {
            name: "test",
            batches: 4,
            step: Arc::new(move |model: &Mlp, b| {
                Ok(cross_entropy_step(
                    model.forward_plain(data2.inputs(&batches2[b], &step_device)),
                    data2.targets(&batches2[b], &step_device),
                ))
            }),
            test: data.clone(),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 10,
            guard: None,
            dir: None,
        };
        let trained = train_epochs(&config, start, epochs);
        let Ok((trained, reports, stopped)) = trained else {
            panic!("the Learner failed: {:?}", trained.err());
        };
        assert_eq!(stopped, None);
        let steps: Vec<f64> = reports.iter().flat_map(|r| r.step_losses.clone()).collect();
        assert_eq!(steps, losses, "the same losses, step by step");
        assert_eq!(weights(&trained), weights(&model), "the same weights");
        assert_eq!(reports.len(), 2);
        assert!(
            reports
                .iter()
                .all(|r| (0.0..=1.0).contains(&r.test_accuracy))
        );
    }

    #[test]
    fn a_guard_stops_between_epochs_and_a_failed_step_is_an_error() {
        let config = tiny_config().with_epochs(3);
        let data = tiny();
        let epochs = |step: Arc<StepFn<Mlp>>, guard: Option<Box<GuardFn>>| Epochs {
            name: "test",
            batches: 4,
            step,
            test: data.clone(),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 64,
            guard,
            dir: None,
        };
        let device = device(&config);
        let (data2, step_device) = (data.clone(), device.clone());
        let step: Arc<StepFn<Mlp>> = Arc::new(move |model: &Mlp, b| {
            let indices: Vec<usize> = (b * 16..b * 16 + 16).collect();
            Ok(cross_entropy_step(
                model.forward_plain(data2.inputs(&indices, &step_device)),
                data2.targets(&indices, &step_device),
            ))
        });
        let guard: Box<GuardFn> =
            Box::new(|epoch| (epoch == 2).then(|| "budget spent".to_string()));
        let run = epochs(step.clone(), Some(guard));
        let result = train_epochs(&config, config.model.init(&device, false), run);
        let Ok((_, reports, stopped)) = result else {
            panic!("the Learner failed: {:?}", result.err());
        };
        assert_eq!(reports.len(), 2, "stopped before the third epoch");
        assert_eq!(stopped.as_deref(), Some("budget spent"));

        let failing: Arc<StepFn<Mlp>> =
            Arc::new(|_: &Mlp, _| Err(TrainError::Config("unreadable batch".into())));
        let result = train_epochs(
            &config,
            config.model.init(&device, false),
            epochs(failing, None),
        );
        assert!(matches!(result, Err(TrainError::Config(why)) if why == "unreadable batch"));

        // A key refused at the third step of epoch 2: a clean stop, the
        // partial epoch evaluated by hand, its second half never trained.
        let calls = Arc::new(Mutex::new(0));
        let (counted, inner) = (calls.clone(), step.clone());
        let refusing: Arc<StepFn<Mlp>> = Arc::new(move |model: &Mlp, b| {
            *lock(&counted) += 1;
            if *lock(&counted) == 4 + 3 {
                return Err(TrainError::Secure(cryptonn_burn::Error::KeyRefused(
                    "rank budget".into(),
                )));
            }
            inner(model, b)
        });
        let result = train_epochs(
            &config,
            config.model.init(&device, false),
            epochs(refusing, None),
        );
        let Ok((_, reports, stopped)) = result else {
            panic!("a refused key is not an error: {:?}", result.err());
        };
        assert_eq!(
            stopped.as_deref(),
            Some("the authority refused a key in epoch 2: rank budget")
        );
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].step_losses.len(), 2);
        assert!(
            reports[1].test_accuracy > 0.0,
            "the partial epoch evaluated"
        );
        assert_eq!(*lock(&calls), 7, "no step after the refusal");
    }

    #[test]
    fn journal_keeps_each_epochs_steps_and_validation() {
        let mut entries = Entries::default();
        entries.record_step(1, 2.0);
        entries.record_step(1, 1.0);
        entries.record_validation(3, 4);
        entries.record_validation(1, 4);
        entries.record_step(2, 0.5);
        assert!(entries.unvalidated(8));
        assert!(!entries.unvalidated(0), "nothing to validate on");
        entries.record_accuracy(0.25);
        let (epochs, stopped) = entries.finish();
        assert_eq!(epochs.len(), 2);
        assert_eq!((epochs[0].epoch, epochs[0].loss), (1, 1.5));
        assert_eq!(epochs[0].test_accuracy, 0.5);
        assert_eq!((epochs[1].epoch, epochs[1].test_accuracy), (2, 0.25));
        assert_eq!(stopped, None);

        // Without test images every epoch is still its own.
        let mut entries = Entries::default();
        for epoch in 1..=3 {
            entries.record_step(epoch, 1.0);
        }
        assert_eq!(entries.finish().0.len(), 3);
    }

    #[test]
    fn a_refused_key_stops_cleanly_and_other_failures_are_errors() {
        let mut entries = Entries::default();
        let refused = TrainError::Secure(cryptonn_burn::Error::KeyRefused("budget".into()));
        let why = entries.fail(refused, 2);
        assert_eq!(why, "the authority refused a key in epoch 2: budget");
        assert!(entries.failure.is_none());
        entries.fail(TrainError::Config("broken".into()), 2);
        assert!(matches!(entries.failure, Some(TrainError::Config(_))));
    }
}
