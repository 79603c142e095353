//! The client step: encrypt batches of images under fresh public keys from
//! the authority and write one file per batch (`docs/FORMAT.md`).
//!
//! Memory stays one batch; a run that was interrupted resumes by skipping
//! the files already complete (they appear only by atomic rename).

use std::path::Path;
use std::time::Instant;

use cryptonn_fe::Group;
use cryptonn_protocol::container::{BatchDir, Kind, Manifest};
use cryptonn_protocol::{RemoteAuthority, RemoteTimings, Result};

use crate::dataset::Dataset;
use crate::{Client, PIXEL_SCALE, Samples};

/// What one directory of batch files holds.
#[derive(Debug, Clone)]
pub struct EncryptionJob<'a> {
    /// The images.
    pub data: &'a Dataset,
    /// The images of each batch, by index into `data`.
    pub batches: &'a [Vec<usize>],
    /// Classes and label scale, to encrypt the labels too.
    pub labels: Option<(usize, i64)>,
    /// Where the images came from, recorded in the manifest.
    pub source: String,
}

/// What the client step did.
#[derive(Debug, Clone, Copy, Default)]
pub struct EncryptionStats {
    /// Batches encrypted now (not skipped).
    pub written: usize,
    /// Batches already complete from an earlier run.
    pub skipped: usize,
    /// Wall time, in seconds.
    pub seconds: f64,
    /// Time spent on the authority's public-key requests.
    pub key_requests: RemoteTimings,
}

/// Encrypts every batch of `job` not yet complete in `dir`, with fresh keys
/// from `authority` per batch and encryption randomness from the operating
/// system's CSPRNG. `progress` hears after each batch how many images of
/// the missing ones are encrypted, and of how many.
///
/// # Errors
/// The authority's errors, an unwritable directory, or a directory that
/// already holds batches of another job.
pub fn encrypt_to_dir<G: Group>(
    authority: &RemoteAuthority<G>,
    job: &EncryptionJob<'_>,
    dir: &Path,
    progress: &mut dyn FnMut(usize, usize),
) -> Result<(BatchDir, EncryptionStats)> {
    let start = Instant::now();
    let batch_size = job.batches.first().map_or(0, Vec::len);
    let mut manifest = Manifest::new(
        G::ID,
        Kind::Batch,
        [batch_size, job.data.features],
        job.batches.len(),
        PIXEL_SCALE,
    )
    .with_source(job.source.clone());
    if let Some((classes, scale)) = job.labels {
        manifest = manifest.with_labels(classes, scale);
    }
    let out = BatchDir::create(dir, manifest)?;
    let missing = out.missing();
    let total = missing.iter().map(|&i| job.batches[i].len()).sum();
    let mut done = 0;
    let mut rng = rand::rng();
    for &i in &missing {
        let indices = &job.batches[i];
        let keys = authority.batch_keys(job.data.features, indices.len())?;
        let pixels = job.data.pixels(indices);
        let labels = job.data.labels_of(indices);
        let samples = Samples {
            inputs: &pixels,
            features: job.data.features,
            input_scale: PIXEL_SCALE,
            labels: job.labels.map(|(classes, _)| (labels.as_slice(), classes)),
        };
        let scale = job.labels.map_or(1, |(_, scale)| scale);
        let batch = Client::new(&keys)?.encrypt(&samples, scale, &mut rng)?;
        out.write_batch(i, &batch)?;
        done += indices.len();
        progress(done, total);
    }
    let stats = EncryptionStats {
        written: missing.len(),
        skipped: job.batches.len() - missing.len(),
        seconds: start.elapsed().as_secs_f64(),
        key_requests: authority.timings(),
    };
    Ok((out, stats))
}
