//! One secure training step, measured: `cargo run --release --example step_bench -- --json`.
//!
//! Batch 256, 784 → 128 → 10, Ristretto255, all threads. Prints one JSON
//! object of medians; client encryption is excluded from the step.

#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::Arc;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::Parser;
use cryptonn::authority::{Authority, IssueAll};
use cryptonn::client::{Client, Samples};
use cryptonn::fe::bench::{median_seconds, print_results};
use cryptonn::fe::feip::{self, Decryptor};
use cryptonn::fe::{DlogConfig, DlogTable, Group, Ristretto255};
use cryptonn::nn::{EncryptedBatch, QuantizationConfig, SecureContext};
use cryptonn_mnist::mlp::MlpConfig;
use rand::rngs::StdRng;
use rand::{RngExt, SeedableRng};
use rayon::prelude::*;

/// Measures the secure training step against plaintext Burn and a naive decryption.
#[derive(Debug, Parser)]
struct Args {
    /// Print one JSON object instead of a table.
    #[arg(long)]
    json: bool,
    /// Repetitions of the secure step (the median is reported).
    #[arg(long, default_value_t = 3)]
    reps: usize,
    /// Signed bits per quantized weight (the main job's default, 8; the
    /// library's is 12).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=30))]
    weight_bits: u32,
    /// Signed bits per quantized back-propagated error (as --weight-bits).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u32).range(2..=30))]
    delta_bits: u32,
}

const BATCH: usize = 256;
const FEATURES: usize = 784;
const HIDDEN: usize = 128;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let args = Args::parse();
    let mut rng = StdRng::seed_from_u64(5);
    let pixels: Vec<i64> = (0..BATCH * FEATURES)
        .map(|_| rng.random_range(0..256))
        .collect();
    let labels: Vec<usize> = (0..BATCH).map(|_| rng.random_range(0..10)).collect();

    let authority = Arc::new(Authority::<Ristretto255>::new(IssueAll));
    let (batch, encrypt_batch, encrypt_image) = client(&authority, &pixels, &mut rng)?;

    let table = Arc::new(DlogTable::<Ristretto255>::new(DlogConfig::default())?);
    let decryptor = Decryptor::new(table.clone());
    let ctx = SecureContext::builder(authority.clone())
        .table(table.clone())
        .quantization(
            QuantizationConfig::new()
                .with_weight_bits(args.weight_bits)
                .with_delta_bits(args.delta_bits),
        )
        .build()?;

    let (secure_step, plain_step) = steps(&batch, &ctx, &pixels, &labels, args.reps)?;

    let Engine {
        forward,
        backward,
        naive_forward,
        naive_backward,
        sample,
    } = engine(&authority, &batch, &decryptor, &args, &mut rng)?;
    let naive_step = naive_forward * (BATCH * HIDDEN) as f64
        + naive_backward * (FEATURES * HIDDEN) as f64
        + plain_step;
    let (group_add, dlog) = primitives(&table, &mut rng);

    let batches_per_epoch = 60_000.0 / BATCH as f64;
    let results = [
        ("group_add_ns", group_add * 1e9),
        ("forward_per_output_us", forward * 1e6),
        ("backward_per_output_us", backward * 1e6),
        ("dlog_per_value_us", dlog * 1e6),
        ("secure_step_ms", secure_step * 1e3),
        ("secure_samples_per_s", BATCH as f64 / secure_step),
        ("plain_step_ms", plain_step * 1e3),
        ("naive_step_ms", naive_step * 1e3),
        ("encrypt_image_ms", encrypt_image * 1e3),
        ("epoch_projection_s", secure_step * batches_per_epoch),
        ("encrypt_projection_s", encrypt_batch * batches_per_epoch),
        ("threads", rayon::current_num_threads() as f64),
    ];
    print_results(&results, args.json);
    if !args.json {
        println!(
            "(naive_step_ms: one multi-exponentiation, ct₀ multiplication and discrete log per output, \
             timed on {sample} outputs per phase and scaled)"
        );
    }
    Ok(())
}

/// The server's median seconds per training step of the MLP, forward and
/// backward: secure on `batch`, and plain on `pixels`.
fn steps(
    batch: &EncryptedBatch<Ristretto255>,
    ctx: &SecureContext<Ristretto255>,
    pixels: &[i64],
    labels: &[usize],
    reps: usize,
) -> Result<(f64, f64), cryptonn::nn::Error> {
    let device = Device::ndarray().autodiff();
    device.seed(5);
    let model = MlpConfig::new()
        .with_hidden(vec![HIDDEN])
        .init(&device, true);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect(), [BATCH]),
        &device,
    );
    let ce = CrossEntropyLossConfig::new().init(&device);
    let secure_step = median_seconds(reps, || -> Result<(), cryptonn::nn::Error> {
        let loss = ce.forward(model.forward_encrypted(batch, ctx)?, targets.clone());
        ctx.backward(loss).map(drop)
    });
    let x = Tensor::<2>::from_data(
        TensorData::new(
            pixels.iter().map(|&p| p as f32 / 255.0).collect(),
            [BATCH, FEATURES],
        ),
        &device,
    );
    let plain_step = median_seconds(11, || {
        ce.forward(model.forward_plain(x.clone()), targets.clone())
            .backward()
    });
    Ok((secure_step, plain_step))
}

/// The client: one batch under fresh keys, rows and columns, and the
/// seconds it took (for the projection), then the median seconds of one
/// image's encryption on one thread.
fn client(
    authority: &Authority<Ristretto255>,
    pixels: &[i64],
    rng: &mut StdRng,
) -> Result<(EncryptedBatch<Ristretto255>, f64, f64), Box<dyn std::error::Error>> {
    let samples = Samples {
        inputs: pixels,
        features: FEATURES,
        input_scale: 255.0,
        labels: None,
    };
    let start = Instant::now();
    let keys = authority.batch_keys(FEATURES, BATCH, rng)?;
    let batch = Client::new(&keys)?.encrypt(&samples, 1, rng)?;
    let encrypt_batch = start.elapsed().as_secs_f64();
    let encryptor = feip::Encryptor::new(&keys.rows)?;
    let pool = rayon::ThreadPoolBuilder::new().num_threads(1).build()?;
    let encrypt_image =
        pool.install(|| median_seconds(11, || encryptor.encrypt(&pixels[..FEATURES], rng)));
    Ok((batch, encrypt_batch, encrypt_image))
}

/// Seconds per group addition and per discrete log (of values up to 2²⁴).
fn primitives(table: &DlogTable<Ristretto255>, rng: &mut StdRng) -> (f64, f64) {
    let g = Ristretto255::generator();
    let h = Ristretto255::double(&g);
    let group_add = median_seconds(11, || {
        (0..10_000).fold(g, |acc, _| Ristretto255::add(&acc, &h))
    }) / 10_000.0;
    let values: Vec<_> = (0..4096)
        .map(|_| Ristretto255::vartime_mul_small(&g, rng.random_range(-(1 << 24)..(1 << 24))))
        .collect();
    let dlog = median_seconds(3, || table.solve_batch(&values)) / values.len() as f64;
    (group_add, dlog)
}

/// Seconds per output of the engine's two shapes, and of a naive decryption.
struct Engine {
    forward: f64,
    backward: f64,
    naive_forward: f64,
    naive_backward: f64,
    /// Outputs the naive decryption was timed on, per phase.
    sample: usize,
}

/// The engine's two shapes on their own (random key vectors of the step's
/// widths), and a naive per-output decryption.
fn engine(
    authority: &Authority<Ristretto255>,
    batch: &cryptonn::nn::EncryptedBatch<Ristretto255>,
    decryptor: &Decryptor<Ristretto255>,
    args: &Args,
    rng: &mut StdRng,
) -> Result<Engine, Box<dyn std::error::Error>> {
    let ys = |n: usize, bits: u32, rng: &mut StdRng| {
        let max = (1i64 << (bits - 1)) - 1;
        (0..HIDDEN)
            .map(|_| (0..n).map(|_| rng.random_range(-max..=max)).collect())
            .collect::<Vec<Vec<i64>>>()
    };
    let forward_keys = authority_keys(
        authority,
        batch.row_key(),
        ys(FEATURES, args.weight_bits, rng),
    )?;
    let backward_keys =
        authority_keys(authority, batch.col_key(), ys(BATCH, args.delta_bits, rng))?;
    let cols = batch.cols();
    let forward = median_seconds(1, || decryptor.decrypt_batch(&forward_keys, batch.rows()))
        / (BATCH * HIDDEN) as f64;
    let backward = median_seconds(1, || decryptor.decrypt_batch(&backward_keys, &cols))
        / (FEATURES * HIDDEN) as f64;
    let sample = 64;
    let naive = |keys: &[feip::FunctionKey<Ristretto255>],
                 cts: &[feip::Ciphertext<Ristretto255>]| {
        // Parallel across outputs, as the engine is.
        median_seconds(1, || {
            cts[..sample]
                .par_iter()
                .map(|ct| decryptor.decrypt(&keys[0], ct))
                .collect::<Vec<_>>()
        }) / sample as f64
    };
    Ok(Engine {
        forward,
        backward,
        naive_forward: naive(&forward_keys, batch.rows()),
        naive_backward: naive(&backward_keys, &cols),
        sample,
    })
}

fn authority_keys<G: Group>(
    authority: &Authority<G>,
    instance: cryptonn::fe::KeyId,
    ys: Vec<Vec<i64>>,
) -> cryptonn::protocol::Result<Vec<feip::FunctionKey<G>>> {
    use cryptonn::protocol::KeyService;
    authority.feip_keys(instance, &ys)
}
