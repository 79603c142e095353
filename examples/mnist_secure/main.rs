//! The main job: secure training on MNIST with the three roles, next to a
//! plaintext baseline. `cargo run --release --example mnist_secure -- --help`

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Parser;
use cryptonn::fe::GroupId;
use cryptonn_mnist::config::{
    CpuBackend, KeyPolicyKind, LabelMode, LrSchedule, Mode, ModelKind, OptimizerKind, Privacy,
    TrainingConfig,
};
use cryptonn_mnist::mlp::MlpConfig;
use cryptonn_mnist::outputs::Outputs;
use cryptonn_mnist::parties::{Parties, RemoteParties};
use cryptonn_mnist::plot;
use cryptonn_mnist::runner;

/// Train an MLP on MNIST whose first layer only ever sees encrypted images
/// (CryptoNN with functional encryption), next to the same model trained in
/// the clear. Clients encrypt, a trusted authority issues function keys, the
/// server trains.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// secure: only the encrypted run; plain: only the plaintext baseline; both:
    /// the two side by side, with the same initial weights, seed and data order.
    #[arg(long, value_enum, default_value = "both")]
    mode: Mode,
    /// mlp: the MLP whose first layer is secure (--hidden); lenet: the
    /// paper's LeNet-5 with its first convolution secure, which gives the
    /// server 3,456 equations per 784-pixel image and so needs --policy
    /// issue-all; its own defaults (4096 images, batch 32, 1 epoch) finish
    /// in about 8 minutes on 2 idle cores. Labels are sent in the clear.
    #[arg(long, value_enum, default_value = "mlp")]
    model: ModelKind,
    /// budget: the authority enforces the per-image rank budget (--row-cap,
    /// --col-cap, or projection mode's K); issue-all: the paper's policy,
    /// every key issued and no privacy at all, accepted only with --model
    /// lenet.
    #[arg(long, value_enum, default_value = "budget")]
    policy: KeyPolicyKind,
    /// Group of the FE schemes: ristretto (Ristretto255, 128-bit, fast) or
    /// modp2048 (RFC 3526 group 14, the paper's kind of group, slow).
    #[arg(long, value_enum, default_value = "ristretto255")]
    group: GroupId,
    /// Passes over the training images. Each pass uses more of every master
    /// key's rank budget (see docs/THREAT_MODEL.md). Default 2 (mlp), 1 (lenet).
    #[arg(long)]
    epochs: Option<usize>,
    /// Training images used, from the start of the training set (60000 =
    /// all). Default 6144 (mlp), 4096 (lenet: each image costs the server
    /// 3,456 decryptions per pass, about 0.15 s on 2 cores).
    #[arg(long)]
    train_size: Option<usize>,
    /// Test images for the accuracy, from the start of the test set (10000 = all).
    #[arg(long, default_value_t = 10000)]
    test_size: usize,
    /// Images per batch. Every batch gets its own row-wise and column-wise
    /// master key; keep it well above the first hidden width, or the weight
    /// gradient alone reveals the batch's images to the server. Default 256
    /// (mlp), 32 (lenet: encryption and decryption cost per image, so
    /// smaller batches give more optimizer steps at the same cost).
    #[arg(long)]
    batch_size: Option<usize>,
    /// Hidden widths, comma-separated, e.g. 64 or 128,32. The first hidden
    /// layer is the secure one.
    #[arg(long, value_delimiter = ',', default_value = "64")]
    hidden: Vec<usize>,
    /// Learning rate (the first step's, with a cosine schedule). Default
    /// 0.01 (mlp), 0.007 (lenet: at 0.01 a 0.1% change of the rate moves its
    /// plain accuracy by up to 2 points on some seeds, more than the secure
    /// run's rounding, so the two cannot be compared).
    #[arg(long)]
    lr: Option<f64>,
    /// Optimizer of every layer.
    #[arg(long, value_enum, default_value = "adam")]
    optimizer: OptimizerKind,
    /// constant: --lr at every step; cosine: from --lr down to 0 over the
    /// run's steps. Default constant (mlp), cosine (lenet: at a constant
    /// rate its last steps move the test accuracy by a point or more).
    #[arg(long, value_enum)]
    lr_schedule: Option<LrSchedule>,
    /// Seed of the initial weights, data order, keys and encryption randomness.
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Burn's CPU backend for the layers (decryption runs on the CPU either
    /// way): ndarray (Burn deprecates it) or flex (Burn's default CPU
    /// backend). See docs/PERFORMANCE.md for both measured.
    #[arg(long, value_enum)]
    device: Option<CpuBackend>,
    /// encrypted: FEBO-encrypted one-hot labels (the paper's protocol; the
    /// server still learns them through ŷ − y); plain: labels in the clear.
    #[arg(long, value_enum, default_value = "encrypted")]
    labels: LabelMode,
    /// Encrypted test images classified by secure inference after training.
    #[arg(long, default_value_t = 512)]
    secure_test_size: usize,
    /// cryptonn: the paper's protocol (a secure first layer trained with
    /// function keys for W and δ every step; the equations on each image grow
    /// with training, up to the caps); projection: a fixed public projection
    /// decrypted once per image (K equations for life, no gradient keys),
    /// the rest trained in the clear. See docs/THREAT_MODEL.md.
    #[arg(long, value_enum, default_value = "cryptonn")]
    privacy: Privacy,
    /// Projection mode: K, the projection's outputs and the equations each
    /// image reveals for life.
    #[arg(long, default_value_t = 64)]
    projection_dim: usize,
    /// Paper's mode: the most independent equations the authority lets the
    /// server hold on each image (row keys per master key). 128 = two epochs
    /// of a 64-wide layer.
    #[arg(long, default_value_t = 128)]
    row_cap: usize,
    /// Paper's mode: the most independent weight-gradient equations per pixel
    /// mixing a batch's images (column keys per master key); 0 refuses them all.
    #[arg(long, default_value_t = 128)]
    col_cap: usize,
    /// Signed bits per quantized weight in a key vector (2–30): fewer bits,
    /// fewer group additions per decryption and a coarser forward pass.
    /// Default 8 (mlp: as accurate as 12 on the defaults, 90.76% vs 90.87%,
    /// and 1.2× faster), 12 (lenet: 8 bits move the kernel up to 8.9e-2 from
    /// Burn's after 3 Adam steps, 12 bits under 1e-4).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=30))]
    weight_bits: Option<u32>,
    /// Signed bits per quantized back-propagated error in a key vector
    /// (2–30). Default 8 (mlp), 12 (lenet).
    #[arg(long, value_parser = clap::value_parser!(u32).range(2..=30))]
    delta_bits: Option<u32>,
    /// Do not centre the MLP's inputs on the public mean image (the test
    /// images' mean, no labels). Centring changes no key or ciphertext: the
    /// server subtracts Wμ from what it decrypts. Without it, dense images
    /// kill most ReLUs under Adam and the secure run falls behind the plain one.
    #[arg(long)]
    no_center: bool,
    /// Decoded batches the trainer keeps between epochs, in MiB (about 64 MiB
    /// per 256 images); the others are read from disk and decoded (about a
    /// second each on 2 cores) every epoch.
    #[arg(long, default_value_t = 1024)]
    batch_cache_mib: usize,
    /// Worker threads for encryption and decryption (default: all cores).
    #[arg(long)]
    threads: Option<usize>,
    /// Directory with the four MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Write the JSON report here, and a PNG of the loss and accuracy curves
    /// next to it (same name, .png).
    #[arg(long)]
    report: Option<PathBuf>,
    /// Save the secure model's weights here (Burn burnpack format), also when
    /// the rank budget stops training early.
    #[arg(long, default_value = "target/mnist_secure/secure_model.bpk")]
    save_model: PathBuf,
    /// Write the authority's record of every function key it issued to this
    /// file (JSON lines: requester, time, SHA-256 of the key vector, rank
    /// after issue). About 250 bytes per key, so off unless asked for.
    #[arg(long)]
    audit_log: Option<PathBuf>,
    /// Where burn-train's Learner, which runs every run's epochs, writes its
    /// metric logs and checkpoints (model, optimizer and schedule of the last
    /// two epochs and of the best by validation loss): DIR/plain and
    /// DIR/secure. Off by default: the metrics stay in
    /// memory and only the report is written.
    #[arg(long)]
    learner_dir: Option<PathBuf>,
    /// The paper's mode without --authority: where the embedded authority
    /// keeps its state and the client step writes its batch files (emptied
    /// first).
    #[arg(long, default_value = "target/mnist_secure/run")]
    work_dir: PathBuf,
    /// Train against an authority already serving at this URL (`cryptonn
    /// authority serve`) instead of starting one in this process. Needs
    /// --token-file, --ca-cert and --ciphertexts.
    #[arg(long, requires_all = ["token_file", "ca_cert", "ciphertexts"])]
    authority: Option<String>,
    /// With --authority: a file holding a server token.
    #[arg(long, requires = "authority")]
    token_file: Option<PathBuf>,
    /// With --authority: the authority's certificate (its cert.pem).
    #[arg(long, requires = "authority")]
    ca_cert: Option<PathBuf>,
    /// With --authority: the directory `cryptonn client encrypt --out` wrote.
    #[arg(long, requires = "authority")]
    ciphertexts: Option<PathBuf>,
}

/// The embedded parties, or the remote ones the flags name.
fn parties(args: &mut Args) -> Parties {
    match (
        args.authority.take(),
        args.token_file.take(),
        args.ca_cert.take(),
        args.ciphertexts.take(),
    ) {
        (Some(url), Some(token_file), Some(ca_cert), Some(ciphertexts)) => {
            Parties::Remote(RemoteParties {
                url,
                token_file,
                ca_cert,
                ciphertexts,
            })
        }
        _ => Parties::Embedded {
            work_dir: args.work_dir.clone(),
            keep: true,
        },
    }
}

/// The model's preset (`TrainingConfig::preset`) with the flags given.
fn configure(args: &Args) -> TrainingConfig {
    let preset = TrainingConfig::preset(args.model);
    let q = preset.quantization;
    TrainingConfig {
        mode: args.mode,
        policy: args.policy,
        group: args.group,
        epochs: args.epochs.unwrap_or(preset.epochs),
        train_size: args.train_size.unwrap_or(preset.train_size),
        test_size: args.test_size,
        batch_size: args.batch_size.unwrap_or(preset.batch_size),
        model: MlpConfig::new().with_hidden(args.hidden.clone()),
        lr: args.lr.unwrap_or(preset.lr),
        optimizer: args.optimizer,
        lr_schedule: args.lr_schedule.unwrap_or(preset.lr_schedule),
        seed: args.seed,
        backend: args.device.unwrap_or(preset.backend),
        labels: args.labels,
        secure_test_size: args.secure_test_size,
        privacy: args.privacy,
        projection_dim: args.projection_dim,
        row_cap: args.row_cap,
        col_cap: args.col_cap,
        batch_cache_mib: args.batch_cache_mib,
        center_inputs: !args.no_center,
        quantization: q
            .with_weight_bits(args.weight_bits.unwrap_or(q.weight_bits))
            .with_delta_bits(args.delta_bits.unwrap_or(q.delta_bits)),
        ..preset
    }
}

fn main() -> ExitCode {
    let mut args = Args::parse();
    let parties = parties(&mut args);
    let pool = args.threads.map(|threads| {
        rayon::ThreadPoolBuilder::new()
            .num_threads(threads)
            .build_global()
    });
    if let Some(Err(e)) = pool {
        eprintln!("error: cannot start the worker threads: {e}");
        return ExitCode::FAILURE;
    }
    let config = configure(&args);
    let outputs = Outputs {
        model: matches!(args.mode, Mode::Secure | Mode::Both).then_some(args.save_model),
        audit_log: args.audit_log,
        parties,
        learner_dir: args.learner_dir,
    };
    let report = match runner::run(&config, &args.data_dir, &outputs) {
        Ok(report) => report,
        Err(e) => {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report.summary());
    if let Some(path) = args.report {
        let json = serde_json::to_string_pretty(&report).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, json) {
            eprintln!("error: {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
        println!("report written to {}", path.display());
        let png = path.with_extension("png");
        if let Err(e) = plot::write_curves(&report, &png) {
            eprintln!("error: {e}");
            return ExitCode::FAILURE;
        }
        println!("curves drawn in {}", png.display());
    }
    ExitCode::SUCCESS
}
