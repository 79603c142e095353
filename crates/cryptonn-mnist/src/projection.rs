//! Projection mode: a fixed public projection decrypted once per image, then
//! every later layer trained in the clear on the cached activations.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::Arc;
use std::time::Instant;

use burn::tensor::{Device, Int, Tensor, TensorData};
use cryptonn_authority::{Authority, RankBudget, Requester};
use cryptonn_burn::{SecureContext, SecureProjection, SecureProjectionConfig};
use cryptonn_client::{Client, PIXEL_SCALE, Samples};
use cryptonn_fe::Group;
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::data::{Dataset, Tensors};
use super::learner::{Epochs, TestSet, train_epochs};
use super::model::{Mlp, MlpConfig};
use super::progress::Meter;
use super::report::{PhaseSeconds, RunReport, SecureInference};
use super::training::{
    Data, Outputs, TrainError, TrainingConfig, authority, cross_entropy_step, device, plain_report,
    save_model,
};

/// Activations of the projection for a list of images, with their labels.
struct Features {
    /// `[images, K]`, row-major.
    values: Vec<f32>,
    labels: Vec<usize>,
    k: usize,
}

impl Features {
    fn tensor(&self, rows: std::ops::Range<usize>, device: &Device) -> Tensor<2> {
        let values = self.values[rows.start * self.k..rows.end * self.k].to_vec();
        Tensor::from_data(TensorData::new(values, [rows.len(), self.k]), device)
    }

    fn targets(&self, rows: std::ops::Range<usize>, device: &Device) -> Tensor<1, Int> {
        let labels: Vec<i64> = self.labels[rows].iter().map(|&l| l as i64).collect();
        Tensor::from_data(TensorData::new(labels.clone(), [labels.len()]), device)
    }
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
fn head(config: &TrainingConfig, device: &Device) -> Mlp {
    MlpConfig::new()
        .with_d_input(config.projection_dim)
        .with_hidden(config.model.hidden.clone())
        .with_classes(config.model.classes)
        .init(device, false)
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
        let z = projection
            .forward_plain(data.inputs(chunk, device))
            .detach();
        values.extend(read(z)?);
    }
    Ok(Features {
        values,
        labels: data.labels_of(indices),
        k: projection.dims()[1],
    })
}

fn read(t: Tensor<2>) -> Result<Vec<f32>, TrainError> {
    t.into_data()
        .try_to_vec::<f32>()
        .map_err(|e| cryptonn_burn::Error::TensorRead(format!("{e:?}")).into())
}

/// Trains the head on `features` in fixed batches of `config.batch_size`.
fn train_head(
    config: &TrainingConfig,
    features: Features,
    test: Features,
    name: &'static str,
    outputs: &Outputs,
) -> Result<(Mlp, RunReport), TrainError> {
    let device = device(config);
    let batches = features.labels.len() / config.batch_size;
    let model = head(config, &device);
    let batch_size = config.batch_size;
    let step = Arc::new(move |model: &Mlp, b: usize| {
        let rows = b * batch_size..(b + 1) * batch_size;
        Ok(cross_entropy_step(
            model.forward_plain(features.tensor(rows.clone(), &device)),
            features.targets(rows, &device),
        ))
    });
    let start = Instant::now();
    let (model, epochs, stopped) = train_epochs(
        config,
        model,
        Epochs {
            name,
            batches,
            step,
            test: Arc::new(test),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 1000,
            guard: None,
            dir: outputs.learner_dir.clone(),
        },
    )?;
    let elapsed = start.elapsed().as_secs_f64();
    let report = plain_report(config, epochs, batches, elapsed, stopped);
    Ok((model, report))
}

/// The plaintext baseline: the same projection and head, in the clear.
pub(super) fn train_plain(
    config: &TrainingConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let device = config.backend.device();
    let projection = projection(config)?;
    let order: Vec<usize> = data.batches.iter().flatten().copied().collect();
    let train = plain_features(&projection, &data.train, &order, &device)?;
    let all: Vec<usize> = (0..data.test.len()).collect();
    let test = plain_features(&projection, &data.test, &all, &device)?;
    Ok(train_head(config, train, test, "plain", outputs)?.1)
}

/// The authority and the server's handles on it, shared by training and test.
struct Parties<G: Group> {
    authority: Arc<Authority<G>>,
    server: Requester<G>,
    ctx: SecureContext<G>,
}

impl<G: Group> Parties<G> {
    /// The authority with the projection policy (row cap K, column cap 0).
    fn new(
        config: &TrainingConfig,
        outputs: &Outputs,
        rng: &mut StdRng,
    ) -> Result<Self, TrainError> {
        let policy = RankBudget::projection(
            config.projection_dim,
            config.quantization.min_key_support,
            rng,
        );
        let authority: Arc<Authority<G>> = authority(policy, outputs)?;
        let server = authority.requester("server");
        let ctx = SecureContext::builder(Arc::new(server.clone()))
            .quantization(config.quantization)
            .build()?;
        Ok(Self {
            authority,
            server,
            ctx,
        })
    }
}

/// What the server decrypted, and what it cost.
struct Decrypted {
    features: Features,
    client_encryption: f64,
    row_equations: usize,
    bytes_per_image: usize,
}

/// Clients encrypt each batch row-wise under fresh master keys; the server
/// decrypts its K activations and its labels once. Batch by batch, so the
/// ciphertexts of one batch at a time are in memory.
fn encrypt_and_decrypt<G: Group>(
    parties: &Parties<G>,
    config: &TrainingConfig,
    projection: &SecureProjection,
    data: &Dataset,
    batches: &[Vec<usize>],
    rng: &mut StdRng,
    what: &str,
) -> Result<Decrypted, TrainError> {
    let device = config.backend.device();
    let mut progress = Meter::new(what, batches.iter().map(Vec::len).sum());
    let (mut values, mut labels) = (Vec::new(), Vec::new());
    let (mut client_encryption, mut row_equations, mut bytes_per_image) = (0.0, 0, 0);
    for indices in batches {
        let start = Instant::now();
        let keys = parties.authority.row_keys(data.features, rng)?;
        let pixels = data.pixels(indices);
        let classes = data.labels_of(indices);
        let samples = Samples {
            inputs: &pixels,
            features: data.features,
            input_scale: PIXEL_SCALE,
            labels: Some((classes.as_slice(), config.model.classes)),
        };
        let encrypted = Client::for_rows(&keys)?.encrypt_rows(
            &samples,
            config.quantization.label_scale,
            rng,
        )?;
        client_encryption += start.elapsed().as_secs_f64();
        bytes_per_image = encrypted.ciphertext_bytes_per_sample();
        let z = projection.forward(&encrypted, &parties.ctx, &device)?;
        values.extend(read(z)?);
        if let Some(l) = encrypted.labels() {
            labels.extend(parties.ctx.server().decrypt_labels(l)?);
        }
        let rank = parties
            .server
            .budget(encrypted.row_key())
            .map_or(0, |b| b.rank);
        row_equations = row_equations.max(rank);
        progress.set(values.len() / projection.dims()[1]);
    }
    progress.finish();
    Ok(Decrypted {
        features: Features {
            values,
            labels,
            k: projection.dims()[1],
        },
        client_encryption,
        row_equations,
        bytes_per_image,
    })
}

/// Projection mode, secure: encrypt, decrypt once, train the head in the
/// clear, then classify encrypted test images.
pub(super) fn train_secure<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<(RunReport, usize), TrainError> {
    let (train, test, batches) = (&*data.train, &*data.test, &*data.batches);
    let mut rng = StdRng::seed_from_u64(config.seed);
    let projection = projection(config)?;
    let parties = Parties::<G>::new(config, outputs, &mut rng)?;
    let Decrypted {
        features,
        client_encryption,
        row_equations,
        bytes_per_image,
    } = encrypt_and_decrypt(
        &parties,
        config,
        &projection,
        train,
        batches,
        &mut rng,
        "decrypt",
    )?;
    let times = parties.ctx.phase_times();
    let all: Vec<usize> = (0..test.len()).collect();
    let test_features = plain_features(&projection, test, &all, &config.backend.device())?;
    let (model, mut report) = train_head(config, features, test_features, "secure", outputs)?;
    if let Some(path) = &outputs.model {
        save_model(&model, path)?;
        report.model_file = Some(path.display().to_string());
    }
    report.secure_inference =
        secure_inference(&parties, config, &projection, &model, test, &mut rng)?;
    report.seconds = PhaseSeconds {
        client_encryption,
        key_derivation: times.key_derivation.as_secs_f64(),
        decryption: times.decryption.as_secs_f64(),
        burn_compute: report.seconds.burn_compute,
        ..PhaseSeconds::default()
    };
    report.ciphertext_bytes_per_image = Some(bytes_per_image);
    report.keys_issued = Some(parties.authority.keys_issued());
    Ok((report, row_equations))
}

/// Encrypted test images through the same projection and authority (fresh
/// master keys).
fn secure_inference<G: Group>(
    parties: &Parties<G>,
    config: &TrainingConfig,
    projection: &SecureProjection,
    model: &Mlp,
    test: &Dataset,
    rng: &mut StdRng,
) -> Result<Option<SecureInference>, TrainError> {
    let count = config.secure_test_size.min(test.len());
    if count == 0 {
        return Ok(None);
    }
    let batches: Vec<Vec<usize>> = (0..count)
        .collect::<Vec<_>>()
        .chunks(config.batch_size)
        .map(<[usize]>::to_vec)
        .collect();
    let decrypted = encrypt_and_decrypt(parties, config, projection, test, &batches, rng, "test")?;
    let (features, device) = (&decrypted.features, device(config));
    let accuracy = cryptonn_burn::train::accuracy(features, 1000, |chunk| {
        model.forward_plain(features.items(chunk, &device))
    });
    Ok(Some(SecureInference {
        images: count,
        accuracy,
    }))
}
