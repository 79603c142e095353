//! The main job's one runner: every mode (the paper's MLP, projection mode,
//! LeNet-5) as one plain run and one secure run over the same three
//! parties, reported the same way.

use std::sync::Arc;
use std::time::Instant;

use cryptonn_authority::Caps;
use cryptonn_burn::SecureContext;
use cryptonn_client::Layout;
use cryptonn_fe::{ForGroup, Group};
use cryptonn_protocol::Budget;

use super::config::{KeyPolicyKind, Mode, ModelKind, Privacy, TrainError, TrainingConfig};
use super::data::{Data, test_set};
use super::lenet::LeNetConfig;
use super::outputs::Outputs;
use super::parties::{Counted, Session};
use super::plain::{PlainInputs, train_plain};
use super::privacy::PrivacyReport;
use super::projection;
use super::report::{KeyServiceReport, Report, RunReport, peak_memory_mib};
use super::secure_training::train_secure;

/// The model and protocol of a run.
#[derive(Debug, Clone)]
enum Job {
    /// The paper's protocol on the MLP.
    Mlp,
    /// Projection mode: the fixed projection, then the MLP's layers as a head.
    Projection,
    /// The paper's protocol on LeNet-5.
    Lenet(LeNetConfig),
}

impl Job {
    /// The job `config` asks for, if it can run.
    fn of(config: &TrainingConfig, features: usize) -> Result<Self, TrainError> {
        let job = match (config.model_kind, config.privacy) {
            (ModelKind::Mlp, Privacy::Cryptonn) => Job::Mlp,
            (ModelKind::Mlp, Privacy::Projection) => Job::Projection,
            (ModelKind::Lenet, _) => Job::Lenet(lenet_config(config, features)?),
        };
        match (&job, config.policy) {
            (Job::Lenet(lenet), _) => check_lenet(config, lenet)?,
            (_, KeyPolicyKind::IssueAll) => {
                return Err(TrainError::Config(
                    "--policy issue-all is only for --model lenet: the MLP's authority enforces \
                     the rank budget (--row-cap, --col-cap, or projection mode's K)"
                        .into(),
                ));
            }
            (_, KeyPolicyKind::Budget) => check_caps(config, features)?,
        }
        Ok(job)
    }

    /// What the client writes for it.
    fn layout(&self) -> Result<Layout, TrainError> {
        Ok(match self {
            Job::Mlp => Layout::Batch,
            Job::Projection => Layout::Rows,
            Job::Lenet(lenet) => Layout::Images(lenet.conv1_geometry()?),
        })
    }
}

/// Runs the main job on the IDX files in `data_dir`.
///
/// # Errors
/// Missing or corrupt data, an impossible configuration, a failure of the
/// secure protocol, or an output that cannot be written. A spent rank budget
/// is not an error: training stops early and the report says why.
pub fn run(
    config: &TrainingConfig,
    data_dir: &std::path::Path,
    outputs: &Outputs,
) -> Result<Report, TrainError> {
    if config.batch_size == 0
        || config.epochs == 0
        || config.model.hidden.is_empty()
        || config.model.hidden.contains(&0)
    {
        return Err(TrainError::Config(
            "batch size, epochs and the hidden widths must be positive".into(),
        ));
    }
    let data = Data::load(config, data_dir)?;
    let job = Job::of(config, data.train.features)?;
    let plain = matches!(config.mode, Mode::Plain | Mode::Both)
        .then(|| plain_run(config, &data, &job, outputs))
        .transpose()?;
    let secure = matches!(config.mode, Mode::Secure | Mode::Both)
        .then(|| {
            config.group.dispatch(SecureRun {
                config,
                data: &data,
                job: &job,
                outputs,
            })
        })
        .transpose()?;
    let (secure, privacy) = secure.unzip();
    Ok(Report::new(config, secure, plain, privacy))
}

/// The plaintext baseline of `job`: the same initial weights, seed and
/// batch order as the secure run.
fn plain_run(
    config: &TrainingConfig,
    data: &Data,
    job: &Job,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let images = || PlainInputs {
        train: test_set(&data.train),
        batches: data.batches.clone(),
        test: test_set(&data.test),
    };
    let device = config.device();
    Ok(match job {
        Job::Mlp => {
            let model = config.init_mlp(&data.test, &device, false);
            train_plain(config, model, images(), "plain", outputs)?.1
        }
        Job::Lenet(lenet) => {
            let model = lenet.init(&device, false);
            train_plain(config, model, images(), "plain", outputs)?.1
        }
        Job::Projection => {
            let inputs = projection::plain_inputs(config, data)?;
            train_plain(config, projection::head(config), inputs, "plain", outputs)?.1
        }
    })
}

/// The secure run, for the configuration's group.
struct SecureRun<'a> {
    config: &'a TrainingConfig,
    data: &'a Data,
    job: &'a Job,
    outputs: &'a Outputs,
}

impl ForGroup for SecureRun<'_> {
    type Output = Result<(RunReport, PrivacyReport), TrainError>;

    fn run<G: Group>(self) -> Self::Output {
        let SecureRun {
            config,
            data,
            job,
            outputs,
        } = self;
        let start = Instant::now();
        let session = Session::<G>::open(config, data, &outputs.parties, job.layout()?)?;
        let counted = Arc::new(Counted::new(session.server.clone()));
        let ctx = SecureContext::builder(counted.clone())
            .quantization(config.quantization)
            .build()?;
        let (mut report, privacy) = train_job(config, data, job, &session, &ctx, outputs)?;
        if let Some(path) = &outputs.audit_log {
            session.export_audit(path)?;
        }
        report.keys_issued = Some(counted.keys());
        parties_report(&mut report, &session, start);
        Ok((report, privacy))
    }
}

/// The secure training of `job` and what it let the server learn.
fn train_job<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    job: &Job,
    session: &Session<G>,
    ctx: &SecureContext<G>,
    outputs: &Outputs,
) -> Result<(RunReport, PrivacyReport), TrainError> {
    let device = config.device();
    match job {
        Job::Mlp => {
            let model = config.init_mlp(&data.test, &device, true);
            let need = config.model.hidden[0] * config.quantization.limbs as usize;
            let report = train_secure(config, data, session, ctx, model, Some(need), outputs)?;
            let rank = |b: Option<Budget>| b.map_or(0, |b| b.rank);
            let (rows, cols) = report
                .budget
                .last()
                .map_or((0, 0), |m| (rank(m.rows), rank(m.cols)));
            let caps = Caps {
                rows: config.row_cap,
                cols: config.col_cap,
            };
            let privacy = PrivacyReport::new(Privacy::Cryptonn, rows, cols, caps);
            Ok((report, privacy))
        }
        Job::Lenet(lenet) => {
            let model = lenet.init(&device, true);
            let report = train_secure(config, data, session, ctx, model, None, outputs)?;
            // Issue-all: no cap below full rank on either side.
            let caps = Caps {
                rows: data.train.features,
                cols: config.batch_size * data.train.features,
            };
            let (rows, cols) = (
                lenet.equations_per_image(),
                lenet.gradient_equations_per_step(),
            );
            Ok((report, PrivacyReport::convolution(rows, cols, caps)))
        }
        Job::Projection => {
            let (report, rows) = projection::train_secure(config, data, session, ctx, outputs)?;
            let caps = Caps {
                rows: config.projection_dim,
                cols: 0,
            };
            let privacy = PrivacyReport::new(Privacy::Projection, rows, 0, caps);
            Ok((report, privacy))
        }
    }
}

/// What the parties measured: the client's encryption (when it ran here),
/// the ciphertext size, the key service over HTTPS, and memory.
fn parties_report<G: Group>(report: &mut RunReport, session: &Session<G>, start: Instant) {
    report.seconds.client_encryption = session.client.map_or(0.0, |c| c.seconds);
    // On disk: one image's ciphertexts with the container's framing.
    let per_batch = session.train.manifest().batch_size.max(1);
    report.ciphertext_bytes_per_image = std::fs::metadata(session.train.path(0))
        .ok()
        .map(|m| m.len() as usize / per_batch);
    let client_requests = session.client.map(|c| c.key_requests).unwrap_or_default();
    report.key_service = Some(KeyServiceReport::new(
        &[client_requests, session.server.timings()],
        start.elapsed().as_secs_f64(),
    ));
    report.peak_memory_mib = peak_memory_mib();
}

/// The LeNet-5 of the configuration, for the training images' side.
fn lenet_config(config: &TrainingConfig, features: usize) -> Result<LeNetConfig, TrainError> {
    let side = features.isqrt();
    if side * side != features || side < 16 {
        return Err(TrainError::Config(format!(
            "LeNet-5 needs square images of at least 16×16 pixels, the data has {features} per image"
        )));
    }
    Ok(LeNetConfig::new()
        .with_side(side)
        .with_classes(config.model.classes))
}

/// Refuses LeNet-5 unless the paper's protocol and policy are asked for.
fn check_lenet(config: &TrainingConfig, lenet: &LeNetConfig) -> Result<(), TrainError> {
    let pixels = lenet.side * lenet.side;
    if config.privacy != Privacy::Cryptonn || config.policy != KeyPolicyKind::IssueAll {
        return Err(TrainError::Config(format!(
            "--model lenet needs --privacy cryptonn and --policy issue-all: its secure first \
             convolution (6 channels × {side}×{side} positions) gives the server {n} equations on \
             each image's {pixels} pixels in one forward pass, so the images are recoverable by \
             linear algebra and no rank budget below full can serve it; the authority must issue \
             every key (the paper's policy), and the run protects nothing",
            side = lenet.conv1_side(),
            n = lenet.equations_per_image(),
        )));
    }
    Ok(())
}

/// Caps are absolute: the authority stops a cap at or above its side's
/// dimension one below full rank, which leaves one unknown per image and,
/// under the box constraint, little privacy, so the main job refuses it.
fn check_caps(config: &TrainingConfig, features: usize) -> Result<(), TrainError> {
    let open = |cap: usize, dim: usize, side: &str| {
        (cap >= dim).then(|| {
            format!(
                "a {side} cap of {cap} reaches the dimension {dim}: the server would hold all but \
                 one equation on every image; choose a cap below {dim}"
            )
        })
    };
    let too_wide = match config.privacy {
        Privacy::Cryptonn => open(config.row_cap, features, "row")
            .or_else(|| open(config.col_cap, config.batch_size, "column")),
        Privacy::Projection => open(config.projection_dim, features, "projection"),
    };
    too_wide.map_or(Ok(()), |why| Err(TrainError::Config(why)))
}
