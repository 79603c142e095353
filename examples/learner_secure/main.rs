//! Secure training with burn-train's `Learner`, set up by hand: the main
//! job's MLP (first layer secure) on the shipped MNIST, with the main job's
//! parties (an authority serving keys over HTTPS on a loopback port, the
//! client's encrypted batch files). The step is one encrypted batch read
//! from disk; the Learner runs the epochs, the optimizer, the metrics, and
//! here also Burn's checkpoints and a learning-rate metric, added to the
//! main job's configuration before launch.
//!
//! `cargo run --release --example learner_secure`

use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use burn::train::metric::LearningRateMetric;
use clap::Parser;
use cryptonn::authority::EmbeddedAuthority;
use cryptonn::client::{EncryptionJob, Layout};
use cryptonn::fe::Ristretto255;
use cryptonn::nn::SecureContext;
use cryptonn::protocol::container::BatchDir;
use cryptonn::protocol::wire::Role;
use cryptonn_mnist::config::TrainingConfig;
use cryptonn_mnist::data::test_set;
use cryptonn_mnist::data::train_batches;
use cryptonn_mnist::data::{Dataset, Split};
use cryptonn_mnist::learner::Epochs;
use cryptonn_mnist::loss::encrypted_step;
use cryptonn_mnist::mlp::Mlp;
use cryptonn_mnist::parties::encrypt_with_progress;
use cryptonn_mnist::parties::start_embedded;

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
    let authority = start_embedded(&args.work_dir, true, &config)?;
    let dir = client_step(&config, &train, &authority, &args.work_dir)?;
    let server = authority.connect::<Ristretto255>(Role::Server)?;
    let ctx = SecureContext::builder(Arc::new(server))
        .quantization(config.quantization)
        .build()?;
    let epochs = Epochs {
        name: "secure",
        batches: dir.manifest().batches,
        step: Arc::new(move |model: &Mlp, b| {
            encrypted_step(model, &dir.read_batch::<Ristretto255>(b)?, &ctx, None)
        }),
        test: test_set(&test),
        logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
        chunk: 1000,
        guard: None,
        dir: Some(args.work_dir.join("learner")),
    };
    let model = config.init_mlp(&test, &config.device(), true);
    let mut learning = epochs.learning(&config, model)?;
    learning.training = learning
        .training
        .metric_train_numeric(LearningRateMetric::new());
    let (_, reports, stopped) = learning.launch()?;
    if let Some(why) = stopped {
        return Err(format!("secure training stopped: {why}").into());
    }
    let accuracy = reports.last().map_or(0.0, |e| e.test_accuracy);
    println!(
        "learner_secure: {} images × {} epochs, batches of {}: test accuracy {:.2}% on {} images \
         ({:.0} s); Burn's logs and checkpoints in {}",
        train.len(),
        config.epochs,
        config.batch_size,
        100.0 * accuracy,
        test.len(),
        start.elapsed().as_secs_f64(),
        args.work_dir.join("learner").display()
    );
    Ok(())
}

/// The client: encrypts the training batches (images and labels) to files.
fn client_step(
    config: &TrainingConfig,
    train: &Dataset,
    authority: &EmbeddedAuthority,
    work_dir: &Path,
) -> Result<BatchDir, Failed> {
    let client = authority.connect::<Ristretto255>(Role::Client)?;
    let batches = train_batches(config, train.len());
    let job = EncryptionJob {
        data: train,
        batches: &batches,
        labels: Some((config.model.classes, config.quantization.label_scale)),
        source: format!("training images, seed {}", config.seed),
        layout: Layout::Batch,
    };
    Ok(encrypt_with_progress(&client, &job, &work_dir.join("ciphertexts"))?.0)
}
