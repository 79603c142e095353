//! The main job's epochs on burn-train's Learner, through cryptonn-burn's
//! adapter ([`cryptonn_burn::train`]) configured from the [`TrainingConfig`]:
//! its epochs, optimizer, learning-rate schedule, batch order and progress.

use std::path::PathBuf;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};

pub use cryptonn_burn::train::{GuardFn, LogitsFn, TestSet, Trainable, Trained};
use cryptonn_burn::train::{Learning, StepError, TrainFailure};

use super::config::{TrainError, TrainingConfig};
use super::progress::Bars;

/// One optimizer step's work: batch `b`'s mean loss and its gradients.
pub type StepFn<M> = cryptonn_burn::train::StepFn<M, TrainError>;

/// What a run hands the Learner.
pub struct Epochs<M> {
    /// The run's name on the progress meters and its subdirectory of `dir`.
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

impl<M: Trainable> Epochs<M> {
    /// The Learner and its training configuration for these epochs, as the
    /// main job configures them: a caller may add metrics, checkpointers or
    /// a renderer to `training` before launching.
    ///
    /// # Errors
    /// A learning-rate schedule Burn refuses, or a `dir` that cannot be
    /// written.
    pub fn learning(
        self,
        config: &TrainingConfig,
        model: M,
    ) -> Result<Learning<M, TrainError>, TrainError> {
        let scheduler = config.lr_scheduler(config.epochs * self.batches)?;
        let (order_config, count) = (config.clone(), self.batches);
        let epochs = cryptonn_burn::train::Epochs {
            name: self.name,
            epochs: config.epochs,
            batches: self.batches,
            order: Arc::new(move |epoch| order_config.epoch_order(epoch, count)),
            step: self.step,
            test: self.test,
            logits: self.logits,
            chunk: self.chunk,
            guard: self.guard,
            dir: self.dir,
            renderer: Box::new(Bars::new(self.name)),
        };
        Ok(epochs.learning(model, config.optimizer(), scheduler)?)
    }
}

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
    Ok(epochs.learning(config, model)?.launch()?)
}

impl StepError for TrainError {
    fn clean_stop(&self) -> Option<String> {
        match self {
            TrainError::Secure(e) => e
                .refusal()
                .map(|why| format!("the authority refused a key: {why}")),
            _ => None,
        }
    }
}

impl From<TrainFailure<TrainError>> for TrainError {
    fn from(failure: TrainFailure<TrainError>) -> Self {
        match failure {
            TrainFailure::Step(e) => e,
            TrainFailure::Learner(why) => TrainError::Learner(why),
            _ => TrainError::Learner(failure.to_string()),
        }
    }
}

/// Locks `m`, also after a panic in another holder: the runs' shared state
/// stays readable, and a step's panic is reported by the Learner, not
/// hidden behind a poisoned lock.
pub(super) fn lock<T>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    m.lock().unwrap_or_else(PoisonError::into_inner)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::LrSchedule;
    use crate::data::{Dataset, Tensors};
    use crate::loss::cross_entropy_step;
    use crate::mlp::{Mlp, MlpConfig};
    use burn::optim::GradientsParams;
    use burn::tensor::Device;

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
        let device = config.device();
        // One initial model for both: tests share the seeded device's RNG.
        let start = config.model.init(&device, false);
        let mut model = start.clone();
        let mut optim = config.optimizer();
        let Ok(mut lrs) = config.lr_scheduler(8) else {
            panic!("a valid schedule");
        };
        let mut losses = Vec::new();
        for epoch in 0..2 {
            for b in config.epoch_order(epoch, 4) {
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
            test: crate::data::test_set(&data),
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
            test: crate::data::test_set(&data),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 64,
            guard,
            dir: None,
        };
        let device = config.device();
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
                let refused = cryptonn_protocol::Error::KeyRefused("rank budget".into());
                return Err(TrainError::Secure(refused.into()));
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
            Some("epoch 2: the authority refused a key: rank budget")
        );
        assert_eq!(reports.len(), 2);
        assert_eq!(reports[1].step_losses.len(), 2);
        assert!(
            reports[1].test_accuracy > 0.0,
            "the partial epoch evaluated"
        );
        assert_eq!(*lock(&calls), 7, "no step after the refusal");
    }
}
