//! `--model lenet` end to end on a tiny configuration of the shipped MNIST
//! data: LeNet-5 with a secure first convolution next to the plain one.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use burn::tensor::Tensor;
use cryptonn::nn::FirstConv;
use cryptonn_mnist::config::{KeyPolicyKind, Mode, ModelKind, Privacy, TrainError, TrainingConfig};
use cryptonn_mnist::lenet::{LeNet, LeNetConfig};
use cryptonn_mnist::outputs::Outputs;
use cryptonn_mnist::runner;

/// Burn's seeded initialisation draws from one generator per process: tests
/// that compare initial weights must not run while another initialises.
static INIT: Mutex<()> = Mutex::new(());

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

fn tiny() -> TrainingConfig {
    TrainingConfig::new()
        .with_model_kind(ModelKind::Lenet)
        .with_policy(KeyPolicyKind::IssueAll)
        .with_mode(Mode::Both)
        .with_epochs(1)
        .with_train_size(16)
        .with_batch_size(8)
        .with_test_size(100)
        .with_secure_test_size(16)
}

fn conv1_weight(model: &LeNet) -> Tensor<4> {
    match &model.conv1 {
        FirstConv::Plain(conv) => conv.weight.val(),
        FirstConv::Secure(conv) => conv.weight.val(),
    }
}

fn max_abs_diff<const D: usize>(a: Tensor<D>, b: Tensor<D>) -> f32 {
    (a - b).abs().max().into_scalar::<f32>()
}

#[test]
fn plain_and_secure_start_from_the_same_weights() {
    let _serial = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let config = LeNetConfig::new();
    let plain = config.init(&TrainingConfig::new().with_seed(42).device(), false);
    let secure = config.init(&TrainingConfig::new().with_seed(42).device(), true);
    assert!(matches!(secure.conv1, FirstConv::Secure(_)));
    assert!(matches!(plain.conv1, FirstConv::Plain(_)));
    assert_eq!(
        max_abs_diff(conv1_weight(&plain), conv1_weight(&secure)),
        0.0
    );
    assert_eq!(
        max_abs_diff(plain.conv2.weight.val(), secure.conv2.weight.val()),
        0.0
    );
    assert_eq!(
        max_abs_diff(plain.fc3.weight.val(), secure.fc3.weight.val()),
        0.0
    );
    assert_eq!(config.equations_per_image(), 3456);
    let x = Tensor::<4>::ones([2, 1, 28, 28], &TrainingConfig::new().with_seed(1).device());
    assert_eq!(plain.forward_plain(x.clone()).dims(), [2, 10]);
    assert_eq!(
        max_abs_diff(plain.forward_plain(x.clone()), secure.forward_plain(x)),
        0.0
    );
}

#[test]
fn lenet_needs_the_paper_policy_explicitly() {
    let _serial = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let outputs = Outputs::default();
    for config in [
        tiny().with_policy(KeyPolicyKind::Budget),
        tiny().with_privacy(Privacy::Projection),
    ] {
        let err = runner::run(&config, &data_dir(), &outputs).unwrap_err();
        assert!(matches!(err, TrainError::Config(_)));
        assert!(err.to_string().contains("3456 equations"), "{err}");
    }
    // The MLP never runs under IssueAll.
    let mlp = tiny()
        .with_model_kind(ModelKind::Mlp)
        .with_mode(Mode::Plain);
    assert!(matches!(
        runner::run(&mlp, &data_dir(), &outputs),
        Err(TrainError::Config(_))
    ));
}

#[test]
fn tiny_secure_lenet_runs_and_reports() {
    let _serial = INIT
        .lock()
        .unwrap_or_else(std::sync::PoisonError::into_inner);
    let report = runner::run(&tiny(), &data_dir(), &Outputs::default()).unwrap();
    let secure = report.secure.as_ref().unwrap();
    let plain = report.plain.as_ref().unwrap();
    assert_eq!(secure.epochs.len(), 1);
    assert_eq!(plain.epochs.len(), 1);
    assert_eq!(secure.epochs[0].step_losses.len(), 2);
    // Same weights, data and order: the first step's loss is the same up to
    // the quantization of conv1's kernel.
    let (s0, p0) = (
        secure.epochs[0].step_losses[0],
        plain.epochs[0].step_losses[0],
    );
    assert!((s0 - p0).abs() < 1e-2 * p0.abs().max(1.0), "{s0} vs {p0}");
    assert!(
        (secure.test_accuracy - plain.test_accuracy).abs() < 0.1,
        "{} vs {}",
        secure.test_accuracy,
        plain.test_accuracy
    );
    assert!(secure.ciphertext_bytes_per_image.unwrap() > 0);
    assert!(secure.keys_issued.unwrap() > 0);
    // Secure inference: the first 16 test images, two encrypted batches of 8.
    let inference = secure.secure_inference.as_ref().unwrap();
    assert_eq!(inference.images, 16);
    assert!((0.0..=1.0).contains(&inference.accuracy));
    let privacy = report.privacy.as_ref().unwrap();
    assert_eq!(privacy.row_equations_per_image, 3456);
    let summary = report.summary();
    println!("{summary}");
    assert!(
        summary.contains("LeNet-5: the paper's policy, every key issued"),
        "{summary}"
    );
    assert!(
        summary.contains("recoverable by linear algebra"),
        "{summary}"
    );
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    assert_eq!(json["config"]["model_kind"], "lenet");
    assert_eq!(json["config"]["policy"], "issue-all");
}
