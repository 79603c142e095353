//! The paper's mode with three parties: the client step writes encrypted
//! batches to disk, and the trainer streams them (read, decode, train, drop)
//! while asking the authority for function keys over HTTPS.
#![allow(deprecated)] // Device::ndarray: burn-ndarray is the backend this project uses.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Instant;

use cryptonn_burn::encrypted_loss::cross_entropy_encrypted;
use cryptonn_burn::{EncryptedBatch, SecureContext};
use cryptonn_fe::feip::FunctionKey;
use cryptonn_fe::{Group, KeyId, febo};
use cryptonn_protocol::container::BatchDir;
use cryptonn_protocol::wire::Role;
use cryptonn_protocol::{Budget, FeboKeyRequest, KeyService, RemoteAuthority};

use burn::tensor::{Device, Gradients, Int, Tensor};

use super::data::Dataset;
use super::data::Tensors;
use super::learner::{Epochs, GuardFn, StepFn, lock, train_epochs};
use super::model::Mlp;
use super::parties::{Parties, start_embedded};
use super::progress::Meter;
use super::report::{
    BudgetMeter, KeyServiceReport, PhaseSeconds, RunReport, SecureInference, peak_memory_mib,
};
use super::training::{
    Data, LabelMode, Outputs, TrainError, TrainingConfig, cross_entropy, device, init_model,
    save_model, secure_accuracy,
};
use cryptonn_authority::EmbeddedAuthority;
use cryptonn_client::{EncryptionJob, EncryptionStats, batches, encrypt_to_dir};

/// Decoded batches kept between epochs, up to a byte budget: decoding a
/// file (validating every point) costs about a second per 256 images on
/// 2 cores, so batches that fit are decoded once; the rest are read, decoded
/// and dropped every epoch.
struct BatchCache<G: Group> {
    batches: Vec<Option<Arc<EncryptedBatch<G>>>>,
    left: usize,
}

impl<G: Group> BatchCache<G> {
    fn new(count: usize, budget_bytes: usize) -> Self {
        Self {
            batches: vec![None; count],
            left: budget_bytes,
        }
    }

    /// Batch `b`, from the cache or from `dir` (then kept if it fits).
    fn get(&mut self, dir: &BatchDir, b: usize) -> Result<Arc<EncryptedBatch<G>>, TrainError> {
        if let Some(Some(batch)) = self.batches.get(b) {
            return Ok(batch.clone());
        }
        let batch = Arc::new(dir.read_batch::<G>(b)?);
        let [rows, features] = batch.shape();
        let points = rows * (features + 1) + features * (rows + 1);
        let bytes = points * std::mem::size_of::<G::Element>();
        if let Some(slot) = self.batches.get_mut(b).filter(|_| bytes <= self.left) {
            self.left -= bytes;
            *slot = Some(batch.clone());
        }
        Ok(batch)
    }
}

/// What the trainer's steps and its budget guard share: the batch files,
/// the cache, each batch's master keys once read, and the time spent reading.
struct Reader<G: Group> {
    dir: BatchDir,
    cache: BatchCache<G>,
    keys: Vec<Option<(KeyId, KeyId)>>,
    seconds: f64,
}

impl<G: Group> Reader<G> {
    fn read(&mut self, b: usize) -> Result<Arc<EncryptedBatch<G>>, TrainError> {
        let start = Instant::now();
        let batch = self.cache.get(&self.dir, b)?;
        self.seconds += start.elapsed().as_secs_f64();
        if let Some(slot) = self.keys.get_mut(b) {
            *slot = Some((batch.row_key(), batch.col_key()));
        }
        Ok(batch)
    }
}

/// The trainer's view of one secure run: its connection to the authority
/// and the directories of batch files it streams.
struct Session<G: Group> {
    server: Arc<RemoteAuthority<G>>,
    train: BatchDir,
    test: Option<BatchDir>,
    client: Option<EncryptionStats>,
    /// Kept alive for the run when the authority is embedded.
    embedded: Option<EmbeddedAuthority>,
}

/// Starts the embedded parties (authority, then the client step), or
/// connects to remote ones.
fn open_session<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    parties: &Parties,
) -> Result<Session<G>, TrainError> {
    let (train, test, batches) = (&*data.train, &*data.test, &*data.batches);
    match parties {
        Parties::Embedded { work_dir, keep } => {
            let authority = start_embedded(work_dir, *keep, config)?;
            let client = authority.connect::<G>(Role::Client)?;
            let labels = (config.labels == LabelMode::Encrypted)
                .then_some((config.model.classes, config.quantization.label_scale));
            let job = EncryptionJob {
                data: train,
                batches,
                labels,
                source: format!("training images, seed {}", config.seed),
            };
            let dir = work_dir.join("ciphertexts");
            let (train_dir, stats) = encrypt_with_progress(&client, &job, &dir.join("train"))?;
            let test_batches = test_batches(config, test);
            let test_job = EncryptionJob {
                data: test,
                batches: &test_batches,
                labels: None,
                source: "the first test images, in order".into(),
            };
            let test_dir = (!test_batches.is_empty())
                .then(|| encrypt_with_progress(&client, &test_job, &dir.join("test")))
                .transpose()?
                .map(|(d, _)| d);
            Ok(Session {
                server: Arc::new(authority.connect(Role::Server)?),
                train: train_dir,
                test: test_dir,
                client: Some(stats),
                embedded: Some(authority),
            })
        }
        Parties::Remote(remote) => {
            if config.labels == LabelMode::Plain {
                return Err(TrainError::Config(
                    "a remote run takes its labels from the client's files: use --labels encrypted"
                        .into(),
                ));
            }
            let test_dir = remote.ciphertexts.join("test");
            Ok(Session {
                server: Arc::new(remote.connect()?),
                train: BatchDir::open(remote.ciphertexts.join("train"))?,
                test: test_dir
                    .exists()
                    .then(|| BatchDir::open(&test_dir))
                    .transpose()?,
                client: None,
                embedded: None,
            })
        }
    }
}

/// The client step of `job` into `dir`, with a progress meter.
///
/// # Errors
/// As [`encrypt_to_dir`].
pub fn encrypt_with_progress<G: Group>(
    client: &RemoteAuthority<G>,
    job: &EncryptionJob<'_>,
    dir: &Path,
) -> Result<(BatchDir, EncryptionStats), TrainError> {
    let mut meter: Option<Meter> = None;
    let result = encrypt_to_dir(client, job, dir, &mut |done, total| {
        meter
            .get_or_insert_with(|| Meter::new("encrypt", total))
            .set(done);
    });
    if let Some(meter) = meter {
        meter.finish();
    }
    Ok(result?)
}

/// The encrypted test images: the first `secure_test_size`, in whole batches.
pub fn test_batches(config: &TrainingConfig, test: &Dataset) -> Vec<Vec<usize>> {
    batches::leading(config.secure_test_size.min(test.len()), config.batch_size)
}

/// Counts the keys a key service hands out.
struct Counted<G: Group> {
    inner: Arc<RemoteAuthority<G>>,
    keys: AtomicU64,
}

impl<G: Group> KeyService<G> for Counted<G> {
    fn feip_keys(
        &self,
        instance: KeyId,
        ys: &[Vec<i64>],
    ) -> cryptonn_protocol::Result<Vec<FunctionKey<G>>> {
        let keys = self.inner.feip_keys(instance, ys)?;
        self.keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        Ok(keys)
    }

    fn febo_keys(
        &self,
        instance: KeyId,
        requests: &[FeboKeyRequest<G>],
    ) -> cryptonn_protocol::Result<Vec<febo::FunctionKey<G>>> {
        let keys = self.inner.febo_keys(instance, requests)?;
        self.keys.fetch_add(keys.len() as u64, Ordering::Relaxed);
        Ok(keys)
    }
}

/// The most spent budgets over the master keys of the batches read so far.
fn budget_meter<G: Group>(
    server: &RemoteAuthority<G>,
    keys: &[Option<(KeyId, KeyId)>],
) -> BudgetMeter {
    let budget = |id: KeyId| server.budget(id).ok().flatten();
    let most_spent = |side: &dyn Fn(&(KeyId, KeyId)) -> KeyId| {
        keys.iter()
            .flatten()
            .filter_map(|k| budget(side(k)))
            .max_by_key(|b: &Budget| b.rank)
    };
    BudgetMeter {
        rows: most_spent(&|k| k.0),
        cols: most_spent(&|k| k.1),
    }
}

/// Why the most spent budgets cannot serve epoch `epoch` (0-based), which
/// needs `need` more dimensions of every master key, if they cannot.
fn budget_spent(meter: &BudgetMeter, need: usize, epoch: usize) -> Option<String> {
    [("row-wise", meter.rows), ("column-wise", meter.cols)]
        .into_iter()
        .find_map(|(side, used)| used.filter(|u| !u.can_serve(need)).map(|u| (side, u)))
        .map(|(side, used)| {
            format!(
                "rank budget spent: epoch {} needs {need} more dimensions of a {side} master key, \
                 which has revealed {} of the {} allowed; rotate to fresh master keys \
                 (clients re-encrypt) to train on",
                epoch + 1,
                used.rank,
                used.limit
            )
        })
}

/// The secure run of the paper's mode.
///
/// # Errors
/// The parties' errors (unreachable authority, unreadable batch files, …)
/// and the secure layers'. A spent budget stops training cleanly instead.
pub(super) fn train_secure<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    parties: &Parties,
    outputs: &Outputs,
) -> Result<RunReport, TrainError> {
    let start = Instant::now();
    let session = open_session::<G>(config, data, parties)?;
    let manifest = session.train.manifest().clone();
    if manifest.features != config.model.d_input {
        return Err(TrainError::Config(format!(
            "the ciphertexts hold {} features, the model expects {}",
            manifest.features, config.model.d_input
        )));
    }
    let counted = Arc::new(Counted {
        inner: session.server.clone(),
        keys: AtomicU64::new(0),
    });
    let ctx = SecureContext::builder(counted.clone())
        .quantization(config.quantization)
        .build()?;
    let dir = outputs.learner_dir.clone();
    let (model, mut report) = train_streaming(config, data, &session, &ctx, dir)?;
    if let Some(path) = &outputs.model {
        save_model(&model, path)?;
    }
    report.secure_inference = secure_inference(&session, &model, &ctx, &data.test)?;
    if let (Some(path), Some(embedded)) = (&outputs.audit_log, &session.embedded) {
        embedded.export_audit::<G>(path)?;
    }
    report.seconds.client_encryption = session.client.map_or(0.0, |c| c.seconds);
    report.keys_issued = Some(counted.keys.load(Ordering::Relaxed));
    report.model_file = outputs.model.as_ref().map(|p| p.display().to_string());
    // On disk: rows, columns and labels of one image, with the container's framing.
    report.ciphertext_bytes_per_image = std::fs::metadata(session.train.path(0))
        .ok()
        .map(|m| m.len() as usize / manifest.batch_size.max(1));
    let client_requests = session.client.map(|c| c.key_requests).unwrap_or_default();
    report.peak_memory_mib = peak_memory_mib();
    report.key_service = Some(KeyServiceReport::new(
        &[client_requests, session.server.timings()],
        start.elapsed().as_secs_f64(),
    ));
    Ok(report)
}

/// The epochs on burn-train's Learner: each step reads one batch file,
/// decrypts through the secure layer and drops the batch (unless cached).
fn train_streaming<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    session: &Session<G>,
    ctx: &SecureContext<G>,
    dir: Option<PathBuf>,
) -> Result<(Mlp, RunReport), TrainError> {
    let count = session.train.manifest().batches;
    let device = device(config);
    let model = init_model(config, &data.test, &device, true);
    let reader = Arc::new(Mutex::new(Reader::<G> {
        dir: session.train.clone(),
        cache: BatchCache::new(count, config.batch_cache_mib << 20),
        keys: vec![None; count],
        seconds: 0.0,
    }));
    let meters = Arc::new(Mutex::new(Vec::new()));
    let train_start = Instant::now();
    let (model, epochs, stopped) = train_epochs(
        config,
        model,
        Epochs {
            name: "secure",
            batches: count,
            step: secure_step(config, data, &reader, ctx, device),
            test: crate::data::test_set(&data.test),
            logits: Arc::new(|model: &Mlp, inputs| model.forward_plain(inputs)),
            chunk: 1000,
            guard: Some(budget_guard(config, session, &reader, &meters)),
            dir,
        },
    )?;
    if stopped.is_none() || epochs.len() == config.epochs {
        let meter = budget_meter(&session.server, &lock(&reader).keys);
        lock(&meters).push(meter);
    }
    let train_seconds = train_start.elapsed().as_secs_f64();
    let steps: usize = epochs.iter().map(|e| e.step_losses.len()).sum();
    let times = ctx.phase_times();
    if let Some(why) = &stopped {
        eprintln!("secure training stopped early: {why}");
    }
    let (keys_s, decrypt_s) = (
        times.key_derivation.as_secs_f64(),
        times.decryption.as_secs_f64(),
    );
    let read_s = lock(&reader).seconds;
    let report = RunReport {
        test_accuracy: epochs.last().map_or(0.0, |e| e.test_accuracy),
        epochs,
        seconds: PhaseSeconds {
            client_encryption: 0.0,
            key_derivation: keys_s,
            decryption: decrypt_s,
            batch_reads: read_s,
            burn_compute: (train_seconds - keys_s - decrypt_s - read_s).max(0.0),
        },
        train_samples_per_s: (steps * config.batch_size) as f64 / train_seconds,
        budget: std::mem::take(&mut *lock(&meters)),
        stopped,
        ..RunReport::default()
    };
    Ok((model, report))
}

/// A secure training step: batch `b`'s first layer decrypted with function
/// keys, its loss from the encrypted labels (or the plaintext ones), and
/// the gradients through the secure layer's node.
fn secure_step<G: Group>(
    config: &TrainingConfig,
    data: &Data,
    reader: &Arc<Mutex<Reader<G>>>,
    ctx: &SecureContext<G>,
    device: Device,
) -> Arc<StepFn<Mlp>> {
    let (train, batches) = (data.train.clone(), data.batches.clone());
    let (reader, ctx) = (reader.clone(), ctx.clone());
    let labels = config.labels;
    Arc::new(move |model: &Mlp, b| {
        let batch = lock(&reader).read(b)?;
        // Encrypted labels come from the batch file only: a remote client's
        // batches need not match this process's images.
        let targets = (labels == LabelMode::Plain).then(|| train.targets(&batches[b], &device));
        encrypted_batch_step(model, &batch, &ctx, targets)
    })
}

/// One secure training step on an encrypted batch: the first layer
/// decrypted with function keys, the loss against `targets` or, without
/// them, the batch's FEBO-encrypted labels, and the gradients through the
/// secure layer's node.
///
/// # Errors
/// A refused key, a value out of the discrete-log bound, a batch without
/// encrypted labels when `targets` is `None`.
pub fn encrypted_batch_step<G: Group>(
    model: &Mlp,
    batch: &EncryptedBatch<G>,
    ctx: &SecureContext<G>,
    targets: Option<Tensor<1, Int>>,
) -> Result<(f64, Gradients), TrainError> {
    let logits = model.forward_encrypted(batch, ctx)?;
    let (loss, grads) = match (targets, batch.labels()) {
        (Some(targets), _) => {
            let (value, loss) = cross_entropy(logits, targets);
            (value, ctx.backward(loss)?)
        }
        (None, Some(labels)) => {
            let out = cross_entropy_encrypted(logits, labels, ctx)?;
            (out.loss, ctx.backward(out.surrogate)?)
        }
        (None, None) => {
            return Err(TrainError::Config(
                "the batch holds no encrypted labels and no plaintext ones were given".into(),
            ));
        }
    };
    Ok((loss, grads))
}

/// Before each epoch after the first: the most spent budgets over the
/// batches read so far (kept for the report), and whether they can serve
/// another epoch, which asks every batch's master keys for up to
/// `hidden · limbs` more dimensions.
fn budget_guard<G: Group>(
    config: &TrainingConfig,
    session: &Session<G>,
    reader: &Arc<Mutex<Reader<G>>>,
    meters: &Arc<Mutex<Vec<BudgetMeter>>>,
) -> Box<GuardFn> {
    let need = config.model.hidden[0] * config.quantization.limbs as usize;
    let (server, reader, meters) = (session.server.clone(), reader.clone(), meters.clone());
    Box::new(move |epoch| {
        let meter = budget_meter(&server, &lock(&reader).keys);
        let short = budget_spent(&meter, need, epoch);
        lock(&meters).push(meter);
        short
    })
}

/// Secure inference on the encrypted test images, streamed like training.
fn secure_inference<G: Group>(
    session: &Session<G>,
    model: &Mlp,
    ctx: &SecureContext<G>,
    test: &Dataset,
) -> Result<Option<SecureInference>, TrainError> {
    let Some(dir) = &session.test else {
        return Ok(None);
    };
    let mut classified = 0;
    secure_accuracy((0..dir.manifest().batches).map(|b| {
        let batch: EncryptedBatch<G> = dir.read_batch(b)?;
        let [rows, _] = batch.shape();
        if classified + rows > test.len() {
            return Err(TrainError::Config(format!(
                "the encrypted test images outnumber the {} test labels here; raise --test-size",
                test.len()
            )));
        }
        let labels = test.labels_of(&(classified..classified + rows).collect::<Vec<_>>());
        classified += rows;
        Ok((model.forward_encrypted(&batch, ctx)?, labels))
    }))
}
