//! The leakage audit: plays the curious server against one encrypted MNIST
//! batch, with the paper's key policy (every key issued) and with the rank
//! budget, and measures what it recovers.
//! `cargo run --release --example leakage_audit -- --json`
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

mod attack;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use attack::{Equations, Quality};
use burn::nn::loss::CrossEntropyLossConfig;
use burn::optim::{AdamConfig, GradientsParams};
use burn::tensor::{Device, Tensor};
use clap::Parser;
use cryptonn::fe::feip::{Decryptor, FunctionKey};
use cryptonn::fe::{DlogConfig, DlogTable, Group, Ristretto255};
use cryptonn::mnist::data::{Dataset, Split};
use cryptonn::mnist::model::{Mlp, MlpConfig};
use cryptonn::mnist::training::{TrainingConfig, device};
use cryptonn::nn::quantize::quantize_columns;
use cryptonn::nn::{
    Authority, Client, Error, FirstLayer, KeyService, QuantizationConfig, RankBudget, Samples,
};
use rand::SeedableRng;
use rand::rngs::StdRng;
use rand::seq::SliceRandom;
use serde::Serialize;

/// Play the curious server: train the main job's model, hand the server
/// exactly the keys and ciphertexts it would hold for one batch, and measure
/// how much of the batch's images it recovers, with the key policy off (the
/// paper: every key issued) and on (the per-master-key rank budget).
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Training images (the first ones of the training set), in fixed batches.
    #[arg(long, default_value_t = 1024)]
    train_size: usize,
    /// Images per batch; the audited batch is the first.
    #[arg(long, default_value_t = 256)]
    batch_size: usize,
    /// Width of the secure first layer (one hidden layer).
    #[arg(long, default_value_t = 64)]
    hidden: usize,
    /// Epochs the server trains for when no policy stops it; the default,
    /// 14, is enough for H = 64 keys per epoch to reach rank 784.
    #[arg(long, default_value_t = 14)]
    epochs: usize,
    /// The rank budget's margin (as `mnist_secure --key-margin`).
    #[arg(long, default_value_t = 128)]
    key_margin: usize,
    /// Batch size of the weight-gradient attack, which needs hidden ≥ batch.
    #[arg(long, default_value_t = 32)]
    small_batch: usize,
    /// Iterations of the box-constrained least-squares reconstruction.
    #[arg(long, default_value_t = 150)]
    iterations: usize,
    /// Adam learning rate.
    #[arg(long, default_value_t = 1e-2)]
    lr: f64,
    /// Seed of weights, batches and keys.
    #[arg(long, default_value_t = 7)]
    seed: u64,
    /// Draw the first 8 images of the batch and their reconstructions under
    /// the key policy here (PNG).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Directory with the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
}

/// The key vectors the server asks for in one step on the audited batch.
struct StepKeys {
    /// Quantized columns of W (length n), for the forward pass.
    weights: Vec<Vec<i64>>,
    /// Quantized columns of δ₁ (length B) dense enough to be requested.
    deltas: Vec<Vec<i64>>,
}

/// What the server recovers with one master key's keys.
#[derive(Debug, Default, Serialize)]
struct MasterKeyRecovery {
    /// Whether the issued keys reached full rank and gave s (checked against the public key).
    recovered: bool,
    /// The epoch after which they did.
    after_epoch: Option<usize>,
    /// Largest error of the images then decrypted in full.
    max_pixel_error: Option<f64>,
}

/// One reconstruction checkpoint.
#[derive(Debug, Serialize)]
struct Reconstruction {
    /// What the server had seen.
    after: String,
    /// Forward equations per image (keys under the row-wise master key).
    forward_equations: usize,
    /// Gradient equations per pixel (keys under the column-wise master key).
    gradient_equations: usize,
    /// How it was computed: "master key" (exact) or "least squares".
    method: &'static str,
    /// The result.
    quality: Quality,
    /// The reconstructed pixels, for the PNG.
    #[serde(skip)]
    pixels: Vec<f64>,
}

/// The weight-gradient attack (leak 2) on a batch narrower than the layer.
#[derive(Debug, Serialize)]
struct GradientLeak {
    /// Batch size.
    batch: usize,
    /// First-layer width.
    hidden: usize,
    /// The authority's refusal, if any.
    refused: Option<String>,
    /// Largest pixel error of Xᵀ = (Xᵀδ)·δ⁺ solved exactly, if not refused.
    max_pixel_error: Option<f64>,
}

/// The audit of one key policy.
#[derive(Debug, Serialize)]
struct PolicyAudit {
    /// "off" or "on".
    policy: &'static str,
    /// In words.
    description: String,
    /// Epochs whose keys were issued for the audited batch.
    epochs_served: usize,
    /// Why training stopped before the requested epochs, if it did.
    stopped: Option<String>,
    /// Rank of the issued keys after each epoch: [row-wise, column-wise].
    ranks: Vec<[usize; 2]>,
    /// Leak 1 on the row-wise master key (dimension n).
    row_master_key: MasterKeyRecovery,
    /// Leak 1 on the column-wise master key (dimension B).
    column_master_key: MasterKeyRecovery,
    /// Leak 2.
    gradient_leak: GradientLeak,
    /// Leaks 3 and 4: reconstructions from the decrypted inner products.
    reconstructions: Vec<Reconstruction>,
}

/// The whole audit.
#[derive(Debug, Serialize)]
struct Audit {
    group: &'static str,
    features: usize,
    batch_size: usize,
    hidden: usize,
    train_size: usize,
    epochs: usize,
    key_margin: usize,
    quantization_bits: u32,
    /// The all-black guess, for scale: MNIST is mostly background.
    baseline_black_image: Quality,
    policies: Vec<PolicyAudit>,
    seconds: f64,
}

fn main() -> ExitCode {
    let args = Args::parse();
    match run(&args) {
        Ok(audit) => {
            if args.json {
                println!(
                    "{}",
                    serde_json::to_string_pretty(&audit).unwrap_or_default()
                );
            } else {
                print!("{}", summary(&audit));
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

type AuditResult<T> = Result<T, Box<dyn std::error::Error>>;

fn run(args: &Args) -> AuditResult<Audit> {
    let start = Instant::now();
    if args.batch_size == 0 || args.hidden == 0 || args.epochs == 0 || args.small_batch == 0 {
        return Err("batch size, hidden width, epochs and small batch must be positive".into());
    }
    let data = Dataset::load(&args.data_dir, Split::Train, 10)?.truncate(args.train_size);
    if data.len() < args.batch_size.max(args.small_batch) {
        return Err(format!("{} images make no batch of {}", data.len(), args.batch_size).into());
    }
    let n = data.features;
    // The main job's quantization: what its server would ask keys for.
    let q = TrainingConfig::new().quantization;
    let batches: Vec<Vec<usize>> = (0..data.len())
        .collect::<Vec<_>>()
        .chunks_exact(args.batch_size)
        .map(<[usize]>::to_vec)
        .collect();
    let target = &batches[0];
    let truth = data.pixels(target);
    eprintln!(
        "training {} epochs in plaintext to get the weights and errors of every step…",
        args.epochs
    );
    let trace = train_trace(args, &data, &batches, &q)?;
    let table = Arc::new(DlogTable::<Ristretto255>::new(DlogConfig::default())?);

    let small = small_batch_deltas(args, &data, &q)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    let mut policies = Vec::new();
    for on in [false, true] {
        eprintln!(
            "policy {}: the curious server at work…",
            if on { "on" } else { "off" }
        );
        let policy = key_policy(on, args.key_margin, &mut rng);
        policies.push(audit_policy(
            args, on, policy, &data, target, &truth, &trace, &small, &table, &mut rng,
        )?);
    }
    if let Some(path) = &args.png {
        let mut rows = vec![(
            "the batch".to_string(),
            truth.iter().map(|&v| v as f64).collect::<Vec<_>>(),
        )];
        if let Some(on) = policies.iter().find(|p| p.policy == "on") {
            rows.extend(on.reconstructions.iter().map(|r| {
                (
                    format!("{}: {:.1} dB", r.after, r.quality.mean_psnr_db),
                    r.pixels.clone(),
                )
            }));
        }
        cryptonn::mnist::plot::write_image_rows(path, &rows, 8, 28)?;
    }
    let black = vec![0.0; truth.len()];
    Ok(Audit {
        group: "ristretto255",
        features: n,
        batch_size: args.batch_size,
        hidden: args.hidden,
        train_size: data.len(),
        epochs: args.epochs,
        key_margin: args.key_margin,
        quantization_bits: q.weight_bits,
        baseline_black_image: attack::quality(&black, &truth, n),
        policies,
        seconds: start.elapsed().as_secs_f64(),
    })
}

/// The main job's rank budget (on), or a budget of margin 0 without the
/// degenerate filter (off): every key is issued, as in the paper, and the
/// budget only measures the rank.
fn key_policy(on: bool, margin: usize, rng: &mut StdRng) -> RankBudget {
    if on {
        RankBudget::new(
            margin,
            TrainingConfig::new().quantization.min_key_support,
            1.0,
            rng,
        )
    } else {
        RankBudget::new(0, 0, 1.0, rng)
    }
}

fn read(t: Tensor<2>) -> AuditResult<Vec<f32>> {
    Ok(t.into_data()
        .to_vec::<f32>()
        .map_err(|e| format!("{e:?}"))?)
}

/// One training step in the clear: δ₁ = ∂loss/∂z₁ comes from a zero probe
/// added to z₁. Returns (W before the step, δ₁, gradients).
fn step(
    model: &Mlp,
    data: &Dataset,
    indices: &[usize],
    device: &Device,
) -> AuditResult<(Vec<f32>, Vec<f32>, burn::tensor::Gradients)> {
    let FirstLayer::Plain(first) = &model.first else {
        return Err("the audit trains a plain first layer".into());
    };
    let x = data.inputs(indices, device);
    let y = data.targets(indices, device);
    let hidden = first.weight.dims()[1];
    let probe = Tensor::<2>::zeros([indices.len(), hidden], device).require_grad();
    let logits = model.head(first.forward(x) + probe.clone());
    let loss = CrossEntropyLossConfig::new()
        .init(device)
        .forward(logits, y);
    let grads = loss.backward();
    let delta = probe.grad(&grads).ok_or("no gradient reached the probe")?;
    Ok((read(first.weight.val())?, read(delta)?, grads))
}

/// The keys the secure layer would request for W and δ.
fn step_keys(
    w: &[f32],
    delta: &[f32],
    n: usize,
    batch: usize,
    hidden: usize,
    q: &QuantizationConfig,
) -> AuditResult<StepKeys> {
    let weights = quantize_columns(w, n, hidden, q.weight_bits, q.limbs)?.vectors;
    let deltas = quantize_columns(delta, batch, hidden, q.delta_bits, q.limbs)?
        .vectors
        .into_iter()
        .filter(|d| d.iter().filter(|&&v| v != 0).count() >= q.min_key_support)
        .collect();
    Ok(StepKeys { weights, deltas })
}

/// Trains in plaintext (Adam, fixed batches, shuffled batch order) and keeps
/// the audited batch's key vectors of every epoch.
fn train_trace(
    args: &Args,
    data: &Dataset,
    batches: &[Vec<usize>],
    q: &QuantizationConfig,
) -> AuditResult<Vec<StepKeys>> {
    let device = device(args.seed);
    let mut model = MlpConfig::new()
        .with_hidden(vec![args.hidden])
        .init(&device, false);
    let mut optim = AdamConfig::new().init();
    let mut trace = Vec::new();
    for epoch in 0..args.epochs {
        let mut order: Vec<usize> = (0..batches.len()).collect();
        order.shuffle(&mut StdRng::seed_from_u64(args.seed + 1 + epoch as u64));
        for b in order {
            let (w, delta, grads) = step(&model, data, &batches[b], &device)?;
            if b == 0 {
                trace.push(step_keys(
                    &w,
                    &delta,
                    data.features,
                    args.batch_size,
                    args.hidden,
                    q,
                )?);
            }
            model = optim.step(
                args.lr,
                model.clone(),
                GradientsParams::from_grads(grads, &model),
            );
        }
    }
    Ok(trace)
}

/// δ₁ of the first step on a batch of `small_batch` images.
fn small_batch_deltas(
    args: &Args,
    data: &Dataset,
    q: &QuantizationConfig,
) -> AuditResult<Vec<Vec<i64>>> {
    let device = device(args.seed);
    let model = MlpConfig::new()
        .with_hidden(vec![args.hidden])
        .init(&device, false);
    let indices: Vec<usize> = (0..args.small_batch).collect();
    let (w, delta, _) = step(&model, data, &indices, &device)?;
    Ok(step_keys(&w, &delta, data.features, args.small_batch, args.hidden, q)?.deltas)
}

/// Leak 2: a batch narrower than the layer, recovered from one weight gradient.
fn gradient_leak(
    args: &Args,
    policy: RankBudget,
    data: &Dataset,
    deltas: &[Vec<i64>],
    decryptor: &Decryptor<Ristretto255>,
    rng: &mut StdRng,
) -> AuditResult<GradientLeak> {
    let indices: Vec<usize> = (0..args.small_batch).collect();
    let truth = data.pixels(&indices);
    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let keys = authority.batch_keys(data.features, args.small_batch, rng)?;
    let batch = encrypt(&keys, &truth, data.features, rng)?;
    let mut leak = GradientLeak {
        batch: args.small_batch,
        hidden: args.hidden,
        refused: None,
        max_pixel_error: None,
    };
    let fkeys = match authority
        .requester("curious-server")
        .feip_keys(batch.col_key(), deltas)
    {
        Err(Error::KeyRefused(why)) => {
            leak.refused = Some(why);
            return Ok(leak);
        }
        other => other?,
    };
    let grad = decryptor.decrypt_batch(&fkeys, &batch.cols())?; // [feature][key]
    let k = fkeys.len();
    // Σ_b δⱼ[b]·X[b, i] = grad[i][j]: one system, a right-hand side per pixel.
    let rows = deltas
        .iter()
        .enumerate()
        .map(|(j, d)| {
            d.iter()
                .copied()
                .chain((0..data.features).map(|i| grad[i * k + j]))
                .map(Ristretto255::scalar_from_i64)
                .collect()
        })
        .collect();
    if let Some(solution) = attack::solve_mod_q(rows, args.small_batch) {
        let guess: Vec<f64> = solution
            .iter()
            .flatten()
            .map(|s| attack::small(s).map_or(f64::NAN, |v| v as f64))
            .collect();
        leak.max_pixel_error = Some(attack::quality(&guess, &truth, data.features).max_pixel_error);
    }
    Ok(leak)
}

fn encrypt(
    keys: &cryptonn::nn::BatchPublicKeys<Ristretto255>,
    pixels: &[i64],
    features: usize,
    rng: &mut StdRng,
) -> AuditResult<cryptonn::nn::EncryptedBatch<Ristretto255>> {
    let samples = Samples {
        inputs: pixels,
        features,
        input_scale: 255.0,
        labels: None,
    };
    Ok(Client::new(keys)?.encrypt(&samples, 1, rng)?)
}

/// Rank-deficient keys give least squares; full rank gives the master key.
#[allow(clippy::too_many_arguments)]
fn audit_policy(
    args: &Args,
    on: bool,
    policy: RankBudget,
    data: &Dataset,
    target: &[usize],
    truth: &[i64],
    trace: &[StepKeys],
    small_deltas: &[Vec<i64>],
    table: &Arc<DlogTable<Ristretto255>>,
    rng: &mut StdRng,
) -> AuditResult<PolicyAudit> {
    let n = data.features;
    let b = target.len();
    let decryptor = Decryptor::new(table.clone());
    let leak2_policy = key_policy(on, args.key_margin, rng);
    let gradient_leak = gradient_leak(args, leak2_policy, data, small_deltas, &decryptor, rng)?;

    let authority = Arc::new(Authority::<Ristretto255>::new(policy));
    let keys = authority.batch_keys(n, b, rng)?;
    let batch = encrypt(&keys, truth, n, rng)?;
    let server = authority.requester("curious-server");
    let mut audit = PolicyAudit {
        policy: if on { "on" } else { "off" },
        description: if on {
            format!(
                "rank budget: dimension − {} per master key, vectors with < {} non-zero entries refused",
                args.key_margin,
                TrainingConfig::new().quantization.min_key_support
            )
        } else {
            "every key issued (the paper)".into()
        },
        epochs_served: 0,
        stopped: None,
        ranks: Vec::new(),
        row_master_key: MasterKeyRecovery::default(),
        column_master_key: MasterKeyRecovery::default(),
        gradient_leak,
        reconstructions: Vec::new(),
    };
    let mut eqs = Equations::default();
    let mut row_keys: Vec<FunctionKey<Ristretto255>> = Vec::new();
    let mut col_keys: Vec<FunctionKey<Ristretto255>> = Vec::new();
    let mut exact: Option<Vec<f64>> = None;
    let checkpoints = [1, 2, 4, 8, args.epochs];
    for (e, keys_of_step) in trace.iter().enumerate() {
        let epoch = e + 1;
        // The trainer checks the meter before an epoch and stops cleanly
        // rather than be refused halfway (see mnist_secure).
        let fits = |id, need: usize| server.budget(id).is_none_or(|bud| bud.can_serve(need));
        if !fits(batch.row_key(), keys_of_step.weights.len())
            || !fits(batch.col_key(), keys_of_step.deltas.len())
        {
            audit.stopped = Some(format!(
                "rank budget spent before epoch {epoch}: training stops"
            ));
            break;
        }
        let fkeys = server.feip_keys(batch.row_key(), &keys_of_step.weights)?;
        let z = decryptor.decrypt_batch(&fkeys, batch.rows())?; // [sample][key]
        let k = fkeys.len();
        for (j, y) in keys_of_step.weights.iter().enumerate() {
            eqs.forward
                .push((y.clone(), (0..b).map(|s| z[s * k + j]).collect()));
        }
        row_keys.extend(fkeys);
        if epoch == 1 {
            let forward_only = Equations {
                forward: eqs.forward.clone(),
                gradient: Vec::new(),
            };
            audit.reconstructions.push(least_squares(
                args,
                "step 1, forward pass only",
                &forward_only,
                b,
                n,
                truth,
            ));
        }
        let gkeys = server.feip_keys(batch.col_key(), &keys_of_step.deltas)?;
        let g = decryptor.decrypt_batch(&gkeys, &batch.cols())?; // [feature][key]
        let k = gkeys.len();
        for (j, d) in keys_of_step.deltas.iter().enumerate() {
            eqs.gradient
                .push((d.clone(), (0..n).map(|i| g[i * k + j]).collect()));
        }
        col_keys.extend(gkeys);
        if epoch == 1 {
            let gradient_only = Equations {
                forward: Vec::new(),
                gradient: eqs.gradient.clone(),
            };
            audit.reconstructions.push(least_squares(
                args,
                "step 1, weight gradient only",
                &gradient_only,
                b,
                n,
                truth,
            ));
        }
        audit.epochs_served = epoch;
        let rank = |id| server.budget(id).map_or(0, |bud| bud.rank);
        audit
            .ranks
            .push([rank(batch.row_key()), rank(batch.col_key())]);

        if !audit.row_master_key.recovered
            && rank(batch.row_key()) == n
            && let Some(s) = attack::recover_master_secret(&row_keys, &keys.rows)
        {
            let x: Vec<f64> = attack::decrypt_with_master(&s, batch.rows(), table)
                .into_iter()
                .map(|v| v.map_or(f64::NAN, |v| v as f64))
                .collect();
            audit.row_master_key = recovered(epoch, &x, truth, n);
            exact.get_or_insert(x);
        }
        if !audit.column_master_key.recovered
            && rank(batch.col_key()) == b
            && let Some(s) = attack::recover_master_secret(&col_keys, &keys.cols)
        {
            // Column ciphertexts hold the pixels feature by feature.
            let cols = attack::decrypt_with_master(&s, &batch.cols(), table);
            let x: Vec<f64> = (0..b * n)
                .map(|idx| cols[(idx % n) * b + idx / n].map_or(f64::NAN, |v| v as f64))
                .collect();
            audit.column_master_key = recovered(epoch, &x, truth, n);
            exact.get_or_insert(x);
        }
        if checkpoints.contains(&epoch) {
            let after = format!("{epoch} epoch{}", if epoch == 1 { "" } else { "s" });
            audit.reconstructions.push(match &exact {
                Some(x) => Reconstruction {
                    after,
                    forward_equations: eqs.forward.len(),
                    gradient_equations: eqs.gradient.len(),
                    method: "master key",
                    quality: attack::quality(x, truth, n),
                    pixels: x.clone(),
                },
                None => least_squares(args, &after, &eqs, b, n, truth),
            });
        }
    }
    if audit.stopped.is_some() && !checkpoints.contains(&audit.epochs_served) {
        let after = format!("{} epochs (training stopped)", audit.epochs_served);
        audit
            .reconstructions
            .push(least_squares(args, &after, &eqs, b, n, truth));
    }
    Ok(audit)
}

fn recovered(epoch: usize, x: &[f64], truth: &[i64], n: usize) -> MasterKeyRecovery {
    MasterKeyRecovery {
        recovered: true,
        after_epoch: Some(epoch),
        max_pixel_error: Some(attack::quality(x, truth, n).max_pixel_error),
    }
}

fn least_squares(
    args: &Args,
    after: &str,
    eqs: &Equations,
    b: usize,
    n: usize,
    truth: &[i64],
) -> Reconstruction {
    let x: Vec<f64> = attack::reconstruct(eqs, b, n, args.iterations)
        .into_iter()
        .map(f64::from)
        .collect();
    Reconstruction {
        after: after.into(),
        forward_equations: eqs.forward.len(),
        gradient_equations: eqs.gradient.len(),
        method: "least squares",
        quality: attack::quality(&x, truth, n),
        pixels: x,
    }
}

fn summary(audit: &Audit) -> String {
    let mut out = format!(
        "leakage audit: batch {} of MNIST, first layer {}→{}, {} epochs requested, margin {}, {:.0} s\n\
         baseline (all-black guess): PSNR {:.1} dB, {:.1}% of pixels within ±16\n",
        audit.batch_size,
        audit.features,
        audit.hidden,
        audit.epochs,
        audit.key_margin,
        audit.seconds,
        audit.baseline_black_image.mean_psnr_db,
        100.0 * audit.baseline_black_image.within_16
    );
    for p in &audit.policies {
        out += &format!(
            "\npolicy {} ({}): {} epochs served\n",
            p.policy, p.description, p.epochs_served
        );
        if let Some(why) = &p.stopped {
            out += &format!("  stopped: {why}\n");
        }
        for (name, m) in [
            ("row-wise", &p.row_master_key),
            ("column-wise", &p.column_master_key),
        ] {
            out += &match m.after_epoch {
                Some(e) => format!(
                    "  {name} master key recovered after epoch {e}; max pixel error {:.0}\n",
                    m.max_pixel_error.unwrap_or(f64::NAN)
                ),
                None => format!("  {name} master key not recovered\n"),
            };
        }
        let g = &p.gradient_leak;
        out += &match (&g.refused, g.max_pixel_error) {
            (Some(why), _) => format!(
                "  weight-gradient attack (batch {}, width {}): refused ({why})\n",
                g.batch, g.hidden
            ),
            (None, Some(err)) => format!(
                "  weight-gradient attack (batch {}, width {}): batch recovered, max pixel error {err:.0}\n",
                g.batch, g.hidden
            ),
            (None, None) => format!(
                "  weight-gradient attack (batch {}, width {}): not solvable\n",
                g.batch, g.hidden
            ),
        };
        for r in &p.reconstructions {
            out += &format!(
                "  {:<34} {:>5} fwd + {:>4} grad eqs, {:<13}: PSNR {:5.1} dB, {:5.1}% within ±16\n",
                r.after,
                r.forward_equations,
                r.gradient_equations,
                r.method,
                r.quality.mean_psnr_db,
                100.0 * r.quality.within_16
            );
        }
    }
    out
}
