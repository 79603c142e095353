//! One secure training step, measured: `cargo run --release --example step_bench -- --json`.
//!
//! Batch 256, 784 → H → 10 (H = 128 unless `--hidden`), Ristretto255, all
//! threads, each decryption engine of `--engines` in the same run (default:
//! the lane engine, the signed one, and the four-Russians one they replaced,
//! for the ratios).
//! Prints one JSON object of medians; client encryption is excluded from the step.

#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::sync::Arc;
use std::time::Instant;

use burn::nn::loss::CrossEntropyLossConfig;
use burn::tensor::{Device, Int, Tensor, TensorData};
use clap::{Parser, ValueEnum};
use cryptonn::authority::{Authority, IssueAll};
use cryptonn::client::{Client, Samples};
use cryptonn::fe::bench::{median_seconds, print_results};
use cryptonn::fe::feip::{self, Decryptor};
use cryptonn::fe::multiexp::Engine;
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
    /// Hidden units H: the number of keys per step and phase.
    #[arg(long, default_value_t = 128)]
    hidden: usize,
    /// Decryption engines to measure, one after the other in this run.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "lanes,signed,four-russians"
    )]
    engines: Vec<Engine>,
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
    let (group_add, dlog) = primitives(&table, &mut rng);
    let keys = EngineKeys::draw(&authority, &batch, &args, group_add, &mut rng)?;
    let threads = rayon::current_num_threads() as f64;
    let floor = FEATURES as f64 * group_add;

    let mut results: Vec<(String, f64)> = vec![
        ("group_add_ns".into(), group_add * 1e9),
        ("forward_floor_us".into(), floor * 1e6),
        ("dlog_per_value_us".into(), dlog * 1e6),
    ];
    let mut runs = Vec::new();
    for &engine in &args.engines {
        let setup = Setup {
            authority: &authority,
            table: &table,
            batch: &batch,
            pixels: &pixels,
            labels: &labels,
            keys: &keys,
        };
        let (measured, secure_step, plain_step) = setup.measure(engine, &args)?;
        results.extend(measured);
        runs.push((engine, secure_step, plain_step));
    }
    if let Some(&(_, old, _)) = runs.iter().find(|r| r.0 == Engine::FourRussians) {
        for &(engine, step, _) in runs.iter().filter(|r| r.0 != Engine::FourRussians) {
            let name = engine_name(engine);
            results.push((format!("speedup_{name}_vs_four_russians"), old / step));
        }
    }
    if let Some(&(_, secure_step, plain_step)) = runs.first() {
        let decryptor = Decryptor::new(table.clone());
        let (naive_forward, naive_backward) = keys.time_naive(&batch, &decryptor);
        let naive_step = naive_forward * (BATCH * args.hidden) as f64
            + naive_backward * (FEATURES * args.hidden) as f64
            + plain_step;
        let batches_per_epoch = 60_000.0 / BATCH as f64;
        results.extend([
            ("plain_step_ms".into(), plain_step * 1e3),
            ("naive_step_ms".into(), naive_step * 1e3),
            ("encrypt_image_ms".into(), encrypt_image * 1e3),
            ("epoch_projection_s".into(), secure_step * batches_per_epoch),
            (
                "encrypt_projection_s".into(),
                encrypt_batch * batches_per_epoch,
            ),
        ]);
    }
    results.extend([
        ("hidden".into(), args.hidden as f64),
        ("threads".into(), threads),
    ]);
    let printable: Vec<(&str, f64)> = results.iter().map(|(k, v)| (k.as_str(), *v)).collect();
    print_results(&printable, args.json);
    if !args.json {
        println!(
            "(forward_vs_floor: per-thread time per forward output over {FEATURES} group additions; \
             naive_step_ms: one multi-exponentiation, ct₀ multiplication and discrete log per output, \
             timed on {NAIVE_SAMPLE} outputs per phase and scaled; epoch_projection_s: the first engine)"
        );
    }
    Ok(())
}

/// What every engine's measurement shares.
struct Setup<'a> {
    authority: &'a Arc<Authority<Ristretto255>>,
    table: &'a Arc<DlogTable<Ristretto255>>,
    batch: &'a EncryptedBatch<Ristretto255>,
    pixels: &'a [i64],
    labels: &'a [usize],
    keys: &'a EngineKeys,
}

/// An engine's results, secure step and plain step (seconds).
type Measured = (Vec<(String, f64)>, f64, f64);

impl Setup<'_> {
    /// One engine: the secure step through the Burn layer, and its two
    /// shapes on their own.
    fn measure(&self, engine: Engine, args: &Args) -> Result<Measured, Box<dyn std::error::Error>> {
        let ctx = SecureContext::builder(self.authority.clone())
            .table(self.table.clone())
            .engine(engine)
            .quantization(
                QuantizationConfig::new()
                    .with_weight_bits(args.weight_bits)
                    .with_delta_bits(args.delta_bits),
            )
            .build()?;
        let (secure_step, plain_step) = steps(self.batch, &ctx, self.pixels, self.labels, args)?;
        let decryptor = Decryptor::new(self.table.clone()).with_engine(engine);
        let (forward, backward) = self.keys.time(self.batch, &decryptor, args.hidden);
        let threads = rayon::current_num_threads() as f64;
        let floor = FEATURES as f64 * self.keys.group_add;
        let name = engine_name(engine);
        let results = vec![
            (format!("forward_per_output_us_{name}"), forward * 1e6),
            (
                format!("forward_vs_floor_{name}"),
                forward * threads / floor,
            ),
            (format!("backward_per_output_us_{name}"), backward * 1e6),
            (format!("secure_step_ms_{name}"), secure_step * 1e3),
            (
                format!("secure_samples_per_s_{name}"),
                BATCH as f64 / secure_step,
            ),
        ];
        Ok((results, secure_step, plain_step))
    }
}

/// An engine's name in the result keys: `signed`, `four_russians`.
fn engine_name(engine: Engine) -> String {
    engine
        .to_possible_value()
        .map_or_else(|| format!("{engine:?}"), |v| v.get_name().replace('-', "_"))
}

/// The server's median seconds per training step of the MLP, forward and
/// backward: secure on `batch`, and plain on `pixels`.
fn steps(
    batch: &EncryptedBatch<Ristretto255>,
    ctx: &SecureContext<Ristretto255>,
    pixels: &[i64],
    labels: &[usize],
    args: &Args,
) -> Result<(f64, f64), cryptonn::nn::Error> {
    let device = Device::ndarray().autodiff();
    device.seed(5);
    let model = MlpConfig::new()
        .with_hidden(vec![args.hidden])
        .init(&device, true);
    let targets = Tensor::<1, Int>::from_data(
        TensorData::new(labels.iter().map(|&l| l as i64).collect(), [BATCH]),
        &device,
    );
    let ce = CrossEntropyLossConfig::new().init(&device);
    let secure_step = median_seconds(args.reps, || -> Result<(), cryptonn::nn::Error> {
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

/// Outputs the naive decryption is timed on, per phase.
const NAIVE_SAMPLE: usize = 64;

/// Random key vectors of the step's two shapes (forward: H keys over the
/// 784 pixels; backward: H keys over the batch), issued by the authority.
struct EngineKeys {
    forward: Vec<feip::FunctionKey<Ristretto255>>,
    backward: Vec<feip::FunctionKey<Ristretto255>>,
    /// Seconds per dalek addition, for the forward floor.
    group_add: f64,
}

impl EngineKeys {
    fn draw(
        authority: &Authority<Ristretto255>,
        batch: &EncryptedBatch<Ristretto255>,
        args: &Args,
        group_add: f64,
        rng: &mut StdRng,
    ) -> Result<Self, Box<dyn std::error::Error>> {
        let mut ys = |n: usize, bits: u32| {
            let max = (1i64 << (bits - 1)) - 1;
            (0..args.hidden)
                .map(|_| (0..n).map(|_| rng.random_range(-max..=max)).collect())
                .collect::<Vec<Vec<i64>>>()
        };
        let forward = ys(FEATURES, args.weight_bits);
        let backward = ys(BATCH, args.delta_bits);
        Ok(Self {
            forward: authority_keys(authority, batch.row_key(), forward)?,
            backward: authority_keys(authority, batch.col_key(), backward)?,
            group_add,
        })
    }

    /// Seconds per output of `decryptor` on the two shapes.
    fn time(
        &self,
        batch: &EncryptedBatch<Ristretto255>,
        decryptor: &Decryptor<Ristretto255>,
        hidden: usize,
    ) -> (f64, f64) {
        let cols = batch.cols();
        let forward = median_seconds(1, || decryptor.decrypt_batch(&self.forward, batch.rows()))
            / (BATCH * hidden) as f64;
        let backward = median_seconds(1, || decryptor.decrypt_batch(&self.backward, &cols))
            / (FEATURES * hidden) as f64;
        (forward, backward)
    }

    /// Seconds per output of one multi-exponentiation per output, parallel
    /// across outputs as the engine is, on [`NAIVE_SAMPLE`] outputs.
    fn time_naive(
        &self,
        batch: &EncryptedBatch<Ristretto255>,
        decryptor: &Decryptor<Ristretto255>,
    ) -> (f64, f64) {
        let naive = |key: &feip::FunctionKey<Ristretto255>,
                     cts: &[feip::Ciphertext<Ristretto255>]| {
            median_seconds(1, || {
                cts[..NAIVE_SAMPLE]
                    .par_iter()
                    .map(|ct| decryptor.decrypt(key, ct))
                    .collect::<Vec<_>>()
            }) / NAIVE_SAMPLE as f64
        };
        (
            naive(&self.forward[0], batch.rows()),
            naive(&self.backward[0], &batch.cols()),
        )
    }
}

fn authority_keys<G: Group>(
    authority: &Authority<G>,
    instance: cryptonn::fe::KeyId,
    ys: Vec<Vec<i64>>,
) -> cryptonn::protocol::Result<Vec<feip::FunctionKey<G>>> {
    use cryptonn::protocol::KeyService;
    authority.feip_keys(instance, &ys)
}
