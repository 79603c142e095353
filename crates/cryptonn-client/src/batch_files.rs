//! The client step: encrypt batches of images under fresh public keys from
//! the authority and write one file per batch (`docs/FORMAT.md`), in the
//! layout the trainer's first layer reads ([`Layout`]).
//!
//! Memory stays one batch; a run that was interrupted resumes by skipping
//! the files already complete (they appear only by atomic rename).

use std::path::Path;
use std::time::Instant;

use cryptonn_fe::Group;
use cryptonn_protocol::container::{BatchDir, Kind, Manifest};
use cryptonn_protocol::{PatchGeometry, RemoteAuthority, RemoteTimings, Result};
use rand::CryptoRng;

use crate::dataset::Dataset;
use crate::{Client, ImageClient, PIXEL_SCALE, Samples};

/// What each batch file holds: which ciphertexts of its images.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// Row-wise and column-wise ciphertexts (the paper's secure linear
    /// layer: forward pass and weight gradient), as [`Kind::Batch`].
    Batch,
    /// Row-wise ciphertexts only (projection mode: the forward pass once,
    /// no gradient key), as [`Kind::Rows`].
    Rows,
    /// Each image whole and the batch once more, for a secure convolution
    /// of this geometry, as [`Kind::Images`].
    Images(PatchGeometry),
}

impl Layout {
    /// The container kind of its files.
    pub fn kind(self) -> Kind {
        match self {
            Self::Batch => Kind::Batch,
            Self::Rows => Kind::Rows,
            Self::Images(_) => Kind::Images,
        }
    }
}

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
    /// Which ciphertexts each file holds.
    pub layout: Layout,
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
    let shape = [batch_size, job.data.features];
    let mut manifest = Manifest::new(
        G::ID,
        job.layout.kind(),
        shape,
        job.batches.len(),
        PIXEL_SCALE,
    )
    .with_source(job.source.clone());
    if let Layout::Images(geometry) = job.layout {
        manifest = manifest.with_geometry(geometry);
    }
    if let Some((classes, scale)) = job.labels {
        manifest = manifest.with_labels(classes, scale);
    }
    let out = BatchDir::create(dir, manifest)?;
    let missing = out.missing();
    let total = missing.iter().map(|&i| job.batches[i].len()).sum();
    let (mut done, mut rng) = (0, rand::rng());
    for &i in &missing {
        write_batch(authority, job, &out, i, &mut rng)?;
        done += job.batches[i].len();
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

/// Encrypts batch `i` of `job` under fresh keys and writes it to `out`.
fn write_batch<G: Group, R: CryptoRng + ?Sized>(
    authority: &RemoteAuthority<G>,
    job: &EncryptionJob<'_>,
    out: &BatchDir,
    i: usize,
    rng: &mut R,
) -> Result<()> {
    let indices = &job.batches[i];
    let (features, images) = (job.data.features, indices.len());
    let pixels = job.data.pixels(indices);
    let labels = job.data.labels_of(indices);
    let samples = Samples {
        inputs: &pixels,
        features,
        input_scale: PIXEL_SCALE,
        labels: job.labels.map(|(classes, _)| (labels.as_slice(), classes)),
    };
    let scale = job.labels.map_or(1, |(_, scale)| scale);
    match job.layout {
        Layout::Batch => {
            let keys = authority.batch_keys(features, images)?;
            out.write_batch(i, &Client::new(&keys)?.encrypt(&samples, scale, rng)?)
        }
        Layout::Rows => {
            let keys = authority.row_keys(features)?;
            let rows = Client::for_rows(&keys)?.encrypt_rows(&samples, scale, rng)?;
            out.write_rows(i, &rows)
        }
        Layout::Images(geometry) => {
            let keys = authority.patch_keys(geometry, images)?;
            let client = ImageClient::new(&keys, geometry)?;
            let encrypted = match job.labels {
                Some((classes, scale)) => {
                    client.encrypt_labelled(&pixels, PIXEL_SCALE, &labels, classes, scale, rng)?
                }
                None => client.encrypt(&pixels, PIXEL_SCALE, rng)?,
            };
            out.write_images(i, &encrypted)
        }
    }
}
