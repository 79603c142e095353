//! The one plaintext run: any of the main job's models on rows of inputs
//! (images, or projection mode's features), in the fixed batches.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{Int, Tensor, TensorData};
use cryptonn_burn::train::TestSet;

use super::config::{TrainError, TrainingConfig};
use super::data::Batches;
use super::learner::{Epochs, train_epochs};
use super::loss::cross_entropy_step;
use super::outputs::Outputs;
use super::report::{Measured, RunReport};
use super::secure_model::JobModel;

/// Validation items per step.
pub const TEST_CHUNK: usize = 1000;

/// What a plaintext run trains on.
pub struct PlainInputs {
    /// The training rows and their classes.
    pub train: Arc<dyn TestSet>,
    /// Which rows make each batch.
    pub batches: Batches,
    /// The rows the accuracy is measured on after each epoch.
    pub test: Arc<dyn TestSet>,
}

/// Trains `model` on `inputs` in the clear as the run named `name`
/// ("plain", or "secure" for projection mode's head on decrypted features).
///
/// # Errors
/// The Learner's failures and a learning-rate schedule Burn refuses.
pub fn train_plain<M: JobModel>(
    config: &TrainingConfig,
    model: M,
    inputs: PlainInputs,
    name: &'static str,
    outputs: &Outputs,
) -> Result<(M, RunReport), TrainError> {
    // The model is already drawn: a handle on its device, not a reseed.
    let device = config.backend.device().autodiff();
    let (train, batches) = (inputs.train.clone(), inputs.batches.clone());
    let step = Arc::new(move |model: &M, b: usize| {
        let rows = &batches[b];
        let classes: Vec<i64> = train.classes(rows).iter().map(|&c| c as i64).collect();
        let targets = Tensor::<1, Int>::from_data(TensorData::new(classes, [rows.len()]), &device);
        Ok(cross_entropy_step(
            model.logits(train.items(rows, &device)),
            targets,
        ))
    });
    let start = Instant::now();
    let (model, epochs, stopped) = train_epochs(
        config,
        model,
        Epochs {
            name,
            batches: inputs.batches.len(),
            step,
            test: inputs.test,
            logits: Arc::new(|model: &M, rows| model.logits(rows)),
            chunk: TEST_CHUNK,
            guard: None,
            dir: outputs.learner_dir.clone(),
        },
    )?;
    let steps: usize = epochs.iter().map(|e| e.step_losses.len()).sum();
    let report = RunReport::measured(Measured {
        epochs,
        stopped,
        seconds: start.elapsed().as_secs_f64(),
        samples: steps * config.batch_size,
        ..Measured::default()
    });
    Ok((model, report))
}
