//! The trainer's side of the batch files: read, validate and decode one
//! file per step, and keep what fits of the decoded batches between epochs.

use std::sync::Arc;
use std::time::Instant;

use cryptonn_fe::{Group, KeyId};
use cryptonn_protocol::container::{BatchDir, Kind};
use cryptonn_protocol::{EncryptedBatch, EncryptedImages, EncryptedLabels, EncryptedRows};

use super::config::TrainError;

/// A batch's master keys: row-wise, and column-wise if it has that side.
pub type BatchKeys = (KeyId, Option<KeyId>);

/// One batch file's content, as the trainer decodes it.
pub trait BatchFile<G: Group>: Sized + Send + Sync + 'static {
    /// The container kind of such files.
    const KIND: Kind;

    /// Batch `i` of `dir`, every point validated.
    ///
    /// # Errors
    /// A missing, truncated or corrupt file, or one of another kind.
    fn read(dir: &BatchDir, i: usize) -> cryptonn_protocol::Result<Self>;

    /// Images in the batch.
    fn images(&self) -> usize;

    /// Group elements held (the cache's unit of memory).
    fn points(&self) -> usize;

    /// The FEBO-encrypted one-hot labels, if the client sent them.
    fn labels(&self) -> Option<&EncryptedLabels<G>>;

    /// The master keys the server asks function keys under (row-wise, and
    /// column-wise if the file has a side for gradients).
    fn keys(&self) -> BatchKeys;
}

impl<G: Group> BatchFile<G> for EncryptedBatch<G> {
    const KIND: Kind = Kind::Batch;

    fn read(dir: &BatchDir, i: usize) -> cryptonn_protocol::Result<Self> {
        dir.read_batch(i)
    }

    fn images(&self) -> usize {
        self.shape()[0]
    }

    fn points(&self) -> usize {
        let [rows, features] = self.shape();
        rows * (features + 1) + features * (rows + 1)
    }

    fn labels(&self) -> Option<&EncryptedLabels<G>> {
        EncryptedBatch::labels(self)
    }

    fn keys(&self) -> BatchKeys {
        (self.row_key(), Some(self.col_key()))
    }
}

impl<G: Group> BatchFile<G> for EncryptedRows<G> {
    const KIND: Kind = Kind::Rows;

    fn read(dir: &BatchDir, i: usize) -> cryptonn_protocol::Result<Self> {
        dir.read_rows(i)
    }

    fn images(&self) -> usize {
        self.shape()[0]
    }

    fn points(&self) -> usize {
        let [rows, features] = self.shape();
        rows * (features + 1)
    }

    fn labels(&self) -> Option<&EncryptedLabels<G>> {
        EncryptedRows::labels(self)
    }

    fn keys(&self) -> BatchKeys {
        (self.row_key(), None)
    }
}

impl<G: Group> BatchFile<G> for EncryptedImages<G> {
    const KIND: Kind = Kind::Images;

    fn read(dir: &BatchDir, i: usize) -> cryptonn_protocol::Result<Self> {
        dir.read_images(i)
    }

    fn images(&self) -> usize {
        self.rows().len()
    }

    fn points(&self) -> usize {
        let pixels = self.geometry().pixels();
        let images = self.rows().len();
        images * (pixels + 1) + images * pixels + 1
    }

    fn labels(&self) -> Option<&EncryptedLabels<G>> {
        EncryptedImages::labels(self)
    }

    fn keys(&self) -> BatchKeys {
        (self.row_key(), Some(self.col_key()))
    }
}

/// Reads a directory's batches for the steps and the budget guard, keeping
/// decoded batches up to a byte budget: decoding a file (validating every
/// point) costs about a second per 256 MNIST images on 2 cores, so batches
/// that fit are decoded once; the rest are read, decoded and dropped every
/// epoch.
pub struct Reader<G: Group, F: BatchFile<G>> {
    dir: BatchDir,
    cache: Vec<Option<Arc<F>>>,
    left: usize,
    /// Each batch's master keys, once read.
    pub keys: Vec<Option<BatchKeys>>,
    /// Time spent reading and decoding, in seconds.
    pub seconds: f64,
    group: std::marker::PhantomData<G>,
}

impl<G: Group, F: BatchFile<G>> Reader<G, F> {
    /// A reader of `dir` keeping up to `budget_bytes` of decoded batches.
    ///
    /// # Errors
    /// [`TrainError::Config`] if `dir` holds another kind of file.
    pub fn new(dir: BatchDir, budget_bytes: usize) -> Result<Self, TrainError> {
        let manifest = dir.manifest();
        if manifest.kind != F::KIND {
            return Err(TrainError::Config(format!(
                "{} holds {:?} files, this model reads {:?} files",
                dir.dir().display(),
                manifest.kind,
                F::KIND
            )));
        }
        let count = manifest.batches;
        Ok(Self {
            dir,
            cache: vec![None; count],
            left: budget_bytes,
            keys: vec![None; count],
            seconds: 0.0,
            group: std::marker::PhantomData,
        })
    }

    /// The batches in the directory.
    pub fn len(&self) -> usize {
        self.cache.len()
    }

    /// Whether it holds none.
    pub fn is_empty(&self) -> bool {
        self.cache.is_empty()
    }

    /// Batch `b`, from the cache or from disk (then kept if it fits).
    ///
    /// # Errors
    /// As [`BatchFile::read`].
    pub fn read(&mut self, b: usize) -> Result<Arc<F>, TrainError> {
        let batch = match self.cache.get(b) {
            Some(Some(batch)) => batch.clone(),
            _ => self.load(b)?,
        };
        if let Some(slot) = self.keys.get_mut(b) {
            *slot = Some(batch.keys());
        }
        Ok(batch)
    }

    fn load(&mut self, b: usize) -> Result<Arc<F>, TrainError> {
        let start = Instant::now();
        let batch = Arc::new(F::read(&self.dir, b)?);
        self.seconds += start.elapsed().as_secs_f64();
        let bytes = batch.points() * std::mem::size_of::<G::Element>();
        if let Some(slot) = self.cache.get_mut(b).filter(|_| bytes <= self.left) {
            self.left -= bytes;
            *slot = Some(batch.clone());
        }
        Ok(batch)
    }
}
