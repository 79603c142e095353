//! Secure training driven by burn-train's `Learner`: the main job's MLP,
//! first layer secure, on the shipped MNIST, with the main job's parties
//! (an authority serving keys over HTTPS on a loopback port, the client's
//! encrypted batch files), settings, initial weights and batch order; the
//! Learner runs the epochs, the optimizer, the loss and accuracy metrics
//! and its checkpoints.
//!
//! `cargo run --release --example learner_secure`
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

mod progress;
mod steps;

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use burn::data::dataloader::DataLoaderBuilder;
use burn::data::dataset::InMemDataset;
use burn::optim::lr_scheduler::constant::ConstantLr;
use burn::train::metric::{AccuracyMetric, LossMetric};
use burn::train::{Interrupter, Learner, SupervisedTraining};
use clap::Parser;
use cryptonn::fe::feip::Decryptor;
use cryptonn::fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn::mnist::data::{Dataset, Split};
use cryptonn::mnist::encryption::{EncryptionJob, encrypt_to_dir};
use cryptonn::mnist::parties::EmbeddedAuthority;
use cryptonn::mnist::training::{TrainingConfig, accuracy, batches, device, init_model, optimizer};
use cryptonn::nn::SecureContext;
use cryptonn::protocol::wire::Role;
use steps::{EncryptedBatches, Failure, SecureMlp, TestImages};

/// Train the main job's MLP (first layer secure) with burn-train's Learner on
/// the shipped MNIST, with the main job's defaults, and print its test accuracy.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Passes over the training images.
    #[arg(long, default_value_t = 2)]
    epochs: usize,
    /// Training images used, from the start of the training set.
    #[arg(long, default_value_t = 6144)]
    train_size: usize,
    /// Test images for the validation metric and the final accuracy.
    #[arg(long, default_value_t = 10000)]
    test_size: usize,
    /// Images per batch (one pair of master keys per batch).
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Seed of the initial weights, data order, keys and encryption randomness.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Directory with the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Working directory: the authority's state, the batch files and the
    /// Learner's checkpoints and logs (emptied first).
    #[arg(long, default_value = "target/learner_secure")]
    work_dir: PathBuf,
}

type Failed = Box<dyn std::error::Error>;

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

fn run(args: &Args) -> Result<(), Failed> {
    let start = Instant::now();
    let config = TrainingConfig::new()
        .with_epochs(args.epochs)
        .with_train_size(args.train_size)
        .with_test_size(args.test_size)
        .with_batch_size(args.batch_size)
        .with_seed(args.seed);
    let classes = config.model.classes;
    let train = Dataset::load(&args.data_dir, Split::Train, classes)?.truncate(config.train_size);
    let test =
        Arc::new(Dataset::load(&args.data_dir, Split::Test, classes)?.truncate(config.test_size));
    let authority = EmbeddedAuthority::start(&args.work_dir, true, &config)?;
    let batch_dir = client_step(&config, &train, &authority, &args.work_dir)?;
    let server = authority.connect::<Ristretto255>(Role::Server)?;
    let table = Arc::new(DlogTable::<Ristretto255>::new(DlogConfig::default())?);
    let ctx = SecureContext::new(Arc::new(server), Decryptor::new(table), config.quantization);
    let model = SecureMlp {
        mlp: init_model(&config, &test, &device(config.seed), true),
    };
    let trained = learn(&config, batch_dir, ctx, test.clone(), model, &args.work_dir)?;
    let test_accuracy = accuracy(&trained.mlp, &test, &device(config.seed));
    println!(
        "learner_secure: {} images × {} epochs, batches of {}: test accuracy {:.2}% on {} images ({:.0} s)",
        train.len(),
        config.epochs,
        config.batch_size,
        100.0 * test_accuracy,
        test.len(),
        start.elapsed().as_secs_f64()
    );
    Ok(())
}

/// The client: encrypts the training batches (images and labels) to files.
fn client_step(
    config: &TrainingConfig,
    train: &Dataset,
    authority: &EmbeddedAuthority,
    work_dir: &Path,
) -> Result<cryptonn::protocol::container::BatchDir, Failed> {
    let client = authority.connect::<Ristretto255>(Role::Client)?;
    let batches = batches(config, train.len());
    let job = EncryptionJob {
        data: train,
        batches: &batches,
        labels: Some((config.model.classes, config.quantization.label_scale)),
        source: format!("training images, seed {}", config.seed),
    };
    Ok(encrypt_to_dir(&client, &job, &work_dir.join("ciphertexts"))?.0)
}

/// The Learner: epochs, optimizer, metrics and checkpoints.
fn learn(
    config: &TrainingConfig,
    batch_dir: cryptonn::protocol::container::BatchDir,
    ctx: SecureContext<Ristretto255>,
    test: Arc<Dataset>,
    model: SecureMlp,
    work_dir: &Path,
) -> Result<SecureMlp, Failed> {
    let failure = Failure::default();
    let interrupter = Interrupter::new();
    let batches = EncryptedBatches::new(
        batch_dir,
        config.clone(),
        ctx,
        failure.clone(),
        interrupter.clone(),
    );
    let positions: Vec<usize> = (0..batches.count()).collect();
    let train_loader = DataLoaderBuilder::new(batches)
        .batch_size(1)
        .build(InMemDataset::new(positions));
    let indices: Vec<usize> = (0..test.len()).collect();
    let valid_loader = DataLoaderBuilder::new(TestImages(test))
        .batch_size(1000)
        .build(InMemDataset::new(indices));
    let learner = Learner::new(model, optimizer(config), ConstantLr::new(config.lr));
    let result = SupervisedTraining::new(work_dir.join("learner"), train_loader, valid_loader)
        .num_epochs(config.epochs)
        .metric_train_numeric(LossMetric::new())
        .metric_valid_numeric(AccuracyMetric::new())
        .metric_valid_numeric(LossMetric::new())
        .with_interrupter(interrupter)
        .renderer(Box::new(progress::Bars::default()))
        .summary()
        .launch(learner);
    if let Some(why) = failure.take() {
        return Err(format!("secure training stopped: {why}").into());
    }
    if let Some(e) = result.error {
        return Err(format!("the Learner stopped: {e}").into());
    }
    Ok(result.model)
}
