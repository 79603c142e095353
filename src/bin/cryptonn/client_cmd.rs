//! `cryptonn client …`: a data owner encrypting its images to disk.

use std::path::PathBuf;

use clap::{Args, Subcommand, ValueEnum};
use cryptonn::client::{Dataset, EncryptionJob, Layout, Split, batches, encrypt_to_dir};
use cryptonn::fe::{ForGroup, Group, GroupId};
use cryptonn::nn::QuantizationConfig;
use cryptonn::protocol::{PatchGeometry, RemoteAuthority};

/// What a client does.
#[derive(Debug, Subcommand)]
pub enum ClientCommand {
    /// Encrypt MNIST-style IDX images in batches under fresh public keys from
    /// the authority: OUT/train/ (with encrypted labels) and OUT/test/ (for
    /// secure inference), one binary file per batch (docs/FORMAT.md). An
    /// interrupted run resumes where it stopped.
    Encrypt(EncryptArgs),
}

/// The flags of `cryptonn client encrypt`.
#[derive(Debug, Args)]
pub struct EncryptArgs {
    /// The authority's base URL, e.g. https://127.0.0.1:8443.
    #[arg(long)]
    authority: String,
    /// A file holding a client token (e.g. STATE/tokens/client.token).
    #[arg(long)]
    token_file: PathBuf,
    /// The authority's certificate (STATE/cert.pem), the only one trusted.
    #[arg(long)]
    ca_cert: PathBuf,
    /// Directory with the four MNIST IDX files (gzipped or raw).
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Where to write the batch files (created if missing).
    #[arg(long)]
    out: PathBuf,
    /// Training images, from the start of the training set (60000 = all).
    #[arg(long, default_value_t = 6144)]
    train_size: usize,
    /// Images per batch; every batch gets its own master keys.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Seed of the batch compositions (the same as the trainer's --seed).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Test images to encrypt for secure inference, in whole batches (0: none).
    #[arg(long, default_value_t = 512)]
    secure_test_size: usize,
    /// Group of the authority: ristretto (default), modp2048 or modp3072.
    #[arg(long, value_enum, default_value = "ristretto255")]
    group: GroupId,
    /// What each file holds, for the trainer's first layer: batch (row-wise
    /// and column-wise ciphertexts: the paper's MLP), rows (row-wise only:
    /// projection mode, under an authority with --col-cap 0), images (each
    /// image whole and the batch once more: a secure convolution of
    /// --kernel/--stride/--padding, LeNet-5's by default, under an
    /// issue-all authority).
    #[arg(long, value_enum, default_value = "batch")]
    layout: LayoutArg,
    /// With --layout images: the square kernel's side.
    #[arg(long, default_value_t = 5)]
    kernel: usize,
    /// With --layout images: the stride.
    #[arg(long, default_value_t = 1)]
    stride: usize,
    /// With --layout images: the padding on each side.
    #[arg(long, default_value_t = 0)]
    padding: usize,
}

/// The layouts of `--layout`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
enum LayoutArg {
    /// Row-wise and column-wise ciphertexts.
    Batch,
    /// Row-wise ciphertexts only.
    Rows,
    /// Whole images for a secure convolution.
    Images,
}

impl EncryptArgs {
    /// The layout for images of `features` pixels (square, one channel for
    /// a convolution).
    fn layout(&self, features: usize) -> Result<Layout, String> {
        Ok(match self.layout {
            LayoutArg::Batch => Layout::Batch,
            LayoutArg::Rows => Layout::Rows,
            LayoutArg::Images => {
                let side = features.isqrt();
                if side * side != features {
                    return Err(format!(
                        "--layout images needs square images, not {features} pixels"
                    ));
                }
                let image = [1, side, side];
                let geometry = PatchGeometry::new(
                    image,
                    [self.kernel; 2],
                    [self.stride; 2],
                    [self.padding; 2],
                )
                .map_err(|e| e.to_string())?;
                Layout::Images(geometry)
            }
        })
    }
}

/// Runs a client command.
///
/// # Errors
/// A one-line message.
pub fn run(command: ClientCommand) -> Result<(), String> {
    let ClientCommand::Encrypt(args) = command;
    args.group.dispatch(Encrypt(&args))
}

/// `cryptonn client encrypt` for the group of its flags.
struct Encrypt<'a>(&'a EncryptArgs);

impl ForGroup for Encrypt<'_> {
    type Output = Result<(), String>;

    fn run<G: Group>(self) -> Self::Output {
        encrypt::<G>(self.0)
    }
}

/// MNIST's ten classes.
const CLASSES: usize = 10;

fn encrypt<G: Group>(args: &EncryptArgs) -> Result<(), String> {
    let train = Dataset::load(&args.data_dir, Split::Train, CLASSES)
        .map_err(|e| e.to_string())?
        .truncate(args.train_size);
    let test = Dataset::load(&args.data_dir, Split::Test, CLASSES).map_err(|e| e.to_string())?;
    let authority =
        RemoteAuthority::<G>::from_files(&args.authority, &args.token_file, &args.ca_cert)
            .map_err(|e| e.to_string())?;
    let batch_size = args.batch_size.max(1);
    let layout = args.layout(train.features)?;
    let train_batches = batches::shuffled(args.seed, train.len(), batch_size);
    let job = EncryptionJob {
        data: &train,
        batches: &train_batches,
        // The trainer's default quantization reads the labels back.
        labels: Some((CLASSES, QuantizationConfig::new().label_scale)),
        source: format!("{} training images, seed {}", args.train_size, args.seed),
        layout,
    };
    write(&authority, &job, &args.out.join("train"))?;
    let test_batches = batches::leading(args.secure_test_size.min(test.len()), batch_size);
    if !test_batches.is_empty() {
        let job = EncryptionJob {
            data: &test,
            batches: &test_batches,
            labels: None,
            source: "the first test images, in order".into(),
            layout,
        };
        write(&authority, &job, &args.out.join("test"))?;
    }
    Ok(())
}

/// Writes `job` into `dir` with a line per tenth of the work, then a summary.
fn write<G: Group>(
    authority: &RemoteAuthority<G>,
    job: &EncryptionJob<'_>,
    dir: &std::path::Path,
) -> Result<(), String> {
    let mut shown = 0;
    let (dir, stats) = encrypt_to_dir(authority, job, dir, &mut |done, total| {
        if done * 10 >= (shown + 1) * total {
            shown = done * 10 / total.max(1);
            println!("{}: {done}/{total} images encrypted", dir.display());
        }
    })
    .map_err(|e| e.to_string())?;
    println!(
        "{}: {} batches written, {} already complete, {:.1}s",
        dir.dir().display(),
        stats.written,
        stats.skipped,
        stats.seconds
    );
    Ok(())
}
