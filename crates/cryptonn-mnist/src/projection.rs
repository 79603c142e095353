//! Projection mode: a fixed public projection decrypted once per image from
//! the client's row-wise batch files, then every later layer trained in the
//! clear on the decrypted activations (the one plaintext run, named
//! "secure"), and the encrypted test images classified the same way.
#![allow(deprecated)] // Device::ndarray: NdArray stays selectable beside Flex.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{Device, Tensor, TensorData};
use cryptonn_burn::train::TestSet;
use cryptonn_burn::{EncryptedRows, SecureContext, SecureProjection, SecureProjectionConfig};
use cryptonn_fe::Group;
use cryptonn_protocol::container::BatchDir;

use super::config::{TrainError, TrainingConfig};
use super::data::{Data, Dataset, Tensors};
use super::mlp::{Mlp, MlpConfig};
use super::outputs::{Outputs, save_model};
use super::parties::{Session, test_labels};
use super::plain::TEST_CHUNK;
use super::plain::{PlainInputs, train_plain};
use super::progress::Meter;
use super::reader::BatchFile;
use super::report::{Measured, RunReport, SecureInference};
use super::secure_model::JobModel;

/// Activations of the projection for a list of images, with their labels.
pub struct Features {
    /// `[images, K]`, row-major.
    values: Vec<f32>,
    labels: Vec<usize>,
    k: usize,
}

impl TestSet for Features {
    fn len(&self) -> usize {
        self.labels.len()
    }

    fn items(&self, indices: &[usize], device: &Device) -> Tensor<2> {
        let values = indices
            .iter()
            .flat_map(|&i| &self.values[i * self.k..(i + 1) * self.k])
            .copied()
            .collect();
        Tensor::from_data(TensorData::new(values, [indices.len(), self.k]), device)
    }

    fn classes(&self, indices: &[usize]) -> Vec<usize> {
        indices.iter().map(|&i| self.labels[i]).collect()
    }
}

/// The public projection of the configuration: K = `projection_dim` sparse
/// ternary rows, seeded by `seed`.
///
/// # Errors
/// [`TrainError::Secure`] for a K of 0 or above the input width.
pub fn projection(config: &TrainingConfig) -> Result<SecureProjection, TrainError> {
    Ok(
        SecureProjectionConfig::new(config.model.d_input, config.projection_dim)
            .with_seed(config.seed)
            .init()?,
    )
}

/// The model after the projection: `K → hidden → classes`, all plain.
pub fn head(config: &TrainingConfig) -> Mlp {
    MlpConfig::new()
        .with_d_input(config.projection_dim)
        .with_hidden(config.model.hidden.clone())
        .with_classes(config.model.classes)
        .init(&config.device(), false)
}

/// The projection of `data` in the clear: what the plaintext baseline sees,
/// and what the test accuracy is measured on.
fn plain_features(
    projection: &SecureProjection,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
) -> Result<Features, TrainError> {
    let mut values = Vec::with_capacity(indices.len() * projection.dims()[1]);
    for chunk in indices.chunks(1000) {
        let z = projection.forward_plain(data.inputs(chunk, device));
        values.extend(read(z)?);
    }
    Ok(Features {
        values,
        labels: data.labels_of(indices),
        k: projection.dims()[1],
    })
}

fn read(t: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    t.detach()
        .into_data()
        .try_to_vec::<f32>()
        .map_err(|e| cryptonn_burn::Error::TensorRead(format!("{e:?}")).into())
}

/// Rows `0..n` in consecutive batches of `batch_size`: the order features
/// were decrypted in.
fn consecutive(n: usize, batch_size: usize) -> Vec<Vec<usize>> {
    cryptonn_client::batches::leading(n, batch_size)
}

/// The plaintext baseline's inputs: the same projection in the clear, the
/// training images in the batches' order.
///
/// # Errors
/// A projection the configuration cannot build.
pub fn plain_inputs(config: &TrainingConfig, data: &Data) -> Result<PlainInputs, TrainError> {
    let device = config.backend.device();
    let projection = projection(config)?;
    let order: Vec<usize> = data.batches.iter().flatten().copied().collect();
    let train = plain_features(&projection, &data.train, &order, &device)?;
    let all: Vec<usize> = (0..data.test.len()).collect();
    let test = plain_features(&projection, &data.test, &all, &device)?;
    Ok(PlainInputs {
        batches: consecutive(train.len(), config.batch_size).into(),
        train: Arc::new(train),
        test: Arc::new(test),
    })
}

/// What the server decrypted from one directory of row-wise batch files.
struct Decrypted {
    features: Features,
    /// The most equations any batch's master key revealed per image.
    row_equations: usize,
    /// Time spent reading and decoding the files, in seconds.
    read_seconds: f64,
}

/// Decrypts the projection's K outputs (and the labels) of every batch in
/// `dir`; without encrypted labels, `labels` gives them by batch.
fn decrypt_dir<G: Group>(
    session: &Session<G>,
    ctx: &SecureContext<G>,
    projection: &SecureProjection,
    dir: &BatchDir,
    labels: &dyn Fn(usize, usize) -> Result<Vec<usize>, TrainError>,
    what: &str,
) -> Result<Decrypted, TrainError> {
    // The activations are only read back: any CPU device serves.
    let device = Device::default();
    let count = dir.manifest().batches;
    let mut meter = Meter::new(what, count);
    let (mut values, mut classes, mut row_equations) = (Vec::new(), Vec::new(), 0);
    let mut read_seconds = 0.0;
    for b in 0..count {
        let reading = Instant::now();
        let rows: EncryptedRows<G> = BatchFile::read(dir, b)?;
        read_seconds += reading.elapsed().as_secs_f64();
        values.extend(read(projection.forward(&rows, ctx, &device)?)?);
        match rows.labels() {
            Some(l) => classes.extend(ctx.server().decrypt_labels(l)?),
            None => classes.extend(labels(b, rows.images())?),
        }
        let rank = session.server.budget(rows.row_key())?.map_or(0, |b| b.rank);
        row_equations = row_equations.max(rank);
        meter.set(b + 1);
    }
    meter.finish();
    Ok(Decrypted {
        features: Features {
            values,
            labels: classes,
            k: projection.dims()[1],
        },
        row_equations,
        read_seconds,
    })
}

/// Projection mode, secure: decrypt once, train the head in the clear,
/// then classify the encrypted test images. Returns the report and the
/// equations per image the server holds.
///
/// # Errors
/// The parties' and the secure layer's errors.
pub fn train_secure<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    session: &Session<G>,
    ctx: &SecureContext<G>,
    outputs: &Outputs,
) -> Result<(RunReport, usize), TrainError> {
    let projection = projection(config)?;
    let start = Instant::now();
    let plain_labels = |b: usize, _| Ok(data.train.labels_of(&data.batches[b]));
    let train = decrypt_dir(
        session,
        ctx,
        &projection,
        &session.train,
        &plain_labels,
        "decrypt",
    )?;
    let all: Vec<usize> = (0..data.test.len()).collect();
    let test = plain_features(&projection, &data.test, &all, &config.backend.device())?;
    let inputs = PlainInputs {
        batches: consecutive(train.features.len(), config.batch_size).into(),
        train: Arc::new(train.features),
        test: Arc::new(test),
    };
    let read_seconds = train.read_seconds;
    let (model, head_run) = train_plain(config, head(config), inputs, "secure", outputs)?;
    let times = ctx.phase_times();
    let steps: usize = head_run.epochs.iter().map(|e| e.step_losses.len()).sum();
    let mut report = RunReport::measured(Measured {
        samples: steps * config.batch_size,
        epochs: head_run.epochs,
        stopped: head_run.stopped,
        seconds: start.elapsed().as_secs_f64(),
        key_derivation: times.key_derivation.as_secs_f64(),
        decryption: times.decryption.as_secs_f64(),
        batch_reads: read_seconds,
    });
    if let Some(path) = &outputs.model {
        save_model(&model, path)?;
        report.model_file = Some(path.display().to_string());
    }
    let device = config.backend.device();
    report.secure_inference =
        secure_inference(session, ctx, (&projection, &model), &data.test, &device)?;
    Ok((report, train.row_equations))
}

/// The encrypted test images through the same projection, then the head.
fn secure_inference<G: Group>(
    session: &Session<G>,
    ctx: &SecureContext<G>,
    (projection, model): (&SecureProjection, &Mlp),
    test: &Dataset,
    device: &Device,
) -> Result<Option<SecureInference>, TrainError> {
    let Some(dir) = &session.test else {
        return Ok(None);
    };
    // The encrypted test images are the first ones, in order.
    let per_batch = dir.manifest().batch_size;
    let labels = |b: usize, n: usize| test_labels(test, b * per_batch, n);
    let features = decrypt_dir(session, ctx, projection, dir, &labels, "test")?.features;
    let accuracy = cryptonn_burn::train::accuracy(&features, TEST_CHUNK, |chunk| {
        model.logits(features.items(chunk, device))
    });
    Ok((!features.is_empty()).then(|| SecureInference {
        images: features.len(),
        accuracy,
    }))
}
