//! The leakage audit: plays the curious server against the main job's real
//! batches with every attack we know, in the paper's mode (policy off, the
//! reference budget, the default caps) and in projection mode.
//! `cargo run --release --example leakage_audit -- --json`
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

mod convolution;
mod paper;
mod projection;
mod suite;
mod trace;

use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Instant;

use clap::Parser;
use cryptonn::authority::{Authority, Caps};
use cryptonn::fe::feip::Decryptor;
use cryptonn::fe::{DlogConfig, DlogTable, Ristretto255};
use cryptonn_audit::{
    self as attack, DecoderConfig, Equations, Prior, Quality, SolverConfig, Warp,
};
use cryptonn_mnist::config::{Privacy, TrainingConfig};
use cryptonn_mnist::data::train_batches;
use cryptonn_mnist::data::{Dataset, Split};
use cryptonn_mnist::plot::FrontierPoint;
use cryptonn_mnist::privacy::MeasuredLeakage;
use paper::{MasterKeyRecovery, Policy};
use rand::SeedableRng;
use rand::rngs::StdRng;
use serde::Serialize;
use suite::{AttackResult, Target};

/// Play the curious server against the main job: the real authority, real
/// encrypted batches of the main job's run, the keys its server is issued
/// and their decryptions; then every reconstruction attack we know, run to
/// convergence: joint box-constrained feasibility with certify/peel, linear
/// MMSE with a public prior (the MNIST test images), the prior followed by
/// feasibility, and box-constrained least squares.
#[derive(Debug, Parser)]
#[command(version, about, long_about)]
struct Args {
    /// Print one JSON object instead of the human summary.
    #[arg(long)]
    json: bool,
    /// Batches of the main job's run to audit (its first ones).
    #[arg(long, default_value_t = 4)]
    batches: usize,
    /// Projection-mode widths K to audit, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "16,32,64,128")]
    projection_dims: Vec<usize>,
    /// Epochs served with the policy off, for master-key recovery: H = 64
    /// keys per epoch reach rank 784 in 13.
    #[arg(long, default_value_t = 14)]
    epochs_off: usize,
    /// Batch size of the weight-gradient attack, which needs hidden ≥ batch.
    #[arg(long, default_value_t = 32)]
    small_batch: usize,
    /// Iteration cap of every iterative attack.
    #[arg(long, default_value_t = 20_000)]
    max_iterations: usize,
    /// Relative step below which an iterative attack has converged.
    #[arg(long, default_value_t = 1e-5)]
    tolerance: f64,
    /// Seed of the main job whose run is audited (weights, batches, keys).
    #[arg(long, default_value_t = 42)]
    seed: u64,
    /// Draw the first 8 images of the first audited batch and the best
    /// reconstruction of each case here (PNG).
    #[arg(long)]
    png: Option<PathBuf>,
    /// Write the table of best attacks per case here (JSON; the main job's
    /// report quotes it from `docs/leakage_table.json`).
    #[arg(long)]
    table: Option<PathBuf>,
    /// Main-job reports (`mnist_secure --report`) to place on the
    /// privacy–accuracy curve, comma-separated.
    #[arg(long, value_delimiter = ',')]
    curve_reports: Vec<PathBuf>,
    /// Draw the privacy–accuracy curve of `--curve-reports` here (PNG).
    #[arg(long)]
    curve_png: Option<PathBuf>,
    /// Directory with the four MNIST IDX files.
    #[arg(long, default_value = "data/mnist")]
    data_dir: PathBuf,
    /// Images of the first audited batch attacked through LeNet-5's secure
    /// first convolution (one forward pass each).
    #[arg(long, default_value_t = 32)]
    convolution_images: usize,
    /// Audit only LeNet-5's secure convolution (a minute), not the MLP's
    /// paper and projection modes.
    #[arg(long)]
    convolution_only: bool,
    /// Audit only projection mode (every K of `--projection-dims`), with
    /// no table or picture.
    #[arg(long, conflicts_with_all = ["convolution_only", "png", "table", "curve_png"])]
    projection_only: bool,
    /// Passes of the learned prior's decoder over its training set (the
    /// public images and their warped copies).
    #[arg(long, default_value_t = DecoderConfig::new().epochs)]
    decoder_epochs: usize,
    /// Width of the decoder's hidden layers.
    #[arg(long, default_value_t = DecoderConfig::new().hidden)]
    decoder_hidden: usize,
    /// Warped copies of each public image in the decoder's training set.
    #[arg(long, default_value_t = 4)]
    warped_copies: usize,
    /// Candidates of the identification test: the target and this many
    /// minus one public images.
    #[arg(long, default_value_t = 1000)]
    pool_size: usize,
}

type AuditResult<T> = Result<T, Box<dyn std::error::Error>>;

/// The paper's mode with every key issued: leaks 1 and 2 (exact).
#[derive(Debug, Serialize)]
struct PolicyOff {
    /// Epochs served (all requested).
    epochs_served: usize,
    /// Leak 1 on the row-wise master key (dimension n).
    row_master_key: MasterKeyRecovery,
    /// Leak 1 on the column-wise master key (dimension B).
    column_master_key: MasterKeyRecovery,
    /// Leak 2: largest pixel error of a batch of `small_batch` from one weight gradient.
    gradient_leak_max_error: Option<f64>,
}

/// One point of a case: what the server held and what each attack made of it.
#[derive(Debug, Serialize)]
struct Checkpoint {
    /// When.
    after: String,
    /// Independent equations per image (row keys).
    row_equations_per_image: usize,
    /// Independent gradient equations per pixel (column keys).
    column_equations_per_batch: usize,
    /// Share of audited images singled out of `identification_pool`
    /// candidates by their forward equations' misfit.
    identification_rate: f64,
    /// Candidates per image: the image and `--pool-size` − 1 public ones.
    identification_pool: usize,
    /// Every attack, over every audited batch.
    attacks: Vec<AttackResult>,
    /// The best attack's guess of the first batch, for the PNG.
    #[serde(skip)]
    pixels: Vec<f64>,
}

/// The paper's mode under one budget.
#[derive(Debug, Serialize)]
struct BudgetCase {
    /// Its name.
    name: String,
    /// Its caps.
    caps: Caps,
    /// Epochs the trainer could serve before its budget check stopped it.
    epochs_served: usize,
    /// Why it stopped.
    stopped: Option<String>,
    /// The weight-gradient attack on a small batch: refused, or its max error.
    gradient_leak: String,
    /// After each served epoch.
    checkpoints: Vec<Checkpoint>,
}

/// Projection mode with one K.
#[derive(Debug, Serialize)]
struct ProjectionCase {
    /// The projection's width: equations per image for life.
    k: usize,
    /// What the server holds, and the attacks.
    checkpoint: Checkpoint,
}

/// The whole audit.
#[derive(Debug, Serialize)]
struct Audit {
    group: &'static str,
    features: usize,
    batch_size: usize,
    hidden: usize,
    train_size: usize,
    audited_images: usize,
    quantization_bits: u32,
    solver: String,
    /// Guesses that use no equation, for scale.
    baseline_black_image: Quality,
    baseline_public_mean_image: Quality,
    policy_off: PolicyOff,
    budgets: Vec<BudgetCase>,
    projection: Vec<ProjectionCase>,
    /// The projection policy's answers to a (K+1)-th row key and to a
    /// gradient key, for the main job's K.
    projection_refusals: [String; 2],
    /// `--model lenet`: one forward pass of its secure convolution.
    convolution: convolution::ConvolutionCase,
    seconds: f64,
}

/// What every case shares.
struct Context {
    config: TrainingConfig,
    data: Dataset,
    /// The public images (the test split): the prior, and the mean the
    /// main job centres its inputs on.
    public: Dataset,
    batches: Vec<Vec<usize>>,
    truths: Vec<Vec<i64>>,
    prior: Prior,
    solver: SolverConfig,
    table: Arc<DlogTable<Ristretto255>>,
    decryptor: Decryptor<Ristretto255>,
    /// The learned prior's training set: public images and warped copies
    /// (empty for the convolution-only audit).
    warped: Vec<f32>,
    decoder: DecoderConfig,
    /// The identification test's other candidates: public images.
    decoys: Vec<i64>,
}

fn main() -> ExitCode {
    let args = Args::parse();
    let shown = if args.convolution_only {
        convolution_only(&args).map(|case| show(&args, &case, convolution_summary(&case)))
    } else if args.projection_only {
        projection_only(&args).map(|cases| {
            let lines = cases.iter().map(|p| checkpoint_lines(&p.checkpoint));
            show(
                &args,
                &cases,
                format!("projection mode:\n{}", lines.collect::<String>()),
            )
        })
    } else {
        run(&args).map(|audit| show(&args, &audit, summary(&audit)))
    };
    match shown {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Prints `value` as JSON with `--json`, else `summary`.
fn show<T: Serialize>(args: &Args, value: &T, summary: String) {
    if args.json {
        println!(
            "{}",
            serde_json::to_string_pretty(value).unwrap_or_default()
        );
    } else {
        print!("{summary}");
    }
}

fn projection_only(args: &Args) -> AuditResult<Vec<ProjectionCase>> {
    let ctx = context(args)?;
    let mut rng = StdRng::seed_from_u64(args.seed);
    args.projection_dims
        .iter()
        .map(|&k| {
            eprintln!("projection mode, K = {k}…");
            projection_case(&ctx, k, &mut rng)
        })
        .collect()
}

fn convolution_only(args: &Args) -> AuditResult<convolution::ConvolutionCase> {
    let ctx = context(args)?;
    convolution_case(&ctx, args, &mut StdRng::seed_from_u64(args.seed))
}

/// The convolution case on the first `--convolution-images` of the first batch.
fn convolution_case(
    ctx: &Context,
    args: &Args,
    rng: &mut StdRng,
) -> AuditResult<convolution::ConvolutionCase> {
    let n = ctx.data.features;
    let images = args.convolution_images;
    if images == 0 || images * n > ctx.truths[0].len() {
        return Err(format!(
            "--convolution-images must be 1..={}",
            ctx.truths[0].len() / n
        )
        .into());
    }
    eprintln!("LeNet-5's secure convolution: one forward pass on {images} images…");
    convolution::case(
        &ctx.config,
        &ctx.truths[0][..images * n],
        &ctx.decryptor,
        rng,
    )
}

fn convolution_summary(c: &convolution::ConvolutionCase) -> String {
    format!(
        "LeNet-5's secure convolution, one forward pass on {} images: {} kernels, {} equations \
         per image of rank {} on {} pixels; least squares: {:.1} dB, {:.1}% exact pixels, \
         {:.1}% exact images, max error {:.2} ({:.1} s)\n  budget: {}\n  budget: {}\n",
        c.images,
        c.kernels,
        c.equations_per_image,
        c.rank_per_image,
        c.pixels,
        c.least_squares.mean_psnr_db,
        100.0 * c.least_squares.exact_pixels,
        100.0 * c.least_squares.exact_images,
        c.least_squares.max_pixel_error,
        c.solve_seconds,
        c.default_cap_answer,
        c.cap_below_full_answer,
    )
}

fn context(args: &Args) -> AuditResult<Context> {
    let config = TrainingConfig::new().with_seed(args.seed);
    let data = Dataset::load(&args.data_dir, Split::Train, 10)?.truncate(config.train_size);
    let public = Dataset::load(&args.data_dir, Split::Test, 10)?;
    let batches = train_batches(&config, data.len());
    if args.batches == 0 || args.batches > batches.len() || args.small_batch == 0 {
        return Err(format!(
            "audit 1..={} batches and a positive small batch",
            batches.len()
        )
        .into());
    }
    let truths = batches[..args.batches]
        .iter()
        .map(|b| data.pixels(b))
        .collect();
    let all: Vec<usize> = (0..public.len()).collect();
    let public_pixels = public.pixels(&all);
    let prior = Prior::from_images(&public_pixels, public.features)?;
    let table = Arc::new(DlogTable::<Ristretto255>::new(DlogConfig::default())?);
    let warped = if args.convolution_only {
        Vec::new()
    } else {
        eprintln!(
            "warping {} copies of each public image…",
            args.warped_copies
        );
        attack::augmented(
            &public_pixels,
            public.features,
            args.warped_copies,
            &Warp::default(),
            args.seed,
        )?
    };
    let decoys = (0..args.pool_size.saturating_sub(1).min(public.len())).collect::<Vec<_>>();
    Ok(Context {
        warped,
        decoder: DecoderConfig::new()
            .with_epochs(args.decoder_epochs)
            .with_hidden(args.decoder_hidden)
            .with_seed(args.seed),
        decoys: public.pixels(&decoys),
        config,
        batches,
        truths,
        prior,
        solver: SolverConfig {
            max_iterations: args.max_iterations,
            tolerance: args.tolerance,
        },
        decryptor: Decryptor::new(table.clone()),
        table,
        data,
        public,
    })
}

fn run(args: &Args) -> AuditResult<Audit> {
    let start = Instant::now();
    let ctx = context(args)?;
    let n = ctx.data.features;
    let mut rng = StdRng::seed_from_u64(args.seed);
    eprintln!("training the main job's model in the clear for the key vectors of every step…");
    let trace = trace::train_trace(
        &ctx.config,
        &ctx.data,
        &ctx.public,
        &ctx.batches,
        args.batches,
        args.epochs_off,
    )?;
    let small = trace::small_batch_deltas(&ctx.config, &ctx.data, &ctx.public, args.small_batch)?;
    eprintln!("policy off: master keys and the weight gradient…");
    let policy_off = policy_off(&ctx, &trace, &small, args, &mut rng)?;
    let reference = Caps::from_margin(128, n, ctx.config.batch_size);
    let default = Caps {
        rows: ctx.config.row_cap,
        cols: ctx.config.col_cap,
    };
    let mut budgets = Vec::new();
    for (name, caps) in [
        ("reference: margin 128 (rows 656, columns 128)", reference),
        ("default caps (rows 128, columns 128)", default),
    ] {
        eprintln!("paper's mode, {name}…");
        let case = budget_case(
            &ctx,
            name,
            caps,
            &trace,
            &small,
            args,
            budgets.first(),
            &mut rng,
        )?;
        budgets.push(case);
    }
    let mut projection = Vec::new();
    for &k in &args.projection_dims {
        eprintln!("projection mode, K = {k}…");
        projection.push(projection_case(&ctx, k, &mut rng)?);
    }
    let main_k = ctx.config.projection_dim;
    let batch = ctx.config.batch_size;
    let projection_refusals = projection::refusals(&ctx.config, n, batch, &mut rng)?;
    let convolution = convolution_case(&ctx, args, &mut rng)?;
    let all: Vec<i64> = ctx.truths.concat();
    let audit = Audit {
        group: "ristretto255",
        features: n,
        batch_size: batch,
        hidden: ctx.config.model.hidden[0],
        train_size: ctx.data.len(),
        audited_images: all.len() / n,
        quantization_bits: ctx.config.quantization.weight_bits,
        solver: format!("{:?}", ctx.solver),
        baseline_black_image: attack::quality(&vec![0.0; all.len()], &all, n),
        baseline_public_mean_image: attack::quality(
            &ctx.prior.mean().repeat(all.len() / n),
            &all,
            n,
        ),
        policy_off,
        budgets,
        projection,
        projection_refusals,
        convolution,
        seconds: start.elapsed().as_secs_f64(),
    };
    eprintln!("projection refusals (K = {main_k}) recorded");
    write_outputs(args, &ctx, &audit)?;
    Ok(audit)
}

fn policy_off(
    ctx: &Context,
    trace: &[Vec<trace::StepKeys>],
    small: &[Vec<i64>],
    args: &Args,
    rng: &mut StdRng,
) -> AuditResult<PolicyOff> {
    let n = ctx.data.features;
    let truth = &ctx.truths[0];
    let authority = Arc::new(Authority::<Ristretto255>::new(Policy::Off.build(0, rng)));
    let keys = authority.batch_keys(n, ctx.config.batch_size, rng)?;
    let batch = paper::encrypt(&keys, truth, n, rng)?;
    let steps: Vec<&trace::StepKeys> = trace.iter().map(|epoch| &epoch[0]).collect();
    let server = authority.requester("curious-server");
    let served = paper::serve(&server, &batch, &steps, &ctx.decryptor)?;
    let [row_master_key, column_master_key] =
        paper::recover_master_keys(&served, &keys, &batch, truth, &ctx.table);
    let small_truth = ctx.data.pixels(&(0..args.small_batch).collect::<Vec<_>>());
    let leak = paper::gradient_leak(
        Policy::Off.build(0, rng),
        &small_truth,
        n,
        small,
        &ctx.decryptor,
        rng,
    )?;
    Ok(PolicyOff {
        epochs_served: served.after_epoch.len(),
        row_master_key,
        column_master_key,
        gradient_leak_max_error: leak.ok().flatten(),
    })
}

#[allow(clippy::too_many_arguments)]
fn budget_case(
    ctx: &Context,
    name: &str,
    caps: Caps,
    trace: &[Vec<trace::StepKeys>],
    small: &[Vec<i64>],
    args: &Args,
    reference: Option<&BudgetCase>,
    rng: &mut StdRng,
) -> AuditResult<BudgetCase> {
    let n = ctx.data.features;
    let min_support = ctx.config.quantization.min_key_support;
    let mut per_batch = Vec::new();
    let mut stopped = None;
    for (b, truth) in ctx.truths.iter().enumerate() {
        let authority = Arc::new(Authority::<Ristretto255>::new(
            Policy::Caps(caps).build(min_support, rng),
        ));
        let keys = authority.batch_keys(n, truth.len() / n, rng)?;
        let batch = paper::encrypt(&keys, truth, n, rng)?;
        // One epoch more than the budget can serve, to see the trainer stop.
        let steps: Vec<&trace::StepKeys> = trace.iter().take(3).map(|epoch| &epoch[b]).collect();
        let served = paper::serve(
            &authority.requester("curious-server"),
            &batch,
            &steps,
            &ctx.decryptor,
        )?;
        stopped = stopped.or(served.stopped.clone());
        per_batch.push(served);
    }
    let small_truth = ctx.data.pixels(&(0..args.small_batch).collect::<Vec<_>>());
    let leak = paper::gradient_leak(
        Policy::Caps(caps).build(min_support, rng),
        &small_truth,
        n,
        small,
        &ctx.decryptor,
        rng,
    )?;
    let epochs_served = per_batch
        .iter()
        .map(|s| s.after_epoch.len())
        .min()
        .unwrap_or(0);
    let checkpoints = (0..epochs_served)
        .map(|e| budget_checkpoint(ctx, &per_batch, e, reference))
        .collect::<AuditResult<Vec<_>>>()?;
    Ok(BudgetCase {
        name: name.into(),
        caps,
        epochs_served,
        stopped,
        gradient_leak: match leak {
            Err(why) => format!("refused: {why}"),
            Ok(Some(err)) => format!("recovered, max pixel error {err:.0}"),
            Ok(None) => "not solvable".into(),
        },
        checkpoints,
    })
}

/// What the attacks make of a budget case's batches after epoch `e` + 1.
fn budget_checkpoint(
    ctx: &Context,
    per_batch: &[paper::Served],
    e: usize,
    reference: Option<&BudgetCase>,
) -> AuditResult<Checkpoint> {
    let eqs: Vec<Equations> = per_batch.iter().map(|s| s.after_epoch[e].clone()).collect();
    let ranks = per_batch
        .iter()
        .map(|s| s.ranks[e])
        .fold([0, 0], |m, r| [m[0].max(r[0]), m[1].max(r[1])]);
    let after = format!("{} epoch{}", e + 1, if e == 0 { "" } else { "s" });
    // The same keys as the reference's: the same attacks, not run twice.
    let same = reference.and_then(|r| r.checkpoints.get(e)).filter(|c| {
        c.row_equations_per_image == ranks[0] && c.column_equations_per_batch == ranks[1]
    });
    Ok(match same {
        Some(c) => Checkpoint {
            after: format!("{after} (the reference's keys: its results)"),
            row_equations_per_image: ranks[0],
            column_equations_per_batch: ranks[1],
            identification_rate: c.identification_rate,
            identification_pool: c.identification_pool,
            attacks: c.attacks.clone(),
            pixels: c.pixels.clone(),
        },
        // The learned prior where the others leave images to guess.
        None => checkpoint(ctx, after, ranks, eqs, e == 0)?,
    })
}

fn checkpoint(
    ctx: &Context,
    after: String,
    ranks: [usize; 2],
    eqs: Vec<Equations>,
    learned: bool,
) -> AuditResult<Checkpoint> {
    let n = ctx.data.features;
    let targets: Vec<Target<'_>> = eqs
        .into_iter()
        .zip(&ctx.truths)
        .map(|(equations, truth)| Target { equations, truth })
        .collect();
    let mut identified = 0.0;
    for t in &targets {
        identified += attack::identification_rate(&t.equations, t.truth, n, &ctx.decoys)?;
    }
    eprintln!("  attacks after {after}…");
    let learned = learned.then_some(suite::Learned {
        public: &ctx.warped,
        config: &ctx.decoder,
    });
    let (attacks, pixels) = suite::run(&targets, n, &ctx.prior, &ctx.solver, learned.as_ref())?;
    Ok(Checkpoint {
        after,
        row_equations_per_image: ranks[0],
        column_equations_per_batch: ranks[1],
        identification_rate: identified / targets.len().max(1) as f64,
        identification_pool: ctx.decoys.len() / n + 1,
        attacks,
        pixels,
    })
}

fn projection_case(ctx: &Context, k: usize, rng: &mut StdRng) -> AuditResult<ProjectionCase> {
    let config = ctx.config.clone().with_projection_dim(k);
    let n = ctx.data.features;
    let eqs = ctx
        .truths
        .iter()
        .map(|truth| projection::equations(&config, truth, n, &ctx.decryptor, rng))
        .collect::<AuditResult<Vec<_>>>()?;
    let after = format!("K = {k}, any number of epochs");
    Ok(ProjectionCase {
        k,
        checkpoint: checkpoint(ctx, after, [k, 0], eqs, true)?,
    })
}

/// The best attack of a checkpoint as a row of the shipped table.
fn table_row(mode: Privacy, c: &Checkpoint, images: usize) -> MeasuredLeakage {
    let best = &c.attacks[suite::best(&c.attacks)];
    MeasuredLeakage {
        mode,
        row_equations_per_image: c.row_equations_per_image,
        column_equations_per_batch: c.column_equations_per_batch,
        best_attack: best.attack.into(),
        mean_psnr_db: best.mean_psnr_db,
        exact_images: best.exact_images,
        exact_pixels: best.exact_pixels,
        identification_rate: Some(c.identification_rate),
        identification_pool: Some(c.identification_pool),
        source: format!(
            "leakage_audit, {images} images of the main job's batches, {}",
            c.after
        ),
    }
}

fn write_outputs(args: &Args, ctx: &Context, audit: &Audit) -> AuditResult<()> {
    let images = audit.audited_images;
    let rows: Vec<MeasuredLeakage> = audit
        .budgets
        .last()
        .into_iter()
        .flat_map(|b| {
            b.checkpoints
                .iter()
                .map(|c| table_row(Privacy::Cryptonn, c, images))
        })
        .chain(
            audit
                .projection
                .iter()
                .map(|p| table_row(Privacy::Projection, &p.checkpoint, images)),
        )
        .collect();
    if let Some(path) = &args.table {
        std::fs::write(path, serde_json::to_string_pretty(&rows)?)?;
    }
    let reconstructions = reconstruction_rows(ctx, audit);
    if let Some(path) = &args.png {
        cryptonn_mnist::plot::write_image_rows(path, &reconstructions, 8, 28)?;
    }
    if let Some(path) = &args.curve_png {
        cryptonn_mnist::plot::write_privacy_curve(
            path,
            &curve_points(&args.curve_reports, &rows)?,
            &reconstructions,
        )?;
    }
    Ok(())
}

/// The first batch's true images, then each case's strongest reconstruction
/// of them, labelled with its attack's mean PSNR.
fn reconstruction_rows(ctx: &Context, audit: &Audit) -> Vec<(String, Vec<f64>)> {
    let mut rows = vec![(
        "true images".to_string(),
        ctx.truths[0].iter().map(|&v| v as f64).collect::<Vec<_>>(),
    )];
    let label = |what: String, c: &Checkpoint| {
        let best = &c.attacks[suite::best(&c.attacks)];
        (
            format!("{what}: {:.1} dB", best.mean_psnr_db),
            c.pixels.clone(),
        )
    };
    if let Some(reference) = audit.budgets.first() {
        rows.extend(
            reference
                .checkpoints
                .iter()
                .map(|c| label(format!("paper, {}", c.after), c)),
        );
    }
    rows.extend(
        audit
            .projection
            .iter()
            .map(|p| label(format!("projection K={}", p.k), &p.checkpoint)),
    );
    rows
}

/// The frontier's point of each main-job report: one per projection-mode
/// run, one per epoch of a paper's-mode run (its e-th epoch against the
/// audit's e-th checkpoint).
fn curve_points(reports: &[PathBuf], table: &[MeasuredLeakage]) -> AuditResult<Vec<FrontierPoint>> {
    let mut points = Vec::new();
    for path in reports {
        let report: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(path)?)?;
        let mode: Privacy = serde_json::from_value(report["privacy"]["mode"].clone())?;
        let rows = report["privacy"]["row_equations_per_image"]
            .as_u64()
            .unwrap_or(0) as usize;
        let epochs = report["secure"]["epochs"]
            .as_array()
            .cloned()
            .unwrap_or_default();
        let accuracy = |e: &serde_json::Value| e["test_accuracy"].as_f64().unwrap_or(f64::NAN);
        let audited: Vec<&MeasuredLeakage> = table.iter().filter(|m| m.mode == mode).collect();
        match mode {
            Privacy::Projection => {
                let m = audited
                    .iter()
                    .find(|m| m.row_equations_per_image == rows)
                    .ok_or_else(|| format!("{}: K = {rows} was not audited", path.display()))?;
                let last = epochs.last().map_or(f64::NAN, accuracy);
                points.push(point(format!("projection K={rows}"), last, m));
            }
            Privacy::Cryptonn => {
                for (e, (epoch, m)) in epochs.iter().zip(&audited).enumerate() {
                    let label = format!("paper, {} epoch{}", e + 1, if e == 0 { "" } else { "s" });
                    points.push(point(label, accuracy(epoch), m));
                }
            }
        }
    }
    Ok(points)
}

/// A checkpoint's header, identification rate and one line per attack.
fn checkpoint_lines(c: &Checkpoint) -> String {
    let mut s = format!(
        "  {} ({} eq./image, {} gradient eq./pixel; {:.1}% identified among {} candidates)\n",
        c.after,
        c.row_equations_per_image,
        c.column_equations_per_batch,
        100.0 * c.identification_rate,
        c.identification_pool
    );
    for a in &c.attacks {
        s += &format!(
            "    {:<32} {:5.1} dB  {:5.1}% exact pixels  {:5.1}% exact images  {:6.1} s/batch\n",
            a.attack,
            a.mean_psnr_db,
            100.0 * a.exact_pixels,
            100.0 * a.exact_images,
            a.seconds_per_batch
        );
    }
    s
}

fn point(label: String, accuracy: f64, m: &MeasuredLeakage) -> FrontierPoint {
    FrontierPoint {
        label,
        accuracy,
        psnr_db: m.mean_psnr_db,
        identification: m.identification_rate.zip(m.identification_pool),
    }
}

fn summary(audit: &Audit) -> String {
    let mut out = format!(
        "leakage audit: {} images in {} batches of the main job (B = {}, H = {}), {:.0} s\n\
         baselines: all-black guess {:.1} dB, public mean image {:.1} dB\n",
        audit.audited_images,
        audit.audited_images / audit.batch_size.max(1),
        audit.batch_size,
        audit.hidden,
        audit.seconds,
        audit.baseline_black_image.mean_psnr_db,
        audit.baseline_public_mean_image.mean_psnr_db,
    );
    let off = &audit.policy_off;
    out += &format!(
        "\npolicy off (every key, {} epochs): row master key after epoch {:?}, column master key after epoch {:?}, \
         weight gradient of a small batch: max error {:?}\n",
        off.epochs_served,
        off.row_master_key.after_epoch,
        off.column_master_key.after_epoch,
        off.gradient_leak_max_error
    );
    for b in &audit.budgets {
        out += &format!(
            "\npaper's mode, {}: {} epochs served; small-batch gradient: {}\n",
            b.name, b.epochs_served, b.gradient_leak
        );
        out += &b
            .checkpoints
            .iter()
            .map(checkpoint_lines)
            .collect::<String>();
    }
    out += "\nprojection mode:\n";
    out += &audit
        .projection
        .iter()
        .map(|p| checkpoint_lines(&p.checkpoint))
        .collect::<String>();
    out += &format!(
        "  a (K+1)-th row key: {}\n  a gradient key: {}\n",
        audit.projection_refusals[0], audit.projection_refusals[1]
    );
    out += "\n";
    out += &convolution_summary(&audit.convolution);
    out
}
