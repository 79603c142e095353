//! The main job end to end on a tiny configuration of the shipped MNIST data,
//! and the data loader on corrupt files.

#![allow(clippy::unwrap_used)] // Unwraps are allowed in tests.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::path::{Path, PathBuf};

use cryptonn_mnist::config::{Mode, Privacy, TrainError, TrainingConfig};
use cryptonn_mnist::data::DataError;
use cryptonn_mnist::data::{Dataset, Split};
use cryptonn_mnist::mlp::MlpConfig;
use cryptonn_mnist::outputs::Outputs;
use cryptonn_mnist::runner;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

#[test]
fn tiny_secure_run_learns_and_reports() {
    let config = TrainingConfig::new()
        .with_mode(Mode::Both)
        .with_epochs(1)
        .with_train_size(384)
        .with_batch_size(128)
        .with_test_size(500)
        .with_secure_test_size(128)
        .with_lr(1e-2)
        .with_col_cap(64)
        .with_model(MlpConfig::new().with_hidden(vec![16]));
    let report = runner::run(&config, &data_dir(), &Outputs::default()).unwrap();
    let secure = report.secure.as_ref().unwrap();
    let plain = report.plain.as_ref().unwrap();
    assert!(
        secure.test_accuracy > 0.3,
        "secure accuracy {}",
        secure.test_accuracy
    );
    assert!(
        (secure.test_accuracy - plain.test_accuracy).abs() < 0.05,
        "{} vs {}",
        secure.test_accuracy,
        plain.test_accuracy
    );
    assert!(secure.secure_inference.as_ref().unwrap().accuracy > 0.3);
    let png = std::env::temp_dir().join(format!("cryptonn-curves-{}.png", std::process::id()));
    cryptonn_mnist::plot::write_curves(&report, &png).unwrap();
    assert!(std::fs::read(&png).unwrap().starts_with(b"\x89PNG"));
    std::fs::remove_file(&png).unwrap();
    let json: serde_json::Value = serde_json::to_value(&report).unwrap();
    for field in [
        "config",
        "group",
        "security_bits",
        "secure",
        "plain",
        "privacy",
    ] {
        assert!(json.get(field).is_some(), "report lacks {field}");
    }
    for field in [
        "epochs",
        "test_accuracy",
        "seconds",
        "ciphertext_bytes_per_image",
        "keys_issued",
        "secure_inference",
    ] {
        assert!(
            json["secure"].get(field).is_some(),
            "secure report lacks {field}"
        );
    }
    for phase in [
        "client_encryption",
        "key_derivation",
        "decryption",
        "burn_compute",
    ] {
        assert!(json["secure"]["seconds"][phase].as_f64().unwrap() >= 0.0);
    }
    assert_eq!(json["group"], "ristretto255");
    assert!(!report.summary().is_empty());
}

fn copy_with(dir: &Path, name: &str, bytes: &[u8]) {
    std::fs::create_dir_all(dir).unwrap();
    for entry in std::fs::read_dir(data_dir()).unwrap() {
        let path = entry.unwrap().path();
        if path.extension().is_some_and(|e| e == "gz") {
            std::fs::copy(&path, dir.join(path.file_name().unwrap())).unwrap();
        }
    }
    std::fs::remove_file(dir.join(format!("{name}.gz"))).unwrap();
    std::fs::write(dir.join(name), bytes).unwrap();
}

#[test]
fn corrupt_or_missing_files_are_errors() {
    let base = std::env::temp_dir().join(format!("cryptonn-idx-{}", std::process::id()));
    let cases: [(&str, &[u8]); 3] = [
        ("t10k-labels-idx1-ubyte", b"not an idx file"),
        (
            "t10k-images-idx3-ubyte",
            &[0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 28, 0, 0, 0, 28, 1, 2, 3],
        ),
        ("t10k-labels-idx1-ubyte", &[0, 0, 8, 1, 0, 0, 0, 2, 1, 11]),
    ];
    for (i, (name, bytes)) in cases.iter().enumerate() {
        let dir = base.join(i.to_string());
        copy_with(&dir, name, bytes);
        let err = Dataset::load(&dir, Split::Test, 10).unwrap_err();
        assert!(matches!(err, DataError::Format { .. }), "{err}");
    }
    let missing = Dataset::load(&base.join("nowhere"), Split::Train, 10).unwrap_err();
    assert!(matches!(missing, DataError::Missing { .. }), "{missing}");
    let config = TrainingConfig::new().with_mode(Mode::Plain);
    assert!(matches!(
        runner::run(&config, &base.join("nowhere"), &Outputs::default()),
        Err(TrainError::Data(_))
    ));
}

#[test]
fn shipped_data_is_complete() {
    let train = Dataset::load(&data_dir(), Split::Train, 10).unwrap();
    let test = Dataset::load(&data_dir(), Split::Test, 10).unwrap();
    assert_eq!(
        (train.len(), test.len(), train.features),
        (60_000, 10_000, 784)
    );
}

#[test]
fn spent_budget_stops_cleanly_and_keeps_the_model() {
    let dir = std::env::temp_dir().join(format!("cryptonn-budget-{}", std::process::id()));
    let outputs = Outputs {
        model: Some(dir.join("model.bpk")),
        audit_log: Some(dir.join("keys.log")),
        ..Outputs::default()
    };
    std::fs::create_dir_all(&dir).unwrap();
    // A column cap of 32 allows two epochs of 16 gradient keys, so the third
    // is never started.
    let config = TrainingConfig::new()
        .with_mode(Mode::Secure)
        .with_epochs(3)
        .with_train_size(256)
        .with_batch_size(128)
        .with_test_size(200)
        .with_secure_test_size(0)
        .with_col_cap(32)
        .with_model(MlpConfig::new().with_hidden(vec![16]));
    let report = runner::run(&config, &data_dir(), &outputs).unwrap();
    let secure = report.secure.as_ref().unwrap();
    assert_eq!(secure.epochs.len(), 2);
    let why = secure.stopped.as_deref().unwrap();
    assert!(
        why.contains("rank budget spent") && why.contains("epoch 3"),
        "{why}"
    );
    let meter = secure.budget.last().unwrap();
    assert_eq!(meter.cols.unwrap().limit, 32);
    assert!(meter.cols.unwrap().rank <= 32);
    assert!(report.summary().contains("stopped after 2 epochs"));

    // The weights were saved and load back into the same model.
    let device = burn::tensor::Device::ndarray().autodiff();
    let model = config.model.init(&device, true);
    assert!(burn::module::Module::try_load_file(model, dir.join("model.bpk")).is_ok());
    // One audit record per issued FEIP and FEBO key, all by the server.
    let log = std::fs::read_to_string(dir.join("keys.log")).unwrap();
    assert_eq!(log.lines().count() as u64, secure.keys_issued.unwrap());
    assert!(log.lines().all(|l| l.contains("\"requester\":\"server\"")));
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn tiny_projection_run_decrypts_once_and_reports_its_leakage() {
    let config = TrainingConfig::new()
        .with_mode(Mode::Both)
        .with_privacy(Privacy::Projection)
        .with_projection_dim(32)
        .with_epochs(20)
        .with_train_size(512)
        .with_batch_size(128)
        .with_test_size(500)
        .with_secure_test_size(128)
        .with_model(MlpConfig::new().with_hidden(vec![32]));
    let report = runner::run(&config, &data_dir(), &Outputs::default()).unwrap();
    let secure = report.secure.as_ref().unwrap();
    let plain = report.plain.as_ref().unwrap();
    assert_eq!(secure.epochs.len(), 20, "epochs cost no budget");
    assert!(secure.test_accuracy > 0.5, "{}", secure.test_accuracy);
    assert!((secure.test_accuracy - plain.test_accuracy).abs() < 0.03);
    assert!(secure.secure_inference.as_ref().unwrap().accuracy > 0.5);
    // 32 row keys per batch, once (4 training and 1 test batch), and 10
    // label keys per training image (the test images' labels stay with the
    // client).
    assert_eq!(secure.keys_issued, Some(5 * 32 + 512 * 10));
    let privacy = report.privacy.as_ref().unwrap();
    assert_eq!(
        (
            privacy.row_equations_per_image,
            privacy.column_equations_per_batch
        ),
        (32, 0)
    );
    assert!(report.summary().contains("32 equations per image for life"));
}

#[test]
fn caps_that_reach_the_dimension_are_refused() {
    let config = TrainingConfig::new()
        .with_train_size(256)
        .with_batch_size(128)
        .with_col_cap(128);
    let err = runner::run(&config, &data_dir(), &Outputs::default()).unwrap_err();
    assert!(
        matches!(&err, TrainError::Config(why) if why.contains("column cap of 128")),
        "{err}"
    );
}

#[test]
fn the_learner_writes_burns_logs_and_checkpoints_when_asked() {
    let dir = std::env::temp_dir().join(format!("cryptonn-learner-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    let outputs = Outputs {
        learner_dir: Some(dir.clone()),
        ..Outputs::default()
    };
    let config = TrainingConfig::new()
        .with_mode(Mode::Plain)
        .with_epochs(2)
        .with_train_size(512)
        .with_batch_size(256)
        .with_test_size(100);
    let report = runner::run(&config, &data_dir(), &outputs).unwrap();
    assert_eq!(report.plain.map(|r| r.epochs.len()), Some(2));
    let plain = dir.join("plain");
    for epoch in 1..=2 {
        let logs = plain.join(format!("train/epoch-{epoch}"));
        assert!(logs.is_dir(), "no metric logs in {}", logs.display());
    }
    let checkpoints: Vec<_> = std::fs::read_dir(plain.join("checkpoint"))
        .unwrap()
        .filter_map(Result::ok)
        .map(|e| e.file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        checkpoints.iter().any(|f| f.starts_with("model-2")),
        "no checkpoint of epoch 2 among {checkpoints:?}"
    );
    // A --learner-dir that is a file: a clear error before any training.
    std::fs::write(dir.join("file"), b"").unwrap();
    let outputs = Outputs {
        learner_dir: Some(dir.join("file")),
        ..Outputs::default()
    };
    let err = runner::run(&config, &data_dir(), &outputs).unwrap_err();
    assert!(matches!(err, TrainError::Learner(_)), "{err}");
    assert!(err.to_string().contains("cannot write"), "{err}");
    std::fs::remove_dir_all(&dir).unwrap();
}
