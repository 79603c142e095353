//! Secure training on burn-train's [`Learner`] (feature `train`).
//!
//! A run hands [`Epochs`] a step that turns batch `b` into a loss and
//! gradients (for a secure run: decrypt with function keys, then autodiff
//! through the secure layer's node), the batch order of each epoch, a test
//! set, and optionally a guard that may stop training between epochs (a
//! rank budget). The Learner runs the epochs in that order with the
//! optimizer and learning-rate schedule it is given, the loss and accuracy
//! metrics, the renderer, and, given a directory, Burn's metric logs and
//! checkpoints. What a report needs (each step's loss, each epoch's test
//! accuracy, why training stopped) is kept in a journal the steps write to.
//!
//! A Learner step cannot return an error, so a failed step (a refused key,
//! an unreadable batch, a value out of the discrete-log bound) is written to
//! the journal, the Learner is interrupted, and the step applies no gradient
//! (its loss metric shows NaN): nothing is silently trained on.

mod journal;
mod trainee;

use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::lr_scheduler::module_lr_scheduler::ModuleLrScheduler;
use burn::module::{Module, ModuleDisplay};
use burn::optim::ModuleOptimizer;
use burn::tensor::{Device, Gradients, Tensor};
use burn::train::logger::InMemoryMetricLogger;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::renderer::MetricsRenderer;
use burn::train::{Interrupter, Learner, SupervisedTraining};

pub use journal::EpochReport;
use journal::{Guarded, Journal};
pub use trainee::{StepItem, StepLoss, TestChunk, Trainee};
use trainee::{Steps, TestChunks};

/// One optimizer step's work: batch `b`'s mean loss and its gradients.
pub type StepFn<M, E> = dyn Fn(&M, usize) -> Result<(f64, Gradients), E> + Send + Sync;

/// The model's logits for test inputs given as rows of features.
pub type LogitsFn<M> = dyn Fn(&M, Tensor<2>) -> Tensor<2> + Send + Sync;

/// Called after epoch `e` (1-based) when another follows: `None` to go on,
/// or the reason to stop before epoch `e + 1`.
pub type GuardFn = dyn FnMut(usize) -> Option<String> + Send;

/// The batch order of epoch `e` (0-based): a permutation of `0..batches`.
pub type OrderFn = dyn Fn(usize) -> Vec<usize> + Send + Sync;

/// A model the Learner can train: every Burn module that can be shared
/// with the data loaders' threads.
pub trait Trainable: Module + ModuleDisplay + Sync + 'static {}

impl<M: Module + ModuleDisplay + Sync + 'static> Trainable for M {}

/// A step's error, as the Learner adapter sees it.
pub trait StepError: std::fmt::Display + Send + 'static {
    /// Why training should stop cleanly rather than fail (e.g. the
    /// authority refused a key: a spent budget, not a broken run).
    fn clean_stop(&self) -> Option<String> {
        None
    }
}

/// Why a run on the Learner failed.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TrainFailure<E> {
    /// A step failed (its error, as the step returned it).
    #[error("{0}")]
    Step(E),
    /// burn-train's Learner stopped (a data loader, a checkpoint, its event
    /// processor) or its output directory cannot be written.
    #[error("burn-train's Learner stopped: {0}")]
    Learner(String),
}

/// Test data the validation split reads.
pub trait TestSet: Send + Sync {
    /// The number of test items.
    fn len(&self) -> usize;
    /// Whether there are none.
    fn is_empty(&self) -> bool {
        self.len() == 0
    }
    /// Items `indices` as `[indices.len(), features]`.
    fn items(&self, indices: &[usize], device: &Device) -> Tensor<2>;
    /// Their class indices.
    fn classes(&self, indices: &[usize]) -> Vec<usize>;
}

/// What a run hands the Learner.
pub struct Epochs<M, E> {
    /// The run's name on the renderer and its subdirectory of `dir`.
    pub name: &'static str,
    /// Passes over the batches.
    pub epochs: usize,
    /// Optimizer steps per epoch.
    pub batches: usize,
    /// Which batch each step of an epoch takes.
    pub order: Arc<OrderFn>,
    /// Batch `b`'s loss and gradients.
    pub step: Arc<StepFn<M, E>>,
    /// The items the accuracy is measured on after each epoch.
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
    /// Shows the epochs' progress and metrics.
    pub renderer: Box<dyn MetricsRenderer>,
}

/// What the Learner left: the trained model (Burn's validation copy, without
/// autodiff: for inference and saving), each epoch's report, and why
/// training stopped early (a spent budget, a refused key), if it did.
pub type Trained<M> = (M, Vec<EpochReport>, Option<String>);

/// burn-train's two halves for a run, ready to launch: a caller may add
/// metrics, checkpointers or a renderer to `training` first.
pub struct Learning<M: Trainable, E: StepError> {
    /// The data loaders (the run's batches in its order, the test set), the
    /// loss and accuracy metrics, the renderer, the metric logger (files
    /// under `dir/name` with checkpoints, or memory), and the guard as an
    /// early-stopping strategy.
    pub training: SupervisedTraining<Trainee<M>>,
    /// The model, the optimizer and the learning-rate schedule.
    pub learner: Learner<Trainee<M>>,
    journal: Journal<E>,
    test: Arc<dyn TestSet>,
    logits: Arc<LogitsFn<M>>,
    chunk: usize,
}

impl<M: Trainable, E: StepError> Epochs<M, E> {
    /// The Learner and its training configuration for these epochs.
    ///
    /// # Errors
    /// A `dir` that cannot be written.
    pub fn learning(
        self,
        model: M,
        optimizer: ModuleOptimizer,
        scheduler: ModuleLrScheduler,
    ) -> Result<Learning<M, E>, TrainFailure<E>> {
        if let Some(dir) = &self.dir {
            writable(&dir.join(self.name))?;
        }
        let journal = Journal::default();
        let interrupter = Interrupter::new();
        let epochs = self.epochs;
        let (training, rest) = training(self, &journal, &interrupter);
        let training = match rest.guard {
            Some(guard) => training.early_stopping(Guarded {
                guard: Arc::new(Mutex::new(guard)),
                journal: journal.clone(),
                epochs,
            }),
            None => training,
        };
        let learner = Learner::new(Trainee::new(model), optimizer, scheduler);
        Ok(Learning {
            training,
            learner,
            journal,
            test: rest.test,
            logits: rest.logits,
            chunk: rest.chunk,
        })
    }

    /// Trains `model` to the end of its epochs or to the first stop.
    ///
    /// # Errors
    /// As [`Epochs::learning`] and [`Learning::launch`].
    pub fn train(
        self,
        model: M,
        optimizer: ModuleOptimizer,
        scheduler: ModuleLrScheduler,
    ) -> Result<Trained<M>, TrainFailure<E>> {
        self.learning(model, optimizer, scheduler)?.launch()
    }
}

impl<M: Trainable, E: StepError> Learning<M, E> {
    /// Runs the Learner to the end of its epochs or to the first stop.
    ///
    /// # Errors
    /// The first failed step's error (a clean stop, e.g. a refused key, is
    /// no error), or the Learner's own failure.
    pub fn launch(self) -> Result<Trained<M>, TrainFailure<E>> {
        let result = self.training.launch(self.learner);
        let model = result.model.model;
        let mut entries = self.journal.take();
        if let Some(e) = entries.failure.take() {
            return Err(TrainFailure::Step(e));
        }
        if let Some(e) = result.error {
            return Err(TrainFailure::Learner(e.to_string()));
        }
        if entries.unvalidated(self.test.len()) {
            // Stopped mid-epoch: the Learner skips that epoch's validation.
            let device = model.devices().first().cloned().unwrap_or_default();
            let accuracy = accuracy(self.test.as_ref(), self.chunk, |chunk| {
                (self.logits)(&model, self.test.items(chunk, &device))
            });
            entries.record_accuracy(accuracy);
        }
        let (reports, stopped) = entries.finish();
        Ok((model, reports, stopped))
    }
}

/// Checks that burn-train can write its logs under `dir`: its file logger
/// panics on a directory it cannot create or write.
fn writable<E>(dir: &Path) -> Result<(), TrainFailure<E>> {
    let probe = dir.join(".cryptonn-probe");
    std::fs::create_dir_all(dir)
        .and_then(|()| std::fs::write(&probe, b""))
        .and_then(|()| std::fs::remove_file(&probe))
        .map_err(|e| {
            TrainFailure::Learner(format!(
                "cannot write burn-train's logs and checkpoints to {}: {e}",
                dir.display()
            ))
        })
}

/// What [`training`] leaves of the epochs for [`Learning`].
struct Rest<M> {
    guard: Option<Box<GuardFn>>,
    test: Arc<dyn TestSet>,
    logits: Arc<LogitsFn<M>>,
    chunk: usize,
}

/// The Learner's configuration: data loaders, metrics, renderer, loggers.
fn training<M: Trainable, E: StepError>(
    epochs: Epochs<M, E>,
    journal: &Journal<E>,
    interrupter: &Interrupter,
) -> (SupervisedTraining<Trainee<M>>, Rest<M>) {
    let steps = Steps::new(
        epochs.step,
        epochs.order,
        epochs.batches,
        journal,
        interrupter,
    );
    let positions: Vec<usize> = (0..epochs.batches).collect();
    let train = DataLoaderBuilder::new(steps)
        .batch_size(1)
        .build(InMemDataset::new(positions));
    let chunks = TestChunks::new(epochs.test.clone(), epochs.logits.clone(), journal);
    let indices: Vec<usize> = (0..epochs.test.len()).collect();
    let valid = DataLoaderBuilder::new(chunks)
        .batch_size(epochs.chunk.max(1))
        .build(InMemDataset::new(indices));
    let dir = epochs.dir.as_ref().map(|d| d.join(epochs.name));
    let training =
        SupervisedTraining::new(dir.clone().unwrap_or_else(std::env::temp_dir), train, valid)
            .num_epochs(epochs.epochs)
            .metric_train_numeric(LossMetric::new())
            .metric_valid_numeric(AccuracyMetric::new())
            .metric_valid_numeric(LossMetric::new())
            .with_interrupter(interrupter.clone())
            .with_application_logger(None)
            .renderer(epochs.renderer);
    let training = match dir {
        Some(_) => training.with_default_checkpointers(),
        None => training.with_metric_logger(InMemoryMetricLogger::default()),
    };
    let rest = Rest {
        guard: epochs.guard,
        test: epochs.test,
        logits: epochs.logits,
        chunk: epochs.chunk,
    };
    (training, rest)
}

/// How many rows of `logits` pick the class in `labels`.
pub fn correct(logits: Tensor<2>, labels: &[usize]) -> usize {
    logits
        .detach()
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .try_into_vec::<i64>()
        .unwrap_or_default()
        .iter()
        .zip(labels)
        .filter(|(p, l)| **p == **l as i64)
        .count()
}

/// The share of `test` that `logits` (of a chunk of item indices, at most
/// `chunk` at a time) classifies right.
pub fn accuracy(test: &dyn TestSet, chunk: usize, logits: impl Fn(&[usize]) -> Tensor<2>) -> f64 {
    let all: Vec<usize> = (0..test.len()).collect();
    let correct: usize = all
        .chunks(chunk.max(1))
        .map(|indices| correct(logits(indices), &test.classes(indices)))
        .sum();
    correct as f64 / test.len().max(1) as f64
}
