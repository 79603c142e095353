//! The secure run of a model whose first layer is secure (the paper's MLP,
//! LeNet-5): every step reads one batch file, decrypts the first layer with
//! function keys, and trains through the secure layer's autodiff node; then
//! the trained model classifies the encrypted test images the same way.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use burn::tensor::Tensor;
use cryptonn_burn::SecureContext;
use cryptonn_fe::Group;

use super::budget_guard::{budget_guard, budget_meter};
use super::config::{LabelMode, TrainError, TrainingConfig};
use super::data::{Data, Dataset, Tensors, test_set};
use super::learner::{Epochs, StepFn, lock, train_epochs};
use super::loss::encrypted_step;
use super::outputs::{Outputs, save_model};
use super::parties::{Session, test_labels};
use super::plain::TEST_CHUNK;
use super::progress::Meter;
use super::reader::{BatchFile, Reader};
use super::report::{Measured, RunReport, SecureInference};
use super::secure_model::SecureModel;

/// Trains `model` on the session's batch files, saves it if asked, and
/// classifies the encrypted test images. With `need`, a rank-budget guard
/// stops training before an epoch that would ask any master key for more
/// than its budget (`need` dimensions per epoch).
///
/// # Errors
/// The parties' errors (unreadable batch files, …) and the secure layers'.
/// A spent budget or a refused key stops training cleanly instead.
pub fn train_secure<G: Group, M: SecureModel<G>>(
    config: &TrainingConfig,
    data: &Data,
    session: &Session<G>,
    ctx: &SecureContext<G>,
    model: M,
    need: Option<usize>,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let reader = Reader::<G, M::Input>::new(session.train.clone(), config.batch_cache_mib << 20)?;
    let count = reader.len();
    // The Learner's order (`TrainingConfig::epoch_order`), read one batch ahead.
    let order = (0..config.epochs)
        .flat_map(|e| config.epoch_order(e, count))
        .collect();
    let reader = reader.reading_ahead(order);
    let reader = Arc::new(Mutex::new(reader));
    let meters = Arc::new(Mutex::new(Vec::new()));
    let guard = need.map(|need| budget_guard(need, &session.server, &reader, &meters));
    let start = Instant::now();
    let (model, epochs, stopped) = train_epochs(
        config,
        model,
        Epochs {
            name: "secure",
            batches: count,
            step: secure_step(config, data, &reader, ctx),
            test: test_set(&data.test),
            logits: Arc::new(|model: &M, rows| model.logits(rows)),
            chunk: TEST_CHUNK,
            guard,
            dir: outputs.learner_dir.clone(),
        },
    )?;
    if need.is_some() && (stopped.is_none() || epochs.len() == config.epochs) {
        let meter = budget_meter(&session.server, &lock(&reader).keys);
        lock(&meters).push(meter);
    }
    if let Some(why) = &stopped {
        eprintln!("secure training stopped early: {why}");
    }
    let times = ctx.phase_times();
    let steps: usize = epochs.iter().map(|e| e.step_losses.len()).sum();
    let mut report = RunReport::measured(Measured {
        epochs,
        stopped,
        seconds: start.elapsed().as_secs_f64(),
        samples: steps * config.batch_size,
        key_derivation: times.key_derivation.as_secs_f64(),
        decryption: times.decryption.as_secs_f64(),
        batch_reads: lock(&reader).seconds,
    });
    report.budget = std::mem::take(&mut *lock(&meters));
    if let Some(path) = &outputs.model {
        save_model(&model, path)?;
        report.model_file = Some(path.display().to_string());
    }
    report.secure_inference = secure_inference(session, &model, ctx, &data.test)?;
    Ok(report)
}

/// A secure training step: batch `b` read from its file, its loss from the
/// encrypted labels (or the plaintext ones), the gradients checked.
fn secure_step<G: Group, M: SecureModel<G>>(
    config: &TrainingConfig,
    data: &Data,
    reader: &Arc<Mutex<Reader<G, M::Input>>>,
    ctx: &SecureContext<G>,
) -> Arc<StepFn<M>> {
    let (train, batches) = (data.train.clone(), data.batches.clone());
    let (reader, ctx) = (reader.clone(), ctx.clone());
    let labels = config.labels;
    // The model is already drawn: a handle on its device, not a reseed.
    let device = config.backend.device().autodiff();
    Arc::new(move |model: &M, b| {
        let input = lock(&reader).read(b)?;
        // Encrypted labels come from the batch file only: a remote client's
        // batches need not match this process's images.
        let targets = (labels == LabelMode::Plain).then(|| train.targets(&batches[b], &device));
        encrypted_step(model, &*input, &ctx, targets)
    })
}

/// Secure inference on the encrypted test images, streamed like training.
fn secure_inference<G: Group, M: SecureModel<G>>(
    session: &Session<G>,
    model: &M,
    ctx: &SecureContext<G>,
    test: &Dataset,
) -> Result<Option<SecureInference>, TrainError> {
    let Some(dir) = &session.test else {
        return Ok(None);
    };
    let mut from = 0;
    secure_accuracy(
        "secure inference",
        dir.manifest().batches,
        (0..dir.manifest().batches).map(|b| {
            let input = M::Input::read(dir, b)?;
            let labels = test_labels(test, from, input.images())?;
            from += labels.len();
            Ok((model.logits_encrypted(&input, ctx)?, labels))
        }),
    )
}

/// Secure inference's accuracy over `count` encrypted batches, each given
/// as the server's logits and the true labels; `None` without a batch.
///
/// # Errors
/// The first batch's error.
pub fn secure_accuracy(
    what: &str,
    count: usize,
    batches: impl Iterator<Item = Result<(Tensor<2>, Vec<usize>), TrainError>>,
) -> Result<Option<SecureInference>, TrainError> {
    let (mut right, mut classified) = (0, 0);
    let mut meter = Meter::new(what, count);
    for (b, batch) in batches.enumerate() {
        let (logits, labels) = batch?;
        right += cryptonn_burn::train::correct(logits, &labels);
        classified += labels.len();
        meter.set(b + 1);
    }
    meter.finish();
    Ok((classified > 0).then(|| SecureInference {
        images: classified,
        accuracy: right as f64 / classified as f64,
    }))
}
