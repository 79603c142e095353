//! `--model lenet`: LeNet-5 with a secure first convolution, next to the same
//! network trained in the clear, both on burn-train's Learner.
//!
//! The three parties play in this process, as in projection mode: an
//! [`Authority`] under the paper's policy ([`IssueAll`]), a client that
//! encrypts the images of each batch under fresh master keys when
//! the batch is trained (so one batch of ciphertexts at a time is in
//! memory, and every epoch encrypts again), and the server, which decrypts
//! conv1's outputs and its kernel gradient with function keys, and after
//! training classifies encrypted test images the same way. Labels travel
//! in the clear ([`LabelMode::Plain`](super::training::LabelMode::Plain),
//! whatever `labels` says).
//!
//! # Security
//! None to speak of: conv1 alone gives the server `6 · 24 · 24 = 3,456`
//! inner products on each image's 784 pixels per forward pass, so the images
//! are recoverable by linear algebra. [`run`] refuses to start unless the
//! configuration asks for the paper's protocol and [`KeyPolicyKind::IssueAll`]
//! explicitly, and the report says so.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::{Arc, Mutex};
use std::time::Instant;

use crate::equivalence::encrypt_images;
use burn::tensor::{Device, Tensor};
use cryptonn_authority::{Authority, Caps, IssueAll};
use cryptonn_burn::SecureContext;
use cryptonn_burn::SecureConv2d;
use cryptonn_fe::{Group, GroupId, Modp2048, Modp3072, Ristretto255};
use rand::SeedableRng;
use rand::rngs::StdRng;

use super::data::Dataset;
use super::data::Tensors;
use super::learner::{Epochs, StepFn, lock, train_epochs};
use super::lenet::{LeNet, LeNetConfig};
use super::parties::Parties;
use super::privacy::PrivacyReport;
use super::report::{
    EpochReport, PhaseSeconds, Report, RunReport, SecureInference, peak_memory_mib,
};
use super::secure::test_batches;
use super::training::{
    Data, KeyPolicyKind, Mode, Outputs, Privacy, TrainError, TrainingConfig, authority,
    cross_entropy, cross_entropy_step, device, plain_report, save_model, secure_accuracy,
};

/// The LeNet-5 of the configuration, for the training images' side.
fn lenet_config(config: &TrainingConfig, features: usize) -> Result<LeNetConfig, TrainError> {
    let side = features.isqrt();
    if side * side != features || side < 16 {
        return Err(TrainError::Config(format!(
            "LeNet-5 needs square images of at least 16×16 pixels, the data has {features} per image"
        )));
    }
    Ok(LeNetConfig::new()
        .with_side(side)
        .with_classes(config.model.classes))
}

/// Refuses LeNet-5 unless the paper's protocol and policy are asked for.
fn check_policy(config: &TrainingConfig, lenet: &LeNetConfig) -> Result<(), TrainError> {
    let pixels = lenet.side * lenet.side;
    if config.privacy != Privacy::Cryptonn || config.policy != KeyPolicyKind::IssueAll {
        return Err(TrainError::Config(format!(
            "--model lenet needs --privacy cryptonn and --policy issue-all: its secure first \
             convolution (6 channels × {side}×{side} positions) gives the server {n} equations on \
             each image's {pixels} pixels in one forward pass, so the images are recoverable by \
             linear algebra and no rank budget below full can serve it; the authority must issue \
             every key (the paper's policy), and the run protects nothing",
            side = lenet.conv1_side(),
            n = lenet.equations_per_image(),
        )));
    }
    Ok(())
}

/// Runs LeNet-5, plain and/or secure, on the loaded data.
///
/// # Errors
/// A configuration without the paper's protocol and `IssueAll`, remote
/// parties, images that are not square, or a failure of the secure protocol.
pub(super) fn run(
    config: &TrainingConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<Report, TrainError> {
    let lenet = lenet_config(config, data.train.features)?;
    check_policy(config, &lenet)?;
    if matches!(outputs.parties, Parties::Remote(_)) {
        return Err(TrainError::Config(
            "--model lenet plays its three parties in this process; it cannot use --authority"
                .into(),
        ));
    }
    let plain = matches!(config.mode, Mode::Plain | Mode::Both)
        .then(|| train_plain(config, &lenet, data, outputs))
        .transpose()?;
    let secure = match config.mode {
        Mode::Plain => None,
        Mode::Secure | Mode::Both => Some(match config.group {
            GroupId::Ristretto255 => train_secure::<Ristretto255>(config, &lenet, data, outputs)?,
            GroupId::Modp2048 => train_secure::<Modp2048>(config, &lenet, data, outputs)?,
            GroupId::Modp3072 => train_secure::<Modp3072>(config, &lenet, data, outputs)?,
        }),
    };
    // IssueAll: no cap below full rank on either side. Each step's column
    // master key (the whole batch's pixels) gets one key per conv1 channel
    // and kernel tap.
    let caps = Caps {
        rows: data.train.features,
        cols: config.batch_size * data.train.features,
    };
    let privacy = secure.as_ref().map(|_| {
        PrivacyReport::convolution(
            lenet.equations_per_image(),
            lenet.gradient_equations_per_step(),
            caps,
        )
    });
    Ok(Report::new(config, secure, plain, privacy))
}

/// Images `indices` as `[len, 1, side, side]`, scaled to [0, 1].
fn images(data: &Dataset, indices: &[usize], side: usize, device: &Device) -> Tensor<4> {
    data.inputs(indices, device)
        .reshape([indices.len(), 1, side, side])
}

/// What both runs hand the Learner besides their step.
fn epochs(
    lenet: &LeNetConfig,
    name: &'static str,
    test: &Arc<Dataset>,
    batches: usize,
    step: Arc<StepFn<LeNet>>,
    outputs: &Outputs,
) -> Epochs<LeNet> {
    let side = lenet.side;
    Epochs {
        name,
        batches,
        step,
        test: crate::data::test_set(test),
        logits: Arc::new(move |model: &LeNet, inputs: Tensor<2>| {
            let n = inputs.dims()[0];
            model.forward_plain(inputs.reshape([n, 1, side, side]))
        }),
        chunk: 500,
        guard: None,
        dir: outputs.learner_dir.clone(),
    }
}

/// The plaintext baseline: the same initial weights, seed and batch order.
fn train_plain(
    config: &TrainingConfig,
    lenet: &LeNetConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let device = device(config);
    let model = lenet.init(&device, false);
    let (train, batches, side) = (data.train.clone(), data.batches.clone(), lenet.side);
    let step = Arc::new(move |model: &LeNet, b: usize| {
        Ok(cross_entropy_step(
            model.forward_plain(images(&train, &batches[b], side, &device)),
            train.targets(&batches[b], &device),
        ))
    });
    let start = Instant::now();
    let count = data.batches.len();
    let run = epochs(lenet, "plain", &data.test, count, step, outputs);
    let (_, epochs, _) = train_epochs(config, model, run)?;
    let elapsed = start.elapsed().as_secs_f64();
    Ok(plain_report(config, epochs, count, elapsed, None))
}

/// The client's side of the secure run: encryption time and size.
#[derive(Default)]
struct ClientStats {
    seconds: f64,
    bytes_per_image: usize,
}

/// The secure run: each step, the client encrypts the batch's images under
/// fresh master keys and the server trains conv1 on them.
fn train_secure<G: Group>(
    config: &TrainingConfig,
    lenet: &LeNetConfig,
    data: &Data,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let device = device(config);
    let model = lenet.init(&device, true);
    // The client needs conv1's geometry (kernel, stride, padding), not its weights.
    let Some(conv1) = model.conv1.secure().cloned() else {
        return Err(TrainError::Config("conv1 cannot be made secure".into()));
    };
    let authority = authority::<G>(IssueAll, outputs)?;
    let ctx = SecureContext::builder(authority.clone())
        .quantization(config.quantization)
        .build()?;
    let client = Arc::new(Mutex::new(ClientStats::default()));
    let rng = Arc::new(Mutex::new(StdRng::seed_from_u64(config.seed)));
    let step = {
        let (train, batches, side) = (data.train.clone(), data.batches.clone(), lenet.side);
        let (authority, ctx, client) = (authority.clone(), ctx.clone(), client.clone());
        let (conv1, rng) = (conv1.clone(), rng.clone());
        Arc::new(move |model: &LeNet, b: usize| {
            let indices = &batches[b];
            let encrypting = Instant::now();
            let pixels = train.pixels(indices);
            let encrypted = encrypt_images(
                &authority,
                &conv1,
                &pixels,
                [indices.len(), side],
                &mut *lock(&rng),
            )?;
            {
                let mut client = lock(&client);
                client.seconds += encrypting.elapsed().as_secs_f64();
                client.bytes_per_image = encrypted.ciphertext_bytes_per_image();
            }
            let (value, loss) = cross_entropy(
                model.forward_encrypted(&encrypted, &ctx)?,
                train.targets(indices, &device),
            );
            Ok((value, ctx.backward(loss)?))
        })
    };
    let start = Instant::now();
    let run = epochs(
        lenet,
        "secure",
        &data.test,
        data.batches.len(),
        step,
        outputs,
    );
    let (model, epochs, stopped) = train_epochs(config, model, run)?;
    let client = std::mem::take(&mut *lock(&client));
    let mut report = secure_report(config, data, &ctx, client, start, epochs, stopped);
    report.keys_issued = Some(authority.keys_issued());
    if let Some(path) = &outputs.model {
        save_model(&model, path)?;
        report.model_file = Some(path.display().to_string());
    }
    let inference = Inference {
        authority: &authority,
        conv1: &conv1,
        side: lenet.side,
        rng: &rng,
    };
    report.secure_inference = inference.classify(config, &model, &ctx, &data.test)?;
    Ok(report)
}

/// The secure run's report: its epochs and why it stopped, and the times
/// and sizes of a run that began at `start` (the client's encryption, the
/// server's phases, the rest Burn's).
fn secure_report<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    ctx: &SecureContext<G>,
    client: ClientStats,
    start: Instant,
    epochs: Vec<EpochReport>,
    stopped: Option<String>,
) -> RunReport {
    let (elapsed, batches) = (start.elapsed().as_secs_f64(), data.batches.len());
    let times = ctx.phase_times();
    let (key_derivation, decryption) = (
        times.key_derivation.as_secs_f64(),
        times.decryption.as_secs_f64(),
    );
    let client_encryption = client.seconds;
    RunReport {
        seconds: PhaseSeconds {
            client_encryption,
            key_derivation,
            decryption,
            burn_compute: (elapsed - client_encryption - key_derivation - decryption).max(0.0),
            ..PhaseSeconds::default()
        },
        train_samples_per_s: (config.epochs * batches * config.batch_size) as f64 / elapsed,
        ciphertext_bytes_per_image: Some(client.bytes_per_image),
        peak_memory_mib: peak_memory_mib(),
        test_accuracy: epochs.last().map_or(0.0, |e| e.test_accuracy),
        epochs,
        stopped,
        ..RunReport::default()
    }
}

/// Secure inference: the client encrypts test images (fresh master keys per
/// batch) and the server classifies them, conv1 decrypted with function keys.
struct Inference<'a, G: Group> {
    authority: &'a Authority<G>,
    conv1: &'a SecureConv2d,
    side: usize,
    rng: &'a Mutex<StdRng>,
}

impl<G: Group> Inference<'_, G> {
    /// The accuracy on the first `secure_test_size` test images, in whole
    /// batches; `None` if that is no batch.
    fn classify(
        &self,
        config: &TrainingConfig,
        model: &LeNet,
        ctx: &SecureContext<G>,
        test: &Dataset,
    ) -> Result<Option<SecureInference>, TrainError> {
        secure_accuracy(test_batches(config, test).into_iter().map(|indices| {
            let encrypted = encrypt_images(
                self.authority,
                self.conv1,
                &test.pixels(&indices),
                [indices.len(), self.side],
                &mut *lock(self.rng),
            )?;
            let logits = model.forward_encrypted(&encrypted, ctx)?;
            Ok((logits, test.labels_of(&indices)))
        }))
    }
}
