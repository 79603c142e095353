//! The three parties as three OS processes on loopback: `cryptonn authority
//! serve`, `cryptonn client encrypt`, and a trainer (this test binary run
//! again as a child, training through the library against the remote
//! authority). Then the authority killed with SIGKILL in the middle of
//! training and restarted: training resumes, and the budget and the audit
//! are what was committed. Projection mode and LeNet-5 run the same way,
//! each against an authority initialized with its policy.

#![allow(clippy::unwrap_used, clippy::panic)] // Unwraps and panics are allowed in tests.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use cryptonn::fe::Ristretto255;
use cryptonn::protocol::RemoteAuthority;
use cryptonn_mnist::config::{KeyPolicyKind, Mode, ModelKind, Privacy, TrainingConfig};
use cryptonn_mnist::mlp::MlpConfig;
use cryptonn_mnist::outputs::Outputs;
use cryptonn_mnist::parties::{Parties, RemoteParties};
use cryptonn_mnist::runner;

/// Set in the child that plays the trainer: `state|ciphertexts|url|report`.
const TRAINER_ENV: &str = "CRYPTONN_TEST_TRAINER";

fn cryptonn() -> Command {
    Command::new(env!("CARGO_BIN_EXE_cryptonn"))
}

fn scratch(name: &str) -> PathBuf {
    let dir = std::env::temp_dir().join(format!("cryptonn-3p-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&dir);
    std::fs::create_dir_all(&dir).unwrap();
    dir
}

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("data/mnist")
}

fn s(p: &Path) -> &str {
    p.to_str().unwrap()
}

fn run_ok(command: &mut Command) -> String {
    let out = command.output().unwrap();
    assert!(
        out.status.success(),
        "{:?}: {}",
        command,
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8_lossy(&out.stdout).into_owned()
}

/// `cryptonn authority serve` on `listen`; returns the process and its URL
/// (the first line it prints names it).
fn serve(state: &Path, listen: &str) -> (Child, String) {
    let mut child = cryptonn()
        .args([
            "authority",
            "serve",
            "--state",
            s(state),
            "--listen",
            listen,
        ])
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap();
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .split_whitespace()
        .find(|w| w.starts_with("https://"))
        .unwrap_or_else(|| panic!("no URL in {line:?}"))
        .to_owned();
    (child, url)
}

fn init(state: &Path, policy: &[&str]) {
    run_ok(
        cryptonn()
            .args(["authority", "init", "--state", s(state)])
            .args(policy),
    );
}

/// The MLP's and projection mode's client: 256 training images in batches
/// of 128, 128 test images.
const SIZES: [&str; 6] = [
    "--train-size",
    "256",
    "--batch-size",
    "128",
    "--secure-test-size",
    "128",
];

/// `cryptonn client encrypt` with `extra` flags (sizes, layout).
fn encrypt(state: &Path, url: &str, out: &Path, extra: &[&str]) {
    run_ok(
        cryptonn()
            .args([
                "client",
                "encrypt",
                "--authority",
                url,
                "--token-file",
                s(&state.join("tokens/client.token")),
                "--ca-cert",
                s(&state.join("cert.pem")),
                "--data-dir",
                s(&data_dir()),
                "--out",
                s(out),
            ])
            .args(extra),
    );
}

/// The trainer's configuration of each job: the paper's MLP, projection
/// mode with K = 16, LeNet-5 on 32 images under issue-all.
fn config(job: &str, epochs: usize) -> TrainingConfig {
    let mlp = TrainingConfig::new()
        .with_mode(Mode::Secure)
        .with_epochs(epochs)
        .with_train_size(256)
        .with_batch_size(128)
        .with_test_size(300)
        .with_secure_test_size(128)
        .with_col_cap(64)
        .with_model(MlpConfig::new().with_hidden(vec![16]));
    match job {
        "projection" => mlp
            .with_privacy(Privacy::Projection)
            .with_projection_dim(16),
        "lenet" => TrainingConfig::preset(ModelKind::Lenet)
            .with_policy(KeyPolicyKind::IssueAll)
            .with_mode(Mode::Secure)
            .with_epochs(epochs)
            .with_train_size(32)
            .with_batch_size(16)
            .with_test_size(100)
            .with_secure_test_size(16),
        _ => mlp,
    }
}

/// The trainer's process: this binary again, running only `trainer_process`.
fn spawn_trainer(
    state: &Path,
    ciphertexts: &Path,
    url: &str,
    report: &Path,
    (job, epochs): (&str, usize),
) -> Child {
    let spec = format!(
        "{}|{}|{url}|{}|{job}|{epochs}",
        s(state),
        s(ciphertexts),
        s(report)
    );
    Command::new(std::env::current_exe().unwrap())
        .args([
            "--exact",
            "trainer_process",
            "--nocapture",
            "--test-threads",
            "1",
        ])
        .env(TRAINER_ENV, spec)
        .stdout(Stdio::null())
        .spawn()
        .unwrap()
}

/// Not a test of its own: the trainer when run by `spawn_trainer`.
#[test]
fn trainer_process() {
    let Ok(spec) = std::env::var(TRAINER_ENV) else {
        return;
    };
    let parts: Vec<&str> = spec.split('|').collect();
    let [state, ciphertexts, url, report, job, epochs] = parts[..] else {
        panic!("bad trainer spec {spec}");
    };
    let state = Path::new(state);
    let outputs = Outputs {
        parties: Parties::Remote(RemoteParties {
            url: url.into(),
            token_file: state.join("tokens/server.token"),
            ca_cert: state.join("cert.pem"),
            ciphertexts: ciphertexts.into(),
        }),
        ..Outputs::default()
    };
    let config = config(job, epochs.parse().unwrap());
    let run = runner::run(&config, &data_dir(), &outputs).unwrap();
    std::fs::write(report, serde_json::to_string(&run).unwrap()).unwrap();
}

fn read_report(path: &Path) -> serde_json::Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

fn operator(state: &Path, url: &str) -> RemoteAuthority<Ristretto255> {
    RemoteAuthority::from_files(
        url,
        &state.join("tokens/operator.token"),
        &state.join("cert.pem"),
    )
    .unwrap()
    .with_retry_for(Duration::from_secs(10))
}

/// Every audit record, checking that sequence numbers run 1, 2, 3, … without gaps.
fn audit_len(operator: &RemoteAuthority<Ristretto255>) -> u64 {
    let mut after = 0;
    loop {
        let page = operator.audit(after, 10_000).unwrap();
        for entry in &page.records {
            assert_eq!(
                entry.seq,
                after + 1,
                "audit sequence has a gap or duplicate"
            );
            after = entry.seq;
        }
        if page.next.is_none() {
            return after;
        }
    }
}

#[test]
fn three_processes_train_end_to_end() {
    let dir = scratch("e2e");
    let state = dir.join("state");
    init(&state, &[]);
    let (mut authority, url) = serve(&state, "127.0.0.1:0");
    encrypt(&state, &url, &dir.join("ct"), &SIZES);
    let report_file = dir.join("report.json");
    let status = spawn_trainer(&state, &dir.join("ct"), &url, &report_file, ("mlp", 2))
        .wait()
        .unwrap();
    assert!(status.success());
    let report = read_report(&report_file);
    let secure = &report["secure"];
    assert!(secure["test_accuracy"].as_f64().unwrap() > 0.3, "{secure}");
    assert_eq!(secure["epochs"].as_array().unwrap().len(), 2);
    assert!(secure["secure_inference"]["images"].as_u64().unwrap() == 128);
    // Every key the trainer received was recorded by the authority.
    let issued = secure["keys_issued"].as_u64().unwrap();
    assert_eq!(audit_len(&operator(&state, &url)), issued);
    authority.kill().unwrap();
    authority.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

#[test]
fn authority_killed_mid_training_restarts_with_its_budget_and_audit() {
    let dir = scratch("kill");
    let state = dir.join("state");
    init(&state, &[]);
    let (mut authority, url) = serve(&state, "127.0.0.1:0");
    encrypt(&state, &url, &dir.join("ct"), &SIZES);
    let operator_before = operator(&state, &url);
    let report_file = dir.join("report.json");
    let mut trainer = spawn_trainer(&state, &dir.join("ct"), &url, &report_file, ("mlp", 3));
    // Kill the authority once training has asked for keys.
    let start = Instant::now();
    while audit_len(&operator_before) < 100 {
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "training never asked for keys"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
    authority.kill().unwrap(); // SIGKILL
    authority.wait().unwrap();
    std::thread::sleep(Duration::from_millis(300));
    let listen = url.trim_start_matches("https://").to_owned();
    let (mut authority, _) = serve(&state, &listen);
    assert!(
        trainer.wait().unwrap().success(),
        "the trainer did not ride out the restart"
    );
    let report = read_report(&report_file);
    let secure = &report["secure"];
    assert_eq!(secure["epochs"].as_array().unwrap().len(), 3);
    // The audit holds every key the trainer received, and at most the one
    // request whose answer the kill cut off (2 × 128 × 10 FEBO keys).
    let issued = secure["keys_issued"].as_u64().unwrap();
    let recorded = audit_len(&operator(&state, &url));
    assert!(
        recorded >= issued && recorded <= issued + 2560,
        "{recorded} vs {issued}"
    );
    // No budget above its cap after the restart.
    let meter = secure["budget"].as_array().unwrap().last().unwrap().clone();
    for side in ["rows", "cols"] {
        let b = &meter[side];
        assert!(
            b["rank"].as_u64().unwrap() <= b["limit"].as_u64().unwrap(),
            "{meter}"
        );
    }
    authority.kill().unwrap();
    authority.wait().unwrap();
    std::fs::remove_dir_all(&dir).unwrap();
}

/// A job trained for `epochs` by a separate trainer against a separately
/// started authority initialized with `policy`, from files a separate
/// client wrote with `layout`; returns the run's report and the authority's
/// audit records.
fn separate_processes(
    name: &str,
    policy: &[&str],
    layout: &[&str],
    (job, epochs): (&str, usize),
) -> (serde_json::Value, u64) {
    let dir = scratch(name);
    let state = dir.join("state");
    init(&state, policy);
    let (mut authority, url) = serve(&state, "127.0.0.1:0");
    encrypt(&state, &url, &dir.join("ct"), layout);
    let report_file = dir.join("report.json");
    let status = spawn_trainer(&state, &dir.join("ct"), &url, &report_file, (job, epochs))
        .wait()
        .unwrap();
    let audited = audit_len(&operator(&state, &url));
    authority.kill().unwrap();
    authority.wait().unwrap();
    assert!(status.success(), "the {job} trainer failed");
    let report = read_report(&report_file);
    std::fs::remove_dir_all(&dir).unwrap();
    (report, audited)
}

#[test]
fn projection_mode_trains_against_a_separate_authority() {
    let (report, audited) = separate_processes(
        "projection",
        &["--row-cap", "16", "--col-cap", "0"],
        &[&SIZES[..], &["--layout", "rows"]].concat(),
        ("projection", 20),
    );
    let secure = &report["secure"];
    // Decrypted once: 20 epochs of the head cost no key.
    assert_eq!(secure["epochs"].as_array().unwrap().len(), 20);
    assert_eq!(audited, secure["keys_issued"].as_u64().unwrap());
    assert!(secure["test_accuracy"].as_f64().unwrap() > 0.3, "{secure}");
    assert_eq!(secure["secure_inference"]["images"].as_u64().unwrap(), 128);
    assert_eq!(
        report["privacy"]["row_equations_per_image"].as_u64(),
        Some(16)
    );
}

#[test]
fn lenet_trains_against_a_separate_issue_all_authority() {
    let (report, audited) = separate_processes(
        "lenet",
        &["--policy", "issue-all"],
        &[
            "--layout",
            "images",
            "--train-size",
            "32",
            "--batch-size",
            "16",
            "--secure-test-size",
            "16",
        ],
        ("lenet", 1),
    );
    let secure = &report["secure"];
    // The audit records each vector asked for; a kernel's key answers every
    // position (576 keys) and an error vector's every tap.
    let issued = secure["keys_issued"].as_u64().unwrap();
    assert!(
        audited > 0 && audited < issued,
        "{audited} records, {issued} keys"
    );
    assert_eq!(secure["epochs"].as_array().unwrap().len(), 1);
    assert_eq!(
        secure["epochs"][0]["step_losses"].as_array().unwrap().len(),
        2
    );
    assert_eq!(secure["secure_inference"]["images"].as_u64().unwrap(), 16);
}
