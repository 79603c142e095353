//! The trainer's side of the batch files: read, validate and decode one
//! file per step, and keep what fits of the decoded batches between epochs.

use std::sync::Arc;
use std::thread::{self, JoinHandle};
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
    /// Time the trainer waited for reading and decoding, in seconds.
    pub seconds: f64,
    /// The order the trainer will ask for batches in, and how far it got.
    order: Vec<usize>,
    next: usize,
    /// The batch being read ahead on its own thread, while the trainer
    /// works (its decoding fills the cores' idle moments: key requests).
    ahead: Option<(usize, JoinHandle<cryptonn_protocol::Result<F>>)>,
    group: std::marker::PhantomData<G>,
}

impl<G: Group, F: BatchFile<G>> Drop for Reader<G, F> {
    fn drop(&mut self) {
        // Nothing is left running past the training that asked for it.
        if let Some((_, handle)) = self.ahead.take() {
            let _ = handle.join();
        }
    }
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
            order: Vec::new(),
            next: 0,
            ahead: None,
            group: std::marker::PhantomData,
        })
    }

    /// The same reader, told the order of the batches it will be asked for
    /// (every epoch's): after each read it reads the next one ahead.
    #[must_use]
    pub fn reading_ahead(mut self, order: Vec<usize>) -> Self {
        self.order = order;
        self.next = 0;
        self
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
        self.read_next_ahead(b);
        Ok(batch)
    }

    /// Starts reading the batch after `b` in the order, unless it is cached
    /// or already on its way.
    fn read_next_ahead(&mut self, b: usize) {
        // Past b's next place in the order, so that a read out of order
        // (none today) does not leave the cursor behind.
        if let Some(pos) = self.order.iter().skip(self.next).position(|&o| o == b) {
            self.next += pos + 1;
        }
        let Some(&after) = self.order.get(self.next) else {
            return;
        };
        let cached = matches!(self.cache.get(after), Some(Some(_)));
        if cached || self.ahead.is_some() {
            return;
        }
        let dir = self.dir.clone();
        let handle = thread::spawn(move || F::read(&dir, after));
        self.ahead = Some((after, handle));
    }

    fn load(&mut self, b: usize) -> Result<Arc<F>, TrainError> {
        let start = Instant::now();
        let read = match self.ahead.take() {
            Some((ahead, handle)) if ahead == b => handle.join().unwrap_or_else(|_| {
                Err(cryptonn_protocol::Error::InvalidBatch(
                    "the read-ahead thread stopped".into(),
                ))
            }),
            other => {
                // Another batch was read ahead: let it finish, unused.
                if let Some((_, handle)) = other {
                    let _ = handle.join();
                }
                F::read(&self.dir, b)
            }
        };
        let batch = Arc::new(read?);
        self.seconds += start.elapsed().as_secs_f64();
        let bytes = batch.points() * std::mem::size_of::<G::Element>();
        if let Some(slot) = self.cache.get_mut(b).filter(|_| bytes <= self.left) {
            self.left -= bytes;
            *slot = Some(batch.clone());
        }
        Ok(batch)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use cryptonn_fe::{GroupId, Ristretto255, feip};
    use cryptonn_protocol::container::Manifest;
    use rand::SeedableRng;
    use rand::rngs::StdRng;

    type G = Ristretto255;

    /// Three row-wise files of two images of three pixels; file 1 corrupt
    /// when `corrupt`.
    fn dir(name: &str, corrupt: bool) -> BatchDir {
        let root =
            std::env::temp_dir().join(format!("cryptonn-reader-{name}-{}", std::process::id()));
        let _ = std::fs::remove_dir_all(&root);
        let manifest = Manifest::new(GroupId::Ristretto255, Kind::Rows, [2, 3], 3, 255.0);
        let dir = BatchDir::create(&root, manifest).unwrap();
        let mut rng = StdRng::seed_from_u64(4);
        let (_, mpk) = feip::setup::<G, _>(3, &mut rng).unwrap();
        for i in 0..3 {
            let cts = (0..2)
                .map(|j| feip::encrypt(&mpk, &[i, j, 7], &mut rng).unwrap())
                .collect();
            dir.write_rows(i as usize, &EncryptedRows::new(255.0, cts, None).unwrap())
                .unwrap();
        }
        if corrupt {
            let path = dir.path(1);
            let mut bytes = std::fs::read(&path).unwrap();
            let last = bytes.len() - 1;
            bytes[last] ^= 1;
            std::fs::write(&path, bytes).unwrap();
        }
        dir
    }

    /// Read ahead or not, in the announced order or out of it, every batch
    /// is the file's; a corrupt file read ahead is still an error, on its
    /// own read.
    #[test]
    fn reading_ahead_changes_nothing_but_the_wait() {
        let files = dir("ahead", false);
        let order = vec![2, 0, 1, 1, 2, 0];
        for budget in [0, 1 << 30] {
            let mut reader = Reader::<G, EncryptedRows<G>>::new(files.clone(), budget)
                .unwrap()
                .reading_ahead(order.clone());
            for &b in order.iter().chain(&[1, 0, 2]) {
                assert_eq!(*reader.read(b).unwrap(), files.read_rows::<G>(b).unwrap());
            }
        }
        let bad = dir("corrupt", true);
        let mut reader = Reader::<G, EncryptedRows<G>>::new(bad, 0)
            .unwrap()
            .reading_ahead(vec![0, 1, 2]);
        assert!(reader.read(0).is_ok());
        assert!(reader.read(1).is_err());
        assert!(reader.read(2).is_ok());
    }
}
